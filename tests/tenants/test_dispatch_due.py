"""The per-minute dispatcher sends a scan only to clinics with something due: each clinic's
next_due_at (public schema, no PHI) is lowered by every write that makes a reminder due sooner
and recomputed after each scan, without ever losing a reminder saved during the recompute."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection, transaction
from django_tenants.utils import schema_context, tenant_context

from core.models import OutboxMessage
from patients import tasks as patient_tasks
from patients.due import (
    clinic_due_reconcile_all,
    clinic_next_due_recompute,
    clinics_needing_reminder_dispatch,
    clinics_with_active_patients,
)
from patients.models import DeliveryStatus, Patient, PatientStatus, Reminder, ReminderDelivery
from patients.reminders import CLAIM_TIMEOUT, reminder_delete, reminder_save, reminders_dispatch_due
from patients.services import patient_profile_update
from tenants.models import Clinic, ClinicDue
from tests.factories import PatientFactory
from tests.waiting import wait_until
from tests.workers import database_url


def _due(clinic: Clinic) -> datetime | None:
    row = ClinicDue.objects.filter(clinic=clinic).first()
    return None if row is None else row.next_due_at


def _set_due(clinic: Clinic, at: datetime | None) -> None:
    ClinicDue.objects.update_or_create(clinic=clinic, defaults={"next_due_at": at})


def _local(patient: Patient, at: datetime) -> time:
    return at.astimezone(patient.tz).time().replace(second=0, microsecond=0)


@pytest.fixture
def sent_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The schemas the dispatcher sent a `reminders_dispatch` to (not run)."""
    sent: list[str] = []
    monkeypatch.setattr(
        patient_tasks.reminders_dispatch, "apply_async", lambda *a, **kw: sent.append(connection.schema_name)
    )
    return sent


@pytest.mark.django_db
def test_a_new_reminder_lowers_the_clinics_next_due_and_a_later_one_or_a_delete_does_not_raise_it(
    clinic_a: Clinic, alice_patient: Patient
) -> None:
    _set_due(clinic_a, None)
    soon = datetime.now(UTC) + timedelta(hours=2)
    with tenant_context(clinic_a):
        first, _ = reminder_save(patient=alice_patient, kind="diary", local_time=_local(alice_patient, soon))
        assert _due(clinic_a) == first.next_fire_at
        reminder_save(
            patient=alice_patient, kind="diary", local_time=_local(alice_patient, soon + timedelta(hours=3))
        )
        assert _due(clinic_a) == first.next_fire_at
        reminder_delete(patient=alice_patient, reminder_id=first.pk)
        assert _due(clinic_a) == first.next_fire_at  # early is safe: the next scan recomputes it


@pytest.mark.django_db
def test_a_bulk_or_raw_update_and_a_time_zone_move_that_bring_a_reminder_forward_lower_it(
    clinic_a: Clinic, alice_patient: Patient
) -> None:
    now = datetime.now(UTC)
    with tenant_context(clinic_a):
        reminder, _ = reminder_save(
            patient=alice_patient, kind="diary", local_time=_local(alice_patient, now + timedelta(hours=5))
        )
        _set_due(clinic_a, reminder.next_fire_at)
        Reminder.objects.filter(pk=reminder.pk).update(next_fire_at=now - timedelta(minutes=3))
        assert _due(clinic_a) == now - timedelta(minutes=3)

        _set_due(clinic_a, None)
        reminder.refresh_from_db()
        reminder.next_fire_at = None
        Reminder.objects.bulk_update([reminder], ["next_fire_at"])
        assert _due(clinic_a) is None
        # A wall time an hour from now in New York is 19 hours away in Berlin ...
        new_york_wall = (now + timedelta(hours=1)).astimezone(ZoneInfo("America/New_York")).time()
        reminder_save(
            patient=alice_patient,
            reminder_id=reminder.pk,
            kind="diary",
            local_time=new_york_wall.replace(second=0, microsecond=0),
        )
        berlin_due = Reminder.objects.get(pk=reminder.pk).next_fire_at
        assert berlin_due is not None
        _set_due(clinic_a, berlin_due)
        # ... so moving the patient to New York brings it 18 hours forward.
        patient_profile_update(patient=alice_patient, timezone="America/New_York")
        new_york_due = Reminder.objects.get(pk=reminder.pk).next_fire_at
        assert new_york_due is not None and new_york_due < berlin_due
        assert _due(clinic_a) == new_york_due


