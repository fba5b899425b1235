"""Issue 15: sync under adversity. A poisoned outbox, a pull that acknowledges more than it
brings, a merged id forgotten, reminders that resurrect, writes acknowledged but ignored, an
angioedema answer dropped, a purged tombstone brought back, a readable cursor."""

from __future__ import annotations

import base64
import importlib
import json
import uuid
from datetime import time, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from patients import sync
from patients.models import (
    DiaryEntry,
    Patient,
    QuestionnaireResponse,
    Reminder,
    SyncConflict,
    SyncMutationResult,
)
from patients.sync import tombstones_purge
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.factories import PrescriptionFactory, QuestionnaireResponseFactory
from tests.sync.test_sync import HEADERS, diary, pull_all, push

pytestmark = pytest.mark.django_db


def result(response: object) -> dict:
    assert response.status_code == 200, response.json()  # type: ignore[attr-defined]
    return response.json()["results"][0]  # type: ignore[attr-defined]


# --- 1. A poisoned outbox ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutation",
    [
        {"table": "diary_entry", "fields": {"wheals": 1, "itch": 1, "mood\x00": 1}},
        {"table": "diary_entry", "fields": {"wheals": 1, "itch": 1, "note": "itchy\x00"}},
        {"table": "reminder", "fields": {"kind": "diary", "local_time": "09:00", "x\x00": True}},
        {"table": "reminder", "fields": {"kind": "diary\x00", "local_time": "09:00"}},
        {"table": "questionnaire_response", "fields": {"instrument": "uct\x00", "answers": {"items": [1]}}},
        {"table": "questionnaire_response", "fields": {"instrument": "uct", "answers": {"items\x00": [1]}}},
    ],
)
def test_nul_anywhere_in_a_mutation_rejects_it_alone_and_the_queue_moves_on(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic, mutation: dict
) -> None:
    today = alice_patient.local_today()
    device = uuid.uuid4()
    if mutation["table"] == "diary_entry":
        mutation["fields"]["day"] = str(today)
    bad = {"mutation_id": 1, "id": str(uuid.uuid4()), "op": "upsert", **mutation}
    response = push(
        alice_client, device, [bad, diary(2, uuid.uuid4(), today - timedelta(days=1), wheals=2, itch=2)]
    )
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "applied"]
    assert "\x00" not in json.dumps(response.json())
    # The stored answer replays (a lost response), and the device's next push goes through.
    again = push(alice_client, device, [bad])
    assert again.json()["results"][0]["original"]["status"] == "rejected"
    later = push(alice_client, device, [diary(3, uuid.uuid4(), today - timedelta(days=2), wheals=1, itch=1)])
    assert result(later)["status"] == "applied"


def test_any_failure_of_one_mutation_is_rejected_never_a_500(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = alice_patient.local_today()

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in one record's path")

    monkeypatch.setattr(sync.apply, "_apply_reminder", broken)
    reminder = {
        "mutation_id": 1,
        "table": "reminder",
        "id": str(uuid.uuid4()),
        "op": "upsert",
        "fields": {"kind": "diary", "local_time": "09:00"},
    }
    response = push(alice_client, uuid.uuid4(), [reminder, diary(2, uuid.uuid4(), today, wheals=1, itch=1)])
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "applied"]
    assert response.json()["results"][0]["reason"]["code"] == "invalid_value"


# --- 3. last_mutation_id in the pull's snapshot ------------------------------------------------


def test_a_paged_pull_never_acknowledges_a_push_whose_rows_it_will_not_bring(
    alice_client: APIClient, alice_patient: Patient
) -> None:
    today = alice_patient.local_today()
    device = uuid.uuid4()
    push(
        alice_client,
        device,
        [diary(1, uuid.uuid4(), today - timedelta(days=d), wheals=1, itch=1) for d in range(3)][:1],
    )
    push(alice_client, device, [diary(2, uuid.uuid4(), today - timedelta(days=1), wheals=1, itch=1)])
    first = alice_client.get("/api/v1/sync/pull/", {"limit": 1, "client_id": str(device)}, **HEADERS).json()
    assert (first["has_more"], first["last_mutation_id"]) == (True, 2)
    late = uuid.uuid4()
    push(alice_client, device, [diary(3, late, today - timedelta(days=2), wheals=3, itch=3)])
    rows, pages, cursor = [], [first], first["cursor"]
    while pages[-1]["has_more"]:
        page = alice_client.get(
            "/api/v1/sync/pull/", {"limit": 1, "client_id": str(device), "cursor": cursor}, **HEADERS
        ).json()
        pages.append(page)
        cursor = page["cursor"]
        rows += page["changes"].get("diary_entry", {}).get("upserted", [])
    assert str(late) not in [r["id"] for r in rows]
    assert [p["last_mutation_id"] for p in pages] == [2] * len(pages)  # not 3: its row is not here
    nxt = alice_client.get(
        "/api/v1/sync/pull/", {"client_id": str(device), "cursor": cursor}, **HEADERS
    ).json()
    assert (nxt["last_mutation_id"], [r["id"] for r in nxt["changes"]["diary_entry"]["upserted"]]) == (
        3,
        [str(late)],
    )


