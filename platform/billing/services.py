"""Billing writes: subscriptions, seat limits, usage, invoices, payment events.

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

import calendar
import hashlib
import hmac
import logging
import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import usage
from billing.models import (
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStatus,
    PaymentEvent,
    Plan,
    PlanChange,
    Subscription,
    SubscriptionStatus,
    UsageMetric,
    UsageRecord,
)
from core.errors import ApplicationError
from tenants.models import Clinic, ClinicStatus

logger = logging.getLogger(__name__)

DEFAULT_PLAN = "starter"


# --- Arithmetic and periods ----------------------------------------------------------------------


def div_round_half_up(numerator: int, denominator: int) -> int:
    """numerator ÷ denominator rounded half up, for non-negative integers (no floats)."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("non-negative numerator and positive denominator only")
    return (2 * numerator + denominator) // (2 * denominator)


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(period: date) -> date:
    return period.replace(day=calendar.monthrange(period.year, period.month)[1])


def next_month(period: date) -> date:
    return month_end(period) + timedelta(days=1)


def previous_month(period: date) -> date:
    return month_start(month_start(period) - timedelta(days=1))


def clinic_today(clinic: Clinic, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def clinic_month_bounds(clinic: Clinic, period: date) -> tuple[datetime, datetime]:
    """The UTC instants where the clinic's local month starts and the next one starts."""
    zone = zoneinfo.ZoneInfo(clinic.timezone)
    start = datetime.combine(period, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(next_month(period), datetime.min.time(), tzinfo=zone)
    return start, end


# --- Subscriptions and seat limits ---------------------------------------------------------------


def _plan(code: str, field: str = "plan", *, public_only: bool = False) -> Plan:
    plans = Plan.objects.filter(public=True) if public_only else Plan.objects.all()
    plan = plans.filter(code=code).first()
    if plan is None:
        raise ApplicationError(code="validation_error", field=field, detail="Unknown plan.")
    return plan


def subscription_start(
    *, clinic: Clinic, plan_code: str = DEFAULT_PLAN, now: datetime | None = None
) -> Subscription:
    """At signup: the chosen plan, in trial for the plan's trial days."""
    plan = _plan(plan_code)
    now = now or timezone.now()
    return Subscription.objects.create(
        clinic=clinic,
        plan=plan,
        status=SubscriptionStatus.TRIALING if plan.trial_days else SubscriptionStatus.ACTIVE,
        trial_ends_at=now + timedelta(days=plan.trial_days) if plan.trial_days else None,
    )


def active_clinicians(clinic: Clinic) -> int:
    from accounts.models import Membership, Role

    return Membership.objects.filter(clinic=clinic, role=Role.CLINICIAN, is_active=True).count()


def _limit_error(limit: str, value: int) -> ApplicationError:
    return ApplicationError(
        code="plan_limit",
        status_code=403,
        detail=f"Your plan allows at most {value} ({limit.replace('_', ' ')}). Upgrade to add more.",
        extra={"limit": limit, "allowed": value},
    )


def seat_check(*, clinic: Clinic, adding: str) -> None:
    """Refuse one more clinician or patient beyond the plan's limit (403 `plan_limit`).
    Clinics without a subscription (created by operators' tools) have no limits. Call it in
    the transaction that adds the seat."""
    with transaction.atomic():
        # The lock serialises concurrent additions for one clinic until the caller commits.
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("plan")
            .filter(clinic=clinic)
            .first()
        )
    if subscription is None:
        return
    plan = subscription.plan
    if adding == "clinician" and plan.max_clinicians is not None:
        if active_clinicians(clinic) >= plan.max_clinicians:
            raise _limit_error("max_clinicians", plan.max_clinicians)
    if adding == "patient" and plan.max_patients is not None:
        if usage.patient_seats(clinic) >= plan.max_patients:
            raise _limit_error("max_patients", plan.max_patients)


@transaction.atomic
def plan_change(*, clinic: Clinic, plan_code: str, now: datetime | None = None) -> Subscription:
    """An upgrade takes effect today (the base fee is prorated on the next invoice); a
    downgrade at the start of next month, and only if current usage fits the smaller plan."""
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan")
        .filter(clinic=clinic)
        .first()
    )
    if subscription is None:
        raise ApplicationError(
            code="no_subscription", status_code=404, detail="This clinic has no subscription."
        )
    if subscription.status == SubscriptionStatus.CANCELED:
        raise ApplicationError(
            code="subscription_canceled", status_code=409, detail="The subscription is canceled."
        )
    target = _plan(plan_code, public_only=True)
    if target.code == subscription.plan_id:
        subscription.pending_plan, subscription.pending_from = None, None
        subscription.save(update_fields=["pending_plan", "pending_from", "updated_at"])
        return subscription
    for limit, current in (
        ("max_clinicians", active_clinicians(clinic)),
        ("max_patients", usage.patient_seats(clinic)),
    ):
        allowed = getattr(target, limit)
        if allowed is not None and current > allowed:
            raise _limit_error(limit, allowed)
    today = clinic_today(clinic, now)
    if target.rank > subscription.plan.rank:
        PlanChange.objects.create(
            subscription=subscription, from_plan=subscription.plan, to_plan=target, effective_on=today
        )
        subscription.plan, subscription.pending_plan = target, None
    else:
        subscription.pending_plan, subscription.pending_from = target, next_month(month_start(today))
    subscription.save(update_fields=["plan", "pending_plan", "pending_from", "updated_at"])
    return subscription


