"""Thin tasks: a service does the work. Platform queue (public schema)."""

from __future__ import annotations

from celery import shared_task

from core.tasks import ResilientTask


@shared_task(base=ResilientTask, acks_late=True, name="tenants.pending_signups_purge")
def pending_signups_purge() -> None:
    """(Its name predates this app; beat and queued messages know it by it.)"""
    from onboarding.signup import pending_signups_purge as purge

    purge()
