"""The weekly patient report's chart: UAS7 per week as bars over the named activity bands.

Rendered with matplotlib's Agg canvas on a `Figure` of its own: no pyplot, so no global figure
registry or GUI backend, and rcParams are only read, never changed. Nothing here logs: the chart
holds patient health data.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from typing import Any

# matplotlib keeps a font cache in its config dir (~/.config/matplotlib by default); a worker's
# HOME may be read-only, so unless the deployment chose a dir, use a private temporary one
# (mkdtemp: owned by this user, mode 0700, never a shared predictable path). It must be set
# before matplotlib is first imported.
if not os.environ.get("MPLCONFIGDIR"):
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="csu-matplotlib-")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

SIZE_IN = (9.0, 4.5)
DPI = 100
UAS7_MAX = 42
LABEL_INSIDE_ABOVE = 35  # a bar taller than this carries its labels inside, under its top


@dataclass(frozen=True)
class _Band:
    key: str
    name: str
    lowest: int  # the band's whole-number UAS7 range, as published
    highest: int
    colour: str

    @property
    def scores(self) -> str:
        return f"{self.lowest}" if self.lowest == self.highest else f"{self.lowest}–{self.highest}"

    @property
    def zone(self) -> tuple[float, float]:
        """The band's span on the y axis: its whole numbers ± 0.5, within 0–42."""
        return max(0.0, self.lowest - 0.5), min(float(UAS7_MAX), self.highest + 0.5)


# Stull et al., Br J Dermatol 2017. A band is decided on the UAS7 rounded half-up to a whole
# number (patients/scores.py: 27.4 is moderate, 27.5 severe), so the zones end at the half points
# (0.5, 6.5, 15.5, 27.5) and a bar's top lies in the zone of its own colour. (The one exception:
# a prorated week under 0.5 is "well controlled", not urticaria-free; its n/7 label says why.)
BANDS = (
    _Band("urticaria_free", "urticaria-free", 0, 0, "#2e7d32"),
    _Band("well_controlled", "well controlled", 1, 6, "#7cb342"),
    _Band("mild", "mild", 7, 15, "#fdd835"),
    _Band("moderate", "moderate", 16, 27, "#fb8c00"),
    _Band("severe", "severe", 28, UAS7_MAX, "#d32f2f"),
)
_BY_KEY = {band.key: band for band in BANDS}
_UNBANDED = "#9e9e9e"  # a value without a band (should not happen): grey, still drawn
_EDGE = "#37474f"
_HATCH = "#ffffff"  # white stripes keep the band colour readable (dark ones turn yellow green)
_MILD_TEXT = "#9e7c00"  # the band's yellow is unreadable as text on white
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}


def _tick_label(day: date, previous: date | None) -> str:
    """ "02 Mar", with the year under the first week and under a week where the year changes
    (month names fixed in English, not the process locale, so the image is reproducible)."""
    label = f"{day.day:02d} {_MONTHS[day.month - 1]}"
    if previous is None or previous.year != day.year:
        label += f"\n{day.year}"
    return label


def _value_label(value: float) -> str:
    return f"{value:g}"


