"""Thin tasks for the patient record: ids in, services do the work.

Beat sends the dispatchers to the `platform` queue; each enqueues one task per clinic, from
that clinic's schema, so it lands on the clinic's own queue (DESIGN.md §7).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from core.tasks import ResilientTask

logger = logging.getLogger(__name__)

DISPATCH_EXPIRES = 120  # a per-clinic scan not started within 2 minutes is superseded by a newer one


def _each_routable_clinic() -> Any:
    from tenants.models import DISPATCH_STATUSES, Clinic

    return Clinic.objects.filter(status__in=DISPATCH_STATUSES).only("schema_name", "slug")


@shared_task(base=ResilientTask, name="patients.summaries_roll", acks_late=True)
def summaries_roll() -> int:
    """Per clinic: recompute the summaries of the patients whose local date has ended."""
    from patients.summary import summaries_roll as roll

    return roll()


@shared_task(base=ResilientTask, name="patients.dispatch_summaries_roll")
def dispatch_summaries_roll() -> None:
    """Beat, every 15 minutes (public schema): each clinic rolls its patients' summaries over
    to their new local date on its own queue. Midnight falls on the hour, the half or the
    quarter hour somewhere; a row is stale at most until the next run, and the portal list
    computes a handful itself meanwhile (patients.summary)."""
    from django_tenants.utils import tenant_context

    from patients.due import clinics_with_stale_summaries

    # Only clinics with a summary whose local date has ended (one probe per 100 schemas).
    for clinic in clinics_with_stale_summaries(_each_routable_clinic()):
        with tenant_context(clinic):
            summaries_roll.apply_async(expires=DISPATCH_EXPIRES * 7)


@shared_task(base=ResilientTask, name="patients.tombstones_purge", acks_late=True)
def tombstones_purge() -> None:
    """Daily, per clinic: sync tombstones past retention, published outbox messages and the
    week-old records of wrong enrollment codes."""
    from core.outbox import outbox_purge
    from patients.enrollment import enrollment_failures_purge
    from patients.sync import tombstones_purge as purge

    purge()
    outbox_purge()
    enrollment_failures_purge()


@shared_task(base=ResilientTask, name="patients.dispatch_tombstone_purge")
def dispatch_tombstone_purge() -> None:
    """Beat dispatcher (public schema): one purge per clinic, on that clinic's queue."""
    from django_tenants.utils import tenant_context

    from core.outbox import outbox_purge

    outbox_purge()  # the public schema's own outbox
    for clinic in _each_routable_clinic():
        with tenant_context(clinic):
            tombstones_purge.delay()


@shared_task(base=ResilientTask, name="patients.reminders_dispatch", acks_late=True)
def reminders_dispatch() -> dict[str, int]:
    """One clinic, one minute: republish its unsent outbox rows, then claim due reminders.
    Catch-up after downtime is implicit: everything due since the last run is found here."""
    from core.outbox import outbox_relay
    from patients.due import clinic_next_due_recompute
    from patients.reminders import DISPATCH_BATCH, reminder_deliveries_sweep, reminders_dispatch_due

    relayed = outbox_relay()
    reminder_deliveries_sweep()
    result = reminders_dispatch_due()
    while result.due >= DISPATCH_BATCH:  # a very busy minute: keep going in batches
        result = reminders_dispatch_due()
    clinic_next_due_recompute()  # the beat dispatcher skips this clinic until then
    return {"relayed": relayed, "due": result.due, "queued": result.queued}


@shared_task(base=ResilientTask, name="patients.dispatch_due_reminders")
def dispatch_due_reminders() -> int:
    """Beat, every minute (public schema): the platform outbox, then a scan for each clinic with
    a reminder or delivery due (public `next_due_at`, patients.due) or an unsent outbox row."""
    from django_tenants.utils import tenant_context

    from core.outbox import outbox_relay
    from patients.due import clinics_needing_reminder_dispatch

    outbox_relay()
    count = 0
    for clinic in clinics_needing_reminder_dispatch():
        with tenant_context(clinic):
            reminders_dispatch.apply_async(expires=DISPATCH_EXPIRES)
        count += 1
    return count


@shared_task(base=ResilientTask, name="patients.reconcile_reminder_due")
def reconcile_reminder_due() -> int:
    """Beat, hourly (public schema): the safety net under `next_due_at`, recomputed for every
    clinic from its own schedule (a bound gone stale by a path no trigger sees)."""
    from patients.due import clinic_due_reconcile_all

    return clinic_due_reconcile_all()


@shared_task(
    base=ResilientTask,
    name="patients.reminder_deliver",
    acks_late=True,
    bind=True,
    max_retries=5,
)
def reminder_deliver(self: Any, *, delivery_id: str) -> str:
    """Send one reminder occurrence. Retried with exponential backoff and jitter on transient
    channel errors only (push service 429/5xx, network, SMTP); the last attempt falls back to
    email or records the failure. A retry never sends a reminder more than an hour late."""
    from patients import push
    from patients.reminders import CLAIM_TIMEOUT, DeliveryInProgress
    from patients.reminders import reminder_deliver as deliver

    final = self.request.retries >= self.max_retries
    try:
        return deliver(delivery_id=delivery_id, final_attempt=final)
    except DeliveryInProgress as exc:
        if final:
            return "in_progress"  # the per-minute sweep requeues it once the claim times out
        raise self.retry(exc=exc, countdown=int(CLAIM_TIMEOUT.total_seconds()) + 5) from exc
    except push.TransientDeliveryError as exc:
        countdown = get_exponential_backoff_interval(
            factor=15, retries=self.request.retries, maximum=600, full_jitter=True
        )
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(
    base=ResilientTask,
    name="patients.reminder_deliver_chunk",
    acks_late=True,
    bind=True,
    max_retries=5,
)
def reminder_deliver_chunk(self: Any, *, delivery_ids: list[str]) -> dict[str, int]:
    """Send a chunk of one clinic's reminder occurrences (ids only), each with the per-delivery
    logic and claim (`reminder_deliver`). The deliveries that met a transient channel error,
    and only those, are retried together with the same budget and backoff as
    `patients.reminder_deliver`: each retry holds only deliveries that failed every earlier
    attempt, so they share one history, and the fifth retry falls back to email or records
    the failure. A database or broker outage retries the whole chunk (ResilientTask); the
    claims make the rerun send nothing twice."""
    from patients.reminders import reminder_deliver_chunk as deliver_chunk

    final = self.request.retries >= self.max_retries
    result = deliver_chunk(delivery_ids=delivery_ids, final_attempt=final)
    if result.retry:
        countdown = get_exponential_backoff_interval(
            factor=15, retries=self.request.retries, maximum=600, full_jitter=True
        )
        raise self.retry(kwargs={"delivery_ids": result.retry}, countdown=countdown)
    return dict(result.statuses)
