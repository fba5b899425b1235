"""A new sync epoch (a restore) sends every device back to a full download and a new client id
(issue 21): old cursors and old client ids answer 409 reset_required, never mutation_gap or 400,
and nothing of a refused push is applied. Unreadable cursors are reset_required too."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from patients.models import DiaryEntry, Patient, SyncClient, SyncState
from tenants.models import Clinic
from tests.sync.test_sync import HEADERS, diary, pull_all, push


def _new_epoch(clinic: Clinic) -> None:
    with tenant_context(clinic), connection.cursor() as cursor:
        cursor.execute("UPDATE patients_syncstate SET epoch = gen_random_uuid()")


def test_a_device_of_an_older_epoch_must_reset_on_push_and_pull(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    device = uuid.uuid4()
    today = alice_patient.local_today()
    first = push(alice_client, device, [diary(1, uuid.uuid4(), today, wheals=1, itch=1)])
    assert first.status_code == 200
    _, cursor, last = pull_all(alice_client, client_id=device)
    assert last == 1
    _new_epoch(clinic_a)

    # Its next mutation id follows the old history: never a gap, a reset.
    refused = push(alice_client, device, [diary(2, uuid.uuid4(), today, slot="am", wheals=2, itch=2)])
    assert (refused.status_code, refused.json()["code"]) == (409, "reset_required")
    assert refused["Content-Type"].startswith("application/problem+json")
    stale_cursor = alice_client.get("/api/v1/sync/pull/", {"cursor": cursor}, **HEADERS)
    assert (stale_cursor.status_code, stale_cursor.json()["code"]) == (409, "reset_required")
    # A full download with the old client id would acknowledge its old ids: reset as well.
    stale_client = alice_client.get("/api/v1/sync/pull/", {"client_id": str(device)}, **HEADERS)
    assert (stale_client.status_code, stale_client.json()["code"]) == (409, "reset_required")
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.count() == 1

    # The reset: a new client id re-pushes the queued write from mutation 1, then downloads.
    fresh = uuid.uuid4()
    again = push(alice_client, fresh, [diary(1, uuid.uuid4(), today - timedelta(days=1), wheals=2, itch=2)])
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["applied"]
    changes, _, last = pull_all(alice_client, client_id=fresh)
    assert last == 1
    assert len(changes["diary_entry"]["upserted"]) == 2
    with tenant_context(clinic_a):
        state = SyncState.objects.get()
        assert SyncClient.objects.get(pk=fresh).epoch == state.epoch
        assert SyncClient.objects.get(pk=device).epoch != state.epoch


def test_a_client_of_the_current_epoch_still_gets_mutation_gap(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    _new_epoch(clinic_a)
    device = uuid.uuid4()
    today = alice_patient.local_today()
    assert push(alice_client, device, [diary(1, uuid.uuid4(), today, wheals=1, itch=1)]).status_code == 200
    gap = push(alice_client, device, [diary(3, uuid.uuid4(), today, slot="am", wheals=1, itch=1)])
    assert (gap.status_code, gap.json()["code"], gap.json()["expected"]) == (409, "mutation_gap", 2)


def test_an_unreadable_cursor_is_reset_required_not_invalid_cursor(
    alice_client: APIClient, alice_patient: Patient
) -> None:
    # A cursor signed under a SECRET_KEY since rotated away.
    with override_settings(SECRET_KEY="an-old-secret-key-" + "x" * 40):
        _, old_key_cursor, _ = pull_all(alice_client)
    for cursor in (old_key_cursor, "not-a-cursor", "a:b:c"):
        response = alice_client.get("/api/v1/sync/pull/", {"cursor": cursor}, **HEADERS)
        assert (response.status_code, response.json()["code"]) == (409, "reset_required"), cursor
    _, current, _ = pull_all(alice_client)
    assert alice_client.get("/api/v1/sync/pull/", {"cursor": current}, **HEADERS).status_code == 200


def test_reset_required_needs_the_callers_own_records(
    alice_client: APIClient, alice_patient: Patient, client_a: APIClient
) -> None:
    # Anonymous callers learn nothing about epochs or cursors.
    anonymous = client_a.get("/api/v1/sync/pull/", {"cursor": "not-a-cursor"}, **HEADERS)
    assert anonymous.status_code == 401
