"""Billing reads."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from billing import services, usage
from billing.models import Invoice, Subscription, UsageMetric
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic


def subscription_for(*, clinic: Clinic) -> Subscription:
    subscription = Subscription.objects.select_related("plan").filter(clinic=clinic).first()
    if subscription is None:
        raise ApplicationError(
            code=ErrorCode.NO_SUBSCRIPTION, status_code=404, detail="This clinic has no subscription."
        )
    return subscription


def billing_overview(*, clinic: Clinic) -> dict[str, Any]:
    """Plan, status, this month's usage so far and seats used against the plan's limits."""
    subscription = subscription_for(clinic=clinic)
    plan = subscription.plan
    period = services.month_start(services.clinic_today(clinic))
    start, end = services.clinic_month_bounds(clinic, period)
    clinicians = services.active_clinicians(clinic)
    return {
        "plan": plan,
        "pending_plan": subscription.pending_plan_id,
        "pending_from": subscription.pending_from,
        "status": subscription.status,
        "trial_ends_at": subscription.trial_ends_at,
        "period": period,
        "usage": {
            UsageMetric.ACTIVE_PATIENTS: usage.active_patients_between(clinic, start, end),
            UsageMetric.ACTIVE_CLINICIANS: clinicians,
        },
        "seats": {
            "clinicians": {"used": clinicians, "limit": plan.max_clinicians},
            "patients": {"used": usage.patient_seats(clinic), "limit": plan.max_patients},
        },
    }


def clinic_invoices(*, clinic: Clinic, newest_first: bool = True) -> QuerySet[Invoice]:
    return Invoice.objects.filter(clinic=clinic).order_by("-period" if newest_first else "period")


def clinic_invoice_get(*, clinic: Clinic, invoice_id: Any) -> Invoice:
    """One of the clinic's own invoices; another clinic's id is 404, like a missing one."""
    invoice = Invoice.objects.filter(pk=invoice_id, clinic=clinic).select_related("clinic").first()
    if invoice is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such invoice.")
    return invoice


def subscriptions_list(*, status: str | None = None, limit: int = 1000) -> QuerySet[Subscription]:
    """Every clinic's subscription (for operators), by clinic slug."""
    items = Subscription.objects.select_related("clinic").order_by("clinic__slug")
    if status:
        items = items.filter(status=status)
    return items[:limit]


def subscription_get(*, subscription_id: Any) -> Subscription:
    subscription = Subscription.objects.select_related("clinic").filter(pk=subscription_id).first()
    if subscription is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such subscription.")
    return subscription


def invoices_list(
    *, status: str | None = None, clinic_slug: str | None = None, limit: int = 1000
) -> QuerySet[Invoice]:
    """Every clinic's invoices (for operators), the latest issued first."""
    items = Invoice.objects.order_by("-issued_at")
    if status:
        items = items.filter(status=status)
    if clinic_slug:
        items = items.filter(clinic__slug=clinic_slug)
    return items[:limit]


def invoice_get(*, invoice_id: Any) -> Invoice:
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such invoice.")
    return invoice
