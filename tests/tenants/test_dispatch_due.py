"""The per-minute dispatcher sends a scan only to clinics with something due: each clinic's
bound (public schema, no PHI: next_due_at and its hints) is lowered by every write that makes a
reminder due sooner, by inserting a hint, and recomputed after each scan, without ever losing a
reminder saved during the recompute and without writers of one clinic waiting for each other."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection, transaction
from django_tenants.utils import schema_context, tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, Role, User
from core.models import OutboxMessage
from patients import tasks as patient_tasks
from patients.due import (
    clinic_due_bound,
    clinic_due_reconcile_all,
    clinic_next_due_recompute,
    clinics_due,
    clinics_needing_reminder_dispatch,
    clinics_with_active_patients,
)
from patients.models import DeliveryStatus, Patient, PatientStatus, Reminder, ReminderDelivery
from patients.reminders import CLAIM_TIMEOUT, reminder_delete, reminder_save, reminders_dispatch_due
from patients.services import patient_profile_update
from tenants.models import Clinic, ClinicDue, ClinicDueHint
from tests.conftest import authed_client, make_member
from tests.factories import PatientFactory
from tests.waiting import wait_until
from tests.workers import database_url


def _due(clinic: Clinic) -> datetime | None:
    """The clinic's effective bound: the earlier of next_due_at and its writers' hints."""
    return clinic_due_bound(clinic.pk)


def _set_due(clinic: Clinic, at: datetime | None) -> None:
    ClinicDue.objects.update_or_create(clinic=clinic, defaults={"next_due_at": at})
    ClinicDueHint.objects.filter(clinic=clinic).delete()


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


@pytest.mark.django_db
def test_one_transaction_writing_many_reminders_leaves_one_hint_while_the_first_is_earliest(
    clinic_a: Clinic, alice_patient: Patient
) -> None:
    _set_due(clinic_a, None)
    now = datetime.now(UTC)
    with tenant_context(clinic_a), transaction.atomic():
        for hours in (2, 3, 4, 5):
            Reminder.objects.create(
                patient=alice_patient,
                kind="diary",
                local_time=time(8),
                next_fire_at=now + timedelta(hours=hours),
            )
        assert list(ClinicDueHint.objects.filter(clinic=clinic_a).values_list("at", flat=True)) == [
            now + timedelta(hours=2)
        ]
        Reminder.objects.create(  # earlier than the hint: a second one
            patient=alice_patient, kind="diary", local_time=time(8), next_fire_at=now + timedelta(hours=1)
        )
        try:
            with transaction.atomic():  # a hint rolled back with its savepoint is not relied on
                Reminder.objects.create(
                    patient=alice_patient,
                    kind="diary",
                    local_time=time(8),
                    next_fire_at=now + timedelta(minutes=30),
                )
                raise RuntimeError
        except RuntimeError:
            pass
        Reminder.objects.create(
            patient=alice_patient, kind="diary", local_time=time(8), next_fire_at=now + timedelta(minutes=40)
        )
    assert _due(clinic_a) == now + timedelta(minutes=40)
    assert ClinicDueHint.objects.filter(clinic=clinic_a).count() == 3


@pytest.mark.django_db
def test_the_dispatchers_due_query_is_one_statement_whatever_the_hints(
    clinic_a: Clinic, clinic_b: Clinic, django_assert_num_queries: Any
) -> None:
    now = datetime.now(UTC)
    _set_due(clinic_a, None)
    _set_due(clinic_b, now - timedelta(minutes=1))
    ClinicDueHint.objects.bulk_create(
        [ClinicDueHint(clinic=clinic_a, at=now - timedelta(seconds=s)) for s in range(50)]
        + [ClinicDueHint(clinic=clinic_b, at=now + timedelta(hours=1))]
    )
    with django_assert_num_queries(1):
        due = clinics_due(now=now)
    assert sorted(c.slug for c in due) == ["alpha", "beta"]
    _set_due(clinic_b, now + timedelta(hours=2))  # only a future hint left for beta
    ClinicDueHint.objects.create(clinic=clinic_b, at=now + timedelta(hours=1))
    with django_assert_num_queries(1):
        assert [c.slug for c in clinics_due(now=now)] == ["alpha"]


@pytest.mark.django_db
def test_the_reconcile_clears_the_hints_it_accounted_for_and_folds_those_of_clinics_not_scanned(
    clinic_a: Clinic, clinic_b: Clinic, alice_patient: Patient
) -> None:
    now = datetime.now(UTC)
    with tenant_context(clinic_a):
        reminder, _ = reminder_save(
            patient=alice_patient, kind="diary", local_time=_local(alice_patient, now + timedelta(hours=1))
        )
    assert ClinicDueHint.objects.filter(clinic=clinic_a).exists()
    _set_due(clinic_b, now + timedelta(days=2))
    ClinicDueHint.objects.create(clinic=clinic_b, at=now + timedelta(days=1))
    Clinic.objects.filter(pk=clinic_b.pk).update(status="offboarding")  # not scanned ...
    ClinicDueHint.objects.create(clinic_id=uuid.uuid4(), at=now)  # ... and a clinic deleted meanwhile
    clinic_due_reconcile_all(now=now)
    assert not ClinicDueHint.objects.exists()
    assert ClinicDue.objects.get(clinic=clinic_a).next_due_at == reminder.next_fire_at
    assert ClinicDue.objects.get(clinic=clinic_b).next_due_at == now + timedelta(days=1)  # kept, folded


# --- Two real connections: writers never wait; a reminder saved during a recompute is kept -------


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
        ClinicDueHint.objects.filter(clinic=clinic).delete()
        connection.set_schema_to_public()


@pytest.fixture
def committed_alice(committed_patient: tuple[Clinic, Patient]) -> Iterator[APIClient]:
    """Another patient of the same clinic, committed, with an API client."""
    clinic, _ = committed_patient
    user = make_member("alice.due@example.com", clinic, Role.PATIENT, "Alice Due")
    with tenant_context(clinic):
        patient = PatientFactory(user_id=user.pk, display_name="Alice Due", timezone="Europe/Berlin")
    try:
        yield authed_client(user, clinic)
    finally:
        with tenant_context(clinic):
            Patient.objects.filter(pk=patient.pk).delete()
        connection.set_schema_to_public()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()


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
def test_an_open_reminder_write_does_not_block_another_patients_reminder_post(
    committed_patient: tuple[Clinic, Patient], committed_alice: APIClient
) -> None:
    clinic, patient = committed_patient
    soon = datetime.now(UTC) + timedelta(hours=1)
    with _writer() as writer:
        _insert_reminder(writer, patient, soon)  # uncommitted: its hint row too
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a wait would fail the request, not hang
        try:
            created = committed_alice.post(
                "/api/v1/me/reminders/", {"kind": "diary", "local_time": "20:30"}, format="json"
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        assert created.status_code == 201, created.content
        writer.commit()
    with tenant_context(clinic):
        posted = Reminder.objects.get(pk=created.json()["id"]).next_fire_at
    assert posted is not None
    assert _due(clinic) == min(soon, posted)  # both hints are there


# Where the recompute is paused: before (1) its hint read, (2) its schedule read, (3) its write.
PAUSE_BEFORE = {
    "hint read": 'FROM "tenants_clinicduehint"',
    "schedule read": "min(next_fire_at)",
    "write": 'UPDATE "tenants_clinicdue"',
}


def _paused_recompute(
    clinic: Clinic, now: datetime, marker: str
) -> tuple[threading.Thread, Any, Any, list[Any]]:
    paused, release = threading.Event(), threading.Event()
    results: list[datetime | None] = []

    def pause(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if marker in sql and not paused.is_set():
            paused.set()
            release.wait(30)
        return execute(sql, params, many, context)

    def recompute() -> None:
        try:
            with tenant_context(clinic), connection.execute_wrapper(pause):
                results.append(clinic_next_due_recompute(now=now))
        finally:
            connection.close()

    thread = threading.Thread(target=recompute)
    thread.start()
    return thread, paused, release, results


@pytest.mark.slow
@pytest.mark.parametrize("step", list(PAUSE_BEFORE))
def test_a_reminder_saved_while_a_recompute_is_between_its_steps_is_never_lost(
    committed_patient: tuple[Clinic, Patient], step: str
) -> None:
    clinic, patient = committed_patient
    now = datetime.now(UTC).replace(microsecond=0)
    later, sooner = now + timedelta(hours=6), now - timedelta(minutes=1)  # sooner: due this minute
    with tenant_context(clinic):
        Reminder.objects.create(patient=patient, kind="diary", local_time=later.time(), next_fire_at=later)
        clinic_next_due_recompute(now=now)
    assert _due(clinic) == later
    assert clinic not in clinics_due(now=now)

    thread, paused, release, results = _paused_recompute(clinic, now, PAUSE_BEFORE[step])
    assert paused.wait(30)
    with _writer() as writer:
        _insert_reminder(writer, patient, sooner)
        writer.commit()  # never waits for the recompute (autocommit=False: a plain commit)
    release.set()
    thread.join(30)
    assert not thread.is_alive()
    # Before the schedule read the recompute saw the reminder; before its write it did not,
    # and the writer's hint, committed after the hint read, is still there.
    assert results == ([later] if step == "write" else [sooner])
    assert _due(clinic) == sooner
    assert clinic in clinics_due(now=now)  # the dispatcher's next minute scans it
    with tenant_context(clinic):
        assert clinic_next_due_recompute(now=now) == sooner  # and that scan's recompute keeps it
    assert not ClinicDueHint.objects.filter(clinic=clinic).exists()


@pytest.mark.slow
def test_two_recomputes_of_one_clinic_take_turns_and_a_reminder_saved_meanwhile_is_kept(
    committed_patient: tuple[Clinic, Patient],
) -> None:
    clinic, patient = committed_patient
    now = datetime.now(UTC).replace(microsecond=0)
    later, sooner = now + timedelta(hours=6), now + timedelta(hours=1)
    with tenant_context(clinic):
        Reminder.objects.create(patient=patient, kind="diary", local_time=later.time(), next_fire_at=later)
    first, paused, release, first_results = _paused_recompute(clinic, now, PAUSE_BEFORE["write"])
    assert paused.wait(30)  # holds the row, read its hints and the schedule (only `later`)
    with _writer() as writer, psycopg.connect(database_url(), autocommit=True) as probe:
        _insert_reminder(writer, patient, sooner)
        writer.commit()
        second, _, _, second_results = _paused_recompute(clinic, now, "no pause")
        assert wait_until(lambda: _waiting_on_a_lock(probe, "tenants_clinicdue"), 30), (
            "the second recompute did not wait for the first"
        )
        release.set()
        first.join(30)
        second.join(30)
    assert (first_results, second_results) == ([later], [sooner])
    assert ClinicDue.objects.get(clinic=clinic).next_due_at == sooner
    assert not ClinicDueHint.objects.filter(clinic=clinic).exists()
