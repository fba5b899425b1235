"""Thin tasks for the patient record."""

from __future__ import annotations

from celery import shared_task
from tenant_schemas_celery.task import TenantTask


@shared_task(base=TenantTask, name="patients.tombstones_purge", acks_late=True)
def tombstones_purge() -> None:
    from patients.sync import tombstones_purge as purge

    purge()


@shared_task(base=TenantTask, name="patients.dispatch_tombstone_purge")
def dispatch_tombstone_purge() -> None:
    """Beat dispatcher (public schema): one purge per clinic, on that clinic's queue."""
    from django_tenants.utils import tenant_context

    from tenants.models import ROUTABLE_STATUSES, Clinic

    for clinic in Clinic.objects.filter(status__in=ROUTABLE_STATUSES):
        with tenant_context(clinic):
            tombstones_purge.delay()