def trial_extend(*, subscription: Subscription, days: int) -> Subscription:
    if subscription.status != SubscriptionStatus.TRIALING:
        raise ApplicationError(code="not_trialing", status_code=409, detail="Only a trial can be extended.")
    subscription.trial_ends_at = (subscription.trial_ends_at or timezone.now()) + timedelta(days=days)
    subscription.save(update_fields=["trial_ends_at", "updated_at"])
    return subscription


def subscriptions_advance(*, now: datetime | None = None) -> dict[str, int]:
    """Hourly: trials that ended become active; pending downgrades apply from the 1st; past-due
    clinics beyond the grace period are suspended (lifecycle semantics)."""
    from tenants.lifecycle import clinic_suspend

    now = now or timezone.now()
    counts = {"activated": 0, "downgraded": 0, "suspended": 0}
    counts["activated"] = Subscription.objects.filter(
        status=SubscriptionStatus.TRIALING, trial_ends_at__lte=now
    ).update(status=SubscriptionStatus.ACTIVE, updated_at=now)
    for subscription in Subscription.objects.filter(pending_plan__isnull=False).select_related(
        "clinic", "plan"
    ):
        with transaction.atomic():
            locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
            effective = locked.pending_from
            if (
                locked.pending_plan_id is None
                or effective is None
                or clinic_today(subscription.clinic, now) < effective
            ):
                continue
            PlanChange.objects.create(
                subscription=locked,
                from_plan_id=locked.plan_id,
                to_plan_id=locked.pending_plan_id,
                effective_on=effective,
            )
            locked.plan_id, locked.pending_plan, locked.pending_from = locked.pending_plan_id, None, None
            locked.save(update_fields=["plan", "pending_plan", "pending_from", "updated_at"])
            counts["downgraded"] += 1
    cutoff = now - timedelta(days=settings.BILLING_GRACE_DAYS)
    for subscription in Subscription.objects.filter(
        status=SubscriptionStatus.PAST_DUE, past_due_since__lte=cutoff
    ).select_related("clinic"):
        with transaction.atomic():
            # Conditional: a payment that arrived since the read above wins.
            changed = Subscription.objects.filter(
                pk=subscription.pk, status=SubscriptionStatus.PAST_DUE, past_due_since__lte=cutoff
            ).update(status=SubscriptionStatus.SUSPENDED, updated_at=now)
            if not changed:
                continue
            if subscription.clinic.status == ClinicStatus.ACTIVE:
                clinic_suspend(clinic=subscription.clinic)
        counts["suspended"] += 1
        logger.info("clinic %s suspended for non-payment", subscription.clinic.slug)
    return counts


# --- Usage ---------------------------------------------------------------------------------------


def usage_record(*, clinic: Clinic, period: date) -> dict[str, int]:
    """Count the month's usage and store it (idempotent: a late re-run updates the rows).
    A patient is active in a month when they recorded a diary entry or a dose in it, the month
    running from midnight to midnight in the clinic's timezone."""
    start, end = clinic_month_bounds(clinic, period)
    patients = usage.active_patients_between(clinic, start, end)
    counts = {UsageMetric.ACTIVE_PATIENTS: patients, UsageMetric.ACTIVE_CLINICIANS: active_clinicians(clinic)}
    for metric, quantity in counts.items():
        UsageRecord.objects.update_or_create(
            clinic=clinic, period=period, metric=metric, defaults={"quantity": quantity}
        )
    return {str(k): v for k, v in counts.items()}


# --- Invoices ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_minor: int
    amount_minor: int


