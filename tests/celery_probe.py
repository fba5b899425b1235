"""Tasks the test worker imports (`-I tests.celery_probe`): they record where and how they ran."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from core.tasks import ResilientTask

if os.environ.get("TEST_WORKER_SENDS_TO_BROKER") == "1":
    # The test settings run tasks in-process; a worker started by tests.workers.start_worker
    # sends what its tasks send (retries included) through the broker, as in production.
    from config.celery import app

    app.conf.task_always_eager = False


@shared_task(base=ResilientTask, name="tests.record_schema")
def record_schema(key: str) -> None:
    # The cache key is prefixed with the schema, so the reader must be in the same clinic.
    cache.set(key, {"schema": connection.schema_name, "slug": getattr(connection.tenant, "slug", None)}, 120)


def probe_redis() -> redis.Redis:
    """Raw Redis for probe records (the cache degrades to a miss, which would hide a failure)."""
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(base=ResilientTask, name="tests.outbox_write", bind=True)
def outbox_write(self: Any, key: str) -> None:
    """A database effect in the clinic's schema, idempotent: one OutboxMessage row per key,
    stamped with the attempt that wrote it and the schema it ran in."""
    from django.utils import timezone

    from core.models import OutboxMessage

    OutboxMessage.objects.get_or_create(
        task_name=f"tests.{key}",
        defaults={
            "kwargs": {"retries": self.request.retries, "schema": connection.schema_name},
            "sent_at": timezone.now(),  # never for the outbox relay
        },
    )


@shared_task(base=ResilientTask, name="tests.slow_effect")
def slow_effect(key: str, seconds: float) -> None:
    """Records each start, works for `seconds`, then records its effect once (SET NX: as the
    project's tasks do with unique constraints and claims, a second run changes nothing)."""
    r = probe_redis()
    r.rpush(f"{key}:starts", connection.schema_name)
    r.expire(f"{key}:starts", 600)
    time.sleep(seconds)
    if r.set(f"{key}:done", connection.schema_name, nx=True, ex=600):
        r.incr(f"{key}:effects")
        r.expire(f"{key}:effects", 600)
