"""Thin tasks: ids in, a service does the work. Platform queue (public schema)."""

from __future__ import annotations

from celery import shared_task

from core.tasks import ResilientTask


@shared_task(base=ResilientTask, acks_late=True, name="tenants.clinic_offboard")
def clinic_offboard(*, clinic_id: str) -> None:
    from tenants.lifecycle import clinic_offboard as clinic_offboard_service

    clinic_offboard_service(clinic_id=clinic_id)


@shared_task(base=ResilientTask, acks_late=True, name="tenants.clinics_purge_offboarded")
def clinics_purge_offboarded() -> None:
    from tenants.lifecycle import clinics_purge_offboarded as purge

    purge()
