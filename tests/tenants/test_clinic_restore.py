"""`clinic_backup` and `clinic_restore` with syncing devices (issue 21).

Alice has two phones (A, B) that write before the backup, after it, and after the restore; Ben
enrols after the backup. The restore swaps in the backup in one transaction, keeps the replaced
schema as restore_old_<slug> with a listing of what was written after the backup, starts a new
sync epoch (every device resets and re-pushes what it still had queued as a new client), and
reports and repairs the public rows left out of step. Real commits: pg_dump only sees those.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, Role, User
from patients.models import DiaryEntry, Enrollment, Patient, SyncState
from tenants import restore as restore_module
from tenants.models import Clinic
from tenants.services import clinic_create, clinic_delete
from tenants.snapshot import schema_catalog
from tests.conftest import authed_client, make_member
from tests.factories import PatientFactory
from tests.sync.test_sync import diary, pull_all, push
from tests.waiting import wait_for_lock_wait, wait_until
from tests.workers import database_url


@pytest.fixture
def resto(committed_db: None) -> Iterator[Clinic]:
    slug = "resto-" + uuid.uuid4().hex[:6]
    clinic = clinic_create(slug=slug, name="Restore Clinic", timezone="UTC")
    yield clinic
    connection.set_schema_to_public()
    old = restore_module.restore_old_schema_name(clinic)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{old}" CASCADE')
        cursor.execute(f'DROP SCHEMA IF EXISTS "{restore_module.restore_side_schema_name(clinic)}" CASCADE')
    users = list(Membership.objects.filter(clinic=clinic).values_list("user_id", flat=True))
    Membership.objects.filter(clinic=clinic).delete()
    clinic_delete(clinic=Clinic.objects.get(pk=clinic.pk))
    User.objects.filter(pk__in=users).delete()


class Recorder:
    """Every answer the devices got: nothing may be a 5xx."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    def push(self, client: APIClient, device: uuid.UUID, mutations: list[dict[str, Any]]) -> Any:
        response = push(client, device, mutations)
        self.statuses.append(response.status_code)
        return response

    def pull(self, client: APIClient, **params: Any) -> Any:
        response = client.get("/api/v1/sync/pull/", params, HTTP_X_SCHEMA_VERSION="1")
        self.statuses.append(response.status_code)
        return response


def _patient(clinic: Clinic, user: User, name: str) -> Patient:
    """A patient record for `user`, consenting to the clinic's privacy notice where the clinic
    asks for it (issue 22) so that their devices may write."""
    with tenant_context(clinic):
        patient = PatientFactory(user_id=user.pk, display_name=name, timezone="UTC")
        try:
            from patients import consent
        except ImportError:
            return patient
        with transaction.atomic():
            version = consent.privacy_notice_current().version
            consent.consent_accept(patient=patient, version=version, actor_id=user.pk)
        return patient


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _days(clinic: Clinic, patient_id: uuid.UUID, schema: str | None = None) -> dict[str, int]:
    with tenant_context(clinic):
        if schema is None:
            return {
                str(e.day): e.wheals
                for e in DiaryEntry.objects.filter(patient_id=patient_id, deleted_at=None)
            }
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT day, wheals FROM "{schema}".patients_diaryentry WHERE patient_id = %s',  # noqa: S608
                [patient_id],
            )
            return {str(day): wheals for day, wheals in cursor.fetchall()}


