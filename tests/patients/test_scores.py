"""Worked examples and properties for patients/scores.py (sources in clinical-scores.md)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patients import scores
from patients.scores import DayScore, HalfDay, Regimen

END = date(2026, 3, 15)


def week(values: list[int | None], end: date = END) -> dict[date, DayScore]:
    """Daily UAS for the 7 days ending on `end` (None = not recorded), split itch/wheals."""
    out = {}
    for i, value in enumerate(values):
        if value is not None:
            day = end - timedelta(days=6 - i)
            itch = min(value, 3)
            out[day] = DayScore(uas=value, itch=itch, wheals=value - itch)
    return out


def test_daily_uas_once_daily() -> None:
    assert scores.daily_uas([HalfDay("day", 2, 3)]) == DayScore(uas=5, itch=3, wheals=2)
    assert scores.daily_uas([]) is None
    with pytest.raises(ValueError):
        scores.daily_uas([HalfDay("day", 4, 0)])


def test_daily_uas_twice_daily_is_the_mean_of_am_and_pm_or_the_half_that_exists() -> None:
    assert scores.daily_uas([HalfDay("am", 3, 3), HalfDay("pm", 1, 0)]) == DayScore(
        uas=3.5, itch=1.5, wheals=2.0
    )
    assert scores.daily_uas([HalfDay("pm", 1, 2)]) == DayScore(uas=3, itch=2, wheals=1)


def test_complete_week_is_the_plain_sum() -> None:
    result = scores.uas7_for_week(week([2, 3, 4, 1, 0, 6, 5]), END)
    assert (result.uas7, result.method, result.days_observed, result.band) == (21, "complete", 7, "moderate")
    assert result.start == date(2026, 3, 9)
    assert (result.itch7, result.hives7) == (2 + 3 + 3 + 1 + 0 + 3 + 3, 0 + 0 + 1 + 0 + 0 + 3 + 2)


def test_five_of_seven_days_are_prorated_to_one_decimal() -> None:
    # (4+4+5+3+2) = 18 over 5 days → 18 / 5 × 7 = 25.2
    result = scores.uas7_for_week(week([4, None, 4, 5, None, 3, 2]), END)
    assert (result.uas7, result.method, result.days_observed, result.band) == (
        25.2,
        "prorated",
        5,
        "moderate",
    )


def test_three_of_seven_days_is_missing() -> None:
    result = scores.uas7_for_week(week([6, None, None, 6, None, 6, None]), END)
    assert (result.uas7, result.method, result.days_observed, result.band) == (None, "missing", 3, None)
    assert (result.itch7, result.hives7) == (None, None)


def test_twice_daily_week_with_a_missing_half_day() -> None:
    day_scores = {}
    for i in range(7):
        day = END - timedelta(days=6 - i)
        records = [HalfDay("am", 1, 2), HalfDay("pm", 2, 1)] if i != 3 else [HalfDay("pm", 3, 3)]
        day_scores[day] = scores.daily_uas(records)
    result = scores.uas7_for_week(day_scores, END)
    # six days of mean 3 and one day with only the evening half (6): 18 + 6 = 24
    assert (result.uas7, result.method, result.band) == (24, "complete", "moderate")


def test_prorating_rounds_half_up() -> None:
    # 4 days summing 5.5 (twice-daily halves) → 5.5 / 4 × 7 = 9.625 → 9.6; 9.65 style half → up
    assert scores.round_1dp(9.65) == 9.7
    assert scores.round_1dp(10.25) == 10.3


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0, "urticaria_free"),
        (1, "well_controlled"),
        (6, "well_controlled"),
        (6.5, "mild"),
        (7, "mild"),
        (15, "mild"),
        (16, "moderate"),
        (27, "moderate"),
        (28, "severe"),
        (42, "severe"),
        (None, None),
    ],
)
def test_band_boundaries(value: float | None, band: str | None) -> None:
    assert scores.uas7_band(value) == band


def test_change_vs_previous_week_and_the_mid() -> None:
    assert scores.uas7_change(30, 18) == scores.Change(12, True)
    assert scores.uas7_change(18, 27.5) == scores.Change(-9.5, False)
    assert scores.uas7_change(20, 10) == scores.Change(10, True)
    assert scores.uas7_change(None, 10) == scores.Change(None, False)


@pytest.mark.parametrize(
    ("answers", "total", "category"),
    [
        ([3, 3, 3, 2], 11, "poorly_controlled"),
        ([3, 3, 3, 3], 12, "well_controlled"),
        ([4, 4, 4, 4], 16, "complete_control"),
    ],
)
def test_uct_totals_and_categories(answers: list[int], total: int, category: str) -> None:
    assert scores.uct_total(answers) == total
    assert scores.uct_category(total) == category


@pytest.mark.parametrize("answers", [[1, 2, 3], [1, 2, 3, 5], [1, 2, 3, -1], [1, 2, 3, True]])
def test_uct_refuses_malformed_answers(answers: list) -> None:
    with pytest.raises(ValueError):
        scores.uct_total(answers)


def test_aas_day_and_weeks_with_angioedema_days() -> None:
    assert scores.aas_day(False, None) == 0
    assert scores.aas_day(True, [3, 3, 3, 3, 3]) == 15
    with pytest.raises(ValueError):
        scores.aas_day(True, [1, 1, 1])
    per_day = {END - timedelta(days=i): 0 for i in range(28)}
    per_day[END] = 12
    per_day[END - timedelta(days=2)] = 7
    per_day[END - timedelta(days=20)] = 15
    aas7 = scores.aas7(per_day, END)
    assert (aas7.value, aas7.method) == (19, "complete")
    aas28 = scores.aas28(per_day, END)
    assert (aas28.value, aas28.method, aas28.days_observed) == (34, "complete", 28)
    del per_day[END - timedelta(days=25)]
    del per_day[END - timedelta(days=26)]
    del per_day[END - timedelta(days=27)]
    del per_day[END - timedelta(days=24)]
    assert scores.aas28(per_day, END).method == "missing"  # the oldest week has 3 of 7 days


def daily(key: str, k: int, start: date, end: date | None = None) -> Regimen:
    return Regimen(key, "n_per_day", k, start, end, medication="cetirizine")


def adherence(
    regimens: list[Regimen], taken: dict[str, list[date]], start: date, end: date
) -> scores.MedicationAdherence:
    """The one medication's adherence over [start, end], the last day over."""
    (result,) = scores.medication_adherence(regimens, taken, start, end, today_over=True)
    return result


