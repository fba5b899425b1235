"""Thin tasks: ids in, services do the work. Sent from a clinic's schema → its queue."""

from __future__ import annotations

from celery import shared_task
from django.db import connection
from tenant_schemas_celery.task import TenantTask


@shared_task(base=TenantTask, name="clinicians.alerts_evaluate", acks_late=True)
def alerts_evaluate(*, patient_id: str) -> None:
    from clinicians.services import alerts_evaluate as evaluate
    from patients.models import Patient

    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is not None:
        evaluate(patient=patient, clinic=connection.tenant)


@shared_task(base=TenantTask, name="clinicians.alerts_evaluate_clinic", acks_late=True)
def alerts_evaluate_clinic() -> None:
    """Daily: every active patient of this clinic (catches diary gaps, which no write reports)."""
    from clinicians.services import alerts_evaluate as evaluate
    from patients.models import Patient

    for patient in Patient.objects.filter(status="active").iterator():
        evaluate(patient=patient, clinic=connection.tenant)


@shared_task(base=TenantTask, name="clinicians.dispatch_daily_alerts")
def dispatch_daily_alerts() -> None:
    """Beat dispatcher (public schema): one evaluation task per clinic, on that clinic's queue."""
    from django_tenants.utils import tenant_context

    from tenants.models import Clinic, ClinicStatus

    for clinic in Clinic.objects.filter(status__in=[ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED]):
        with tenant_context(clinic):
            alerts_evaluate_clinic.delay()
