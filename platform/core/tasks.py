"""Tasks survive outages and crashed workers (DESIGN.md §7).

`ResilientTask`, the one base class of every project task: a task that meets a database or
broker outage is retried with exponential backoff and full jitter, a bounded number of times,
instead of being acknowledged and dropped; the retry keeps the clinic schema.

`UnackedRecovery`, a worker step: returns to their queues the messages a dead worker had taken
(kombu's Redis transport would wait for the visibility timeout, an hour), within a minute.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import bootsteps
from celery.exceptions import Reject
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError, connection
from tenant_schemas_celery.app import get_schema_name_from_task, switch_schema
from tenant_schemas_celery.task import TenantTask

logger = logging.getLogger(__name__)

# Transient: the database or Redis is (briefly) unreachable. Anything else is a bug or a
# business outcome and is not retried blindly.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)

RETRY_BACKOFF = 5  # seconds: the first retry waits up to 5 s, then 10, 20, 40 …
RETRY_BACKOFF_MAX = 120  # … never more than 2 minutes, well inside the visibility timeout
MAX_RETRIES = 10  # about 6 minutes of outage on average (full jitter), 12½ at most


class ResilientTask(TenantTask):
    """Retries connection errors with backoff; late acknowledgement; the retry carries the
    clinic schema of the original message.

    Schema: tenant-schemas-celery switches schema in a `task_prerun` handler whose tenant
    lookup needs the database; Celery logs and ignores an exception there, so during an outage
    the task would start in the wrong schema. `__call__` checks the switch took effect and
    otherwise retries. A retry names the schema in its headers explicitly (on Redis the
    original header is merged into the request and `request.headers` is often empty, so
    tenant-schemas-celery would otherwise take whatever schema the connection is in).
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = CONNECTION_ERRORS
    retry_backoff = RETRY_BACKOFF
    retry_backoff_max = RETRY_BACKOFF_MAX
    retry_jitter = True
    max_retries = MAX_RETRIES

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.request.called_directly and not self.request.is_eager:
            try:
                self._ensure_schema(kwargs)
            except CONNECTION_ERRORS as exc:
                raise self.retry(exc=exc, countdown=self.backoff_countdown()) from exc
        return super().__call__(*args, **kwargs)

    def _ensure_schema(self, kwargs: dict[str, Any]) -> None:
        wanted = get_schema_name_from_task(self, kwargs)
        if wanted and getattr(connection, "schema_name", None) != wanted:
            switch_schema(task=self, kwargs=kwargs)  # the prerun switch failed: again, loudly

    def backoff_countdown(self) -> int:
        """The autoretry countdown for the current attempt (full jitter)."""
        return int(
            get_exponential_backoff_interval(
                factor=self.retry_backoff,
                retries=self.request.retries,
                maximum=self.retry_backoff_max,
                full_jitter=True,
            )
        )

    def signature_from_request(self, request: Any = None, *args: Any, **kwargs: Any) -> Any:
        request = self.request if request is None else request
        signature = super().signature_from_request(request, *args, **kwargs)
        schema = get_schema_name_from_task(self, {}) if request is self.request else None
        if schema:
            headers = dict(signature.options.get("headers") or {})
            headers["_schema_name"] = schema
            signature.options["headers"] = headers
        return signature

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """A retry is a new message: if it cannot be published (the broker is down), Celery
        rejects the current message without requeueing it and the task is lost. Requeue it
        instead; if the broker cannot take even that, the message stays in the unacked hash
        and the dead-message sweep (`UnackedRecovery`) returns it."""
        try:
            return super().retry(*args, **kwargs)
        except Reject as rejected:
            if rejected.requeue:
                raise
            raise Reject(rejected.reason, requeue=True) from rejected


# --- A dead worker's messages ------------------------------------------------------------------
#
# kombu's Redis transport (kombu/transport/redis.py, 5.7.0) emulates acknowledgements: a message
# handed to a consumer is kept in the `unacked` hash with its delivery time in `unacked_index`
# (QoS.append) until it is acked. If the worker dies without a warm shutdown, only
# QoS.restore_visible brings it back, once it is older than `visibility_timeout` (default and
# ours: 3600 s). The delivery time is when the worker *received* the message, not its ETA, so a
# countdown longer than the visibility timeout is restored while the live worker still holds
# it, and runs twice: the visibility timeout cannot simply be made short.
#
# Instead every worker publishes, every few seconds, the delivery tags it holds (its requests:
# reserved, running and ETA-waiting, and its channel's unacked deliveries), and any worker returns to its
# queue each unacked message older than a grace period that no live worker holds. A message
# is held as long as its worker beats, so long countdowns and long tasks are never restored
# early; the visibility timeout stays as the backstop for the rest.

HEARTBEAT_SECONDS = 10
WORKER_STALE_SECONDS = 40  # a worker silent this long is dead (it beats from a thread)
UNACKED_GRACE_SECONDS = 40  # ≥ WORKER_STALE_SECONDS: a fresh beat lists anything older
SWEEP_SECONDS = 15
FORGET_WORKER_SECONDS = 600
HELD_KEY = "csu.workers.held"  # hash: worker id → {"at": Redis time, "tags": [...]}
SWEEP_LOCK_KEY = "csu.unacked.sweep"


