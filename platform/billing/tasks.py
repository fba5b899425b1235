"""Billing tasks (platform queue, public schema): ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from core.tasks import ResilientTask


@shared_task(base=ResilientTask, name="billing.clinic_bill", acks_late=True)
def clinic_bill(*, clinic_id: str, period: str) -> str | None:
    """Usage for the month, then the invoice (both idempotent: a re-run updates or returns)."""
    from datetime import date

    from billing.services import invoice_generate, usage_record
    from tenants.models import Clinic

    clinic = Clinic.objects.get(pk=clinic_id)
    month = date.fromisoformat(period)
    usage_record(clinic=clinic, period=month)
    invoice = invoice_generate(clinic=clinic, period=month)
    return invoice.number if invoice else None


@shared_task(base=ResilientTask, name="billing.dispatch_billing")
def dispatch_billing() -> int:
    from billing.services import clinics_due_invoicing, subscriptions_advance

    subscriptions_advance()
    due = clinics_due_invoicing()
    for clinic, period in due:
        clinic_bill.apply_async(
            kwargs={"clinic_id": str(clinic.pk), "period": period.isoformat()}, queue="platform"
        )
    return len(due)