def test_pdc_of_a_medication_across_a_regimen_change_mid_period() -> None:
    """Reference §6.2: split at the step-up, reported as covered ÷ eligible days for the
    medication over the whole period (not one PDC per prescription)."""
    period_start, period_end = date(2026, 3, 1), date(2026, 3, 28)
    standard = daily("std", 1, date(2026, 2, 1), date(2026, 3, 14))
    updosed = daily("x2", 2, date(2026, 3, 15))
    # Standard dose: taken every day but 4 → 10/14. Up-dosed ×2: both doses on 10 days, one dose on 4.
    std_taken = [period_start + timedelta(days=i) for i in range(14) if i not in (2, 5, 8, 11)]
    up_taken = []
    for i in range(14):
        day = date(2026, 3, 15) + timedelta(days=i)
        up_taken += [day, day] if i < 10 else [day]
    result = adherence([standard, updosed], {"std": std_taken, "x2": up_taken}, period_start, period_end)
    assert (result.medication, result.eligible_days, result.covered_days) == ("cetirizine", 28, 20)
    assert (result.pdc, result.adherent) == (round(20 / 28, 4), False)
    assert result.dose_ratio == round((10 + 24) / (14 + 28), 4)  # Σ min(logged, k) ÷ Σ k


def test_extra_doses_earn_no_credit() -> None:
    start = date(2026, 3, 1)
    result = adherence([daily("x", 1, start)], {"x": [start] * 5}, start, start + timedelta(days=6))
    assert (result.covered_days, result.pdc, result.dose_ratio) == (1, round(1 / 7, 4), round(1 / 7, 4))


