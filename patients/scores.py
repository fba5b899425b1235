"""Clinical scores for chronic spontaneous urticaria: pure functions, no ORM, no I/O.

Every rule cites its source; the sources are collected in shared/reference/clinical-scores.md.
Used by the patient API, the clinician portal, reports and alerts alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

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


def uas7_band(value: float | None) -> Band | None:
    """Activity bands on the reported (rounded) UAS7 — Stull et al., Br J Dermatol 2017:
    0 urticaria-free, 1–6 well controlled, 7–15 mild, 16–27 moderate, 28–42 severe.
    A prorated value between bands (e.g. 6.5) falls in the higher band (it exceeds 6)."""
    if value is None:
        return None
    if value == 0:
        return "urticaria_free"
    if value <= 6:
        return "well_controlled"
    if value <= 15:
        return "mild"
    if value <= 27:
        return "moderate"
    return "severe"


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
        band=uas7_band(total.value),
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


@dataclass(frozen=True)
class Regimen:
    """One prescription as the adherence rules see it."""

    key: str
    frequency_kind: FrequencyKind
    frequency_value: int | None
    start: date
    end: date | None


@dataclass(frozen=True)
class Adherence:
    key: str
    eligible_days: int
    covered_days: int
    pdc: float | None
    dose_ratio: float | None
    adherent: bool | None


ADHERENT_PDC = 0.8  # PQA / CMS threshold


def _days(start: date, end: date) -> Iterable[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def adherence(
    regimen: Regimen, taken_dates: Sequence[date], period_start: date, period_end: date
) -> Adherence:
    """Proportion of days covered (PDC) for one prescription over a period, plus a dose ratio.

    The period is clipped to the prescription's own dates, which is how the period is split at
    regimen changes (a step up or down is a new prescription). PQA definition: covered days ÷
    eligible days; adherent when PDC ≥ 80 %.
    - `n_per_day` k: a day is covered when logged doses ≥ k; dose ratio
      Σ min(logged, k) ÷ (k × days) (partial credit, no credit for extra doses).
    - `every_n_days` N (injections): a dose covers N days from its date; an early dose shifts
      its window to start after the previous one ends (never double counted). Dose ratio:
      min(doses, expected) ÷ expected with expected = ceil(days ÷ N).
    - `prn`: no schedule, no PDC.
    """
    start = max(period_start, regimen.start)
    end = min(period_end, regimen.end) if regimen.end else period_end
    if end < start:
        return Adherence(regimen.key, 0, 0, None, None, None)
    eligible = (end - start).days + 1
    if regimen.frequency_kind == "prn" or not regimen.frequency_value:
        return Adherence(regimen.key, eligible, 0, None, None, None)
    k = regimen.frequency_value
    if regimen.frequency_kind == "n_per_day":
        counts: dict[date, int] = {}
        for day in taken_dates:
            counts[day] = counts.get(day, 0) + 1
        covered = sum(1 for day in _days(start, end) if counts.get(day, 0) >= k)
        ratio = sum(min(counts.get(day, 0), k) for day in _days(start, end)) / (k * eligible)
    else:
        covered_until: date | None = None
        covered = 0
        # Doses before the period still cover days inside it; sort so shifting is in order.
        for day in sorted(d for d in taken_dates if d >= regimen.start and d <= end):
            window_start = (
                day if covered_until is None or day > covered_until else covered_until + timedelta(days=1)
            )
            window_end = window_start + timedelta(days=k - 1)
            covered_until = window_end
            overlap_start, overlap_end = max(window_start, start), min(window_end, end)
            if overlap_end >= overlap_start:
                covered += (overlap_end - overlap_start).days + 1
        expected = math.ceil(eligible / k)
        doses_in_period = sum(1 for d in taken_dates if start <= d <= end)
        ratio = min(doses_in_period, expected) / expected
    pdc = covered / eligible
    return Adherence(regimen.key, eligible, covered, round(pdc, 4), round(ratio, 4), pdc >= ADHERENT_PDC)


def adherence_combined(parts: Sequence[Adherence]) -> Adherence | None:
    """PDC of a medication across its regimen segments: covered ÷ eligible over all segments."""
    scored = [p for p in parts if p.pdc is not None]
    if not scored:
        return None
    eligible = sum(p.eligible_days for p in scored)
    covered = sum(p.covered_days for p in scored)
    pdc = covered / eligible if eligible else None
    ratio = sum((p.dose_ratio or 0) * p.eligible_days for p in scored) / eligible if eligible else None
    return Adherence(
        scored[0].key,
        eligible,
        covered,
        None if pdc is None else round(pdc, 4),
        None if ratio is None else round(ratio, 4),
        None if pdc is None else pdc >= ADHERENT_PDC,
    )
