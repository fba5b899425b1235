"""Transactional outbox (DESIGN.md §7): Celery messages that must survive a broker outage.

`outbox_enqueue` writes the message in the caller's transaction and publishes it after commit;
`outbox_relay` (run every minute per schema by the reminder dispatcher) republishes whatever a
broker outage left unsent. The schema travels in the message headers as for any task sent from
that schema (tenant-schemas-celery), so the relay must run in the schema that wrote the row.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from core.models import OutboxMessage

logger = logging.getLogger(__name__)

RELAY_GRACE = timedelta(seconds=30)  # leave rows the after-commit publish is still handling
RELAY_BATCH = 500


def _task(name: str) -> Any:
    """The registered task, so its routing and options (and eager mode) apply."""
    app = current_app
    if name not in app.tasks:
        app.loader.import_default_modules()  # autodiscovery is lazy outside a worker
    return app.tasks[name]


def _publish(message: OutboxMessage) -> bool:
    try:
        # No publish retries: a broker that is down fails fast and the relay takes over.
        _task(message.task_name).apply_async(kwargs=message.kwargs, retry=False)
    except Exception as exc:  # any broker failure: the row stays for the relay
        logger.warning("Outbox publish failed for %s: %s", message.task_name, type(exc).__name__)
        OutboxMessage.objects.filter(pk=message.pk).update(
            attempts=message.attempts + 1, last_error=type(exc).__name__[:200]
        )
        return False
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now(), attempts=message.attempts + 1)
    return True


def outbox_enqueue(task_name: str, **kwargs: Any) -> OutboxMessage:
    """Record a task in the current transaction; publish it once the transaction commits."""
    message = OutboxMessage.objects.create(task_name=task_name, kwargs=kwargs)
    transaction.on_commit(lambda: _publish(message))
    return message


def outbox_enqueue_many(task_name: str, kwargs_list: list[dict[str, Any]]) -> list[OutboxMessage]:
    messages = OutboxMessage.objects.bulk_create(
        [OutboxMessage(task_name=task_name, kwargs=kwargs) for kwargs in kwargs_list]
    )

    def publish_all() -> None:
        app = current_app
        sent: list[Any] = []
        try:
            task = _task(task_name)
            with app.producer_or_acquire() as producer:  # one connection for the whole batch
                for message in messages:
                    task.apply_async(kwargs=message.kwargs, producer=producer, retry=False)
                    sent.append(message.pk)
        except Exception as exc:  # the broker is down: the relay will take the rest
            logger.warning("Outbox publish failed for %s: %s", task_name, type(exc).__name__)
        finally:
            if sent:
                OutboxMessage.objects.filter(pk__in=sent).update(sent_at=timezone.now(), attempts=1)

    if messages:
        transaction.on_commit(publish_all)
    return messages


def outbox_relay(*, now: Any = None) -> int:
    """Publish unsent rows older than the grace period; returns how many were published."""
    cutoff = (now or timezone.now()) - RELAY_GRACE
    published = 0
    with transaction.atomic():
        pending = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True, created_at__lte=cutoff)
            .order_by("created_at")[:RELAY_BATCH]
        )
        for message in pending:
            if not _publish(message):
                break
            published += 1
    return published


SENT_RETENTION = timedelta(days=7)


def outbox_purge(*, now: Any = None) -> int:
    """Delete messages published more than a week ago (daily, per schema)."""
    cutoff = (now or timezone.now()) - SENT_RETENTION
    return OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()[0]
