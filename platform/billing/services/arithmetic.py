"""The invoice arithmetic: pure functions on integers, dates and plans (no ORM, no I/O).

Money rules (stated once, tested):
- Amounts are integers in minor units of the plan's currency.
- The base fee is prorated by days: base × days billed on a plan ÷ days in the month, rounded
  half up to the minor unit, one line per plan segment (an upgrade mid-month splits the month;
  trial days are not billed).
- Active patients × the plan's per-patient price; clinicians above the plan's included number ×
  the per-extra-clinician price (plan in force at the end of the period). In the month a trial
  ends these too are prorated by the days after the trial, rounded half up.
- Tax = subtotal × the clinic country's rate (basis points, settings) ÷ 10,000, rounded half up,
  computed once on the subtotal; total = subtotal + tax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from billing.services.periods import month_end

if TYPE_CHECKING:
    from billing.models import Plan, PlanChange


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_minor: int
    amount_minor: int


@dataclass(frozen=True)
class Totals:
    subtotal_minor: int
    tax_minor: int
    total_minor: int


def div_round_half_up(numerator: int, denominator: int) -> int:
    """numerator ÷ denominator rounded half up, for non-negative integers (no floats)."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("non-negative numerator and positive denominator only")
    return (2 * numerator + denominator) // (2 * denominator)


def plan_segments(
    *, plan_at_start: Plan, changes: Sequence[PlanChange], period: date
) -> list[tuple[Plan, date, date]]:
    """(plan, first day, last day) for each plan in force during the period, from the plan in
    force on its first day and the plan changes effective within it (in order)."""
    first, last = period, month_end(period)
    segments, cursor, current = [], first, plan_at_start
    for change in changes:
        if change.effective_on > cursor:
            segments.append((current, cursor, change.effective_on - timedelta(days=1)))
        current, cursor = change.to_plan, change.effective_on
    segments.append((current, cursor, last))
    return segments


def invoice_lines(
    *,
    segments: Sequence[tuple[Plan, date, date]],
    period: date,
    trial_last_day: date | None,
    active_patients: int,
    active_clinicians: int,
) -> list[Line]:
    """The lines of one month's invoice; [] when the whole month was trial."""
    days_in_month = (month_end(period) - period).days + 1
    lines: list[Line] = []
    for plan, first, last in segments:
        if trial_last_day is not None and trial_last_day >= first:
            first = trial_last_day + timedelta(days=1)
        days = (last - first).days + 1
        if days <= 0:
            continue
        amount = div_round_half_up(plan.base_fee_minor * days, days_in_month)
        label = f"{plan.name} base fee" + (
            "" if days == days_in_month else f", {first:%d %b}–{last:%d %b} ({days} of {days_in_month} days)"
        )
        lines.append(Line(label, 1, amount, amount))
    if not lines:
        return []  # the whole month was trial: nothing to bill
    plan = segments[-1][0]
    # Usage charges follow the same trial rule: only the days after the trial are billed.
    billable = days_in_month
    if trial_last_day is not None and trial_last_day >= period:
        billable = (month_end(period) - trial_last_day).days
    suffix = "" if billable == days_in_month else f" ({billable} of {days_in_month} days after the trial)"
    patients = active_patients
    if patients:
        unit = plan.per_active_patient_minor
        amount = div_round_half_up(patients * unit * billable, days_in_month)
        lines.append(Line("Active patients" + suffix, patients, unit, amount))
    extra = max(0, active_clinicians - plan.included_clinicians)
    if extra and plan.per_extra_clinician_minor:
        unit = plan.per_extra_clinician_minor
        amount = div_round_half_up(extra * unit * billable, days_in_month)
        lines.append(Line("Clinicians beyond the plan" + suffix, extra, unit, amount))
    return lines


def invoice_totals(*, lines: Sequence[Line], tax_rate_bp: int) -> Totals:
    """Tax once on the subtotal, rounded half up."""
    subtotal = sum(line.amount_minor for line in lines)
    tax = div_round_half_up(subtotal * tax_rate_bp, 10_000)
    return Totals(subtotal_minor=subtotal, tax_minor=tax, total_minor=subtotal + tax)
