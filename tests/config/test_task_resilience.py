"""Tasks survive outages (issue 20, fault 3) and dead workers (fault 4): every project task
retries connection errors with bounded backoff and keeps its clinic schema; a message a dead
worker held goes back to its queue, one a live worker holds (a long countdown) does not."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import kombu.exceptions
import pytest
import redis.exceptions
from celery.exceptions import Reject
from django.core import mail
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context
from kombu import Connection

from accounts.models import User
from config.celery import app as celery_app
from core.models import OutboxMessage
from core.tasks import (
    HELD_KEY,
    RETRY_BACKOFF_MAX,
    SWEEP_LOCK_KEY,
    UNACKED_GRACE_SECONDS,
    ResilientTask,
    unacked_sweep,
)
from tenants.models import Clinic
from tenants.queues import tenant_queue
from tests.celery_probe import outbox_write, probe_redis
from tests.conftest import host_client
from tests.faults import fault_proxy
from tests.workers import (
    database_url,
    purge_queues,
    running_worker,
    start_worker,
    wait_until,
    worker_caught_up,
)

PROJECT_NAMESPACES = ("patients.", "clinicians.", "accounts.", "billing.", "tenants.", "onboarding.", "core.")


def project_tasks() -> dict[str, Any]:
    celery_app.loader.import_default_modules()
    return {name: task for name, task in celery_app.tasks.items() if name.startswith(PROJECT_NAMESPACES)}


# --- The retry policy ---------------------------------------------------------------------------


def test_every_project_task_retries_connection_errors_with_bounded_backoff() -> None:
    tasks = project_tasks()
    assert len(tasks) >= 20  # patients, clinicians, accounts, billing, onboarding, tenants
    for name, task in tasks.items():
        assert isinstance(task, ResilientTask), name
        assert hasattr(task, "_orig_run"), f"{name}: no autoretry wrapper"
        assert task.acks_late and task.reject_on_worker_lost, name
        for error in (
            OperationalError,
            InterfaceError,
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            kombu.exceptions.OperationalError,
        ):
            assert issubclass(error, tuple(task.autoretry_for)), (name, error)
        assert not issubclass(ValueError, tuple(task.autoretry_for)), name
        assert task.retry_backoff and task.retry_jitter and task.retry_backoff_max == RETRY_BACKOFF_MAX, name
        assert 0 < task.max_retries <= 10, name


def test_the_backoff_grows_exponentially_with_full_jitter_and_stays_under_two_minutes() -> None:
    task = project_tasks()["clinicians.alerts_evaluate"]
    ceilings, floors = [], []
    for retries in range(12):
        task.push_request(retries=retries)
        try:  # full jitter: a uniform draw from 0 to the ceiling
            with mock.patch("celery.utils.time.random.randrange", side_effect=lambda n: n - 1):
                ceilings.append(task.backoff_countdown())
            with mock.patch("celery.utils.time.random.randrange", side_effect=lambda n: 0):
                floors.append(task.backoff_countdown())
        finally:
            task.pop_request()
    assert floors == [0] * 12
    assert ceilings == [5, 10, 20, 40, 80, 120, 120, 120, 120, 120, 120, 120]
    # Far inside the visibility timeout: a retry's countdown is never restored early.
    assert RETRY_BACKOFF_MAX * 10 < 3600


def test_reminder_delivery_keeps_its_own_retry_budget_and_channel_backoff() -> None:
    task = project_tasks()["patients.reminder_deliver"]
    assert task.max_retries == 5  # the email fallback runs on the fifth retry
    assert isinstance(task, ResilientTask)


def test_a_retry_names_the_schema_of_the_message_not_the_connection() -> None:
    """On Redis the `_schema_name` header is merged into the request; if the prerun switch
    failed (database down) the connection is still in public, and the retry must not say so."""
    task = project_tasks()["clinicians.alerts_evaluate"]
    task.push_request(
        id=str(uuid.uuid4()),
        args=(),
        kwargs={"patient_id": "x"},
        _schema_name="clinic_alpha",
        headers=None,
        delivery_info={"exchange": "tenant.clinic_alpha", "routing_key": "tenant.clinic_alpha"},
    )
    try:
        with schema_context("public"):
            signature = task.signature_from_request()
    finally:
        task.pop_request()
    assert signature.options["headers"]["_schema_name"] == "clinic_alpha"


def test_a_retry_that_cannot_be_published_requeues_the_message_instead_of_dropping_it() -> None:
    task = project_tasks()["clinicians.alerts_evaluate"]
    task.push_request(
        id=str(uuid.uuid4()), args=(), kwargs={"patient_id": "x"}, retries=0, called_directly=False
    )
    try:
        with mock.patch(
            "celery.canvas.Signature.apply_async", side_effect=kombu.exceptions.OperationalError("down")
        ):
            with pytest.raises(Reject) as rejected:
                task.retry(exc=OperationalError("db down"), countdown=1)
    finally:
        task.pop_request()
    assert rejected.value.requeue is True


# --- A database outage with a real worker -------------------------------------------------------


@pytest.mark.slow
def test_a_task_whose_database_is_down_retries_and_runs_in_its_clinic_once_it_is_back(
    committed_db: None,
) -> None:
    clinic = Clinic.objects.get(slug="alpha")
    key = f"outage-{uuid.uuid4()}"

    def rows() -> list[OutboxMessage]:
        with tenant_context(clinic):
            return list(OutboxMessage.objects.filter(task_name=f"tests.{key}"))

    celery_app.conf.task_always_eager = False
    try:
        with fault_proxy(database_url()) as proxy:
            worker, log = start_worker(pool="solo", DATABASE_URL=proxy.url_for(database_url()))
            try:
                assert worker_caught_up(clinic), log.read_text()[-3000:]
                proxy.cut()
                with tenant_context(clinic):
                    outbox_write.delay(key)
                time.sleep(3)  # the worker takes it at once and fails (no assertion on time)
                assert rows() == []
                proxy.restore()
                assert wait_until(rows, 120, interval=0.5), log.read_text()[-5000:]
            finally:
                worker.terminate()
                worker.wait(30)
        [row] = rows()
        assert row.kwargs["schema"] == "clinic_alpha"  # the retry ran in the clinic's schema
        assert row.kwargs["retries"] >= 1  # a retry did it: the failed attempt was not dropped
    finally:
        celery_app.conf.task_always_eager = True
        with tenant_context(clinic):
            OutboxMessage.objects.filter(task_name=f"tests.{key}").delete()


# --- Dead workers' messages ---------------------------------------------------------------------


@pytest.fixture
def broker_channel() -> Iterator[Any]:
    with Connection(celery_app.conf.broker_url) as conn:
        channel = conn.default_channel
        client = probe_redis()
        client.delete(HELD_KEY, SWEEP_LOCK_KEY)
        yield channel
        client.delete(HELD_KEY, SWEEP_LOCK_KEY)


def fake_unacked(channel: Any, queue: str, age: float) -> str:
    """An unacked message as kombu's QoS.append leaves it, delivered `age` seconds ago."""
    tag = str(uuid.uuid4())
    payload = {"body": "", "headers": {}, "properties": {"delivery_tag": tag, "delivery_info": {}}}
    client = probe_redis()
    client.sadd(f"_kombu.binding.{queue}", "\x06\x16".join([queue, "", queue]))
    client.hset("unacked", tag, json.dumps([payload, queue, queue]))
    client.zadd("unacked_index", {tag: time.time() - age})
    return tag