def _segments(subscription: Subscription, period: date) -> list[tuple[Plan, date, date]]:
    """(plan, first day, last day) for each plan in force during the period."""
    first, last = period, month_end(period)
    changes = list(
        subscription.plan_changes.filter(effective_on__gt=first, effective_on__lte=last)
        .select_related("from_plan", "to_plan")
        .order_by("effective_on", "created_at")
    )
    later = (
        subscription.plan_changes.filter(effective_on__gt=last)
        .select_related("from_plan")
        .order_by("effective_on")
        .first()
    )
    current = changes[0].from_plan if changes else (later.from_plan if later else subscription.plan)
    segments, cursor = [], first
    for change in changes:
        if change.effective_on > cursor:
            segments.append((current, cursor, change.effective_on - timedelta(days=1)))
        current, cursor = change.to_plan, change.effective_on
    segments.append((current, cursor, last))
    return segments


def invoice_lines(*, subscription: Subscription, period: date, usage: dict[str, int]) -> list[Line]:
    days_in_month = (month_end(period) - period).days + 1
    trial_last_day = None
    if subscription.trial_ends_at is not None:
        trial_last_day = clinic_today(subscription.clinic, subscription.trial_ends_at) - timedelta(days=1)
    lines: list[Line] = []
    for plan, first, last in _segments(subscription, period):
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
    plan = _segments(subscription, period)[-1][0]
    # Usage charges follow the same trial rule: only the days after the trial are billed.
    billable = days_in_month
    if trial_last_day is not None and trial_last_day >= period:
        billable = (month_end(period) - trial_last_day).days
    suffix = "" if billable == days_in_month else f" ({billable} of {days_in_month} days after the trial)"
    patients = usage.get(UsageMetric.ACTIVE_PATIENTS, 0)
    if patients:
        unit = plan.per_active_patient_minor
        amount = div_round_half_up(patients * unit * billable, days_in_month)
        lines.append(Line("Active patients" + suffix, patients, unit, amount))
    extra = max(0, usage.get(UsageMetric.ACTIVE_CLINICIANS, 0) - plan.included_clinicians)
    if extra and plan.per_extra_clinician_minor:
        unit = plan.per_extra_clinician_minor
        amount = div_round_half_up(extra * unit * billable, days_in_month)
        lines.append(Line("Clinicians beyond the plan" + suffix, extra, unit, amount))
    return lines


def tax_rate_bp(country: str) -> int:
    return int(settings.BILLING_TAX_RATES_BP.get(country, settings.BILLING_DEFAULT_TAX_BP))


def _next_number(year: int) -> str:
    InvoiceCounter.objects.get_or_create(year=year)
    counter = InvoiceCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"INV-{year}-{counter.last:06d}"


def invoice_generate(*, clinic: Clinic, period: date, now: datetime | None = None) -> Invoice | None:
    """The invoice for one clinic and month, issued with the next number (idempotent: a second
    run returns the first invoice). None when nothing is billable (the month was all trial)."""
    now = now or timezone.now()
    period = month_start(period)
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("clinic", "plan")
            .filter(clinic=clinic)
            .first()
        )
        if subscription is None:
            return None
        existing = Invoice.objects.filter(clinic=clinic, period=period).first()
        if existing is not None:
            return existing
        usage = dict(
            UsageRecord.objects.filter(clinic=clinic, period=period).values_list("metric", "quantity")
        )
        if not usage:
            usage = usage_record(clinic=clinic, period=period)
        lines = invoice_lines(subscription=subscription, period=period, usage=usage)
        if not lines:
            return None
        plan = subscription.plan
        subtotal = sum(line.amount_minor for line in lines)
        rate = tax_rate_bp(clinic.country)
        tax = div_round_half_up(subtotal * rate, 10_000)
        invoice = Invoice.objects.create(
            number=_next_number(clinic_today(clinic, now).year),
            clinic=clinic,
            period=period,
            currency=plan.currency,
            subtotal_minor=subtotal,
            tax_rate_bp=rate,
            tax_minor=tax,
            total_minor=subtotal + tax,
            status=InvoiceStatus.OPEN,
            issued_at=now,
            due_at=now + timedelta(days=settings.BILLING_INVOICE_DUE_DAYS),
        )
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=invoice,
                    position=i,
                    description=line.description,
                    quantity=line.quantity,
                    unit_minor=line.unit_minor,
                    amount_minor=line.amount_minor,
                )
                for i, line in enumerate(lines, start=1)
            ]
        )
    logger.info("invoice %s issued for clinic %s", invoice.number, clinic.slug)
    return invoice


