"""Thin tasks: ids in, services do the work. Sent from a clinic's schema → its queue."""

from __future__ import annotations

from celery import shared_task

from core.tasks import ResilientTask
from tenants.db import tenant_connection


@shared_task(base=ResilientTask, name="clinicians.alerts_evaluate", acks_late=True)
def alerts_evaluate(*, patient_id: str) -> None:
    from clinicians.services import alerts_evaluate as evaluate
    from patients.models import Patient

    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is not None:
        evaluate(patient=patient, clinic=tenant_connection().tenant)


@shared_task(base=ResilientTask, name="clinicians.alerts_evaluate_clinic", acks_late=True)
def alerts_evaluate_clinic() -> None:
    """Daily: every active patient of this clinic (catches diary gaps, which no write reports)."""
    from clinicians.services import alerts_evaluate as evaluate
    from patients.models import Patient

    for patient in Patient.objects.filter(status="active").iterator():
        evaluate(patient=patient, clinic=tenant_connection().tenant)


@shared_task(base=ResilientTask, name="clinicians.dispatch_daily_alerts")
def dispatch_daily_alerts() -> None:
    """Beat dispatcher (public schema): one evaluation task per clinic, on that clinic's queue."""
    from django_tenants.utils import tenant_context

    from patients.due import clinics_with_active_patients, dispatchable_clinics

    # A clinic without an active patient has nothing to evaluate (one probe per 100 schemas).
    for clinic in clinics_with_active_patients(dispatchable_clinics()):
        with tenant_context(clinic):
            alerts_evaluate_clinic.delay()


@shared_task(base=ResilientTask, name="clinicians.report_generate", acks_late=True)
def report_generate(*, report_id: str) -> str:
    """Sent at low priority (config.celery.TASK_PRIORITIES): never ahead of a reminder."""
    from clinicians.reports import report_generate as generate

    return generate(report_id=report_id)


@shared_task(base=ResilientTask, name="clinicians.reports_weekly_clinic", acks_late=True)
def reports_weekly_clinic(*, week_start: str) -> int:
    from datetime import date

    from clinicians.reports import reports_request_weekly

    return reports_request_weekly(week_start=date.fromisoformat(week_start))


@shared_task(base=ResilientTask, name="clinicians.dispatch_weekly_reports")
def dispatch_weekly_reports() -> int:
    """Beat, hourly (public schema): each clinic where it is Monday 06:00 or later gets its
    weekly reports for the week that just ended, on its own queue. Later runs that Monday only
    requeue what is still pending (catch-up when a run was missed); nothing is made twice."""
    from django_tenants.utils import tenant_context

    from clinicians.reports import clinics_due_weekly_reports

    due = clinics_due_weekly_reports()
    for clinic, week_start in due:
        with tenant_context(clinic):
            reports_weekly_clinic.delay(week_start=week_start.isoformat())
    return len(due)
