"""Thin tasks: a service does the work. Platform queue (public schema)."""

from __future__ import annotations

from celery import shared_task

from core.tasks import ResilientTask


@shared_task(base=ResilientTask, acks_late=True, name="tenants.pending_signups_purge")
def pending_signups_purge() -> None:
    """(Its name predates this app; beat and queued messages know it by it.)"""
    from onboarding.signup import pending_signups_purge as purge

    purge()


@shared_task(base=ResilientTask, acks_late=True, name="onboarding.clinic_welcome_send")
def clinic_welcome_send(*, clinic_id: str, user_id: str) -> None:
    from onboarding.signup import clinic_welcome_send as send

    send(clinic_id=clinic_id, user_id=user_id)