def _figure(
    *, patient_label: str, period_start: date, period_end: date, weeks: list[dict[str, Any]]
) -> Figure:
    """The chart as a matplotlib Figure on an Agg canvas (tests read its texts)."""
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.075, 0.3, 0.77, 0.6))

    # Band zones: shaded spans, named on a right-hand axis (urticaria-free is the thin 0–0.5 strip,
    # so it is shaded darker).
    for band in BANDS:
        low, high = band.zone
        alpha = 0.6 if band.key == "urticaria_free" else 0.16
        ax.axhspan(low, high, facecolor=band.colour, alpha=alpha, linewidth=0, zorder=0)
        if low > 0:
            ax.axhline(low, color=_EDGE, linewidth=0.6, linestyle=(0, (4, 3)), alpha=0.6, zorder=1)
    names = ax.twinx()
    names.set_ylim(0, UAS7_MAX)
    names.set_yticks(
        [0 if band.key == "urticaria_free" else sum(band.zone) / 2 for band in BANDS],
        labels=[
            f"{band.name}\n({band.scores})" if band.lowest != band.highest else band.name for band in BANDS
        ],
        fontsize=8,
    )
    names.tick_params(axis="y", length=0)
    for label, band in zip(names.get_yticklabels(), BANDS, strict=True):
        label.set_color(_MILD_TEXT if band.key == "mild" else band.colour)
        label.set_fontweight("bold")

    x_positions = list(range(len(weeks)))
    bottom_of_axes = blended_transform_factory(ax.transData, ax.transAxes)
    for x, week in zip(x_positions, weeks, strict=True):
        value = week["uas7"]
        if week["method"] == "missing" or value is None:
            # No bar (a stub at 0 would read as itch-free): say so in the slot.
            ax.text(
                x,
                0.03,
                "no data",
                transform=bottom_of_axes,
                ha="center",
                va="bottom",
                fontsize=7.5,
                color="#424242",
                style="italic",
                bbox=_LABEL_BOX,
                zorder=6,
            )
            continue
        bar_band = _BY_KEY.get(week["band"] or "")
        prorated = week["method"] == "prorated"
        ax.bar(
            x,
            float(value),
            width=0.7,
            color=bar_band.colour if bar_band else _UNBANDED,
            edgecolor=_EDGE,
            linewidth=0.8,
            hatch="///" if prorated else None,
            hatchcolor=_HATCH,
            zorder=3,
        )
        # The value, and for a prorated week the days it rests on, above the bar (inside the top
        # of a bar too tall for room above it).
        labels = [(_value_label(float(value)), "bold")]
        if prorated:
            labels.append((f"{week['days_observed']}/7", "normal"))
        inside = float(value) > LABEL_INSIDE_ABOVE
        y, step = (float(value) - 0.8, -2.6) if inside else (float(value) + 0.6, 2.6)
        for text, weight in labels if inside else reversed(labels):
            ax.text(
                x,
                y,
                text,
                ha="center",
                va="top" if inside else "bottom",
                fontsize=8,
                fontweight=weight,
                bbox=_LABEL_BOX,
                zorder=6,
            )
            y += step

    ax.set_xlim(-0.6, max(len(weeks), 1) - 0.4)
    ax.set_ylim(0, UAS7_MAX)
    ax.set_yticks([0, *(band.lowest for band in BANDS[2:]), UAS7_MAX])  # 0 and the floors 7, 16, 28
    ax.tick_params(axis="both", labelsize=8)
    previous: date | None = None
    tick_labels = []
    for week in weeks:
        start = date.fromisoformat(week["week_start"])
        tick_labels.append(_tick_label(start, previous))
        previous = start
    ax.set_xticks(x_positions, labels=tick_labels)
    ax.set_xlabel("Week starting", fontsize=9)
    ax.set_ylabel("UAS7 (0–42)", fontsize=9)
    ax.set_axisbelow(True)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
        names.spines[spine].set_visible(False)
    names.spines["left"].set_visible(False)
    names.spines["bottom"].set_visible(False)

    # The patient label is free text: never parsed as mathtext ("$…$").
    fig.suptitle(
        f"UAS7 — {patient_label} — {period_start.isoformat()} to {period_end.isoformat()}",
        fontsize=11,
        fontweight="bold",
        x=0.075,
        ha="left",
        y=0.965,
        parse_math=False,
    )

    handles: list[Patch] = [
        Patch(facecolor=band.colour, edgecolor=_EDGE, linewidth=0.6, label=f"{band.name} ({band.scores})")
        for band in BANDS
    ]
    handles += [
        Patch(
            facecolor="#90a4ae",
            edgecolor=_EDGE,
            hatch="///",
            hatchcolor=_HATCH,
            linewidth=0.6,
            label="prorated (n/7 days)",
        ),
        Patch(facecolor="none", edgecolor="none", label="no data (under 4 of 7 days recorded)"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.46, 0.005),
        fontsize=8,
        frameon=False,
        ncols=4,
        handlelength=1.6,
        columnspacing=1.4,
    )
    return fig


def uas7_chart_png(
    *, patient_label: str, period_start: date, period_end: date, weeks: list[dict[str, Any]]
) -> bytes:
    """PNG of the weekly UAS7 bars (900×450 px). Same input, same bytes: the PNG carries no
    software/version or time metadata."""
    fig = _figure(patient_label=patient_label, period_start=period_start, period_end=period_end, weeks=weeks)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()
