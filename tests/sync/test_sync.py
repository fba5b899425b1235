"""Sync protocol: idempotent push, conflicts, gap-free ids, safe cursors, isolation, purge."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from patients.models import DiaryEntry, Patient, SyncConflict, SyncState
from patients.sync import tombstones_purge
from tenants.models import Clinic
from tests.conftest import authed_client, make_member
from tests.factories import PatientFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
HEADERS = {"HTTP_X_SCHEMA_VERSION": "1"}


def push(client: APIClient, client_id: uuid.UUID, mutations: list[dict], **extra: object):  # noqa: ANN201
    return client.post(
        "/api/v1/sync/push/",
        {"client_id": str(client_id), "mutations": mutations},
        format="json",
        **HEADERS,
        **extra,
    )


def pull_all(
    client: APIClient, cursor: str | None = None, limit: int = 1000, client_id: uuid.UUID | None = None
) -> tuple[dict, str, int]:
    merged: dict[str, dict[str, list]] = {}
    last = 0
    while True:
        params = {
            "limit": limit,
            **({"cursor": cursor} if cursor else {}),
            **({"client_id": str(client_id)} if client_id else {}),
        }
        response = client.get("/api/v1/sync/pull/", params, **HEADERS)
        assert response.status_code == 200, response.json()
        body = response.json()
        for table, change in body["changes"].items():
            merged.setdefault(table, {"upserted": [], "deleted": []})
            merged[table]["upserted"] += change["upserted"]
            merged[table]["deleted"] += change["deleted"]
        cursor, last = body["cursor"], body["last_mutation_id"]
        if not body["has_more"]:
            return merged, cursor, last


def diary(
    mutation_id: int,
    record_id: uuid.UUID,
    day: object,
    base: int | None = None,
    op: str = "upsert",
    **fields: object,
) -> dict:
    body = {
        "mutation_id": mutation_id,
        "table": "diary_entry",
        "id": str(record_id),
        "op": op,
        "base_version": base,
    }
    if op == "upsert":
        body["fields"] = {"day": str(day), **fields}
    return body


def test_push_applies_once_and_replays_answer_duplicate(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device, record = uuid.uuid4(), uuid.uuid4()
    today = alice_patient.local_today()
    batch = [diary(1, record, today, wheals=2, itch=1), diary(2, record, today, base=None, note="evening")]
    first = push(alice_client, device, batch)
    assert first.status_code == 200
    # The second edit builds on the first in the same batch: not a conflict with itself.
    assert [r["status"] for r in first.json()["results"]] == ["applied", "applied"]
    assert first.json()["last_mutation_id"] == 2
    again = push(alice_client, device, batch)  # the response was lost; the device sends it again
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert again.json()["results"][0]["original"]["status"] == "applied"
    with tenant_context(clinic_a):
        entry = DiaryEntry.objects.get(pk=record)
        assert (entry.wheals, entry.itch, entry.note) == (2, 1, "evening")
    _, _, last = pull_all(alice_client, client_id=device)
    assert last == 2  # a pull after a lost push response tells the device what was applied


def test_gap_is_409_and_nothing_is_applied(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device = uuid.uuid4()
    today = alice_patient.local_today()
    first = push(alice_client, device, [diary(1, uuid.uuid4(), today, wheals=1, itch=1)])
    assert first.status_code == 200
    response = push(alice_client, device, [diary(3, uuid.uuid4(), today, slot="am", wheals=1, itch=1)])
    assert (response.status_code, response.json()["code"], response.json()["expected"]) == (
        409,
        "mutation_gap",
        2,
    )
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.count() == 1


def test_an_unknown_client_past_its_first_mutation_must_reset(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    # The server has no record of this device, yet it numbers from 2: what it was acknowledged
    # is gone (a restore). A gap answer would never heal; a reset does.
    response = push(alice_client, uuid.uuid4(), [diary(2, uuid.uuid4(), alice_patient.local_today(), wheals=1)])
    assert (response.status_code, response.json()["code"]) == (409, "reset_required")
    assert response["Content-Type"].startswith("application/problem+json")
    with tenant_context(clinic_a):
        assert not DiaryEntry.objects.exists()


def test_a_bad_mutation_is_rejected_alone_and_still_counts(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device = uuid.uuid4()
    today = alice_patient.local_today()
    batch = [
        diary(1, uuid.uuid4(), today + timedelta(days=1), wheals=1, itch=1),  # future
        diary(2, uuid.uuid4(), today, wheals=9, itch=1),  # out of range
        diary(3, uuid.uuid4(), today, wheals=1, itch=1, mood="sad"),  # unknown field
        {
            "mutation_id": 4,
            "table": "prescription",
            "id": str(uuid.uuid4()),
            "op": "upsert",
            "fields": {"dose": "x"},
        },
        diary(5, uuid.uuid4(), today, wheals=1, itch=1),
    ]
    response = push(alice_client, device, batch)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "rejected", "applied"]
    assert [r["reason"]["code"] for r in results[:4]] == [
        "diary_future_date",
        "validation_error",
        "unknown_field",
        "server_owned",
    ]
    assert response.json()["last_mutation_id"] == 5
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.count() == 1


def test_batch_limits_and_schema_version(alice_client: APIClient, alice_patient: Patient) -> None:
    too_many = [diary(i, uuid.uuid4(), alice_patient.local_today(), wheals=1, itch=1) for i in range(1, 502)]
    assert push(alice_client, uuid.uuid4(), too_many).status_code == 413
    old = alice_client.post(
        "/api/v1/sync/push/",
        {"client_id": str(uuid.uuid4()), "mutations": []},
        format="json",
        HTTP_X_SCHEMA_VERSION="0",
    )
    assert (old.status_code, old.json()["code"], old.json()["min_schema_version"]) == (
        426,
        "upgrade_required",
        1,
    )
    assert alice_client.get("/api/v1/sync/pull/").status_code == 426


def test_two_devices_edit_different_fields_offline_and_both_survive(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    today = alice_patient.local_today()
    created = push(alice_client, phone, [diary(1, record, today, wheals=1, itch=1)]).json()["results"][0]
    base = created["server_version"]
    assert (
        push(alice_client, phone, [diary(2, record, today, base=base, wheals=3)]).json()["results"][0][
            "status"
        ]
        == "applied"
    )
    merged = push(alice_client, tablet, [diary(1, record, today, base=base, note="hives after run")]).json()[
        "results"
    ][0]
    assert merged["status"] == "merged" and merged["conflict_fields"] == []
    with tenant_context(clinic_a):
        entry = DiaryEntry.objects.get(pk=record)
        assert (entry.wheals, entry.note) == (3, "hives after run")
        assert not SyncConflict.objects.exists()


def test_same_field_last_arrival_wins_and_the_conflict_is_recorded_and_pulled(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    today = alice_patient.local_today()
    base = push(alice_client, phone, [diary(1, record, today, wheals=1, itch=1)]).json()["results"][0][
        "server_version"
    ]
    push(alice_client, phone, [diary(2, record, today, base=base, itch=2)])
    result = push(alice_client, tablet, [diary(1, record, today, base=base, itch=3)]).json()["results"][0]
    assert (result["status"], result["conflict_fields"], result["record"]["itch"]) == ("merged", ["itch"], 3)
    with tenant_context(clinic_a):
        conflict = SyncConflict.objects.get()
        assert (conflict.fields, conflict.client_value, conflict.server_value) == (
            ["itch"],
            {"itch": 3},
            {"itch": 2},
        )
    changes, _, _ = pull_all(alice_client)
    assert [c["fields"] for c in changes["sync_conflict"]["upserted"]] == [["itch"]]


def test_delete_wins_over_a_concurrent_edit(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    today = alice_patient.local_today()
    base = push(alice_client, phone, [diary(1, record, today, wheals=1, itch=1)]).json()["results"][0][
        "server_version"
    ]
    assert (
        push(alice_client, phone, [diary(2, record, today, base=base, op="delete")]).json()["results"][0][
            "status"
        ]
        == "applied"
    )
    edit = push(alice_client, tablet, [diary(1, record, today, base=base, wheals=3)]).json()["results"][0]
    assert (edit["status"], edit["reason"]["code"], edit["record"]["deleted"]) == (
        "conflict",
        "deleted",
        True,
    )
    changes, _, _ = pull_all(alice_client)
    assert changes["diary_entry"]["deleted"] == [str(record)]


def test_pull_pages_cover_everything_once_in_version_order(
    alice_client: APIClient, alice_patient: Patient
) -> None:
    device = uuid.uuid4()
    today = alice_patient.local_today()
    push(
        alice_client,
        device,
        [diary(i + 1, uuid.uuid4(), today - timedelta(days=i), wheals=1, itch=0) for i in range(7)],
    )
    full, cursor, _ = pull_all(alice_client)
    paged, _, _ = pull_all(alice_client, limit=2)
    ids = [r["id"] for r in paged["diary_entry"]["upserted"]]
    assert (
        sorted(ids) == sorted(r["id"] for r in full["diary_entry"]["upserted"])
        and len(ids) == len(set(ids)) == 7
    )
    versions = [r["server_version"] for r in paged["diary_entry"]["upserted"]]
    assert versions == sorted(versions)
    nothing, _, _ = pull_all(alice_client, cursor=cursor)
    assert nothing == {}


def test_pull_is_limited_to_the_callers_records_and_cursors_to_their_clinic(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic, clinic_b: Clinic
) -> None:
    dave_client = authed_client(dave, clinic_a)
    with tenant_context(clinic_a):
        dave_today = Patient.objects.get(user_id=dave.pk).local_today()
    dave_entry = uuid.uuid4()
    push(dave_client, uuid.uuid4(), [diary(1, dave_entry, dave_today, slot="am", wheals=3, itch=3)])
    changes, cursor, _ = pull_all(alice_client)
    assert set(changes) == {"patient_settings"}
    assert [r["id"] for r in changes["patient_settings"]["upserted"]] == [str(alice_patient.pk)]
    # Mallory's clinic: the same person can't carry a cursor across clinics.
    zoe = make_member("zoe@example.com", clinic_b, "patient")
    with tenant_context(clinic_b):
        PatientFactory(user_id=zoe.pk, display_name="Zoe", timezone="UTC")
    connection.set_schema_to_public()
    zoe_client = authed_client(zoe, clinic_b)
    # A cursor the server cannot read sends the device to a full download (issue 21): it is
    # never accepted, and never a 400 that would leave the device stuck with it.
    foreign = zoe_client.get("/api/v1/sync/pull/", {"cursor": cursor}, **HEADERS)
    assert (foreign.status_code, foreign.json()["code"]) == (409, "reset_required")
    tampered = alice_client.get("/api/v1/sync/pull/", {"cursor": cursor[:-2] + "xx"}, **HEADERS)
    assert (tampered.status_code, tampered.json()["code"]) == (409, "reset_required")
    # Guessing another patient's record id reaches nothing: rejected, and the record is intact.
    hijack = push(
        alice_client, uuid.uuid4(), [diary(1, dave_entry, alice_patient.local_today(), base=1, wheals=0)]
    )
    assert hijack.status_code == 200
    result = hijack.json()["results"][0]
    assert (result["status"], result["reason"]["code"]) == ("rejected", "not_found")
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.get(pk=dave_entry).wheals == 3


def test_a_client_id_belongs_to_one_patient(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    device = uuid.uuid4()
    push(alice_client, device, [diary(1, uuid.uuid4(), alice_patient.local_today(), wheals=1, itch=1)])
    response = push(authed_client(dave, clinic_a), device, [])
    assert (response.status_code, response.json()["code"]) == (403, "client_not_yours")


def test_purged_tombstones_force_a_full_resync(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device, record = uuid.uuid4(), uuid.uuid4()
    today = alice_patient.local_today()
    push(alice_client, device, [diary(1, record, today, wheals=1, itch=1)])
    _, old_cursor, _ = pull_all(alice_client)
    push(alice_client, device, [diary(2, record, today, op="delete")])
    with tenant_context(clinic_a):
        assert tombstones_purge(now=timezone.now() + timedelta(days=91)) == 1
        assert SyncState.objects.get().min_cursor > 0
    stale = alice_client.get("/api/v1/sync/pull/", {"cursor": old_cursor}, **HEADERS)
    assert (stale.status_code, stale.json()["code"]) == (409, "reset_required")
    fresh, _, _ = pull_all(alice_client)
    assert "diary_entry" not in fresh


def test_every_write_path_is_versioned_even_raw_sql(alice_patient: Patient, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a), connection.cursor() as cursor:
        # The test runs inside one transaction; forget its version as a new transaction would.
        cursor.execute("SELECT set_config('csu.sync_v_' || md5('clinic_alpha'), '', true)")
        cursor.execute("SELECT version FROM patients_syncstate")
        (before,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at, "
            "created_at, updated_at, server_version, field_versions) VALUES (%s, %s, current_date, 'day', 1, 1, false, '', now(), "
            "now(), now(), 0, '{}') RETURNING server_version, field_versions",
            [uuid.uuid4(), alice_patient.pk],
        )
        pending, pending_fields = cursor.fetchone()
        pending_fields = json.loads(pending_fields)
        # The row is pending (no version, no lock) until its transaction commits or stamps.
        cursor.execute("SELECT -txid_current()")
        assert (pending, pending_fields["wheals"]) == (cursor.fetchone()[0],) * 2
        cursor.execute("SELECT sync_stamp_pending('clinic_alpha', true)")
        cursor.execute(
            "SELECT server_version, field_versions FROM patients_diaryentry WHERE server_version > %s",
            [before],
        )
        version, field_versions = cursor.fetchone()
    assert version == before + 1
    assert json.loads(field_versions)["wheals"] == before + 1


def test_a_pulled_prescription_names_its_medication(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """The app shows a prescription's name offline, also after it ended (no other view has it)."""
    from patients.models import Medication

    with tenant_context(clinic_a):
        rx = PrescriptionFactory(
            patient=alice_patient,
            medication_id="cetirizine-10",
            start=alice_patient.local_today() - timedelta(days=30),
            end=alice_patient.local_today() - timedelta(days=1),
        )
        name = Medication.objects.get(code="cetirizine-10").name
    changes, _, _ = pull_all(alice_client)
    (record,) = [r for r in changes["prescription"]["upserted"] if r["id"] == str(rx.pk)]
    assert record["medication"] == "cetirizine-10"
    assert record["medication_name"] == name