def test_restore_with_devices_before_after_and_after_the_restore(resto: Clinic, tmp_path: Path) -> None:
    net = Recorder()
    alice = make_member(f"alice-{resto.slug}@example.com", resto, Role.PATIENT)
    alice_patient = _patient(resto, alice, "Alice")
    alice_api = authed_client(alice, resto)
    today = alice_patient.local_today()
    day = {n: today - timedelta(days=n) for n in range(7)}
    phone_a, phone_b = uuid.uuid4(), uuid.uuid4()
    r3, r2, r4, r1, r0, r5 = (uuid.uuid4() for _ in range(6))

    # Before the backup: A records days 3 and 2, B day 4.
    assert (
        net.push(
            alice_api,
            phone_a,
            [diary(1, r3, day[3], wheals=1, itch=1), diary(2, r2, day[2], wheals=1, itch=1)],
        ).status_code
        == 200
    )
    assert net.push(alice_api, phone_b, [diary(1, r4, day[4], wheals=1, itch=1)]).status_code == 200
    dump = tmp_path / "resto.dump"
    assert "Dumped" in _run("clinic_backup", resto.slug, "--to", str(dump))
    with tenant_context(resto):
        backup_version = SyncState.objects.get().version

    # After the backup: A records day 1 (acknowledged), B raises day 4 to 3 (acknowledged), and
    # Ben enrols and records today. A's cursor is past the backup.
    assert (
        net.push(alice_api, phone_a, [diary(3, r1, day[1], wheals=2, itch=2)]).json()["results"][0]["status"]
        == "applied"
    )
    assert net.push(alice_api, phone_b, [diary(2, r4, day[4], base=1, wheals=3)]).status_code == 200
    _, cursor_a, _ = pull_all(alice_api, client_id=phone_a)
    ben = make_member(f"ben-{resto.slug}@example.com", resto, Role.PATIENT)
    ben_patient = _patient(resto, ben, "Ben")
    with tenant_context(resto):
        Enrollment.objects.create(
            patient=ben_patient,
            code_hash=uuid.uuid4().hex,
            code_encrypted="-",
            created_by_id=alice.pk,
            expires_at=timezone.now() + timedelta(days=1),
            redeemed_at=timezone.now(),
            redeemed_by_id=ben.pk,
        )
    ben_api = authed_client(ben, resto)
    phone_c = uuid.uuid4()
    assert net.push(ben_api, phone_c, [diary(1, uuid.uuid4(), today, wheals=2, itch=0)]).status_code == 200
    with tenant_context(resto):
        old_version, old_epoch = SyncState.objects.values_list("version", "epoch").get()
    connection.set_schema_to_public()  # the catalog's qualified names depend on the search path
    before_catalog = schema_catalog(resto.schema_name)

    # The restore, without --repair: reported, nothing repaired.
    out = _run("clinic_restore", resto.slug, "--from", str(dump))
    old_schema = restore_module.restore_old_schema_name(resto)
    assert f"kept as {old_schema}" in out
    assert "[membership_without_patient] patient membership" in out and f"(user {ben.pk})" in out
    assert "(not repaired)" in out
    assert "[seats] 1 active patients (billed seats) in the restored schema, 2 before the restore" in out
    # Written after the backup: A's day 1, B's edit of day 4, Ben's entry; Ben's patient row.
    assert "  patients_diaryentry: 3\n" in out
    assert "  patients_patient: 1\n" in out
    assert "  patients_enrollment: 1\n" in out
    assert schema_exists(old_schema) and schema_exists(resto.schema_name)
    connection.set_schema_to_public()
    assert schema_catalog(resto.schema_name) == before_catalog
    assert schema_catalog(old_schema) == before_catalog
    assert _days(resto, alice_patient.pk) == {str(day[3]): 1, str(day[2]): 1, str(day[4]): 1}
    assert _days(resto, alice_patient.pk, old_schema) == {
        str(day[3]): 1,
        str(day[2]): 1,
        str(day[4]): 3,
        str(day[1]): 2,
    }
    with tenant_context(resto):
        state = SyncState.objects.get()
        # A new epoch, and the counter continues past both histories: no version is reused.
        assert state.epoch != old_epoch
        assert state.version == max(old_version, backup_version) >= backup_version
    gone = ben_api.get("/api/v1/me/profile/")  # no patient row until repaired
    assert (gone.status_code, gone.json()["code"]) == (404, "no_patient_record"), gone.json()

    # --report --repair: Ben's account link comes back from the old schema.
    repaired = _run("clinic_restore", resto.slug, "--report", "--repair")
    assert "(repaired)" in repaired and "account link carried over" in repaired, repaired
    me = ben_api.get("/api/v1/me/profile/")
    assert me.status_code == 200, me.json()
    with tenant_context(resto):
        assert Enrollment.objects.get(patient_id=ben_patient.pk).redeemed_by_id == ben.pk
    assert "Public rows: all match the restored schema." in _run("clinic_restore", resto.slug, "--report")

    # After the restore. A had queued day 0 (never sent) and its cursor is post-backup.
    stale = net.pull(alice_api, cursor=cursor_a, client_id=str(phone_a))
    assert (stale.status_code, stale.json()["code"]) == (409, "reset_required")
    queued_a = [diary(4, r0, day[0], wheals=0, itch=1)]
    refused = net.push(alice_api, phone_a, queued_a)
    assert (refused.status_code, refused.json()["code"]) == (409, "reset_required")  # never mutation_gap
    # B: its next mutation is a new day 5; Ben's phone is unknown to the restored schema.
    refused_b = net.push(alice_api, phone_b, [diary(3, r5, day[5], wheals=2, itch=2)])
    assert (refused_b.status_code, refused_b.json()["code"]) == (409, "reset_required")
    refused_c = net.push(ben_api, phone_c, [diary(2, uuid.uuid4(), day[1], wheals=1, itch=1)])
    assert (refused_c.status_code, refused_c.json()["code"]) == (409, "reset_required")

    # Each resets: a new client id, its queued writes renumbered from 1, then a full download.
    new_a, new_b, new_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert [
        r["status"] for r in net.push(alice_api, new_a, [{**queued_a[0], "mutation_id": 1}]).json()["results"]
    ] == ["applied"]
    assert [
        r["status"]
        for r in net.push(alice_api, new_b, [diary(1, r5, day[5], wheals=2, itch=2)]).json()["results"]
    ] == ["applied"]
    assert net.push(ben_api, new_c, [diary(1, uuid.uuid4(), day[1], wheals=1, itch=1)]).status_code == 200
    expected_alice = {str(day[3]): 1, str(day[2]): 1, str(day[4]): 1, str(day[0]): 0, str(day[5]): 2}
    assert _days(resto, alice_patient.pk) == expected_alice
    for api, device in ((alice_api, new_a), (alice_api, new_b)):
        changes, _, _ = pull_all(api, client_id=device)
        pulled = {r["day"]: r["wheals"] for r in changes["diary_entry"]["upserted"]}
        assert pulled == expected_alice
    ben_changes, _, _ = pull_all(ben_api, client_id=new_c)
    assert {r["day"] for r in ben_changes["diary_entry"]["upserted"]} == {str(day[1])}
    with tenant_context(resto):
        assert (
            min(DiaryEntry.objects.filter(day=day[0]).values_list("server_version", flat=True)) > old_version
        )
    assert all(status < 500 for status in net.statuses), net.statuses