# --- 4. A natural-key merge keeps the losing id ------------------------------------------------


def test_a_merged_id_keeps_reaching_the_winner_for_edits_and_deletes(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    phone, tablet, x, y = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    push(alice_client, phone, [diary(1, x, today, wheals=1, itch=1)])
    batch = [
        diary(1, y, today, wheals=2, itch=2),
        {
            "mutation_id": 2,
            "table": "diary_entry",
            "id": str(y),
            "op": "upsert",
            "base_version": None,
            "fields": {"note": "later"},
        },
    ]
    results = push(alice_client, tablet, batch).json()["results"]
    assert [(r["status"], r.get("record_id")) for r in results] == [("merged", str(x)), ("merged", str(x))]
    with tenant_context(clinic_a):
        entry = DiaryEntry.objects.get(pk=x)
        assert (entry.wheals, entry.itch, entry.note) == (2, 2, "later")
    deleted = result(push(alice_client, tablet, [diary(3, y, today, op="delete")]))
    assert (deleted["status"], deleted["record_id"]) == ("applied", str(x))
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.get(pk=x).deleted_at is not None


# --- 5. Reminders: field merge, delete wins ----------------------------------------------------


def reminder(
    mutation_id: int, record: uuid.UUID, base: int | None = None, op: str = "upsert", **fields: object
) -> dict:
    body = {
        "mutation_id": mutation_id,
        "table": "reminder",
        "id": str(record),
        "op": op,
        "base_version": base,
    }
    if op == "upsert":
        body["fields"] = fields
    return body


def test_a_stale_reminder_upsert_after_a_delete_does_not_resurrect_it(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    made = result(
        push(
            alice_client, phone, [reminder(1, record, kind="diary", local_time="21:00", days_of_week=[1, 3])]
        )
    )
    push(alice_client, phone, [reminder(2, record, op="delete")])
    stale = result(
        push(
            alice_client,
            tablet,
            [reminder(1, record, base=made["server_version"], kind="diary", local_time="08:00")],
        )
    )
    assert (stale["status"], stale["reason"]["code"], stale["record"]["deleted"]) == (
        "conflict",
        "deleted",
        True,
    )
    with tenant_context(clinic_a):
        gone = Reminder.objects.get(pk=record)
        assert (gone.deleted_at is not None, gone.local_time, gone.days_of_week) == (
            True,
            time(21, 0),
            [1, 3],
        )


def test_a_partial_reminder_patch_keeps_the_other_fields_and_a_clash_is_recorded(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    made = result(
        push(
            alice_client, phone, [reminder(1, record, kind="diary", local_time="21:00", days_of_week=[1, 3])]
        )
    )
    paused = result(
        push(alice_client, phone, [reminder(2, record, base=made["server_version"], enabled=False)])
    )
    assert paused["status"] == "applied"
    moved = result(
        push(
            alice_client,
            tablet,
            [reminder(1, record, base=made["server_version"], enabled=True, local_time="07:30")],
        )
    )
    assert (moved["status"], moved["conflict_fields"]) == ("merged", ["enabled"])
    with tenant_context(clinic_a):
        saved = Reminder.objects.get(pk=record)
        assert (saved.kind, saved.local_time, saved.days_of_week, saved.enabled) == (
            "diary",
            time(7, 30),
            [1, 3],
            True,
        )
        conflict = SyncConflict.objects.get(table_name="reminder")
        assert (conflict.fields, conflict.client_value, conflict.server_value) == (
            ["enabled"],
            {"enabled": True},
            {"enabled": False},
        )


def test_a_version_another_device_wrote_stays_theirs_when_answered_back_to_this_one(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """A result can carry a version this device did not write (a delete-wins conflict names the
    deleter's). One push's version covers every row it wrote, so the other device's diary edit in
    that same push must still be a conflict for this device's stale edit, not its own write."""
    phone, tablet = uuid.uuid4(), uuid.uuid4()
    entry, alarm = uuid.uuid4(), uuid.uuid4()
    today = timezone.localdate()
    made = push(
        alice_client,
        phone,
        [
            diary(1, entry, today, wheals=1, itch=1),
            reminder(2, alarm, kind="diary", local_time="21:00"),
        ],
    ).json()["results"]
    base_entry, base_alarm = made[0]["server_version"], made[1]["server_version"]
    # The phone deletes the reminder and changes the day in one push: one version for both.
    changed = push(
        alice_client,
        phone,
        [reminder(3, alarm, op="delete"), diary(4, entry, today, base=base_entry, wheals=3)],
    ).json()["results"]
    assert changed[0]["server_version"] == changed[1]["server_version"]
    # The tablet, offline since the first push, edits the reminder: the delete wins, and its
    # answer carries the phone's version.
    lost = result(push(alice_client, tablet, [reminder(1, alarm, base=base_alarm, local_time="08:00")]))
    assert (lost["status"], lost["server_version"]) == ("conflict", changed[0]["server_version"])
    # Then its stale edit of the day: the phone's wheals are another writer's, so it merges.
    stale = result(push(alice_client, tablet, [diary(2, entry, today, base=base_entry, wheals=2)]))
    assert (stale["status"], stale["conflict_fields"]) == ("merged", ["wheals"])
    with tenant_context(clinic_a):
        conflict = SyncConflict.objects.get(table_name="diary_entry")
        assert (conflict.client_value, conflict.server_value) == ({"wheals": 2}, {"wheals": 3})


def test_results_stored_before_written_version_count_as_written_when_applied_or_merged(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """Migration 0020's backfill: an older applied or merged result's version stays this
    device's own (as it was), a conflict's or a rejection's never becomes it."""
    migration = importlib.import_module("patients.migrations.0020_sync_result_written_version")
    phone, tablet, entry, alarm = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    today = timezone.localdate()
    push(
        alice_client,
        phone,
        [
            diary(1, entry, today, wheals=1, itch=1),
            reminder(2, alarm, kind="diary", local_time="21:00"),
            reminder(3, alarm, op="delete"),
        ],
    )
    push(alice_client, tablet, [reminder(1, alarm, local_time="08:00"), diary(2, entry, today, wheals=9)])
    with tenant_context(clinic_a):
        rows = SyncMutationResult.objects.order_by(
            "client__client_id" if phone < tablet else "-client__client_id", "mutation_id"
        )
        before = [(r.result["status"], r.written_version is not None) for r in rows]
        assert before == [
            ("applied", True),
            ("applied", True),
            ("applied", True),
            ("conflict", False),
            ("rejected", False),
        ]
        rows.update(written_version=None)
        with connection.cursor() as cursor:
            cursor.execute(migration.BACKFILL)
        assert [(r.result["status"], r.written_version is not None) for r in rows] == before
        assert all(r.written_version == r.result["server_version"] for r in rows if r.written_version)


def test_a_cursor_is_the_patients_own_another_patient_presenting_it_downloads_everything(
    alice_client: APIClient, alice_patient: Patient, dave: object, clinic_a: Clinic
) -> None:
    """A shared browser: a second tab put the first patient's cursor back after sign-out wiped
    it (found by review). The next patient's pull from it would start at the first one's
    position and never bring their own older records: it must reset instead."""
    today = timezone.localdate()
    push(alice_client, uuid.uuid4(), [diary(1, uuid.uuid4(), today, wheals=1, itch=1)])
    _, alices_cursor, _ = pull_all(alice_client)
    daves = authed_client(dave, clinic_a)  # type: ignore[arg-type]
    with tenant_context(clinic_a):
        dave_patient = Patient.objects.get(user_id=dave.pk)  # type: ignore[attr-defined]
        DiaryEntry.objects.create(patient=dave_patient, day=today, slot="am", wheals=2, itch=2)
    refused = daves.get("/api/v1/sync/pull/", {"cursor": alices_cursor}, **HEADERS)
    assert (refused.status_code, refused.json()["code"]) == (409, "reset_required")
    changes, _, _ = pull_all(daves)
    assert [e["wheals"] for e in changes["diary_entry"]["upserted"]] == [2]
    # Her own cursor still serves her.
    assert alice_client.get("/api/v1/sync/pull/", {"cursor": alices_cursor}, **HEADERS).status_code == 200


# --- 6. Never acknowledge an ignored write -----------------------------------------------------


def test_a_questionnaire_re_upsert_applies_its_edit(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device, record = uuid.uuid4(), uuid.uuid4()
    first = {
        "mutation_id": 1,
        "table": "questionnaire_response",
        "id": str(record),
        "op": "upsert",
        "fields": {"instrument": "uct", "answers": {"items": [1, 1, 1, 1]}},
    }
    assert result(push(alice_client, device, [first]))["status"] == "applied"
    edit = {**first, "mutation_id": 2, "fields": {"answers": {"items": [4, 4, 4, 4]}}}
    assert result(push(alice_client, device, [edit]))["status"] == "applied"
    with tenant_context(clinic_a):
        response = QuestionnaireResponse.objects.get(pk=record)
        assert (response.answers, response.score) == ({"items": [4, 4, 4, 4]}, 16)


def test_a_dose_re_upsert_that_changes_it_is_rejected_as_immutable(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    with tenant_context(clinic_a):
        # Once a day (the catalogue row says four times), as this test has always prescribed it.
        rx = PrescriptionFactory(
            patient=alice_patient,
            medication_id="cetirizine-10-x4",
            frequency_value=1,
            start=today - timedelta(days=10),
        )
    device, record = uuid.uuid4(), uuid.uuid4()
    dose = {
        "mutation_id": 1,
        "table": "dose_log",
        "id": str(record),
        "op": "upsert",
        "fields": {"prescription": str(rx.pk), "date": str(today), "status": "taken"},
    }
    assert result(push(alice_client, device, [dose]))["status"] == "applied"
    same = result(push(alice_client, device, [{**dose, "mutation_id": 2}]))
    assert same["status"] == "applied"  # nothing to change: the record is as asked
    skipped = result(
        push(
            alice_client,
            device,
            [{**dose, "mutation_id": 3, "fields": {**dose["fields"], "status": "skipped"}}],
        )
    )
    assert (skipped["status"], skipped["reason"]["code"]) == ("rejected", "immutable")


def test_deleting_another_patients_questionnaire_is_not_found(
    alice_client: APIClient, alice_patient: Patient, dave: object, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        daves = Patient.objects.exclude(pk=alice_patient.pk).get()
        theirs = QuestionnaireResponseFactory(
            patient=daves,
            instrument="uct",
            answers={"items": [1, 1, 1, 1]},
            score=4,
            period_end=daves.local_today(),
        )
    mutation = {"mutation_id": 1, "table": "questionnaire_response", "id": str(theirs.pk), "op": "delete"}
    answer = result(push(alice_client, uuid.uuid4(), [mutation]))
    assert (answer["status"], answer["reason"]["code"]) == ("rejected", "not_found")
    with tenant_context(clinic_a):
        assert QuestionnaireResponse.objects.get(pk=theirs.pk).deleted_at is None


# --- 7. Angioedema answers merge as one consistent record --------------------------------------


def test_stale_swelling_answers_after_another_device_said_no_angioedema_win_consistently(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    made = result(
        push(
            alice_client,
            phone,
            [diary(1, record, today, wheals=1, itch=1, angioedema=True, aas_items=[1, 1, 1, 1, 1])],
        )
    )
    push(
        alice_client,
        phone,
        [diary(2, record, today, base=made["server_version"], angioedema=False, aas_items=None)],
    )
    stale = result(
        push(
            alice_client,
            tablet,
            [diary(1, record, today, base=made["server_version"], aas_items=[2, 2, 2, 2, 2])],
        )
    )
    assert (stale["status"], stale["conflict_fields"]) == ("merged", ["aas_items", "angioedema"])
    assert (stale["record"]["angioedema"], stale["record"]["aas_items"]) == (True, [2, 2, 2, 2, 2])
    with tenant_context(clinic_a):
        entry = DiaryEntry.objects.get(pk=record)
        assert (entry.angioedema, entry.aas_items) == (True, [2, 2, 2, 2, 2])
        conflict = SyncConflict.objects.get()
        assert (conflict.client_value, conflict.server_value) == (
            {"aas_items": [2, 2, 2, 2, 2], "angioedema": True},
            {"aas_items": None, "angioedema": False},
        )


# --- 8. A purged tombstone stays deleted -------------------------------------------------------


@pytest.mark.parametrize("fields", [{"wheals": 3, "itch": 3}, {"note": "still itchy"}])
def test_a_stale_device_cannot_bring_back_a_purged_entry(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic, fields: dict
) -> None:
    today = alice_patient.local_today()
    phone, tablet, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    made = result(push(alice_client, phone, [diary(1, record, today, wheals=1, itch=1)]))
    push(alice_client, phone, [diary(2, record, today, op="delete")])
    with tenant_context(clinic_a):
        assert tombstones_purge(now=timezone.now() + timedelta(days=365)) == 1
    stale = {
        "mutation_id": 1,
        "table": "diary_entry",
        "id": str(record),
        "op": "upsert",
        "base_version": made["server_version"],
        "fields": {"day": str(today), **fields},
    }
    answer = result(push(alice_client, tablet, [stale]))
    assert (answer["status"], answer["reason"]["code"], answer["record"]) == (
        "conflict",
        "deleted",
        {"id": str(record), "deleted": True},
    )
    with tenant_context(clinic_a):
        assert not DiaryEntry.objects.filter(pk=record).exists()


# --- 10. Smaller items -------------------------------------------------------------------------


def test_the_cursor_is_opaque_not_just_signed(alice_client: APIClient, alice_patient: Patient) -> None:
    _, cursor, _ = pull_all(alice_client)
    payload = cursor.rsplit(":", 1)[0]
    with pytest.raises(ValueError):
        json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert "since" not in cursor and "epoch" not in cursor


def test_a_write_is_stamped_whatever_the_search_path(alice_patient: Patient, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a), connection.cursor() as cursor:
        cursor.execute("SELECT version FROM patients_syncstate")
        (before,) = cursor.fetchone()
        cursor.execute("SET search_path = public")
        try:
            cursor.execute(
                "INSERT INTO clinic_alpha.patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, "
                "note_encrypted, recorded_at, created_at, updated_at, server_version, field_versions) VALUES "
                "(%s, %s, current_date, 'day', 1, 1, false, '', now(), now(), now(), 0, '{}')",
                [uuid.uuid4(), alice_patient.pk],
            )
            cursor.execute("SELECT clinic_alpha.sync_stamp_pending('clinic_alpha', true)")
            (version,) = cursor.fetchone()
        finally:
            cursor.execute("SET search_path = clinic_alpha, public")
    assert version == before + 1


def test_the_dev_server_does_not_keep_idle_connections() -> None:
    local = importlib.import_module("config.settings.local")
    assert local.DATABASES["default"]["CONN_MAX_AGE"] == 0


def test_results_and_conflicts_never_store_control_characters(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device = uuid.uuid4()
    bad = {
        "mutation_id": 1,
        "table": "patient_settings",
        "id": str(alice_patient.pk),
        "op": "upsert",
        "fields": {"locale\x00\x07": "de"},
    }
    assert result(push(alice_client, device, [bad]))["reason"]["code"] == "unknown_field"
    with tenant_context(clinic_a):
        stored = SyncMutationResult.objects.get(client_id=device).result
    assert "\x00" not in json.dumps(stored) and "\x07" not in json.dumps(stored)


def test_another_device_of_the_patient_pulls_what_a_push_wrote(
    alice_client: APIClient, alice: object, alice_patient: Patient, clinic_a: Clinic
) -> None:
    record = uuid.uuid4()
    push(alice_client, uuid.uuid4(), [diary(1, record, alice_patient.local_today(), wheals=2, itch=1)])
    other = authed_client(alice, clinic_a)  # type: ignore[arg-type]
    changes, _, _ = pull_all(other)
    assert [r["id"] for r in changes["diary_entry"]["upserted"]] == [str(record)]
    assert all(r["server_version"] > 0 for r in changes["diary_entry"]["upserted"])


def test_a_rest_delete_reaches_a_device_that_pulled_the_entry(
    alice_client: APIClient, alice_patient: Patient
) -> None:
    day = alice_patient.local_today()
    made = alice_client.put(f"/api/v1/me/diary/{day}/", {"wheals": 1, "itch": 1}, format="json").json()
    first, cursor, _ = pull_all(alice_client, limit=1)
    assert [r["id"] for r in first["diary_entry"]["upserted"]] == [made["id"]]
    assert alice_client.delete(f"/api/v1/me/diary/{day}/").status_code == 204
    later, _, _ = pull_all(alice_client, cursor=cursor, limit=1)
    assert later["diary_entry"]["deleted"] == [made["id"]]