def test_injection_covers_28_days_and_an_early_dose_is_not_double_counted() -> None:
    omalizumab = Regimen("oma", "every_n_days", 28, date(2026, 1, 1), None, medication="omalizumab")
    period_start, period_end = date(2026, 1, 1), date(2026, 3, 31)  # 90 days
    # Doses on Jan 1 and (early, day 20) Jan 21: the second window starts after the first ends
    # (Jan 29 → Feb 25), then nothing: covered 56 of 90.
    result = adherence([omalizumab], {"oma": [date(2026, 1, 1), date(2026, 1, 21)]}, period_start, period_end)
    assert (result.eligible_days, result.covered_days) == (90, 56)
    assert result.pdc == round(56 / 90, 4)
    # On-time doses every 28 days cover the whole period.
    on_time = [date(2026, 1, 1) + timedelta(days=28 * i) for i in range(4)]
    assert adherence([omalizumab], {"oma": on_time}, period_start, period_end).pdc == 1.0


def test_injection_taken_before_the_period_still_covers_its_start() -> None:
    dupilumab = Regimen("dupi", "every_n_days", 14, date(2026, 1, 1), None, medication="dupilumab")
    result = adherence([dupilumab], {"dupi": [date(2026, 2, 24)]}, date(2026, 3, 1), date(2026, 3, 14))
    assert result.covered_days == 9  # Feb 24 + 13 days = Mar 9


def test_prn_has_no_pdc() -> None:
    rescue = Regimen("rescue", "prn", None, date(2026, 1, 1), None, medication="rescue")
    result = adherence([rescue], {}, date(2026, 1, 1), date(2026, 1, 7))
    assert (result.status, result.pdc, result.adherent) == ("as_needed", None, None)


# --- Properties ---------------------------------------------------------------------------------

day_scores_strategy = st.dictionaries(
    st.integers(min_value=0, max_value=13).map(lambda i: END - timedelta(days=i)),
    st.tuples(st.integers(0, 3), st.integers(0, 3)),
)


@given(day_scores_strategy)
def test_uas7_is_always_within_0_and_42(raw: dict[date, tuple[int, int]]) -> None:
    day_scores = {d: DayScore(uas=w + i, itch=i, wheals=w) for d, (w, i) in raw.items()}
    result = scores.uas7_for_week(day_scores, END)
    if result.uas7 is not None:
        assert 0 <= result.uas7 <= 42
        assert 0 <= result.itch7 <= 21 and 0 <= result.hives7 <= 21
        assert result.band is not None
    assert (result.method == "missing") == (result.days_observed < 4)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=7, max_size=7))
def test_prorated_equals_complete_when_every_day_is_present(values: list[tuple[int, int]]) -> None:
    day_scores = {
        END - timedelta(days=6 - i): DayScore(uas=w + i_, itch=i_, wheals=w)
        for i, (w, i_) in enumerate(values)
    }
    complete = scores.uas7_for_week(day_scores, END)
    total = sum(w + i for w, i in values)
    assert complete.method == "complete" and complete.uas7 == total
    assert scores.weekly_sum({d: s.uas for d, s in day_scores.items()}, END).value == round(total / 7 * 7, 1)


@given(
    st.sampled_from(["n_per_day", "every_n_days"]),
    st.integers(1, 4),
    st.lists(st.integers(0, 60), max_size=120),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_pdc_is_always_within_0_and_1(
    kind: str, k: int, offsets: list[int], start_offset: int, length: int
) -> None:
    base = date(2026, 1, 1)
    value = k if kind == "n_per_day" else k * 7
    regimen = Regimen("r", kind, value, base + timedelta(days=start_offset), None)  # type: ignore[arg-type]
    taken = {"r": [base + timedelta(days=o) for o in offsets]}
    (result,) = scores.medication_adherence(
        [regimen], taken, base, base + timedelta(days=length + start_offset)
    )
    assert result.covered_days <= result.eligible_days
    assert (result.pdc is None) == (result.eligible_days < scores.MIN_ELIGIBLE_DAYS)
    if result.pdc is not None:
        assert 0 <= result.pdc <= 1
        # A dose ratio counts daily doses (none owed for an injection); an on-time rate needs a due dose.
        assert (result.dose_ratio is None) == (kind == "every_n_days")
        assert (result.on_time_rate is None) == (result.doses_due == 0)
        if result.dose_ratio is not None:
            assert 0 <= result.dose_ratio <= 1
        if result.on_time_rate is not None:
            assert 0 <= result.on_time_rate <= 1
        assert result.doses_on_time <= result.doses_due