def test_the_sweep_returns_only_old_messages_that_no_live_worker_holds(broker_channel: Any) -> None:
    client = probe_redis()
    queue = f"test.sweep.{uuid.uuid4().hex[:8]}"
    orphan = fake_unacked(broker_channel, queue, age=UNACKED_GRACE_SECONDS + 30)
    held = fake_unacked(broker_channel, queue, age=3000)  # a long countdown a live worker waits on
    young = fake_unacked(broker_channel, queue, age=1)  # just received, not yet in a heartbeat
    dead_held = fake_unacked(broker_channel, queue, age=UNACKED_GRACE_SECONDS + 30)
    now = float(client.time()[0])
    client.hset(HELD_KEY, "live", json.dumps({"at": now - 5, "tags": [held]}))
    client.hset(HELD_KEY, "dead", json.dumps({"at": now - 120, "tags": [dead_held]}))
    try:
        restored = unacked_sweep(broker_channel, "tester")
        assert sorted(restored) == sorted([orphan, dead_held])
        requeued = [json.loads(raw)["properties"]["delivery_tag"] for raw in client.lrange(queue, 0, -1)]
        assert sorted(requeued) == sorted([orphan, dead_held])
        assert client.hexists("unacked", held) and client.hexists("unacked", young)
        assert not client.hexists("unacked", orphan)
        client.delete(SWEEP_LOCK_KEY)
        assert unacked_sweep(broker_channel, "tester") == []  # nothing twice
    finally:
        client.delete(queue, f"_kombu.binding.{queue}")
        for tag in (orphan, held, young, dead_held):
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.mark.slow
def test_a_long_countdown_held_by_a_live_worker_is_not_redelivered_early(
    committed_db: None, broker_channel: Any
) -> None:
    """A reminder retry waits up to 600 s in the worker that received it. Even when kombu's
    record says it was received long ago, the sweep leaves it: its worker is alive."""
    clinic = Clinic.objects.get(slug="alpha")
    key = f"countdown-{uuid.uuid4()}"
    try:
        held_by_a_live_worker(clinic, key, broker_channel)
    finally:  # the warm shutdown put the message back in its queue: drop it
        purge_queues(tenant_queue(clinic.schema_name))
        with tenant_context(clinic):
            OutboxMessage.objects.filter(task_name=f"tests.{key}").delete()


