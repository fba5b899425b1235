"""The weekly report's UAS7 chart (clinicians/charts.py), pure: no database.

What a clinician reads off the image is checked on the figure's texts and patches; the PNG
itself is decoded for its size and compared byte for byte across two renderings."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from PIL import Image

from clinicians.charts import BANDS, _figure, uas7_chart_png

START = date(2026, 1, 5)  # a Monday
END = START + timedelta(days=7 * 12 - 1)
PATIENT = "Alice Example"
Row = tuple[float | int | None, str | None, str, int]  # UAS7, band, method, days observed
# Every band, two prorated weeks (4 and 5 days), one missing week.
ROWS: list[Row] = [
    (30.5, "severe", "complete", 7),
    (28, "severe", "complete", 7),
    (22.4, "moderate", "prorated", 5),
    (18, "moderate", "complete", 7),
    (None, None, "missing", 2),
    (15, "mild", "complete", 7),
    (9.6, "mild", "prorated", 4),
    (9, "mild", "complete", 7),
    (6, "well_controlled", "complete", 7),
    (2, "well_controlled", "complete", 7),
    (0, "urticaria_free", "complete", 7),
    (41, "severe", "complete", 7),
]
MISSING_SLOT = 4
PRORATED_4_SLOT = 6


def make_weeks(rows: Sequence[Row] = ROWS) -> list[dict[str, Any]]:
    weeks = []
    for i, (uas7, band, method, days) in enumerate(rows):
        start = START + timedelta(days=7 * i)
        weeks.append(
            {
                "week_start": start.isoformat(),
                "week_end": (start + timedelta(days=6)).isoformat(),
                "uas7": uas7,
                "band": band,
                "method": method,
                "days_observed": days,
            }
        )
    return weeks


def figure(weeks: list[dict[str, Any]] | None = None, patient: str = PATIENT) -> Figure:
    fig = _figure(patient_label=patient, period_start=START, period_end=END, weeks=weeks or make_weeks())
    fig.canvas.draw()  # lays out tick labels and the legend as they will be saved
    return fig


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def bars(fig: Figure) -> list[Rectangle]:
    """The UAS7 bars: the data axes' bar containers (the zones are Rectangles too, but no bars)."""
    return [p for container in fig.axes[0].containers for p in container if isinstance(p, Rectangle)]


def png() -> bytes:
    return uas7_chart_png(patient_label=PATIENT, period_start=START, period_end=END, weeks=make_weeks())


def test_png_decodes_at_900_by_450() -> None:
    image = Image.open(io.BytesIO(png()))
    image.load()
    assert image.format == "PNG"
    assert image.size == (900, 450)


def test_same_input_same_bytes_and_no_software_stamp() -> None:
    first, second = png(), png()
    assert first == second
    assert b"Matplotlib" not in first and b"Software" not in first


def test_title_axis_titles_and_week_labels() -> None:
    drawn = texts(figure())
    assert f"UAS7 — {PATIENT} — 2026-01-05 to 2026-03-29" in drawn
    assert "Week starting" in drawn
    assert "UAS7 (0–42)" in drawn
    # one tick per week, the year under the first one
    assert "05 Jan\n2026" in drawn
    for label in ("12 Jan", "09 Feb", "23 Mar"):
        assert label in drawn
    ticks = [t.get_text() for t in figure().axes[0].get_xticklabels()]
    assert len(ticks) == 12


def test_legend_names_every_band_prorated_hatch_and_no_data() -> None:
    (legend,) = figure().legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "urticaria-free (0)",
        "well controlled (1–6)",
        "mild (7–15)",
        "moderate (16–27)",
        "severe (28–42)",
        "prorated (n/7 days)",
        "no data (under 4 of 7 days recorded)",
    ]
    hatch_handle = legend.legend_handles[5]
    assert hatch_handle is not None and hatch_handle.get_hatch() == "///"  # type: ignore[attr-defined]


def test_zones_are_shaded_and_named() -> None:
    fig = figure()
    zone_names = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert zone_names == [
        "urticaria-free",
        "well controlled\n(1–6)",
        "mild\n(7–15)",
        "moderate\n(16–27)",
        "severe\n(28–42)",
    ]
    assert [band.zone for band in BANDS] == [(0, 0.5), (0.5, 6.5), (6.5, 15.5), (15.5, 27.5), (27.5, 42)]
    assert fig.axes[0].get_ylim() == (0, 42)


