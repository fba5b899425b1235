"""Issue 15 with real connections and real commits: a REST delete racing a push never deadlocks,
one patient's push never waits for another's batch, and the clinic's versions stay gap-free
and in commit order although the version lock is taken only at commit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
from patients.models import Patient
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.factories import PatientFactory
from tests.sync.test_concurrency import _raw_connection
from tests.sync.test_sync import HEADERS, diary, pull_all
from tests.waiting import wait_for_lock_wait

INSERT = (
    "INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at, "
    "created_at, updated_at, server_version, field_versions) VALUES (%s, %s, current_date - %s, 'day', 1, 1, false, '', "
    "now(), now(), now(), 0, '{}')"
)


@dataclass
class Person:
    user: User
    patient: Patient
    client: APIClient


@pytest.fixture
def people(committed_db: None) -> Iterator[list[Person]]:
    """Two committed patients of alpha (UTC), removed afterwards."""
    clinic = Clinic.objects.get(slug="alpha")
    made: list[Person] = []
    for name in ("ann", "ben"):
        user = User.objects.create_user(
            f"{name}-{uuid.uuid4().hex[:6]}@example.com", "a long race passphrase"
        )
        Membership.objects.create(user=user, clinic=clinic, role="patient")
        with tenant_context(clinic):
            patient = PatientFactory(user_id=user.pk, display_name=name.title(), timezone="UTC")
        connection.set_schema_to_public()
        made.append(Person(user, patient, authed_client(user, clinic)))
    try:
        yield made
    finally:
        with tenant_context(clinic):
            Patient.objects.filter(pk__in=[p.patient.pk for p in made]).delete()
        connection.set_schema_to_public()
        for person in made:
            Membership.objects.filter(user=person.user).delete()
            User.objects.filter(pk=person.user.pk).delete()


def _threads(*targets: object) -> None:
    threads = [threading.Thread(target=t) for t in targets]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def _closing(fn: object) -> object:
    def run() -> None:
        try:
            fn()  # type: ignore[operator]
        finally:
            connection.close()

    return run


def test_a_rest_delete_racing_a_push_of_the_same_day_never_deadlocks(people: list[Person]) -> None:
    ann = people[0]
    today = ann.patient.local_today()
    statuses: list[int] = []
    for _ in range(8):
        device, next_id, record = uuid.uuid4(), 1, uuid.uuid4()
        created = ann.client.post(
            "/api/v1/sync/push/",
            {"client_id": str(device), "mutations": [diary(next_id, record, today, wheals=1, itch=1)]},
            format="json",
            **HEADERS,
        )
        assert created.json()["results"][0]["status"] == "applied"
        base = created.json()["results"][0]["server_version"]
        barrier = threading.Barrier(2)
        edit = [diary(next_id + 1, record, today, base=base, wheals=3)] + [
            diary(next_id + 2 + k, uuid.uuid4(), today - timedelta(days=k + 1), wheals=1, itch=1)
            for k in range(5)
        ]

        def rest_delete(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            statuses.append(ann.client.delete(f"/api/v1/me/diary/{today}/").status_code)

        def sync_edit(
            barrier: threading.Barrier = barrier, edit: list = edit, device: uuid.UUID = device
        ) -> None:
            barrier.wait()
            response = ann.client.post(
                "/api/v1/sync/push/", {"client_id": str(device), "mutations": edit}, format="json", **HEADERS
            )
            statuses.append(response.status_code)

        _threads(_closing(rest_delete), _closing(sync_edit))
        # The push's other days: delete them so the next round starts from the same state.
        with tenant_context(Clinic.objects.get(slug="alpha")):
            from patients.models import DiaryEntry

            DiaryEntry.objects.filter(patient=ann.patient).delete()
        connection.set_schema_to_public()
    assert 500 not in statuses and len(statuses) == 16, statuses


def test_one_patients_open_batch_does_not_hold_up_another_patients_push(people: list[Person]) -> None:
    ann, ben = people
    clinic = Clinic.objects.get(slug="alpha")
    slow = _raw_connection(clinic.schema_name)
    try:
        # Ann's device is half-way through a batch: written, not committed.
        slow.execute(INSERT, [uuid.uuid4(), ann.patient.pk, 0])
        done: dict[str, float] = {}

        def ben_pushes() -> None:
            began = time.perf_counter()
            response = ben.client.post(
                "/api/v1/sync/push/",
                {
                    "client_id": str(uuid.uuid4()),
                    "mutations": [diary(1, uuid.uuid4(), ben.patient.local_today(), wheals=2, itch=2)],
                },
                format="json",
                **HEADERS,
            )
            assert response.status_code == 200
            done["seconds"] = time.perf_counter() - began

        thread = threading.Thread(target=_closing(ben_pushes))
        thread.start()
        thread.join(timeout=3)
        assert "seconds" in done, "Ben's push waited for Ann's open batch (the clinic lock held for a batch)"
        slow.commit()
    finally:
        slow.rollback()
        slow.close()
        thread.join(timeout=30)


def test_versions_stay_in_commit_order_when_taken_at_commit(people: list[Person]) -> None:
    """The hazard of reference/sync-protocol.md §2.1 under the new design: a transaction that has
    stamped (version taken) but not committed holds back every later commit, so a pull can never
    pass a version that will still appear; a writer that commits first gets the smaller version."""
    ann = people[0]
    clinic = Clinic.objects.get(slug="alpha")
    _, cursor, _ = pull_all(ann.client)
    early, late, stamper = (_raw_connection(clinic.schema_name) for _ in range(3))
    try:
        early.execute(INSERT, [uuid.uuid4(), ann.patient.pk, 1])  # writes first, commits last
        late.execute(INSERT, [uuid.uuid4(), ann.patient.pk, 2])
        late.commit()  # no lock held by `early` yet: nothing waits
        v_late = late.execute(
            "SELECT server_version FROM patients_diaryentry WHERE patient_id = %s AND day = current_date - 2",
            [ann.patient.pk],
        ).fetchone()[0]
        stamper.execute(INSERT, [uuid.uuid4(), ann.patient.pk, 3])
        v_stamper = stamper.execute("SELECT sync_stamp_pending(%s)", [clinic.schema_name]).fetchone()[0]
        assert v_stamper == v_late + 1  # version taken, not committed: the lock is held
        committed: dict[str, bool] = {}

        def early_commits() -> None:
            early.commit()  # the deferred stamp waits for the stamper's lock
            committed["early"] = True

        thread = threading.Thread(target=early_commits)
        thread.start()
        assert wait_for_lock_wait(early.info.backend_pid), "the early commit never waited on a lock"
        assert "early" not in committed
        between, cursor_between, _ = pull_all(ann.client, cursor=cursor)
        assert [r["server_version"] for r in between["diary_entry"]["upserted"]] == [v_late]
        stamper.commit()
        thread.join(timeout=10)
        assert committed == {"early": True}
        after, _, _ = pull_all(ann.client, cursor=cursor_between)
        assert [r["server_version"] for r in after["diary_entry"]["upserted"]] == [v_stamper, v_stamper + 1]
    finally:
        for conn in (early, late, stamper):
            conn.rollback()
            conn.close()
