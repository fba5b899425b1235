"""The rules of the patient summary (issue 17), worked case by case on `scores.patient_summary`
and `scores.alert_findings`: one computation for the portal, the alerts and the reports.

Each test names the defect of the clinical review it pins (DESIGN §5)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from patients import scores
from patients.scores import DayScore, History, Regimen, Thresholds, UctResult

TODAY = date(2026, 11, 30)
LONG_AGO = TODAY - timedelta(days=365)


def days(values: dict[int, int]) -> dict[date, DayScore]:
    """Daily UAS by days before today (0 = today)."""
    return {
        TODAY - timedelta(days=ago): DayScore(uas=v, itch=min(v, 3), wheals=v - min(v, 3))
        for ago, v in values.items()
    }


def history(**changes: object) -> History:
    base: dict[str, object] = {
        "first_day": LONG_AGO,
        "day_scores": {},
        "last_entry": None,
        "uct": [],
        "regimens": [],
        "taken": {},
        "has_account": True,
    }
    base.update(changes)
    return History(**base)  # type: ignore[arg-type]


DEFAULTS = Thresholds()


def summary(h: History, thresholds: Thresholds = DEFAULTS) -> scores.PatientSummary:
    return scores.patient_summary(h, TODAY, thresholds)


# 1 + 2 + 3 + 4: adherence per medication, from the prescription's start, new is null --------------


def test_1_injections_count_from_the_prescription_start_not_from_a_lookback() -> None:
    """Early omalizumab doses long before the window still carry supply into it (shifted
    forward): five doses 10 days apart from day −150 cover 140 days, to day −11."""
    oma = Regimen("oma", "every_n_days", 28, TODAY - timedelta(days=200), None, "omalizumab")
    taken = {"oma": [TODAY - timedelta(days=150 - 10 * i) for i in range(5)]}
    (result,) = summary(history(regimens=[oma], taken=taken)).adherence
    assert (result.eligible_days, result.covered_days) == (28 - 1, 17)  # today not over, uncovered
    assert result.pdc == round(17 / 27, 4)


def test_2_a_step_up_today_is_one_medication_not_two_partial_prescriptions() -> None:
    standard = Regimen(
        "std", "n_per_day", 1, TODAY - timedelta(days=60), TODAY - timedelta(days=1), "cetirizine"
    )
    updosed = Regimen("x4", "n_per_day", 4, TODAY, None, "cetirizine")
    taken = {"std": [TODAY - timedelta(days=d) for d in range(1, 61)], "x4": []}
    h = history(regimens=[standard, updosed], taken=taken)
    (result,) = summary(h).adherence
    assert (result.medication, result.pdc, result.eligible_days) == ("cetirizine", 1.0, 27)
    assert "low_adherence" not in scores.alert_findings(summary(h))


def test_3_a_prescription_started_today_is_new_never_zero() -> None:
    rx = Regimen("new", "n_per_day", 1, TODAY, None, "bilastine")
    s = summary(history(regimens=[rx]))
    (result,) = s.adherence
    assert (result.status, result.pdc, result.adherent) == ("new", None, None)
    assert s.lowest_pdc is None
    assert "low_adherence" not in scores.alert_findings(s)


def test_4_an_injection_given_two_days_before_the_window_is_on_time() -> None:
    """The old dose ratio counted doses inside the window only: 0 beside a PDC of 96 %."""
    oma = Regimen("oma", "every_n_days", 28, TODAY - timedelta(days=57), None, "omalizumab")
    taken = {"oma": [TODAY - timedelta(days=57), TODAY - timedelta(days=29)]}  # the window starts at −27
    (result,) = summary(history(regimens=[oma], taken=taken)).adherence
    assert result.pdc == round(26 / 27, 4)  # covered to −2; −1 is due, within its grace
    assert (result.doses_due, result.on_time_rate) == (0, None)  # nothing due in the window has lapsed
    taken["oma"].append(TODAY - timedelta(days=1))
    (result,) = summary(history(regimens=[oma], taken=taken)).adherence
    assert result.pdc == 1.0
    assert (result.doses_due, result.doses_on_time, result.on_time_rate) == (1, 1, 1.0)


def test_4_a_dose_more_than_7_days_late_is_not_on_time_and_a_missed_date_counts() -> None:
    oma = Regimen("oma", "every_n_days", 28, TODAY - timedelta(days=100), None, "omalizumab")
    # Due −100 (given), −72 (given 10 days late, at −62), −34 (given −33), then due −5: nothing yet
    # but still within its 7 days of grace.
    taken = {"oma": [TODAY - timedelta(days=d) for d in (100, 62, 33)]}
    (result,) = scores.medication_adherence([oma], taken, TODAY - timedelta(days=120), TODAY)
    assert (result.doses_due, result.doses_on_time) == (3, 2)
    # Nothing for 60 days after the last: two missed dates.
    taken = {"oma": [TODAY - timedelta(days=100)]}
    (result,) = scores.medication_adherence([oma], taken, TODAY - timedelta(days=120), TODAY)
    assert (result.doses_due, result.doses_on_time) == (4, 1)  # −100 on time; −72, −44, −16 missed


# 5 + 9: bands on the whole number; free needs a complete week -------------------------------------


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (27.4, "moderate"),
        (27.5, "severe"),
        (6.4, "well_controlled"),
        (6.5, "mild"),
        (15.5, "moderate"),
        (0.4, "urticaria_free"),
    ],
)
def test_5_a_value_between_bands_is_banded_on_its_half_up_integer(value: float, band: str) -> None:
    assert scores.uas7_band(value, "complete") == band
    assert scores.uas7_is_severe(value) == (band == "severe")


def test_5_the_severe_alert_fires_exactly_when_the_band_is_severe() -> None:
    for tenths in range(0, 421):
        value = tenths / 10
        assert scores.uas7_is_severe(value) == (scores.uas7_band(value) == "severe"), value


def test_9_a_prorated_zero_is_well_controlled_not_urticaria_free() -> None:
    s = summary(history(day_scores=days({1: 0, 2: 0, 3: 0, 4: 0})))
    assert (s.current.uas7, s.current.method, s.current.band) == (0, "prorated", "well_controlled")
    complete = summary(history(day_scores=days({d: 0 for d in range(1, 8)})))
    assert (complete.current.method, complete.current.band) == ("complete", "urticaria_free")


# 6: the clinic's MID everywhere ----------------------------------------------------------------


def test_6_the_mid_is_the_clinics_setting() -> None:
    previous = {d: 1 for d in range(8, 15)}  # 7
    current = {d: 2 for d in range(1, 8)}  # 14: +7
    h = history(day_scores=days({**previous, **current}))
    assert summary(h).change.delta == 7
    assert not summary(h).change.exceeds_mid  # default MID 10
    strict = Thresholds(mid=5)
    assert summary(h, strict).change.exceeds_mid
    assert "uas7_rise" in scores.alert_findings(summary(h, strict), strict)


# 7: the current week ends today only when today is recorded ---------------------------------------


def test_7_a_fully_compliant_patient_is_complete_before_today_is_recorded() -> None:
    seven = days({d: 3 for d in range(1, 8)})
    s = summary(history(day_scores=seven))
    assert (s.week_end, s.current.method, s.current.days_observed, s.current.uas7) == (
        TODAY - timedelta(days=1),
        "complete",
        7,
        21,
    )
    s = summary(history(day_scores={**seven, **days({0: 6})}))
    assert (s.week_end, s.current.method, s.current.uas7) == (TODAY, "complete", 24)


# 8: the diary gap is whole missed days -----------------------------------------------------------


@pytest.mark.parametrize(
    ("last_entry_ago", "gap", "alert"), [(0, 0, False), (1, 0, False), (3, 2, False), (4, 3, True)]
)
def test_8_the_gap_counts_whole_missed_local_days(last_entry_ago: int, gap: int, alert: bool) -> None:
    s = summary(history(last_entry=TODAY - timedelta(days=last_entry_ago)))
    assert s.diary_gap == gap
    assert ("diary_gap" in scores.alert_findings(s)) is alert


def test_8_with_no_entry_the_gap_counts_from_enrollment() -> None:
    assert summary(history(first_day=TODAY)).diary_gap == 0
    assert summary(history(first_day=TODAY - timedelta(days=3))).diary_gap == 3


# 10: the current UCT is within its recall period ------------------------------------------------


def test_10_an_old_uct_is_shown_but_drives_nothing() -> None:
    old = UctResult("uct", 6, TODAY - timedelta(days=28))
    s = summary(history(uct=[old]))
    assert (s.uct, s.last_uct) == (None, old)
    assert "uct_uncontrolled" not in scores.alert_findings(s)
    recent = UctResult("uct", 6, TODAY - timedelta(days=27))
    s = summary(history(uct=[recent]))
    assert s.uct == recent and "uct_uncontrolled" in scores.alert_findings(s)


def test_10_a_uct7_counts_within_its_seven_days() -> None:
    uct7 = UctResult("uct7", 9, TODAY - timedelta(days=6))
    s = summary(history(uct=[UctResult("uct", 14, TODAY - timedelta(days=20)), uct7]))
    assert s.uct == uct7 and scores.alert_findings(s)["uct_uncontrolled"]["instrument"] == "uct7"
    stale = UctResult("uct7", 9, TODAY - timedelta(days=7))
    s = summary(history(uct=[UctResult("uct", 14, TODAY - timedelta(days=20)), stale]))
    # The newer UCT7 superseded the UCT: past its 7 days, nothing is current (the older UCT
    # never comes back), and the alert it drove clears.
    assert (s.uct, s.last_uct) == (None, stale)
    assert "uct_uncontrolled" not in scores.alert_findings(s)


def test_7_a_duplicate_injection_log_is_one_injection() -> None:
    oma = Regimen("oma", "every_n_days", 28, TODAY - timedelta(days=40), None, "omalizumab")
    twice = {"oma": [TODAY - timedelta(days=40), TODAY - timedelta(days=40)]}
    once = {"oma": [TODAY - timedelta(days=40)]}
    assert scores.medication_adherence([oma], twice, TODAY - timedelta(days=40), TODAY) == (
        scores.medication_adherence([oma], once, TODAY - timedelta(days=40), TODAY)
    )


# 13 + 14: nothing to judge before the patient joins; windows start at enrollment ---------------


def test_13_a_patient_without_an_account_has_no_alerts() -> None:
    rx = Regimen("rx", "n_per_day", 1, TODAY - timedelta(days=60), None, "cetirizine")
    s = summary(history(regimens=[rx], has_account=False, first_day=TODAY - timedelta(days=60)))
    assert s.lowest_pdc == 0.0
    assert scores.alert_findings(s) == {}


def test_14_windows_start_at_enrollment() -> None:
    rx = Regimen("rx", "n_per_day", 1, TODAY - timedelta(days=60), None, "cetirizine")
    s = summary(history(regimens=[rx], first_day=TODAY, day_scores=days({0: 2}), last_entry=TODAY))
    assert (s.days_recorded, s.days_eligible, s.diary_completion) == (1, 1, 1.0)
    assert s.adherence[0].status == "new" and s.lowest_pdc is None
    s = summary(history(regimens=[rx], first_day=TODAY))
    assert (s.days_eligible, s.diary_completion) == (0, None)
    s = summary(history(first_day=TODAY - timedelta(days=9), day_scores=days({d: 1 for d in range(1, 6)})))
    assert (s.days_recorded, s.days_eligible) == (5, 9)  # days −9 … −1
