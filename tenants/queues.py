"""Each clinic's Celery queue (DESIGN.md §7): its name, its shard, and telling running workers
when a clinic's queue appears or goes. The app is Celery's current one (`config.celery` sets it
up, including the worker side of these broadcasts), so tenancy never imports the configuration
that wires it."""

from __future__ import annotations

import logging
import zlib

from celery import current_app

logger = logging.getLogger(__name__)


def tenant_queue(schema_name: str) -> str:
    return f"tenant.{schema_name}"


def clinic_queue_shard(schema_name: str, shards: int) -> int:
    """The worker group (0 … shards-1) that consumes this clinic's queue: crc32 of the schema
    name, stable across processes and releases (Python's hash() of a str is salted per process)."""
    return zlib.crc32(schema_name.encode()) % shards


def clinic_queue_subscribe(schema_name: str) -> None:
    """Ask the running workers of the clinic's shard to consume a new clinic's queue now (the
    `clinic_queue_add` control command; workers also reconcile their queues every minute, since
    runtime subscriptions are not persisted)."""
    try:
        current_app.control.broadcast("clinic_queue_add", arguments={"schema_name": schema_name}, reply=False)
    except Exception:  # the broker being down must not fail clinic creation; workers catch up at start
        logger.warning("Could not broadcast clinic_queue_add for a new clinic queue", exc_info=True)


def clinic_queue_unsubscribe(schema_name: str) -> None:
    try:
        current_app.control.cancel_consumer(tenant_queue(schema_name), reply=False)
    except Exception:
        logger.warning("Could not broadcast cancel_consumer for a clinic queue", exc_info=True)
