"""Clinical scores for chronic spontaneous urticaria: pure functions, no ORM, no I/O.

Every rule cites its source; the sources are collected in shared/reference/clinical-scores.md.
Used by the patient API, the clinician portal, reports and alerts alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

Method = Literal["complete", "prorated", "missing"]
Band = Literal["urticaria_free", "well_controlled", "mild", "moderate", "severe"]

UAS7_MID = 10  # Mathias et al. 2012: 9.5–10.5; configurable per clinic (default 10)
MIN_DAYS_FOR_WEEKLY_SCORE = 4  # Novartis SAP convention (ligelizumab NCT03437278): ≥4 of 7 days


@dataclass(frozen=True)
class HalfDay:
    """One diary record: whole day (`day`) or a twice-daily half (`am` / `pm`)."""

    slot: Literal["day", "am", "pm"]
    wheals: int
    itch: int


@dataclass(frozen=True)
class DayScore:
    """A day's UAS with its itch and hives parts (possibly halves from a twice-daily diary)."""

    uas: float
    itch: float
    wheals: float


def _check_0_3(value: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3:
        raise ValueError(f"{name} must be an integer 0–3, got {value!r}")


def daily_uas(records: Sequence[HalfDay]) -> DayScore | None:
    """Daily UAS (0–6) = wheals (0–3) + itch (0–3) for one local date.

    Once daily (guideline version, EAACI/GA²LEN 2022): the single `day` record.
    Twice daily (UAS7TD, ASSURE-CSU, Hollis et al. 2018): the day's score is the MEAN of the
    morning and evening scores; if only one half-day exists, that half is the day's score
    (common SAP convention, a documented design choice). None when nothing was recorded.
    """
    if not records:
        return None
    for record in records:
        _check_0_3(record.wheals, "wheals")
        _check_0_3(record.itch, "itch")
    whole = [r for r in records if r.slot == "day"]
    chosen = whole[-1:] if whole else [r for r in records if r.slot in ("am", "pm")]
    itch = sum(r.itch for r in chosen) / len(chosen)
    wheals = sum(r.wheals for r in chosen) / len(chosen)
    return DayScore(uas=itch + wheals, itch=itch, wheals=wheals)


def round_1dp(value: float) -> float:
    """Half-up rounding to one decimal (not banker's rounding): 10.25 → 10.3."""
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _tidy(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Weekly:
    """A 7-day score. `value` is None when `method` is `missing`."""

    start: date
    end: date
    value: float | int | None
    method: Method
    days_observed: int


def weekly_sum(
    per_day: Mapping[date, float], end: date, *, days: int = 7, min_days: int = MIN_DAYS_FOR_WEEKLY_SCORE
) -> Weekly:
    """Sum of daily scores over `days` consecutive local dates ending on `end`.

    UAS7 (EAACI/GA²LEN 2022; UCARE): the sum over 7 days when all 7 are documented
    (`complete`). With 4–6 days (Novartis SAP convention, e.g. ligelizumab NCT03437278):
    sum ÷ days observed × 7, rounded half-up to one decimal (`prorated`). Fewer than 4: no
    score (`missing`); never carried forward from another week.
    """
    start = end - timedelta(days=days - 1)
    window = [
        per_day[start + timedelta(days=i)] for i in range(days) if (start + timedelta(days=i)) in per_day
    ]
    observed = len(window)
    if observed == days:
        return Weekly(start, end, _tidy(round_1dp(sum(window))), "complete", observed)
    if observed >= min_days:
        return Weekly(start, end, _tidy(round_1dp(sum(window) / observed * days)), "prorated", observed)
    return Weekly(start, end, None, "missing", observed)


SEVERE_UAS7 = 28  # lower bound of the severe band (Stull et al. 2017)
BAND_FLOORS: tuple[tuple[int, Band], ...] = (
    (SEVERE_UAS7, "severe"),
    (16, "moderate"),
    (7, "mild"),
    (1, "well_controlled"),
)


def uas7_whole(value: float) -> int:
    """The UAS7 as the whole number the bands are published for, rounded half-up (27.4 → 27,
    27.5 → 28). Bands, the severe alert and the chart's zones all decide on this number."""
    return int(Decimal(str(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def uas7_band(value: float | None, method: Method = "complete") -> Band | None:
    """Activity band — Stull et al., Br J Dermatol 2017: 0 urticaria-free, 1–6 well controlled,
    7–15 mild, 16–27 moderate, 28–42 severe.

    The published bands are whole numbers, so a value between them (prorated, or a twice-daily
    half point) is banded on the value rounded half-up to an integer (`uas7_whole`): 27.4 is
    moderate, 27.5 severe. "Urticaria-free" means seven documented symptom-free days, so it
    needs a complete week: a prorated 0 (say 0 over 4 days) is well controlled, its method shown
    beside it."""
    if value is None:
        return None
    whole = uas7_whole(value)
    for floor, band in BAND_FLOORS:
        if whole >= floor:
            return band
    return "urticaria_free" if method == "complete" else "well_controlled"


def uas7_is_severe(value: float | None, *, threshold: int = SEVERE_UAS7) -> bool:
    """The severe-activity alert's rule: the whole-number UAS7 reaches the clinic's threshold.
    With the default threshold (28) it fires exactly when the band is severe."""
    return value is not None and uas7_whole(value) >= threshold


@dataclass(frozen=True)
class Uas7:
    start: date
    end: date
    uas7: float | int | None
    method: Method
    days_observed: int
    itch7: float | int | None
    hives7: float | int | None
    band: Band | None


def uas7_for_week(day_scores: Mapping[date, DayScore], end: date) -> Uas7:
    """UAS7 for the 7 local dates ending on `end`, with the weekly itch (ISS7, 0–21) and hives
    (HSS7, 0–21) subscores under the same day rules (Mathias et al. 2012)."""
    total = weekly_sum({d: s.uas for d, s in day_scores.items()}, end)
    itch = weekly_sum({d: s.itch for d, s in day_scores.items()}, end)
    hives = weekly_sum({d: s.wheals for d, s in day_scores.items()}, end)
    return Uas7(
        start=total.start,
        end=end,
        uas7=total.value,
        method=total.method,
        days_observed=total.days_observed,
        itch7=itch.value,
        hives7=hives.value,
        band=uas7_band(total.value, total.method),
    )


def uas7_weeks(day_scores: Mapping[date, DayScore], end: date, weeks: int) -> list[Uas7]:
    """Consecutive weeks ending on `end`, oldest first."""
    return [uas7_for_week(day_scores, end - timedelta(days=7 * (weeks - 1 - i))) for i in range(weeks)]


@dataclass(frozen=True)
class Change:
    delta: float | None
    exceeds_mid: bool


def uas7_change(current: float | None, previous: float | None, *, mid: float = UAS7_MID) -> Change:
    """Change vs the previous week and whether it reaches the minimal important difference
    (UAS7 MID 9.5–10.5, Mathias et al. 2012; default 10, configurable)."""
    if current is None or previous is None:
        return Change(None, False)
    delta = _tidy(round_1dp(current - previous))
    return Change(delta, abs(delta) >= mid)


# --- UCT ---------------------------------------------------------------------------------------

UctCategory = Literal["poorly_controlled", "well_controlled", "complete_control"]


def uct_total(answers: Sequence[int]) -> int:
    """Urticaria Control Test (Weller et al., JACI 2014): 4 items scored 0–4, total 0–16.
    UCT7 (Buttgereit et al., JACI 2023) has the same items with a 7-day recall."""
    if len(answers) != 4:
        raise ValueError("UCT has exactly 4 items")
    for value in answers:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4:
            raise ValueError("UCT items are integers 0–4")
    return sum(answers)


def uct_category(total: int) -> UctCategory:
    """≥12 well controlled, 16 complete control, <12 poorly controlled (guideline 2022)."""
    if total == 16:
        return "complete_control"
    if total >= 12:
        return "well_controlled"
    return "poorly_controlled"


# --- AAS ---------------------------------------------------------------------------------------


def aas_day(angioedema: bool, items: Sequence[int] | None) -> int:
    """Angioedema Activity Score for one day (Weller et al., Allergy 2013): screening "no" → 0;
    otherwise 5 items scored 0–3, total 0–15."""
    if not angioedema:
        return 0
    if items is None or len(items) != 5:
        raise ValueError("AAS needs 5 items when angioedema is reported")
    for value in items:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3:
            raise ValueError("AAS items are integers 0–3")
    return sum(items)


def aas7(per_day: Mapping[date, int], end: date) -> Weekly:
    """AAS7 (0–105): sum of 7 daily AAS, with the same missing-day rule as UAS7 (design choice:
    the AAS papers require daily documentation and publish no pro-rating rule)."""
    return weekly_sum({d: float(v) for d, v in per_day.items()}, end)


def aas28(per_day: Mapping[date, int], end: date) -> Weekly:
    """AAS28 (0–420): the four AAS7 weeks ending on `end`, each under the AAS7 rule; missing
    if any week is missing (design choice), prorated if any week was."""
    weeks = [aas7(per_day, end - timedelta(days=7 * i)) for i in range(4)]
    start = end - timedelta(days=27)
    observed = sum(w.days_observed for w in weeks)
    if any(w.value is None for w in weeks):
        return Weekly(start, end, None, "missing", observed)
    method: Method = "complete" if all(w.method == "complete" for w in weeks) else "prorated"
    return Weekly(start, end, _tidy(round_1dp(sum(float(w.value or 0) for w in weeks))), method, observed)


# --- Adherence ---------------------------------------------------------------------------------

FrequencyKind = Literal["n_per_day", "every_n_days", "prn"]
AdherenceStatus = Literal["scored", "new", "as_needed"]

ADHERENT_PDC = 0.8  # PQA / CMS threshold
MIN_ELIGIBLE_DAYS = 7  # fewer eligible days: too new to score (null, shown as "new", never 0)
INJECTION_GRACE_DAYS = 7  # on time: given at most this many days after the scheduled date (§6.2)


@dataclass(frozen=True)
class Regimen:
    """One prescription as the adherence rules see it. A step up or down is a new prescription
    of the same `medication`."""

    key: str
    frequency_kind: FrequencyKind
    frequency_value: int | None
    start: date
    end: date | None
    medication: str = ""


@dataclass(frozen=True)
class MedicationAdherence:
    """Adherence to one medication over a period, across all its prescriptions.

    `pdc` is None when the medication is taken as needed (`as_needed`) or has fewer than
    `MIN_ELIGIBLE_DAYS` eligible days (`new`). Daily drugs carry a dose ratio, injections an
    on-time rate (`doses_on_time` of `doses_due` scheduled doses)."""

    medication: str
    frequency_kind: FrequencyKind
    status: AdherenceStatus
    eligible_days: int
    covered_days: int
    pdc: float | None
    adherent: bool | None
    dose_ratio: float | None
    doses_due: int
    doses_on_time: int
    on_time_rate: float | None


def _days(start: date, end: date) -> Iterable[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def _active(segments: Sequence[Regimen], day: date) -> Regimen | None:
    """The prescription in force on `day` (the latest started, when two overlap)."""
    active = [r for r in segments if r.start <= day and (r.end is None or day <= r.end)]
    return max(active, key=lambda r: r.start) if active else None


def _injection_cover(
    segments: Sequence[Regimen], taken: Mapping[str, Sequence[date]], until: date
) -> set[date]:
    """Days covered by injections: a dose covers N days from its date (N of the prescription it
    was logged against); a dose given while the previous one still covers shifts its window to
    start after it (PDC semantics: never double counted). Every dose since the first
    prescription's start counts (DESIGN §5), not only those in the period."""
    # One injection per date: a second log of the same date is the same injection logged twice.
    by_day: dict[date, int] = {}
    for segment in segments:
        if segment.frequency_kind == "every_n_days":
            for day in taken.get(segment.key, ()):
                if segment.start <= day <= until:
                    by_day[day] = max(by_day.get(day, 0), segment.frequency_value or 1)
    doses = sorted(by_day.items())
    covered: set[date] = set()
    covered_until: date | None = None
    for day, n in doses:
        first = day if covered_until is None or day > covered_until else covered_until + timedelta(days=1)
        covered_until = first + timedelta(days=n - 1)
        covered.update(_days(first, covered_until))
    return covered


def _injection_on_time(
    segments: Sequence[Regimen], taken: Mapping[str, Sequence[date]], period_start: date, today: date
) -> tuple[int, int]:
    """(due, on time) for the injection dates scheduled in [period_start, today].

    The first dose is due on the first prescription's start; each next one N days after the
    dose before. A dose is on time when given at most `INJECTION_GRACE_DAYS` after its date (the
    reference's "interval ≤ N + grace", §6.2; an early dose is on time); a later one answers its
    date late. A whole interval with no dose is a missed date. A date whose grace has not run
    out by today, with no dose yet, is not counted yet. Doses count from the prescription's
    start, so a dose given before the period still sets the dates inside it."""
    injections = [s for s in segments if s.frequency_kind == "every_n_days" and s.frequency_value]
    if not injections:
        return 0, 0
    doses = sorted({day for s in injections for day in taken.get(s.key, ()) if s.start <= day <= today})
    grace = timedelta(days=INJECTION_GRACE_DAYS)
    scheduled = min(s.start for s in injections)
    due = on_time = 0

    def interval(day: date) -> timedelta:
        segment = _active(injections, day) or injections[-1]
        return timedelta(days=segment.frequency_value or 1)

    for dose in doses:
        while dose > scheduled + grace and dose >= scheduled + interval(scheduled):
            due += scheduled >= period_start  # a whole interval passed without a dose
            scheduled += interval(scheduled)
        if scheduled >= period_start:
            due += 1
            on_time += dose <= scheduled + grace
        scheduled = dose + interval(dose)
    while scheduled + grace < today:  # overdue, nothing given
        due += scheduled >= period_start
        scheduled += interval(scheduled)
    return due, on_time


def medication_adherence(
    regimens: Sequence[Regimen],
    taken: Mapping[str, Sequence[date]],
    period_start: date,
    today: date,
    *,
    today_over: bool = False,
) -> list[MedicationAdherence]:
    """Adherence per medication over [period_start, today] (DESIGN §5; reference §6.1–6.2).

    - The period is split at regimen changes (each prescription in force on a day decides that
      day) and reported as covered ÷ eligible days for the medication over the whole period:
      PDC (PQA); adherent when ≥ 80 %.
    - Eligible days are the days some scheduled prescription of the medication is in force,
      from `period_start` (the caller starts it no earlier than the patient's enrollment).
      Today is not over (unless `today_over`): it counts only once it is covered.
    - `n_per_day` k: a day is covered when its logged doses ≥ k. Dose ratio
      Σ min(logged, k) ÷ Σ k (partial credit, none for extra doses).
    - `every_n_days` N: see `_injection_cover`; on-time rate from `_injection_on_time`.
    - `prn`: no schedule, no PDC (`as_needed`).
    - Fewer than `MIN_ELIGIBLE_DAYS` eligible days: `new`, PDC null (never 0).

    `taken` maps a prescription's key to the dates of its taken doses.
    """
    by_medication: dict[str, list[Regimen]] = {}
    for regimen in sorted(regimens, key=lambda r: (r.start, r.key)):
        by_medication.setdefault(regimen.medication or regimen.key, []).append(regimen)
    results = []
    for medication, segments in by_medication.items():
        if not any(s.start <= today and (s.end is None or s.end >= period_start) for s in segments):
            continue  # not prescribed in the period
        scheduled = [s for s in segments if s.frequency_kind != "prn" and s.frequency_value]
        latest = segments[-1]
        if not scheduled:
            results.append(
                MedicationAdherence(
                    medication, latest.frequency_kind, "as_needed", 0, 0, None, None, None, 0, 0, None
                )
            )
            continue
        cover = _injection_cover(scheduled, taken, today)
        per_day: dict[date, int] = {}
        for segment in scheduled:
            if segment.frequency_kind == "n_per_day":
                for day in taken.get(segment.key, ()):
                    per_day[day] = per_day.get(day, 0) + 1
        eligible = covered = owed = given = 0
        first = min(s.start for s in scheduled)
        for day in _days(max(period_start, first), today):
            in_force = _active(scheduled, day)
            if in_force is None:
                continue
            if in_force.frequency_kind == "n_per_day":
                k = in_force.frequency_value or 1
                is_covered = per_day.get(day, 0) >= k
                if day == today and not today_over and not is_covered:
                    continue
                owed += k
                given += min(per_day.get(day, 0), k)
            else:
                is_covered = day in cover
                if day == today and not today_over and not is_covered:
                    continue
            eligible += 1
            covered += is_covered
        due, on_time = _injection_on_time(scheduled, taken, max(period_start, first), today)
        kind = scheduled[-1].frequency_kind
        if eligible < MIN_ELIGIBLE_DAYS:
            results.append(
                MedicationAdherence(
                    medication, kind, "new", eligible, covered, None, None, None, due, on_time, None
                )
            )
            continue
        pdc = covered / eligible
        results.append(
            MedicationAdherence(
                medication,
                kind,
                "scored",
                eligible,
                covered,
                round(pdc, 4),
                pdc >= ADHERENT_PDC,
                round(given / owed, 4) if owed else None,
                due,
                on_time,
                round(on_time / due, 4) if due else None,
            )
        )
    return sorted(results, key=lambda r: r.medication)


def lowest_pdc(results: Sequence[MedicationAdherence]) -> float | None:
    scored = [r.pdc for r in results if r.pdc is not None]
    return min(scored) if scored else None


# --- The patient summary ------------------------------------------------------------------------
#
# One computation of what the portal list, the patient's detail, the alerts and the reports show.
# `patients.summary` loads a `History` from the database and stores the result as one row per
# patient; nothing else computes these numbers.

UCT_RECALL_DAYS = {"uct": 28, "uct7": 7}  # Weller 2014 (4 weeks); Buttgereit 2023 (UCT7, 7 days)
WINDOW_DAYS = 28  # diary completion and adherence


@dataclass(frozen=True)
class UctResult:
    instrument: str  # "uct" or "uct7": same items, same cut-off 12 (reference §3)
    score: int
    period_end: date


def uct_current(results: Sequence[UctResult], today: date) -> UctResult | None:
    """The current UCT: the latest result, while it is within its own recall period on `today`
    (UCT 28 days, UCT7 7 days). A newer result supersedes older ones for good: once it is past
    its recall there is no current UCT (an older, superseded answer never comes back). Older
    results are history: shown with their date, they drive no alert. `results` are oldest
    first."""
    answered = [r for r in results if r.period_end <= today]
    if not answered:
        return None
    latest = answered[-1]
    return latest if (today - latest.period_end).days < UCT_RECALL_DAYS[latest.instrument] else None


def current_week_end(today: date, recorded: Iterable[date]) -> date:
    """The current week ends today when today is recorded, otherwise yesterday: a day that is not
    over is not a missing day (DESIGN §5)."""
    return today if today in set(recorded) else today - timedelta(days=1)


def diary_gap(today: date, last_entry: date | None, first_day: date) -> int:
    """Whole local days missed before today: the days after the last entry (or from the first
    day, with no entry) up to yesterday. Today is not over, so it is never missed: an entry
    yesterday gives 0, the last one three days ago gives 2."""
    start = first_day if last_entry is None else max(last_entry + timedelta(days=1), first_day)
    return max(0, (today - start).days)


@dataclass(frozen=True)
class Thresholds:
    """A clinic's alert settings (tenants.Clinic); every reader uses the same ones."""

    severe_uas7: int = SEVERE_UAS7
    mid: float = UAS7_MID
    uct_below: int = 12
    diary_gap_days: int = 3
    pdc_below: float = ADHERENT_PDC


@dataclass(frozen=True)
class History:
    """What the summary is computed from, for one patient."""

    first_day: date  # local date of enrollment: no window starts before it
    day_scores: Mapping[date, DayScore]  # at least the 35 days up to today
    last_entry: date | None
    uct: Sequence[UctResult]  # oldest first
    regimens: Sequence[Regimen]
    taken: Mapping[str, Sequence[date]]  # prescription key → dates of taken doses
    has_account: bool = True


@dataclass(frozen=True)
class PatientSummary:
    valid_for: date
    week_end: date
    current: Uas7
    previous: Uas7
    change: Change
    uct: UctResult | None  # current (drives the alert)
    last_uct: UctResult | None  # latest of any age (shown with its date)
    days_recorded: int
    days_eligible: int
    diary_completion: float | None  # None before the first eligible day
    adherence: tuple[MedicationAdherence, ...]
    lowest_pdc: float | None
    last_entry: date | None
    diary_gap: int
    streak: int  # consecutive recorded days up to the week's end (within the history loaded)
    judged: bool  # the patient has an account: there is something to judge


def patient_summary(
    history: History, today: date, thresholds: Thresholds = Thresholds(), *, today_over: bool = False
) -> PatientSummary:
    """The summary for `today` (the patient's local date). `today_over` is for a report of a
    past date: that day is over, so the week ends on it whether or not it was recorded."""
    week_end = today if today_over else current_week_end(today, history.day_scores)
    current = uas7_for_week(history.day_scores, week_end)
    previous = uas7_for_week(history.day_scores, week_end - timedelta(days=7))
    window_start = max(week_end - timedelta(days=WINDOW_DAYS - 1), history.first_day)
    eligible = max(0, (week_end - window_start).days + 1)
    recorded = sum(1 for day in history.day_scores if window_start <= day <= week_end)
    adherence = medication_adherence(
        history.regimens,
        history.taken,
        max(today - timedelta(days=WINDOW_DAYS - 1), history.first_day),
        today,
        today_over=today_over,
    )
    gap_today = today + timedelta(days=1) if today_over else today
    streak, cursor = 0, week_end
    while cursor in history.day_scores:
        streak, cursor = streak + 1, cursor - timedelta(days=1)
    return PatientSummary(
        valid_for=today,
        week_end=week_end,
        current=current,
        previous=previous,
        change=uas7_change(current.uas7, previous.uas7, mid=thresholds.mid),
        uct=uct_current(history.uct, today),
        last_uct=history.uct[-1] if history.uct else None,
        days_recorded=recorded,
        days_eligible=eligible,
        diary_completion=round(recorded / eligible, 4) if eligible else None,
        adherence=tuple(adherence),
        lowest_pdc=lowest_pdc(adherence),
        last_entry=history.last_entry,
        diary_gap=diary_gap(gap_today, history.last_entry, history.first_day),
        streak=streak,
        judged=history.has_account,
    )


def alert_findings(
    summary: PatientSummary, thresholds: Thresholds = Thresholds()
) -> dict[str, dict[str, Any]]:
    """The alerts a summary calls for, by kind, with their evidence (DESIGN §5). A patient
    without an account yet has nothing to judge. An alert whose kind is absent here has
    cleared."""
    if not summary.judged:
        return {}
    findings: dict[str, dict[str, Any]] = {}
    current = summary.current
    if uas7_is_severe(current.uas7, threshold=thresholds.severe_uas7):
        findings["severe_uas7"] = {
            "uas7": current.uas7,
            "week_end": current.end.isoformat(),
            "method": current.method,
            "days_observed": current.days_observed,
        }
    if summary.change.delta is not None and summary.change.delta >= thresholds.mid:
        findings["uas7_rise"] = {
            "uas7": current.uas7,
            "previous": summary.previous.uas7,
            "change": summary.change.delta,
            "week_end": current.end.isoformat(),
        }
    if summary.uct is not None and summary.uct.score < thresholds.uct_below:
        findings["uct_uncontrolled"] = {
            "uct": summary.uct.score,
            "instrument": summary.uct.instrument,
            "period_end": summary.uct.period_end.isoformat(),
        }
    if summary.diary_gap >= thresholds.diary_gap_days:
        findings["diary_gap"] = {
            "days_without_entry": summary.diary_gap,
            "last_entry": summary.last_entry.isoformat() if summary.last_entry else None,
        }
    low = [
        {"medication": a.medication, "pdc": a.pdc, "eligible_days": a.eligible_days}
        for a in summary.adherence
        if a.pdc is not None and a.pdc < thresholds.pdc_below
    ]
    if low:
        findings["low_adherence"] = {"medications": low, "window_days": WINDOW_DAYS}
    return findings
