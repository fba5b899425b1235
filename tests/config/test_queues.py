"""Per-clinic queues with a real worker process on Redis: fairness between clinics, a worker
killed mid-task, and a reminder going from beat's dispatcher to a sent delivery. Plus the
outbox surviving a broker outage."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django_tenants.utils import schema_context, tenant_context

from accounts.models import Membership, User
from clinicians.models import Report, ReportKind, ReportStatus
from config.celery import app as celery_app
from config.celery import tenant_queue
from core.models import OutboxMessage
from core.outbox import outbox_enqueue, outbox_relay
from patients.models import DeliveryStatus, Patient, Reminder, ReminderDelivery
from patients.reminders import reminder_save
from tenants.models import Clinic
from tests.conftest import make_member
from tests.factories import PatientFactory
from tests.workers import database_url, purge_queues, running_worker, wait_until, worker_caught_up


def _unacked_longer_than(task_id: str, *, seconds: float) -> bool:
    """Whether the task's message has sat delivered but unacknowledged for over `seconds`
    (kombu's Redis transport: `unacked` maps delivery tags to messages, `unacked_index` to the
    time each was delivered)."""
    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client
        for tag, raw in client.hgetall("unacked").items():
            if json.loads(raw)[0]["headers"].get("id") == task_id:
                delivered = client.zscore("unacked_index", tag)
                return delivered is not None and time.time() - delivered > seconds
    return False


@pytest.fixture
def clinics(committed_db: None) -> tuple[Clinic, Clinic]:
    purge_queues("platform", tenant_queue("clinic_alpha"), tenant_queue("clinic_beta"))
    return Clinic.objects.get(slug="alpha"), Clinic.objects.get(slug="beta")


def _mondays(count: int) -> list[date]:
    first = date(2020, 1, 6)
    return [first + timedelta(weeks=i) for i in range(count)]


@pytest.mark.slow
def test_one_clinics_backlog_does_not_hold_up_another_clinics_reminder(
    clinics: tuple[Clinic, Clinic],
) -> None:
    alpha, beta = clinics
    user = make_member(f"fair-{uuid.uuid4().hex[:8]}@example.com", beta, "patient")
    try:
        with tenant_context(alpha):
            busy = PatientFactory(display_name="Busy clinic patient", timezone="Europe/Berlin")
            reports = Report.objects.bulk_create(
                [Report(kind=ReportKind.PATIENT_WEEKLY, patient=busy, week_start=w) for w in _mondays(300)]
            )
        with tenant_context(beta):
            quiet = PatientFactory(
                user_id=user.pk, display_name="Quiet clinic patient", timezone="America/New_York"
            )
            now = datetime.now(UTC)
            reminder, _ = reminder_save(
                patient=quiet, kind="diary", local_time=now.astimezone(quiet.tz).time()
            )
            delivery = ReminderDelivery.objects.create(
                reminder=reminder, patient=quiet, local_date=quiet.local_today(), scheduled_for=now
            )
        celery_app.conf.task_always_eager = False
        try:
            from clinicians.tasks import report_generate
            from patients.tasks import reminder_deliver

            with tenant_context(alpha):  # clinic A enqueues 300 report tasks ...
                for report in reports:
                    report_generate.delay(report_id=str(report.pk))
            with tenant_context(beta):  # ... then clinic B one reminder
                reminder_deliver.delay(delivery_id=str(delivery.pk))
        finally:
            celery_app.conf.task_always_eager = True
        with running_worker():
            with tenant_context(beta):
                assert wait_until(
                    lambda: ReminderDelivery.objects.filter(
                        pk=delivery.pk, status=DeliveryStatus.SENT
                    ).exists(),
                    120,
                )
                sent_at = ReminderDelivery.objects.get(pk=delivery.pk).sent_at
            with tenant_context(alpha):
                assert wait_until(
                    lambda: Report.objects.filter(patient=busy, status=ReportStatus.READY).count() >= 10, 120
                )
                generated = sorted(
                    Report.objects.filter(patient=busy, generated_at__isnull=False).values_list(
                        "generated_at", flat=True
                    )
                )
        assert sent_at < generated[9], "clinic B's reminder waited behind clinic A's backlog"
    finally:
        with tenant_context(alpha):
            Patient.objects.filter(display_name="Busy clinic patient").delete()
        with tenant_context(beta):
            Patient.objects.filter(display_name="Quiet clinic patient").delete()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()
        purge_queues(tenant_queue("clinic_alpha"))


@pytest.mark.slow
def test_a_report_task_whose_worker_is_killed_runs_again_after_restart_and_the_report_exists_once(
    clinics: tuple[Clinic, Clinic],
) -> None:
    alpha, _ = clinics
    with tenant_context(alpha):
        patient = PatientFactory(display_name="Killed worker patient", timezone="Europe/Berlin")
        report = Report.objects.create(
            kind=ReportKind.PATIENT_WEEKLY, patient=patient, week_start=date(2026, 11, 16)
        )
    env = {"CELERY_VISIBILITY_TIMEOUT": "3"}  # unacknowledged messages come back after 3 s
    try:
        # Hold the report's row lock so the task blocks mid-way, inside its transaction.
        with psycopg.connect(database_url(), autocommit=False) as blocker:
            blocker.execute("SET search_path TO clinic_alpha")
            blocker.execute("SELECT 1 FROM clinicians_report WHERE id = %s FOR UPDATE", [report.pk])
            with running_worker(**env) as worker:
                celery_app.conf.task_always_eager = False
                from clinicians.tasks import report_generate

                with tenant_context(alpha):
                    task_id = report_generate.delay(report_id=str(report.pk)).id
                with psycopg.connect(database_url(), autocommit=True) as probe:
                    assert wait_until(
                        lambda: (
                            probe.execute(
                                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND query LIKE '%%clinicians_report%%'"
                            ).fetchone()[0]
                            > 0
                        ),
                        60,
                    ), "the task never reached the report"
                worker.kill()  # SIGKILL: no chance to ack, reject or clean up
                worker.wait(timeout=10)
            blocker.rollback()
        # The killed worker never acked: the message waits in Redis's unacked set until the
        # visibility timeout passes, after which a starting worker restores it to its queue.
        assert wait_until(lambda: _unacked_longer_than(task_id, seconds=3), 30), "the message was acked"
        with tenant_context(alpha):
            assert Report.objects.get(pk=report.pk).status == ReportStatus.PENDING
        with running_worker(**env):
            with tenant_context(alpha):
                assert wait_until(lambda: Report.objects.get(pk=report.pk).status == ReportStatus.READY, 60)
        with tenant_context(alpha):
            assert Report.objects.filter(patient=patient).count() == 1
            assert Report.objects.get(pk=report.pk).data["week_start"] == "2026-11-16"
    finally:
        with tenant_context(alpha):
            Patient.objects.filter(pk=patient.pk).delete()
        connection.set_schema_to_public()


@pytest.mark.slow
def test_a_due_reminder_goes_from_beats_dispatcher_to_a_sent_delivery(clinics: tuple[Clinic, Clinic]) -> None:
    alpha, _ = clinics
    user = make_member(f"e2e-{uuid.uuid4().hex[:8]}@example.com", alpha, "patient")
    try:
        with tenant_context(alpha):
            patient = PatientFactory(
                user_id=user.pk, display_name="Dispatch patient", timezone="Europe/Berlin"
            )
            now = datetime.now(UTC)
            reminder, _ = reminder_save(
                patient=patient,
                kind="diary",
                local_time=(now - timedelta(minutes=3)).astimezone(patient.tz).time(),
            )
            # Due three minutes ago (the worker was down): caught up, still well within the hour.
            Reminder.objects.filter(pk=reminder.pk).update(
                next_fire_at=now - timedelta(minutes=3), next_local_date=patient.local_today()
            )
        from patients.tasks import dispatch_due_reminders

        with running_worker():
            dispatch_due_reminders.delay()  # what beat sends every minute, to `platform`
            with tenant_context(alpha):
                assert wait_until(
                    lambda: ReminderDelivery.objects.filter(
                        reminder=reminder, status=DeliveryStatus.SENT
                    ).exists(),
                    60,
                )
                with schema_context("public"):
                    dispatch_due_reminders.delay()  # the next minute: nothing new
                # Wait for that dispatcher, then for the clinic's own dispatch that it queued.
                assert worker_caught_up(None) and worker_caught_up(alpha), "the worker did not catch up"
                rows = list(
                    ReminderDelivery.objects.filter(reminder=reminder).values_list("status", "channel")
                )
                assert rows == [("sent", "email")]
                assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    finally:
        with tenant_context(alpha):
            Patient.objects.filter(display_name="Dispatch patient").delete()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()


@pytest.mark.django_db
def test_an_outbox_message_survives_a_broker_outage_and_the_relay_publishes_it(
    clinic_a: Clinic,
    alice_patient: Patient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks,
) -> None:
    from kombu.exceptions import OperationalError

    from clinicians import tasks as clinician_tasks

    published: list[dict[str, str]] = []

    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to redis")

    with tenant_context(clinic_a):
        report = Report.objects.create(
            kind=ReportKind.PATIENT_WEEKLY, patient=alice_patient, week_start=date(2026, 11, 16)
        )
        monkeypatch.setattr(clinician_tasks.report_generate, "apply_async", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            message = outbox_enqueue("clinicians.report_generate", report_id=str(report.pk))
        message.refresh_from_db()
        assert (message.sent_at, message.attempts, message.last_error) == (None, 1, "OperationalError")

        monkeypatch.setattr(
            clinician_tasks.report_generate, "apply_async", lambda kwargs, **_: published.append(kwargs)
        )
        assert outbox_relay() == 0  # younger than the grace period: the after-commit publish may still run
        assert outbox_relay(now=datetime.now(UTC) + timedelta(minutes=1)) == 1
        message.refresh_from_db()
        assert message.sent_at is not None
        assert outbox_relay(now=datetime.now(UTC) + timedelta(minutes=2)) == 0
    assert published == [{"report_id": str(report.pk)}]


@pytest.mark.slow
def test_a_lone_reminder_of_another_clinic_runs_before_a_busy_clinics_tenth_chunk(
    clinics: tuple[Clinic, Clinic], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The busy minute goes out in chunks (issue 19): clinic A's 36 reminders are 12 messages of
    3 deliveries, published before clinic B's one reminder; with a real worker, B's reminder is
    sent before A's 10th chunk starts."""
    from patients import reminders

    alpha, beta = clinics
    monkeypatch.setattr(reminders, "DELIVERY_CHUNK", 3)
    user = make_member(f"chunk-fair-{uuid.uuid4().hex[:8]}@example.com", beta, "patient")
    now = datetime.now(UTC).replace(microsecond=0)

    def due_now(patient: Patient) -> None:
        reminder, _ = reminder_save(
            patient=patient, kind="diary", local_time=now.astimezone(patient.tz).time()
        )
        Reminder.objects.filter(pk=reminder.pk).update(
            next_fire_at=now, next_local_date=patient.local_today()
        )

    try:
        with tenant_context(alpha):
            for i in range(36):
                due_now(PatientFactory(display_name=f"Chunk busy {i}", timezone="Europe/Berlin"))
        with tenant_context(beta):
            lone = PatientFactory(user_id=user.pk, display_name="Chunk lone", timezone="America/New_York")
            due_now(lone)
        celery_app.conf.task_always_eager = False
        try:  # the dispatch publishes after commit (committed_db): A's chunks first, then B's reminder
            with tenant_context(alpha):
                busy = reminders.reminders_dispatch_due(now=now + timedelta(seconds=1))
                chunks = [
                    set(row.kwargs["delivery_ids"])
                    for row in OutboxMessage.objects.filter(task_name=reminders.DELIVER_CHUNK_TASK)
                    if {"delivery_ids"} == set(row.kwargs)
                    and ReminderDelivery.objects.filter(
                        pk__in=row.kwargs["delivery_ids"], patient__display_name__startswith="Chunk busy"
                    ).exists()
                ]
            with tenant_context(beta):
                quiet = reminders.reminders_dispatch_due(now=now + timedelta(seconds=1))
        finally:
            celery_app.conf.task_always_eager = True
        assert (busy.queued, busy.messages, quiet.queued, quiet.messages) == (36, 12, 1, 1)
        assert sorted(len(chunk) for chunk in chunks) == [3] * 12
        with running_worker():
            with tenant_context(beta):
                assert wait_until(
                    lambda: ReminderDelivery.objects.filter(
                        patient=lone, status=DeliveryStatus.SENT
                    ).exists(),
                    120,
                )
                lone_sent = ReminderDelivery.objects.get(patient=lone).sent_at
            with tenant_context(alpha):
                assert wait_until(
                    lambda: (
                        not ReminderDelivery.objects.filter(
                            patient__display_name__startswith="Chunk busy", claimed_at__isnull=True
                        ).exists()
                    ),
                    120,
                )
                claimed = dict(
                    ReminderDelivery.objects.filter(
                        patient__display_name__startswith="Chunk busy"
                    ).values_list("pk", "claimed_at")
                )
        # Each chunk runs as one task: its start is its first claim; order the chunks by it.
        starts = sorted(min(claimed[uuid.UUID(i)] for i in chunk) for chunk in chunks)
        assert lone_sent < starts[9], "clinic B's reminder waited behind clinic A's chunks"
    finally:
        with tenant_context(alpha):
            Patient.objects.filter(display_name__startswith="Chunk busy").delete()
            OutboxMessage.objects.filter(task_name=reminders.DELIVER_CHUNK_TASK).delete()
        with tenant_context(beta):
            Patient.objects.filter(display_name="Chunk lone").delete()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()
        purge_queues(tenant_queue("clinic_alpha"), tenant_queue("clinic_beta"))
