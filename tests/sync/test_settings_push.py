"""Sync pushes of `patient_settings` are validated by the profile endpoint's own serializer
(issue 14, finding 11): a bad value rejects that mutation, naming the field, and the rest of
the batch applies; no markup, overlong values or control characters are stored."""

from __future__ import annotations

import uuid
from datetime import time

import pytest
from django.db import DataError
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from patients import sync
from patients.models import DiaryEntry, Patient
from tenants.models import Clinic
from tests.sync.test_sync import diary, push

pytestmark = pytest.mark.django_db


def settings_mutation(mutation_id: int, patient: Patient, **fields: object) -> dict:
    """A change made on a device that has seen the patient's current settings."""
    with tenant_context(Clinic.objects.get(slug="alpha")):
        sync.sync_stamp_now(fresh=True)  # as if the test's earlier writes had committed
        patient.refresh_from_db(fields=["server_version"])
    return {
        "mutation_id": mutation_id,
        "table": "patient_settings",
        "id": str(patient.pk),
        "op": "upsert",
        "base_version": patient.server_version,
        "fields": fields,
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"locale": "<img src=x onerror=alert(1)>"}, "locale"),
        ({"locale": 'de"><b>'}, "locale"),
        ({"locale": "x" * 300}, "locale"),
        ({"locale": "de\x00"}, "locale"),
        ({"timezone": "Europe/Berlin\r\nX-Injected: 1"}, "timezone"),
        ({"timezone": "Europe/\x00Berlin"}, "timezone"),
        ({"timezone": "x" * 300}, "timezone"),
        ({"timezone": ["Europe/Berlin"]}, "timezone"),
        ({"diary_mode": "thrice"}, "diary_mode"),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start"),
        ({"quiet_hours_end": 2200}, "quiet_hours_end"),
    ],
)
def test_a_bad_setting_rejects_its_mutation_naming_the_field_and_the_batch_still_applies(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic, fields: dict, field: str
) -> None:
    today = alice_patient.local_today()
    batch = [
        settings_mutation(1, alice_patient, **fields),
        diary(2, uuid.uuid4(), today, wheals=1, itch=2),
        settings_mutation(3, alice_patient, locale="de", quiet_hours_start="22:00"),
    ]
    response = push(alice_client, uuid.uuid4(), batch)

    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "applied", "applied"]
    assert (results[0]["reason"]["code"], results[0]["reason"]["field"]) == ("validation_error", field)
    with tenant_context(clinic_a):
        patient = Patient.objects.get(pk=alice_patient.pk)
        assert (patient.locale, patient.timezone, patient.diary_mode) == ("de", "Europe/Berlin", "once")
        assert (patient.quiet_hours_start, patient.quiet_hours_end) == (time(22, 0), None)
        assert DiaryEntry.objects.filter(patient=patient).count() == 1


def test_an_unknown_time_zone_is_rejected_as_by_the_profile_endpoint(
    alice_client: APIClient, alice_patient: Patient
) -> None:
    response = push(alice_client, uuid.uuid4(), [settings_mutation(1, alice_patient, timezone="Moon/Base")])
    reason = response.json()["results"][0]["reason"]
    assert (reason["code"], reason["field"]) == ("invalid_timezone", "timezone")
    profile = alice_client.patch("/api/v1/me/profile/", {"timezone": "Moon/Base"}, format="json")
    assert (profile.status_code, profile.json()["code"]) == (400, "invalid_timezone")