def test_a_second_restore_waits_for_the_old_schema_to_be_reconciled(resto: Clinic, tmp_path: Path) -> None:
    dump = tmp_path / "resto.dump"
    _run("clinic_backup", resto.slug, "--to", str(dump))
    _run("clinic_restore", resto.slug, "--from", str(dump))
    with pytest.raises(CommandError, match="exists from an earlier restore"):
        _run("clinic_restore", resto.slug, "--from", str(dump))


def test_restore_from_the_nightly_dump_of_the_whole_database(resto: Clinic, tmp_path: Path) -> None:
    # `pg_restore -n` leaves out the CREATE SCHEMA (issue 21: the old runbook restored nothing).
    alice = make_member(f"alice-{resto.slug}@example.com", resto, Role.PATIENT)
    patient = _patient(resto, alice, "Alice")
    api, device = authed_client(alice, resto), uuid.uuid4()
    assert (
        push(api, device, [diary(1, uuid.uuid4(), patient.local_today(), wheals=2, itch=1)]).status_code
        == 200
    )
    whole = tmp_path / "nightly.dump"
    args, _ = restore_module._connection_args()
    restore_module._run("pg_dump", ["--format=custom", f"--file={whole}", *args])
    push(api, device, [diary(2, uuid.uuid4(), patient.local_today() - timedelta(days=1), wheals=3, itch=3)])
    out = _run("clinic_restore", resto.slug, "--from", str(whole))
    assert "  patients_diaryentry: 1\n" in out
    assert list(_days(resto, patient.pk).values()) == [2]
    assert Clinic.objects.filter(slug="alpha").exists() and schema_exists("clinic_alpha")