def held_by_a_live_worker(clinic: Clinic, key: str, broker_channel: Any) -> None:
    client = probe_redis()
    with running_worker():
        assert worker_caught_up(clinic), "worker did not start"
        with tenant_context(clinic):
            outbox_write.apply_async((key,), countdown=600)

        def received() -> list[str]:
            return [tag.decode() for tag, raw in client.hgetall("unacked").items() if key.encode() in raw]

        tags = wait_until(received, 30, interval=0.2)
        assert tags and len(tags) == 1
        [tag] = tags

        # As if received long before the grace period (and beyond any visibility timeout we
        # could choose below 600 s); the worker's heartbeat must list it.
        def listed() -> bool:
            return any(tag in json.loads(raw)["tags"] for raw in client.hvals(HELD_KEY))

        assert wait_until(listed, 30, interval=0.5)
        client.zadd("unacked_index", {tag: time.time() - 3000})
        client.delete(SWEEP_LOCK_KEY)
        assert unacked_sweep(broker_channel, "tester") == []
        assert client.hexists("unacked", tag)
        assert client.llen("tenant.clinic_alpha") == 0
        with tenant_context(clinic):
            assert not OutboxMessage.objects.filter(task_name=f"tests.{key}").exists()


# --- Work whose loss matters goes through the outbox ----------------------------------------------


def test_a_password_reset_during_a_broker_outage_answers_202_and_the_relay_sends_it_later(
    alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The same work for known and unknown addresses (one outbox row, the address encrypted);
    a broker that is down fails neither the request nor the email."""
    from core.outbox import outbox_relay

    down = kombu.exceptions.OperationalError("broker down")
    with tenant_context(Clinic.objects.get(slug="alpha")):
        with mock.patch("accounts.tasks.password_reset_email_send.apply_async", side_effect=down):
            with django_capture_on_commit_callbacks(execute=True):
                for email in (alice.email, "nobody@example.com"):
                    response = host_client("alpha.localhost").post(
                        "/api/v1/auth/password-reset/", {"email": email}, format="json"
                    )
                    assert (response.status_code, response.content) == (202, b"")
        rows = list(OutboxMessage.objects.filter(task_name="accounts.password_reset_email_send"))
        assert [(row.sent_at, row.attempts) for row in rows] == [(None, 1), (None, 1)]
        assert all("@" not in str(row.kwargs) for row in rows)  # the address is encrypted
        assert mail.outbox == []
        assert outbox_relay(now=timezone.now() + timedelta(minutes=1)) == 2  # Redis is back
    assert [m.to for m in mail.outbox] == [[alice.email]]