def invoice_void(*, invoice: Invoice, now: datetime | None = None) -> Invoice:
    """An open invoice can be voided; it keeps its number (numbers never have gaps)."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status != InvoiceStatus.OPEN:
            raise ApplicationError(
                code="invoice_not_open",
                status_code=409,
                detail=f"A {locked.status} invoice cannot be voided.",
            )
        locked.status, locked.voided_at = InvoiceStatus.VOID, now or timezone.now()
        locked.save(update_fields=["status", "voided_at", "updated_at"])
    return locked


def clinics_due_invoicing(*, now: datetime | None = None) -> list[tuple[Clinic, date]]:
    """(clinic, previous month) for subscribed clinics whose local month has turned and whose
    invoice for the previous month does not exist yet (skipping months that were all trial)."""
    now = now or timezone.now()
    # Every clinic's previous month is one of two months (timezones differ by under a day):
    # the invoices already issued for them, in one query rather than one per clinic.
    recent = previous_month(previous_month(month_start(now.date())))
    invoiced = set(Invoice.objects.filter(period__gte=recent).values_list("clinic_id", "period"))
    due = []
    for subscription in Subscription.objects.exclude(status=SubscriptionStatus.CANCELED).select_related(
        "clinic"
    ):
        clinic = subscription.clinic
        period = previous_month(month_start(clinic_today(clinic, now)))
        if subscription.created_at.date() > month_end(period):
            continue
        if subscription.trial_ends_at and clinic_today(clinic, subscription.trial_ends_at) > next_month(
            period
        ):
            continue
        if (clinic.pk, period) in invoiced:
            continue
        due.append((clinic, period))
    return due


# --- Payment webhooks ----------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_verify(*, header: str, body: bytes, now: datetime | None = None) -> None:
    """`X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`; 5 minutes' tolerance."""
    secret = settings.BILLING_WEBHOOK_SECRET
    parts = dict(item.split("=", 1) for item in (header or "").split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
        if not re.fullmatch(r"[0-9a-f]{64}", given):
            raise ValueError("not a hex SHA-256 digest")
    except (KeyError, ValueError) as exc:
        raise ApplicationError(
            code="signature_invalid", status_code=400, detail="Missing or malformed signature."
        ) from exc
    if not secret or not hmac.compare_digest(
        webhook_signature(secret=secret, timestamp=timestamp, body=body), given
    ):
        raise ApplicationError(
            code="signature_invalid", status_code=400, detail="The signature does not match."
        )
    if abs((now or timezone.now()).timestamp() - timestamp) > settings.BILLING_WEBHOOK_TOLERANCE_SECONDS:
        raise ApplicationError(
            code="signature_expired", status_code=400, detail="The signature timestamp is too old."
        )


def payment_event_handle(
    *, event_id: str, event_type: str, data: dict[str, Any], now: datetime | None = None
) -> str:
    """Apply one provider event once. Returns `handled`, `duplicate` or `ignored`."""
    from tenants.lifecycle import clinic_reactivate

    now = now or timezone.now()
    try:
        with transaction.atomic():
            PaymentEvent.objects.create(event_id=event_id, type=event_type)
    except IntegrityError:
        return "duplicate"
    if event_type not in ("invoice.paid", "invoice.payment_failed"):
        return "ignored"
    number = str(data.get("invoice") or "")
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .filter(number=number)
            .select_related("clinic")
            .first()
        )
        if invoice is None:
            raise ApplicationError(
                code="unknown_invoice", status_code=422, field="data.invoice", detail="No such invoice."
            )
        subscription = Subscription.objects.select_for_update().get(clinic=invoice.clinic)
        if event_type == "invoice.paid":
            if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
                invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
                invoice.save(update_fields=["status", "paid_at", "updated_at"])
            unpaid = Invoice.objects.filter(
                clinic=invoice.clinic, status=InvoiceStatus.OPEN, due_at__lt=now
            ).exists()
            if (
                subscription.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED)
                and not unpaid
            ):
                was_suspended = subscription.status == SubscriptionStatus.SUSPENDED
                subscription.status, subscription.past_due_since = SubscriptionStatus.ACTIVE, None
                subscription.save(update_fields=["status", "past_due_since", "updated_at"])
                if was_suspended and invoice.clinic.status == ClinicStatus.SUSPENDED:
                    clinic_reactivate(clinic=invoice.clinic)
        elif invoice.status == InvoiceStatus.OPEN:  # a late failure for a paid invoice changes nothing
            if subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
                subscription.status, subscription.past_due_since = SubscriptionStatus.PAST_DUE, now
                subscription.save(update_fields=["status", "past_due_since", "updated_at"])
        PaymentEvent.objects.filter(event_id=event_id).update(handled=True)
    return "handled"