def test_valid_settings_sync_up_as_through_the_profile_endpoint(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    mutation = settings_mutation(
        1,
        alice_patient,
        timezone="America/Argentina/Buenos_Aires",
        locale="de-AT",
        diary_mode="twice",
        quiet_hours_start="22:30",
        quiet_hours_end=None,
    )
    response = push(alice_client, uuid.uuid4(), [mutation])
    assert response.json()["results"][0]["status"] == "applied"
    profile = alice_client.get("/api/v1/me/profile/").json()
    assert {k: profile[k] for k in mutation["fields"]} == {
        "timezone": "America/Argentina/Buenos_Aires",
        "locale": "de-AT",
        "diary_mode": "twice",
        "quiet_hours_start": "22:30",
        "quiet_hours_end": None,
    }


def test_a_diary_note_with_control_characters_is_refused_by_sync_and_by_the_api(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    pushed = push(
        alice_client,
        uuid.uuid4(),
        [
            diary(1, uuid.uuid4(), today, wheals=1, itch=1, note="itchy\x00"),
            diary(2, uuid.uuid4(), today, wheals=1, itch=1, note="itchy\x1b[31m"),
            diary(3, uuid.uuid4(), today, wheals=1, itch=1, note="itchy\n\tall day"),
        ],
    )
    assert [(r["status"], (r.get("reason") or {}).get("field")) for r in pushed.json()["results"]] == [
        ("rejected", "note"),
        ("rejected", "note"),
        ("applied", None),
    ]
    put = alice_client.put(
        f"/api/v1/me/diary/{today}/", {"wheals": 1, "itch": 1, "note": "a\x07b"}, format="json"
    )
    assert (put.status_code, list(put.json()["errors"])) == (400, ["note"])
    with tenant_context(clinic_a):
        assert [e.note for e in DiaryEntry.objects.filter(patient=alice_patient)] == ["itchy\n\tall day"]


def test_a_value_the_database_refuses_rejects_only_its_mutation(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: if validation ever misses a value the database cannot hold, that
    mutation is rejected and the batch still answers 200."""
    apply = sync.push._apply

    def apply_or_fail(patient: Patient, client: object, m: dict, late_days: int) -> dict:
        if m["mutation_id"] == 1:
            raise DataError("value too long for type character varying(10)")
        return apply(patient, client, m, late_days)  # type: ignore[arg-type]

    monkeypatch.setattr(sync.push, "_apply", apply_or_fail)
    today = alice_patient.local_today()
    response = push(
        alice_client,
        uuid.uuid4(),
        [settings_mutation(1, alice_patient, locale="de"), diary(2, uuid.uuid4(), today, wheals=1, itch=1)],
    )
    assert response.status_code == 200
    assert [(r["status"], (r.get("reason") or {}).get("code")) for r in response.json()["results"]] == [
        ("rejected", "invalid_value"),
        ("applied", None),
    ]


def test_entries_after_a_settings_change_in_the_same_batch_follow_the_new_settings(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """A patient switches to twice daily offline, then records a morning entry: both travel in
    one batch, in that order (found by review: the entry was refused as once-daily)."""
    today = alice_patient.local_today()
    batch = [
        settings_mutation(1, alice_patient, diary_mode="twice"),
        diary(2, uuid.uuid4(), today, wheals=1, itch=2, slot="am"),
    ]
    results = push(alice_client, uuid.uuid4(), batch).json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"], results
    with tenant_context(clinic_a):
        assert list(DiaryEntry.objects.filter(patient=alice_patient).values_list("slot", flat=True)) == ["am"]


def test_a_settings_change_committed_before_the_push_takes_its_lock_decides_the_batch(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """The view loads the patient before the push locks it; the push re-reads the settings."""
    from patients.sync.push import sync_push

    today = alice_patient.local_today()
    with tenant_context(clinic_a):
        loaded = Patient.objects.get(pk=alice_patient.pk)  # as the view loads it
        Patient.objects.filter(pk=alice_patient.pk).update(diary_mode="twice")  # another device
        result = sync_push(
            patient=loaded,
            user_id=alice_patient.user_id,
            client_id=uuid.uuid4(),
            mutations=[diary(1, uuid.uuid4(), today, wheals=1, itch=1, slot="pm")],
        )
    statuses = [r["status"] for r in result.results]
    assert statuses == ["applied"], result.results