def test_a_dump_of_another_clinic_or_a_broken_one_changes_nothing(
    resto: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant_context(resto):
        epoch = SyncState.objects.get().epoch
    other = tmp_path / "alpha.dump"
    _run("clinic_backup", "alpha", "--to", str(other))
    with pytest.raises(CommandError, match="does not hold the schema"):
        _run("clinic_restore", resto.slug, "--from", str(other))
    truncated = tmp_path / "truncated.dump"
    _run("clinic_backup", resto.slug, "--to", str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(CommandError, match="unchanged"):
        _run("clinic_restore", resto.slug, "--from", str(truncated))
    # A statement failing halfway through the replay: ON_ERROR_STOP in one transaction.
    good = tmp_path / "good.dump"
    _run("clinic_backup", resto.slug, "--to", str(good))
    real_sql = restore_module.restore_sql

    def failing(**kwargs: Any) -> str:
        script = real_sql(**kwargs)
        return script.replace("\nCOPY ", "\nSELECT 1 / 0;\nCOPY ", 1)

    monkeypatch.setattr(restore_module, "restore_sql", failing)
    with pytest.raises(CommandError, match="division by zero"):
        _run("clinic_restore", resto.slug, "--from", str(good))
    assert not schema_exists(restore_module.restore_side_schema_name(resto))
    assert not schema_exists(restore_module.restore_old_schema_name(resto))
    with tenant_context(resto):
        assert SyncState.objects.get().epoch == epoch


def test_restore_sql_renames_the_schema_but_never_the_rows() -> None:
    sections = {
        "pre-data": "CREATE SCHEMA clinic_x;\nCREATE TABLE clinic_x.t (id uuid, note text);\n",
        "data": "COPY clinic_x.t (id, note) FROM stdin;\n1\tsee clinic_x.t here\n\\.\n"
        "SELECT pg_catalog.setval('clinic_x.s', 1, true);\n",
        "post-data": "CREATE INDEX i ON clinic_x.t USING btree (id);\n",
    }
    script = restore_module.restore_sql(sections=sections, schema="clinic_x", side="restore_new_x")
    assert "CREATE SCHEMA restore_new_x;" in script
    assert "COPY restore_new_x.t (id, note) FROM stdin;\n1\tsee clinic_x.t here\n\\." in script
    assert "setval('restore_new_x.s'" in script
    assert "ON restore_new_x.t USING" in script
    assert "clinic_xy" not in restore_module.restore_sql(
        sections={"pre-data": "CREATE SCHEMA clinic_xy;", "data": "", "post-data": ""},
        schema="clinic_x",
        side="restore_new_x",
    ).replace("CREATE SCHEMA clinic_xy;", "")


def test_a_patient_membership_with_no_patient_anywhere_is_removed_on_repair(
    resto: Clinic, tmp_path: Path
) -> None:
    dump = tmp_path / "resto.dump"
    _run("clinic_backup", resto.slug, "--to", str(dump))
    ghost = make_member(f"ghost-{resto.slug}@example.com", resto, Role.PATIENT)
    out = _run("clinic_restore", resto.slug, "--from", str(dump), "--repair")
    assert "links no patient row in either schema: membership removed" in out
    assert not Membership.objects.filter(user=ghost, clinic=resto).exists()
    assert "Public rows: all match the restored schema." in _run("clinic_restore", resto.slug, "--report")


def test_each_transaction_runs_wholly_in_the_old_schema_or_in_the_restored_one(
    resto: Clinic, tmp_path: Path
) -> None:
    import psycopg

    dump = tmp_path / "resto.dump"
    _run("clinic_backup", resto.slug, "--to", str(dump))
    insert = "INSERT INTO patients_enrollmentfailure (created_at) VALUES (now())"

    def session() -> psycopg.Connection:
        conn = psycopg.connect(database_url())
        conn.execute(f'SET search_path = "{resto.schema_name}", public')
        conn.commit()
        return conn

    before = session()
    during = session()
    try:
        # Before: a transaction that has used the schema and is still open.
        before.execute(insert)
        outcome: dict[str, object] = {}

        def restore() -> None:
            try:
                outcome["out"] = _run("clinic_restore", resto.slug, "--from", str(dump))
            except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
                outcome["error"] = exc
            finally:
                connection.close()

        worker = threading.Thread(target=restore)
        worker.start()
        with psycopg.connect(database_url(), autocommit=True) as watcher:
            waiting_swap = wait_until(
                lambda: watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%%'"
                ).fetchone(),
                timeout=60,
            )
        assert waiting_swap, "the swap never waited for the open transaction"
        before.execute(insert)  # the open transaction goes on: still in the schema it started in
        # During: a statement that arrives while the swap waits, and waits behind it.
        arrived: dict[str, object] = {}

        def late_write() -> None:
            during.execute(insert)
            during.execute("SELECT current_schemas(false)")
            during.commit()
            arrived["done"] = True

        late = threading.Thread(target=late_write)
        late.start()
        assert wait_for_lock_wait(during.info.backend_pid)
        before.commit()
        worker.join(timeout=60)
        late.join(timeout=60)
        assert "error" not in outcome, outcome
        assert arrived == {"done": True}
        old = restore_module.restore_old_schema_name(resto)
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{old}".patients_enrollmentfailure')
            assert cursor.fetchone()[0] == 2  # the open transaction, wholly in the old schema
            cursor.execute(f'SELECT count(*) FROM "{resto.schema_name}".patients_enrollmentfailure')
            assert cursor.fetchone()[0] == 1  # the waiting one ran in the restored schema
    finally:
        before.close()
        during.close()


def test_what_was_sent_after_the_backup_is_not_sent_again(resto: Clinic, tmp_path: Path) -> None:
    from datetime import time

    from core.models import OutboxMessage
    from patients.models import Reminder, ReminderDelivery

    alice = make_member(f"alice-{resto.slug}@example.com", resto, Role.PATIENT)
    patient = _patient(resto, alice, "Alice")
    with tenant_context(resto):
        reminder = Reminder.objects.create(patient=patient, kind="diary", local_time=time(20, 0))
        message = OutboxMessage.objects.create(task_name="patients.reminder_deliver_chunk", kwargs={})
    dump = tmp_path / "resto.dump"
    _run("clinic_backup", resto.slug, "--to", str(dump))
    with tenant_context(resto):
        OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now())
        delivery = ReminderDelivery.objects.create(
            reminder=reminder,
            patient=patient,
            local_date=patient.local_today(),
            scheduled_for=timezone.now(),
            status="sent",
        )
    _run("clinic_restore", resto.slug, "--from", str(dump))
    with tenant_context(resto):
        assert OutboxMessage.objects.get(pk=message.pk).sent_at is not None
        assert ReminderDelivery.objects.get(pk=delivery.pk).status == "sent"