@pytest.mark.django_db
def test_the_dispatcher_sends_a_scan_only_to_clinics_with_something_due(
    clinic_a: Clinic, clinic_b: Clinic, alice_patient: Patient, sent_scans: list[str]
) -> None:
    now = datetime.now(UTC)
    _set_due(clinic_a, now - timedelta(seconds=5))
    _set_due(clinic_b, now + timedelta(hours=1))
    with schema_context("public"):
        assert patient_tasks.dispatch_due_reminders() == 1
    assert sent_scans == ["clinic_alpha"]

    _set_due(clinic_a, None)
    sent_scans.clear()
    with schema_context("public"):
        assert patient_tasks.dispatch_due_reminders() == 0
    assert sent_scans == []


@pytest.mark.django_db
def test_a_clinic_with_an_outbox_row_left_unsent_gets_its_scan_though_nothing_is_due(
    clinic_a: Clinic, clinic_b: Clinic
) -> None:
    _set_due(clinic_a, None)
    _set_due(clinic_b, None)
    with tenant_context(clinic_b):
        OutboxMessage.objects.create(task_name="patients.reminder_deliver", kwargs={"delivery_id": "x"})
    now = datetime.now(UTC)
    assert clinics_needing_reminder_dispatch(now=now) == []  # the after-commit publish may still run
    later = now + timedelta(minutes=1)
    assert [c.slug for c in clinics_needing_reminder_dispatch(now=later)] == ["beta"]


@pytest.mark.django_db
def test_after_a_scan_next_due_is_the_next_occurrence_or_a_claim_timeout_while_a_delivery_is_open(
    clinic_a: Clinic, alice_patient: Patient
) -> None:
    now = datetime.now(UTC)
    with tenant_context(clinic_a):
        reminder, _ = reminder_save(
            patient=alice_patient, kind="diary", local_time=_local(alice_patient, now - timedelta(minutes=2))
        )
        Reminder.objects.filter(pk=reminder.pk).update(
            next_fire_at=now - timedelta(minutes=2), next_local_date=alice_patient.local_today()
        )
        result = reminders_dispatch_due(now=now)
        assert (result.due, result.queued) == (1, 1)
        delivery = ReminderDelivery.objects.get(reminder=reminder)
        assert delivery.status == DeliveryStatus.PENDING
        # A pending delivery may be claimed any moment: the sweep must look again within a timeout.
        assert clinic_next_due_recompute(now=now) == now + CLAIM_TIMEOUT
        ReminderDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENT)
        reminder.refresh_from_db()
        assert clinic_next_due_recompute(now=now) == reminder.next_fire_at
        assert _due(clinic_a) == reminder.next_fire_at
        assert reminder.next_fire_at is not None and reminder.next_fire_at > now + timedelta(hours=23)


@pytest.mark.django_db
def test_the_hourly_reconcile_repairs_a_bound_set_too_late(clinic_a: Clinic, alice_patient: Patient) -> None:
    now = datetime.now(UTC)
    with tenant_context(clinic_a):
        reminder, _ = reminder_save(
            patient=alice_patient, kind="diary", local_time=_local(alice_patient, now + timedelta(hours=1))
        )
    _set_due(clinic_a, now + timedelta(days=3))  # as if a path no trigger sees had moved it
    assert clinic_due_reconcile_all(now=now) >= 2
    assert _due(clinic_a) == reminder.next_fire_at


@pytest.mark.django_db
def test_daily_alerts_go_only_to_clinics_with_an_active_patient(clinic_a: Clinic, clinic_b: Clinic) -> None:
    with tenant_context(clinic_a):
        PatientFactory(status=PatientStatus.ACTIVE)
    with tenant_context(clinic_b):
        PatientFactory(status=PatientStatus.PAUSED)
    assert [c.slug for c in clinics_with_active_patients([clinic_a, clinic_b])] == ["alpha"]


# --- Two real connections: a reminder saved while the dispatcher recomputes ---------------------


