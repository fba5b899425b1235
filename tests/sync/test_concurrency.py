"""The out-of-order-commit hazard (reference/sync-protocol.md §2.1), with real connections and
real commits: a writer that takes its version first but commits last is never skipped."""

from __future__ import annotations

import threading
import uuid

import psycopg
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import Patient
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.factories import PatientFactory
from tests.sync.test_sync import pull_all
from tests.waiting import wait_for_lock_wait


def _raw_connection(schema: str) -> psycopg.Connection:
    db = connection.settings_dict
    conn = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=False,
    )
    conn.execute(f'SET search_path = "{schema}", public')
    return conn


def test_a_transaction_that_takes_its_version_first_but_commits_last_is_never_skipped(
    committed_db: None,
) -> None:
    clinic = Clinic.objects.get(slug="alpha")
    user = User.objects.create_user(f"race-{uuid.uuid4().hex[:6]}@example.com", "a long race passphrase")
    from accounts.models import Membership

    Membership.objects.create(user=user, clinic=clinic, role="patient")
    with tenant_context(clinic):
        patient = PatientFactory(user_id=user.pk, display_name="Race", timezone="UTC")
    connection.set_schema_to_public()
    client = authed_client(user, clinic)
    try:
        _, cursor, _ = pull_all(client)
        first, second = _raw_connection(clinic.schema_name), _raw_connection(clinic.schema_name)
        insert = (
            "INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at, "
            "created_at, updated_at, server_version, field_versions) VALUES (%s, %s, current_date - %s, 'day', 1, 1, false, '', "
            "now(), now(), now(), 0, '{}')"
        )
        first.execute(insert, [uuid.uuid4(), patient.pk, 1])
        # The version is taken just before commit (migration 0012): here, and its lock held.
        v1 = first.execute("SELECT sync_stamp_pending(%s)", [clinic.schema_name]).fetchone()[0]
        done: dict[str, int] = {}

        def second_writer() -> None:
            second.execute(insert, [uuid.uuid4(), patient.pk, 2])
            second.commit()  # stamps at commit: waits for the first one's version lock
            done["v2"] = second.execute(
                "SELECT server_version FROM patients_diaryentry WHERE patient_id = %s AND day = current_date - 2",
                [patient.pk],
            ).fetchone()[0]

        thread = threading.Thread(target=second_writer)
        thread.start()
        assert wait_for_lock_wait(second.info.backend_pid), "the second writer never waited on a lock"
        assert "v2" not in done  # the second writer waits for the first one's version lock
        between, cursor_between, _ = pull_all(client, cursor=cursor)
        assert between == {}  # nothing committed yet, and the cursor does not move past v1
        first.commit()
        thread.join(timeout=10)
        assert done["v2"] == v1 + 1
        after, _, _ = pull_all(client, cursor=cursor_between)
        assert sorted(r["server_version"] for r in after["diary_entry"]["upserted"]) == [v1, done["v2"]]
        first.close()
        second.close()
    finally:
        with tenant_context(clinic):
            Patient.objects.filter(pk=patient.pk).delete()
        connection.set_schema_to_public()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()