def test_codes_redeemed_after_the_backup_are_reported_and_closed_on_repair(
    resto: Clinic, tmp_path: Path
) -> None:
    with tenant_context(resto):
        carol_record = PatientFactory(user_id=None, display_name="Carol", timezone="UTC")
        dana_record = PatientFactory(user_id=None, display_name="Dana", timezone="UTC")
        codes = {
            record.pk: Enrollment.objects.create(
                patient=record,
                code_hash=uuid.uuid4().hex,
                code_encrypted="-",
                created_by_id=uuid.uuid4(),
                expires_at=timezone.now() + timedelta(days=7),
            )
            for record in (carol_record, dana_record)
        }
    dump = tmp_path / "resto.dump"
    _run("clinic_backup", resto.slug, "--to", str(dump))
    # After the backup both redeem their codes; Dana's membership is then deactivated.
    carol = make_member(f"carol-{resto.slug}@example.com", resto, Role.PATIENT)
    dana = make_member(f"dana-{resto.slug}@example.com", resto, Role.PATIENT)
    Membership.objects.filter(user=dana).update(is_active=False)
    with tenant_context(resto):
        for record, user in ((carol_record, carol), (dana_record, dana)):
            Patient.objects.filter(pk=record.pk).update(user_id=user.pk)
            Enrollment.objects.filter(pk=codes[record.pk].pk).update(
                redeemed_at=timezone.now(), redeemed_by_id=user.pk
            )
    out = _run("clinic_restore", resto.slug, "--from", str(dump))
    assert (
        f"[enrollment_reopened] enrollment {codes[carol_record.pk].pk} was redeemed after the backup" in out
    )
    assert f"[enrollment_reopened] enrollment {codes[dana_record.pk].pk} was redeemed after the backup" in out
    assert f"(user {carol.pk}) has no patient row; the replaced schema has it" in out
    repaired = _run("clinic_restore", resto.slug, "--report", "--repair")
    assert (
        f"enrollment {codes[dana_record.pk].pk} was redeemed after the backup (by user {dana.pk}) and is open again: revoked"
        in repaired
    )
    with tenant_context(resto):
        carol_code = Enrollment.objects.get(pk=codes[carol_record.pk].pk)
        assert (carol_code.redeemed_by_id, carol_code.revoked_at) == (carol.pk, None)  # carried over
        assert Patient.objects.get(pk=carol_record.pk).user_id == carol.pk
        assert Enrollment.objects.get(pk=codes[dana_record.pk].pk).revoked_at is not None
        assert Patient.objects.get(pk=dana_record.pk).user_id is None
    again = _run("clinic_restore", resto.slug, "--report")
    assert "enrollment_reopened" not in again and "membership_without_patient" not in again