@pytest.fixture
def committed_patient(committed_db: None) -> Iterator[tuple[Clinic, Patient]]:
    clinic = Clinic.objects.get(slug="alpha")
    with tenant_context(clinic):
        patient = PatientFactory(display_name="Due race patient", timezone="UTC")
    try:
        yield clinic, patient
    finally:
        with tenant_context(clinic):
            Patient.objects.filter(pk=patient.pk).delete()
        ClinicDue.objects.filter(clinic=clinic).delete()
        connection.set_schema_to_public()


def _writer() -> psycopg.Connection:
    writer = psycopg.connect(database_url(), autocommit=False)
    writer.execute("SET search_path TO clinic_alpha, public")
    return writer


def _insert_reminder(writer: psycopg.Connection, patient: Patient, at: datetime) -> None:
    writer.execute(
        "INSERT INTO patients_reminder (id, patient_id, kind, local_time, days_of_week, enabled, "
        "created_at, updated_at, server_version, field_versions, next_fire_at, next_local_date) "
        "VALUES (%s, %s, 'diary', %s, '{1,2,3,4,5,6,7}', true, now(), now(), 0, '{}', %s, %s)",
        [uuid.uuid4(), patient.pk, at.time(), at, at.date()],
    )


def _waiting_on_a_lock(probe: psycopg.Connection, table: str) -> bool:
    row = probe.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE %s",
        [f"%{table}%"],
    ).fetchone()
    return row is not None and row[0] > 0


@pytest.mark.slow
def test_a_reminder_saved_before_the_recompute_commits_is_waited_for(
    committed_patient: tuple[Clinic, Patient],
) -> None:
    clinic, patient = committed_patient
    now = datetime.now(UTC).replace(microsecond=0)
    later, sooner = now + timedelta(hours=6), now + timedelta(hours=1)
    with tenant_context(clinic):
        Reminder.objects.create(patient=patient, kind="diary", local_time=later.time(), next_fire_at=later)
    results: list[datetime | None] = []
    with _writer() as writer, psycopg.connect(database_url(), autocommit=True) as probe:
        _insert_reminder(writer, patient, sooner)  # the trigger now holds the public row's lock

        def recompute() -> None:
            try:
                with tenant_context(clinic):
                    results.append(clinic_next_due_recompute(now=now))
            finally:
                connection.close()

        thread = threading.Thread(target=recompute)
        thread.start()
        assert wait_until(lambda: _waiting_on_a_lock(probe, "tenants_clinicdue"), 30), (
            "the recompute did not wait for the writer"
        )
        writer.commit()
        thread.join(30)
    assert results == [sooner]
    assert _due(clinic) == sooner


@pytest.mark.slow
def test_a_reminder_saved_while_the_recompute_holds_the_row_lowers_it_again_after(
    committed_patient: tuple[Clinic, Patient],
) -> None:
    clinic, patient = committed_patient
    now = datetime.now(UTC).replace(microsecond=0)
    later, sooner = now + timedelta(hours=6), now + timedelta(hours=1)
    with tenant_context(clinic):
        Reminder.objects.create(patient=patient, kind="diary", local_time=later.time(), next_fire_at=later)
    locked, release = threading.Event(), threading.Event()
    results: list[datetime | None] = []

    def recompute() -> None:
        try:
            with tenant_context(clinic), transaction.atomic():
                results.append(clinic_next_due_recompute(now=now))  # read: only `later` is committed
                locked.set()
                release.wait(30)  # still holding the row when the writer's trigger asks for it
        finally:
            connection.close()

    thread = threading.Thread(target=recompute)
    thread.start()
    assert locked.wait(30)
    with _writer() as writer, psycopg.connect(database_url(), autocommit=True) as probe:
        blocked = threading.Thread(
            target=lambda: (_insert_reminder(writer, patient, sooner), writer.commit())
        )
        blocked.start()
        assert wait_until(lambda: _waiting_on_a_lock(probe, "patients_reminder"), 30), (
            "the writer did not wait for the recompute"
        )
        release.set()
        thread.join(30)
        blocked.join(30)
    assert results == [later]  # the recompute could not see the uncommitted reminder ...
    assert _due(clinic) == sooner  # ... and the writer's LEAST, applied after it, kept it
