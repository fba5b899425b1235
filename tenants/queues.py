"""Each clinic's Celery queue (DESIGN.md §7): its name, and telling running workers when a
clinic's queue appears or goes. The app is Celery's current one (`config.celery` sets it up),
so tenancy never imports the configuration that wires it."""

from __future__ import annotations

import logging

from celery import current_app

logger = logging.getLogger(__name__)


def tenant_queue(schema_name: str) -> str:
    return f"tenant.{schema_name}"


def clinic_queue_subscribe(schema_name: str) -> None:
    """Ask every running worker to consume a new clinic's queue now (workers also subscribe to
    every clinic at start, since runtime subscriptions are not persisted)."""
    try:
        current_app.control.add_consumer(tenant_queue(schema_name), reply=False)
    except Exception:  # the broker being down must not fail clinic creation; workers catch up at start
        logger.warning("Could not broadcast add_consumer for a new clinic queue", exc_info=True)


def clinic_queue_unsubscribe(schema_name: str) -> None:
    try:
        current_app.control.cancel_consumer(tenant_queue(schema_name), reply=False)
    except Exception:
        logger.warning("Could not broadcast cancel_consumer for a clinic queue", exc_info=True)
