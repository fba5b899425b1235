"""The patient's diary API: idempotent upserts, tombstones, every refusal, local dates."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from patients.models import DiaryEntry, Patient
from tenants.models import Clinic
from tests.conftest import authed_client, host_client

pytestmark = pytest.mark.django_db


def today_for(patient: Patient) -> date:
    return patient.local_today()


def put(client: APIClient, day: date | str, body: dict, slot: str | None = None):  # noqa: ANN201
    path = f"/api/v1/me/diary/{day}/" + (f"{slot}/" if slot else "")
    return client.put(path, body, format="json")


def test_record_then_replace_keeps_one_entry_with_the_client_id(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    day = today_for(alice_patient)
    entry_id = uuid.uuid4()
    first = put(alice_client, day, {"id": str(entry_id), "wheals": 2, "itch": 1, "note": "after lunch"})
    assert first.status_code == 201
    assert (first.json()["id"], first.json()["uas"], first.json()["note"]) == (
        str(entry_id),
        3,
        "after lunch",
    )
    again = put(alice_client, day, {"wheals": 3, "itch": 3})
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["uas"], again.json()["note"]) == (str(entry_id), 6, "")
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.filter(patient=alice_patient).count() == 1


def test_the_note_is_encrypted_at_rest(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    put(
        alice_client,
        today_for(alice_patient),
        {"wheals": 1, "itch": 1, "note": "swollen lips after shellfish"},
    )
    with tenant_context(clinic_a), connection.cursor() as cursor:
        cursor.execute("SELECT note_encrypted FROM patients_diaryentry")
        (stored,) = cursor.fetchone()
    assert "shellfish" not in stored and stored.startswith("gAAAA")


def test_same_put_twice_is_idempotent(alice_client: APIClient, alice_patient: Patient) -> None:
    body = {"id": str(uuid.uuid4()), "wheals": 1, "itch": 2}
    day = today_for(alice_patient)
    assert put(alice_client, day, body).status_code == 201
    second = put(alice_client, day, body)
    assert second.status_code == 200 and second.json()["uas"] == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"wheals": 4, "itch": 0}, "wheals"),
        ({"wheals": 0, "itch": -1}, "itch"),
        ({"wheals": "two", "itch": 0}, "wheals"),
        ({"wheals": 1}, "itch"),
        ({"wheals": 1, "itch": 1, "mood": "bad"}, "mood"),
        ({"wheals": 1, "itch": 1, "angioedema": True, "aas_items": [1, 2, 3]}, "aas_items"),
        ({"wheals": 1, "itch": 1, "angioedema": True, "aas_items": [1, 2, 3, 4, 0]}, "aas_items.3"),
        ({"wheals": 1, "itch": 1, "note": "x" * 2001}, "note"),
        ({"id": "not-a-uuid", "wheals": 1, "itch": 1}, "id"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    alice_client: APIClient, alice_patient: Patient, body: dict, field: str
) -> None:
    response = put(alice_client, today_for(alice_patient), body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field], errors


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"wheals": 1, "itch": 1, "angioedema": True}, "aas_required"),
        (
            {"wheals": 1, "itch": 1, "angioedema": False, "aas_items": [0, 0, 0, 0, 0]},
            "aas_without_angioedema",
        ),
    ],
)
def test_angioedema_rules(alice_client: APIClient, alice_patient: Patient, body: dict, code: str) -> None:
    response = put(alice_client, today_for(alice_patient), body)
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_future_date_in_the_patients_time_zone_is_refused(
    alice_client: APIClient, alice_patient: Patient
) -> None:
    tomorrow = today_for(alice_patient) + timedelta(days=1)
    response = put(alice_client, tomorrow, {"wheals": 1, "itch": 1})
    assert (response.status_code, response.json()["code"]) == (400, "diary_future_date")
    assert response.json()["errors"] == {"day": [response.json()["detail"]]}


def test_late_entries_follow_the_clinic_window(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = today_for(alice_patient)
    assert put(alice_client, today - timedelta(days=7), {"wheals": 1, "itch": 1}).status_code == 201
    late = put(alice_client, today - timedelta(days=8), {"wheals": 1, "itch": 1})
    assert (late.status_code, late.json()["code"]) == (400, "diary_too_late")


@pytest.mark.parametrize("day", ["2026-02-30", "2026-13-01", "0000-01-01"])
def test_impossible_dates_are_400(alice_client: APIClient, alice_patient: Patient, day: str) -> None:
    response = put(alice_client, day, {"wheals": 1, "itch": 1})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_date")


def test_slot_must_match_the_diary_mode(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    today = today_for(alice_patient)
    wrong = put(alice_client, today, {"wheals": 1, "itch": 1}, slot="am")
    assert (wrong.status_code, wrong.json()["code"]) == (400, "diary_slot_mismatch")
    dave_client = authed_client(dave, clinic_a)
    with tenant_context(clinic_a):
        dave_today = Patient.objects.get(user_id=dave.pk).local_today()
    assert put(dave_client, dave_today, {"wheals": 1, "itch": 1}).json()["code"] == "diary_slot_mismatch"
    assert put(dave_client, dave_today, {"wheals": 1, "itch": 1}, slot="am").status_code == 201
    assert put(dave_client, dave_today, {"wheals": 3, "itch": 1}, slot="pm").status_code == 201


def test_a_day_recorded_before_a_mode_switch_keeps_its_kind(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """One kind of entry per day: after the switch to twice daily, a day recorded whole stays
    whole (correctable, deletable) and takes no halves, so its score is never ambiguous; new
    days follow the new mode. Switching back is the mirror image."""
    from patients.models import DiaryEntry

    today = today_for(alice_patient)
    yesterday = today - timedelta(days=1)
    assert put(alice_client, yesterday, {"wheals": 1, "itch": 1}).status_code == 201
    with tenant_context(clinic_a):
        Patient.objects.filter(pk=alice_patient.pk).update(diary_mode="twice")

    half = put(alice_client, yesterday, {"wheals": 3, "itch": 3}, slot="am")
    assert (half.status_code, half.json()["code"], list(half.json()["errors"])) == (
        409,
        "diary_day_kind",
        ["slot"],
    )
    assert put(alice_client, yesterday, {"wheals": 2, "itch": 1}).status_code == 200  # corrected
    assert put(alice_client, today, {"wheals": 1, "itch": 1}).json()["code"] == "diary_slot_mismatch"
    assert put(alice_client, today, {"wheals": 3, "itch": 3}, slot="am").status_code == 201

    with tenant_context(clinic_a):
        Patient.objects.filter(pk=alice_patient.pk).update(diary_mode="once")
    whole = put(alice_client, today, {"wheals": 1, "itch": 1})
    assert (whole.status_code, whole.json()["code"]) == (409, "diary_day_kind")
    assert put(alice_client, today, {"wheals": 2, "itch": 2}, slot="pm").status_code == 201
    with tenant_context(clinic_a):
        slots = sorted(
            DiaryEntry.objects.filter(patient=alice_patient, deleted_at__isnull=True).values_list(
                "day", "slot"
            )
        )
    assert slots == [(yesterday, "day"), (today, "am"), (today, "pm")]
    assert alice_client.delete(f"/api/v1/me/diary/{yesterday.isoformat()}/").status_code == 204


def test_delete_leaves_a_tombstone_and_the_day_can_be_recorded_again(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    day = today_for(alice_patient)
    first = put(alice_client, day, {"wheals": 2, "itch": 2}).json()["id"]
    assert alice_client.delete(f"/api/v1/me/diary/{day}/").status_code == 204
    assert alice_client.delete(f"/api/v1/me/diary/{day}/").status_code == 404
    assert alice_client.get("/api/v1/me/diary/").json() == []
    second = put(alice_client, day, {"wheals": 1, "itch": 0})
    assert second.status_code == 201 and second.json()["id"] != first
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.get(pk=first).deleted_at is not None
    reused = put(alice_client, day - timedelta(days=1), {"id": first, "wheals": 1, "itch": 0})
    assert (reused.status_code, reused.json()["code"]) == (409, "diary_id_conflict")


def test_list_range_defaults_and_limits(alice_client: APIClient, alice_patient: Patient) -> None:
    today = today_for(alice_patient)
    for offset in range(3):
        put(alice_client, today - timedelta(days=offset), {"wheals": offset, "itch": 0})
    days = [e["day"] for e in alice_client.get("/api/v1/me/diary/").json()]
    assert days == [str(today - timedelta(days=2)), str(today - timedelta(days=1)), str(today)]
    window = alice_client.get(
        "/api/v1/me/diary/", {"from": str(today - timedelta(days=1)), "to": str(today)}
    ).json()
    assert [e["day"] for e in window] == [str(today - timedelta(days=1)), str(today)]
    too_long = alice_client.get("/api/v1/me/diary/", {"from": "2024-01-01", "to": "2025-12-31"})
    assert (too_long.status_code, too_long.json()["code"]) == (400, "range_too_long")
    backwards = alice_client.get("/api/v1/me/diary/", {"from": "2026-02-01", "to": "2026-01-01"})
    assert backwards.json()["code"] == "invalid_range"
    assert alice_client.get("/api/v1/me/diary/", {"from": "yesterday"}).status_code == 400


def test_a_patient_never_sees_or_touches_another_patients_entries(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    dave_client = authed_client(dave, clinic_a)
    with tenant_context(clinic_a):
        dave_today = Patient.objects.get(user_id=dave.pk).local_today()
    dave_entry = put(dave_client, dave_today, {"wheals": 3, "itch": 3}, slot="am").json()["id"]
    assert alice_client.get("/api/v1/me/diary/").json() == []
    # Guessing Dave's entry id does not reach it.
    hijack = put(alice_client, today_for(alice_patient), {"id": dave_entry, "wheals": 0, "itch": 0})
    assert hijack.status_code == 404
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.get(pk=dave_entry).uas == 6


@pytest.mark.parametrize("persona", ["anonymous", "dr_bob", "carol", "mallory"])
def test_only_patients_use_the_diary(request: pytest.FixtureRequest, persona: str, clinic_a: Clinic) -> None:
    if persona == "anonymous":
        client, expected = host_client("alpha.localhost"), 401
    else:
        user = request.getfixturevalue(persona)
        client = authed_client(user, Clinic.objects.get(memberships__user=user))
        client.defaults["HTTP_HOST"] = "alpha.localhost"
        expected = 401 if persona == "mallory" else 403
    assert client.get("/api/v1/me/diary/").status_code == expected
    assert put(client, "2026-01-01", {"wheals": 1, "itch": 1}).status_code == expected


# --- Local dates --------------------------------------------------------------------------------


def _at(instant: datetime):  # noqa: ANN202
    return mock.patch("django.utils.timezone.now", return_value=instant)


@pytest.mark.parametrize(
    ("tz", "instant", "local_today"),
    [
        # 10:30 UTC on 1 March is already 2 March at UTC+14 (Kiritimati)...
        ("Pacific/Kiritimati", datetime(2026, 3, 1, 10, 30, tzinfo=ZoneInfo("UTC")), date(2026, 3, 2)),
        # ...and still 28 February at UTC−11 (Pago Pago).
        ("Pacific/Pago_Pago", datetime(2026, 3, 1, 10, 30, tzinfo=ZoneInfo("UTC")), date(2026, 2, 28)),
        # Berlin's spring-forward night (29 March 2026, 02:00 → 03:00): 00:30 UTC is 01:30 local.
        ("Europe/Berlin", datetime(2026, 3, 29, 0, 30, tzinfo=ZoneInfo("UTC")), date(2026, 3, 29)),
        # New York's fall-back (1 November 2026): 05:30 UTC is 01:30 EDT... 06:30 UTC 01:30 EST.
        ("America/New_York", datetime(2026, 11, 1, 6, 30, tzinfo=ZoneInfo("UTC")), date(2026, 11, 1)),
        ("America/New_York", datetime(2026, 11, 1, 3, 59, tzinfo=ZoneInfo("UTC")), date(2026, 10, 31)),
    ],
)
def test_today_is_the_patients_local_date(
    alice_client: APIClient,
    alice_patient: Patient,
    clinic_a: Clinic,
    tz: str,
    instant: datetime,
    local_today: date,
) -> None:
    with tenant_context(clinic_a):
        Patient.objects.filter(pk=alice_patient.pk).update(timezone=tz)
    with _at(instant):
        assert put(alice_client, local_today, {"wheals": 1, "itch": 1}).status_code == 201
        future = put(alice_client, local_today + timedelta(days=1), {"wheals": 1, "itch": 1})
        assert future.json()["code"] == "diary_future_date"


def test_changing_time_zone_never_moves_existing_entries(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    day = today_for(alice_patient) - timedelta(days=1)
    put(alice_client, day, {"wheals": 2, "itch": 1})
    response = alice_client.patch("/api/v1/me/profile/", {"timezone": "Pacific/Kiritimati"}, format="json")
    assert response.status_code == 200 and response.json()["timezone"] == "Pacific/Kiritimati"
    assert [
        e["day"] for e in alice_client.get("/api/v1/me/diary/", {"from": str(day), "to": str(day)}).json()
    ] == [str(day)]
    bad = alice_client.patch("/api/v1/me/profile/", {"timezone": "Moon/Base"}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_timezone")
    read_only = alice_client.patch("/api/v1/me/profile/", {"display_name": "X"}, format="json")
    assert read_only.status_code == 400 and "display_name" in read_only.json()["errors"]
