"""Usage records and invoices: count a month, issue the numbered invoice, void it."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import usage
from billing.models import (
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStatus,
    Plan,
    Subscription,
    SubscriptionStatus,
    UsageMetric,
    UsageRecord,
)
from billing.services.arithmetic import Line, invoice_lines, invoice_totals, plan_segments
from billing.services.periods import (
    clinic_month_bounds,
    clinic_today,
    month_end,
    month_start,
    next_month,
    previous_month,
)
from billing.services.subscriptions import active_clinicians, subscription_lock
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic

logger = logging.getLogger("billing.services")


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


def _plan_segments(subscription: Subscription, period: date) -> list[tuple[Plan, date, date]]:
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
    plan_at_start = changes[0].from_plan if changes else (later.from_plan if later else subscription.plan)
    return plan_segments(plan_at_start=plan_at_start, changes=changes, period=period)


def _lines(subscription: Subscription, period: date, usage: dict[str, int]) -> list[Line]:
    trial_last_day = None
    if subscription.trial_ends_at is not None:
        trial_last_day = clinic_today(subscription.clinic, subscription.trial_ends_at) - timedelta(days=1)
    return invoice_lines(
        segments=_plan_segments(subscription, period),
        period=period,
        trial_last_day=trial_last_day,
        active_patients=usage.get(UsageMetric.ACTIVE_PATIENTS, 0),
        active_clinicians=usage.get(UsageMetric.ACTIVE_CLINICIANS, 0),
    )


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
        subscription = subscription_lock(clinic=clinic)
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
        lines = _lines(subscription, period, usage)
        if not lines:
            return None
        plan = subscription.plan
        rate = tax_rate_bp(clinic.country)
        totals = invoice_totals(lines=lines, tax_rate_bp=rate)
        invoice = Invoice.objects.create(
            number=_next_number(clinic_today(clinic, now).year),
            clinic=clinic,
            period=period,
            currency=plan.currency,
            subtotal_minor=totals.subtotal_minor,
            tax_rate_bp=rate,
            tax_minor=totals.tax_minor,
            total_minor=totals.total_minor,
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
                code=ErrorCode.INVOICE_NOT_OPEN,
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