def test_missing_week_has_no_bar_but_says_no_data() -> None:
    fig = figure()
    drawn = texts(fig)
    assert drawn.count("no data") == 1
    (no_data,) = [t for t in fig.axes[0].texts if t.get_text() == "no data"]
    assert no_data.get_position()[0] == MISSING_SLOT
    slots = [round(b.get_x() + b.get_width() / 2) for b in bars(fig)]
    assert MISSING_SLOT not in slots
    assert len(slots) == 11


def test_prorated_weeks_are_hatched_and_say_n_of_7() -> None:
    fig = figure()
    drawn = texts(fig)
    assert "4/7" in drawn and "5/7" in drawn
    (four,) = [t for t in fig.axes[0].texts if t.get_text() == "4/7"]
    assert four.get_position()[0] == PRORATED_4_SLOT
    assert four.get_position()[1] > 9.6  # above its bar
    hatched = {round(b.get_x() + b.get_width() / 2) for b in bars(fig) if b.get_hatch()}
    assert hatched == {2, PRORATED_4_SLOT}
    assert "7/7" not in drawn  # complete weeks carry no day count


def test_bar_colour_is_its_band_and_its_top_lies_in_that_band_zone() -> None:
    """Bands go by the UAS7 rounded half-up to a whole number, so values on either side of each
    half point land in the zone drawn for their band."""
    floors = [(28, "severe"), (16, "moderate"), (7, "mild"), (1, "well_controlled")]

    def band_of(value: float) -> str:
        whole = int(Decimal(str(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
        return next((band for floor, band in floors if whole >= floor), "urticaria_free")

    values = [0.4, 0.5, 6.4, 6.5, 15.4, 15.5, 27.4, 27.5, 42]
    rows = [(v, band_of(v), "complete", 7) for v in values]
    by_key = {band.key: band for band in BANDS}
    for bar, value in zip(bars(figure(make_weeks(rows))), values, strict=True):
        band = by_key[band_of(value)]
        assert bar.get_facecolor() == to_rgba(band.colour)
        low, high = band.zone
        assert low <= bar.get_height() <= high, (value, band.key)


def test_tall_bar_keeps_its_labels_inside_the_axes() -> None:
    rows: list[Row] = [(41.2, "severe", "prorated", 6)]
    fig = figure(make_weeks(rows))
    for label in ("41.2", "6/7"):
        (text,) = [t for t in fig.axes[0].texts if t.get_text() == label]
        assert text.get_position()[1] < 42


def test_patient_label_is_drawn_literally_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    label = r"Pat $\frac{1}{$ O'Brien"  # would be invalid mathtext if parsed
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a glyph missing from the font
        data = uas7_chart_png(patient_label=label, period_start=START, period_end=END, weeks=make_weeks())
        assert f"UAS7 — {label} — 2026-01-05 to 2026-03-29" in texts(figure(patient=label))
    assert Image.open(io.BytesIO(data)).size == (900, 450)
    assert all(label not in r.getMessage() and "O'Brien" not in r.getMessage() for r in caplog.records)


def test_no_weeks_still_renders() -> None:
    data = uas7_chart_png(patient_label=PATIENT, period_start=START, period_end=END, weeks=[])
    assert Image.open(io.BytesIO(data)).size == (900, 450)


@pytest.mark.slow
def test_renders_with_a_read_only_home(tmp_path: Path) -> None:
    """A worker whose HOME cannot be written: matplotlib's cache goes to a private temp dir."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    env = {
        k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
    }
    env["HOME"] = str(home)
    code = (
        "import os, sys\n"
        "from datetime import date\n"
        "from clinicians.charts import uas7_chart_png\n"
        "png = uas7_chart_png(patient_label='x', period_start=date(2026, 1, 5),"
        " period_end=date(2026, 3, 29), weeks=[])\n"
        "assert png.startswith(b'\\x89PNG')\n"
        "print(os.environ['MPLCONFIGDIR'])\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        home.chmod(0o700)
    assert done.returncode == 0, done.stderr
    config_dir = done.stdout.strip()
    assert not config_dir.startswith(str(home))
    assert "is not a writable directory" not in done.stderr
    assert list(home.iterdir()) == []