class HeldTagsUnknown(Exception):  # noqa: N818 (a state, not an error to report)
    """The held tags could not be read this time: skip the beat rather than claim none."""


def held_delivery_tags(consumer: Any) -> list[str]:
    """The delivery tags of every message this worker holds and has not acked: its requests
    (reserved, running and ETA-waiting: Celery's worker state, which outlives a broker
    reconnect, so a task taken on the channel before a reconnect and still running stays
    held), and whatever the current task channel has delivered and not yet acked."""
    from celery.worker import state

    tags: set[str] = set()
    for _ in range(5):  # the consumer thread may change a set or dict while we copy it
        try:
            requests = [*state.active_requests, *state.reserved_requests, *state.scheduled_requests]
            tags = {str(r.message.delivery_tag) for r in requests if getattr(r, "message", None) is not None}
            task_consumer = getattr(consumer, "task_consumer", None)
            qos = getattr(getattr(task_consumer, "channel", None), "qos", None)
            if qos is not None:
                tags.update(str(tag) for tag in list(qos._delivered) if tag not in qos._dirty)
            return sorted(tags)
        except RuntimeError:
            continue
    raise HeldTagsUnknown


def _redis_now(client: Any) -> float:
    seconds, micros = client.time()  # one clock for every worker's beat and the sweep
    return float(seconds) + float(micros) / 1e6


def heartbeat(channel: Any, worker_id: str, tags: list[str]) -> None:
    with channel.conn_or_acquire() as client:
        client.hset(HELD_KEY, worker_id, json.dumps({"at": _redis_now(client), "tags": tags}))


def unacked_sweep(channel: Any, worker_id: str) -> list[str]:
    """Return to their queues the unacked messages no live worker holds; returns their tags.
    One worker sweeps at a time; kombu's restore is a WATCHed transaction, so even two sweeps
    (or kombu's own restore_visible) cannot requeue one message twice."""
    restored: list[str] = []
    with channel.conn_or_acquire() as client:
        if not client.set(SWEEP_LOCK_KEY, worker_id, nx=True, ex=SWEEP_SECONDS - 1):
            return restored
        now = _redis_now(client)
        live: set[str] = set()
        for wid, raw in client.hgetall(HELD_KEY).items():
            beat = json.loads(raw)
            if now - beat["at"] <= WORKER_STALE_SECONDS:
                live.update(beat["tags"])
            elif now - beat["at"] > FORGET_WORKER_SECONDS:
                client.hdel(HELD_KEY, wid)
        # Scores are the receiving worker's time() (QoS.append): the grace absorbs clock skew.
        old = client.zrange(channel.unacked_index_key, 0, now - UNACKED_GRACE_SECONDS, byscore=True)
        for raw_tag in old:
            tag = raw_tag.decode() if isinstance(raw_tag, bytes) else str(raw_tag)
            if tag not in live:
                channel.qos.restore_by_tag(tag, client)
                restored.append(tag)
    if restored:
        logger.warning("Returned %d message(s) of dead workers to their queues", len(restored))
    return restored


class UnackedRecovery(bootsteps.StartStopStep):
    """Worker step: beat with the held delivery tags, sweep the unacked messages of dead
    workers. Runs in a thread with its own broker connection, so a long task in a solo pool or
    a blocked event loop does not make a live worker look dead."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self.consumer: Any = None
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.worker_id = f"{getattr(c, 'hostname', 'worker')}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def start(self, c: Any) -> None:
        self.consumer = c  # a new Consumer state after a reconnect: read it on each beat
        if self.thread is None and c.app.connection_for_write().transport.driver_type == "redis":
            self.thread = threading.Thread(target=self._run, name="unacked-recovery", daemon=True)
            self.thread.start()

    def shutdown(self, c: Any) -> None:
        self.stopping.set()
        try:
            with c.app.connection_for_write() as conn:
                with conn.default_channel.conn_or_acquire() as client:
                    client.hdel(HELD_KEY, self.worker_id)
        except Exception:  # shutting down anyway; the entry goes stale
            logger.debug("Could not remove the worker heartbeat", exc_info=True)

    def _run(self) -> None:
        conn = None
        last_sweep = 0.0
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = self.consumer.app.connection_for_write()
                channel = conn.default_channel
                try:
                    heartbeat(channel, self.worker_id, held_delivery_tags(self.consumer))
                except HeldTagsUnknown:
                    pass  # the previous beat stands; never publish "holds nothing" by mistake
                now = time.monotonic()
                if now - last_sweep >= SWEEP_SECONDS:
                    last_sweep = now
                    unacked_sweep(channel, self.worker_id)
            except Exception:  # never die: the broker may be down; try again next beat
                logger.warning("Unacked recovery failed; retrying", exc_info=True)
                if conn is not None:
                    conn.release()
                conn = None
            self.stopping.wait(HEARTBEAT_SECONDS)
