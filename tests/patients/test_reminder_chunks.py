"""The busy reminder minute (issue 19): deliveries go out one Celery message per chunk of up to
100, and a chunk keeps every per-delivery guarantee: one claim per delivery (a chunk run twice
sends nothing twice), the retry budget and backoff of `patients.reminder_deliver` for the
deliveries that met a transient channel error (and only those), and the email fallback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from unittest import mock

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from accounts.models import User
from core.models import OutboxMessage
from patients import reminders
from patients.models import DeliveryStatus, Patient, ReminderDelivery
from patients.reminders import (
    DELIVER_CHUNK_TASK,
    DELIVER_TASK,
    delivery_chunks,
    push_subscription_register,
    reminder_deliver_chunk,
    reminder_deliveries_sweep,
    reminder_save,
    reminders_dispatch_due,
    reminders_reschedule,
)
from tenants.models import Clinic
from tests.conftest import make_member
from tests.factories import DiaryEntryFactory, PatientFactory
from tests.fakes import BrowserKeys, fake_push_service

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 20:00 in Berlin, the busy minute


def _due_at_eight(patient: Patient) -> None:
    reminder_save(patient=patient, kind="diary", local_time=time(20, 0))
    reminders_reschedule(patient=patient, now=NOW - timedelta(minutes=5))


def _patient(clinic: Clinic, name: str, *, with_email: bool = True) -> Patient:
    user = (
        make_member(f"{name}-{uuid.uuid4().hex[:6]}@example.com", clinic, "patient") if with_email else None
    )
    return PatientFactory(
        display_name=name, timezone="Europe/Berlin", user_id=user.pk if user is not None else None
    )


def _pending(patient: Patient, now: datetime) -> ReminderDelivery:
    """A delivery of `patient` due now (dispatched, not yet sent)."""
    reminder, _ = reminder_save(
        patient=patient, kind="diary", local_time=now.astimezone(patient.tz).time().replace(second=0)
    )
    reminders_reschedule(patient=patient, now=now - timedelta(minutes=1))
    reminders_dispatch_due(now=now)
    return ReminderDelivery.objects.get(reminder=reminder)


def test_chunks_are_as_few_as_the_size_allows_and_even() -> None:
    ids = [str(i) for i in range(201)]
    assert [len(c) for c in delivery_chunks(ids, 100)] == [67, 67, 67]
    assert [len(c) for c in delivery_chunks(ids[:200], 100)] == [100, 100]
    assert [len(c) for c in delivery_chunks(ids[:101], 100)] == [51, 50]
    assert delivery_chunks(ids[:1], 100) == [["0"]]
    assert delivery_chunks([], 100) == []
    assert [x for chunk in delivery_chunks(ids, 100) for x in chunk] == ids  # order kept


def test_the_busy_minute_publishes_one_outbox_message_per_chunk_with_ids_only(
    clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reminders, "DELIVERY_CHUNK", 2)
    with tenant_context(clinic_a):
        patients = [_patient(clinic_a, f"Busy {i}", with_email=False) for i in range(6)]
        for patient in patients:
            _due_at_eight(patient)
        DiaryEntryFactory(patient=patients[0], day=NOW.date(), wheals=1, itch=1)  # skipped: done

        result = reminders_dispatch_due(now=NOW)

        assert (result.due, result.queued, result.skipped, result.messages) == (6, 5, 1, 3)
        rows = list(OutboxMessage.objects.order_by("created_at"))
        assert {row.task_name for row in rows} == {DELIVER_CHUNK_TASK}
        assert [sorted(row.kwargs) for row in rows] == [["delivery_ids"]] * 3
        assert sorted(len(row.kwargs["delivery_ids"]) for row in rows) == [1, 2, 2]
        pending = {
            str(pk)
            for pk in ReminderDelivery.objects.filter(status=DeliveryStatus.PENDING).values_list(
                "pk", flat=True
            )
        }
        sent = [delivery_id for row in rows for delivery_id in row.kwargs["delivery_ids"]]
        assert sorted(sent) == sorted(pending) and len(pending) == 5
        # A second run in the same minute finds nothing and publishes nothing.
        again = reminders_dispatch_due(now=NOW + timedelta(seconds=20))
        assert (again.due, again.messages) == (0, 0)
        assert OutboxMessage.objects.count() == 3


def test_a_lone_delivery_goes_as_the_per_delivery_task(clinic_a: Clinic) -> None:
    with tenant_context(clinic_a):
        _due_at_eight(_patient(clinic_a, "Lone", with_email=False))
        assert reminders_dispatch_due(now=NOW).messages == 1
        row = OutboxMessage.objects.get()
        assert (row.task_name, list(row.kwargs)) == (DELIVER_TASK, ["delivery_id"])


def test_a_chunk_run_twice_sends_each_delivery_once(clinic_a: Clinic) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tenant_context(clinic_a):
        ann = _pending(_patient(clinic_a, "Ann"), now)
        ben = _pending(_patient(clinic_a, "Ben", with_email=False), now)  # no channel
        ids = [str(ann.pk), str(ben.pk)]

        first = reminder_deliver_chunk(delivery_ids=ids)
        again = reminder_deliver_chunk(delivery_ids=ids)  # the message redelivered

        assert dict(first.statuses) == {"sent": 1, "failed": 1}
        assert dict(again.statuses) == {"not_pending": 2}
        assert list(
            ReminderDelivery.objects.filter(pk__in=ids)
            .order_by("patient__display_name")
            .values_list("status", "channel", "reason", "attempts")
        ) == [("sent", "email", "", 1), ("failed", "", "no_channel", 1)]
    assert len(mail.outbox) == 1


def test_a_chunk_whose_worker_died_midway_sends_the_rest_and_the_sweep_takes_the_one_in_flight(
    clinic_a: Clinic,
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tenant_context(clinic_a):
        done, in_flight, untouched = (
            _pending(_patient(clinic_a, n), now) for n in ("Done", "Flight", "Rest")
        )
        ids = [str(done.pk), str(in_flight.pk), str(untouched.pk)]
        # The first run sent `done`, claimed `in_flight`, then its worker was killed.
        assert reminders.reminder_deliver(delivery_id=done.pk, now=now) == "sent"
        ReminderDelivery.objects.filter(pk=in_flight.pk).update(status="sending", claimed_at=now)
        mail.outbox.clear()

        rerun = reminder_deliver_chunk(delivery_ids=ids, now=now + timedelta(seconds=40))

        assert dict(rerun.statuses) == {"not_pending": 1, "in_progress": 1, "sent": 1}
        assert (rerun.in_progress, rerun.retry) == ([str(in_flight.pk)], [])
        assert len(mail.outbox) == 1  # `untouched` only: `done` is not sent again
        # Once the claim has timed out the sweep queues it again, alone.
        assert reminder_deliveries_sweep(now=now + timedelta(minutes=6)) == {"expired": 0, "requeued": 1}
        messages = OutboxMessage.objects.filter(
            task_name=DELIVER_TASK, kwargs={"delivery_id": str(in_flight.pk)}
        )
        assert messages.count() == 2  # its dispatch, then the sweep
        assert reminders.reminder_deliver(delivery_id=in_flight.pk, now=now + timedelta(minutes=7)) == "sent"
    assert len(mail.outbox) == 2


def test_one_broken_delivery_does_not_strand_the_rest_of_its_chunk(clinic_a: Clinic) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tenant_context(clinic_a):
        ann = _pending(_patient(clinic_a, "Ann"), now)
        result = reminder_deliver_chunk(delivery_ids=["not-a-uuid", str(ann.pk)])
        assert (result.errors, dict(result.statuses)) == (["not-a-uuid"], {"error": 1, "sent": 1})
    assert len(mail.outbox) == 1


def test_a_push_outage_retries_only_the_failed_delivery_with_its_own_budget_then_falls_back_to_email(
    clinic_a: Clinic,
) -> None:
    from patients.tasks import reminder_deliver_chunk as chunk_task

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with fake_push_service() as service, tenant_context(clinic_a):
        service.statuses["/push/busy"] = 503
        ann, ben = _patient(clinic_a, "Ann"), _patient(clinic_a, "Ben")
        keys = BrowserKeys.new()
        push_subscription_register(
            patient=ann, endpoint=f"{service.base_url}/push/busy", p256dh=keys.p256dh, auth=keys.auth
        )
        keys = BrowserKeys.new()
        push_subscription_register(
            patient=ben, endpoint=f"{service.base_url}/push/ok", p256dh=keys.p256dh, auth=keys.auth
        )
        ann_delivery, ben_delivery = _pending(ann, now), _pending(ben, now)

        ids = [str(ann_delivery.pk), str(ben_delivery.pk)]
        retried: list[tuple[list[str], int]] = []

        class Retried(Exception):
            pass

        def retry(*, kwargs: dict[str, list[str]], countdown: int) -> Retried:
            retried.append((kwargs["delivery_ids"], countdown))
            return Retried()

        # The worker's loop, one attempt per message: each retry carries what the task asked for.
        results = []
        for attempt in range(7):
            chunk_task.push_request(retries=attempt)
            try:
                with mock.patch.object(chunk_task, "retry", side_effect=retry):
                    results.append(chunk_task.run(delivery_ids=ids))
                break
            except Retried:
                ids = retried[-1][0]
            finally:
                chunk_task.pop_request()

        # Ann's delivery alone is retried, five times as `patients.reminder_deliver`, with its
        # backoff (full jitter under 15 s × 2^n); the fifth retry falls back to email.
        assert [delivery_ids for delivery_ids, _ in retried] == [[str(ann_delivery.pk)]] * 5
        assert all(0 <= countdown <= 15 * 2**n for n, (_, countdown) in enumerate(retried))
        assert results == [{"sent": 1}]
        ann_delivery.refresh_from_db()
        ben_delivery.refresh_from_db()
        assert (ben_delivery.status, ben_delivery.channel, ben_delivery.attempts) == ("sent", "push", 1)
        assert (ann_delivery.status, ann_delivery.channel, ann_delivery.attempts) == ("sent", "email", 6)
        assert sorted(path for path, _, _ in service.received) == ["/push/busy"] * 6 + ["/push/ok"]
        assert [m.to for m in mail.outbox] == [[User.objects.get(pk=ann.user_id).email]]


def test_the_chunk_task_is_resilient_and_has_the_delivery_retry_budget() -> None:
    from core.tasks import ResilientTask
    from patients.tasks import reminder_deliver, reminder_deliver_chunk

    assert isinstance(reminder_deliver_chunk, ResilientTask)
    assert reminder_deliver_chunk.acks_late and reminder_deliver_chunk.reject_on_worker_lost
    assert reminder_deliver_chunk.max_retries == reminder_deliver.max_retries == 5
