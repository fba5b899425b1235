"""Field encryption keys (issue 21, part 2): re-encryption stamps no sync version and never
overwrites a concurrent edit; `check_keys`, `/readyz` and `rotate_keys --plan` report values
and archives no configured key opens; the plan checks each step of a rotation."""

from __future__ import annotations

import io
from pathlib import Path
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from core import crypto
from core.keys import column_reencrypt, encrypted_columns
from patients.models import DiaryEntry, Patient, SyncState
from tenants import lifecycle
from tenants.models import Clinic
from tenants.services import clinic_create
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
HEADERS = {"HTTP_X_SCHEMA_VERSION": "1"}


def noted_entry(clinic: Clinic, patient: Patient, note: str) -> DiaryEntry:
    with tenant_context(clinic):
        entry = DiaryEntry.objects.create(patient=patient, day=patient.local_today(), wheals=2, itch=1)
        DiaryEntry.objects.filter(pk=entry.pk).update(note_encrypted=crypto.encrypt(note))
        entry.refresh_from_db()
    connection.set_schema_to_public()
    return entry


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_reencryption_stamps_no_sync_version_and_devices_pull_nothing(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        entry = noted_entry(clinic_a, alice_patient, "Flare after aspirin")
        first = alice_client.get("/api/v1/sync/pull/", **HEADERS)
        assert first.status_code == 200, first.json()
        cursor = first.json()["cursor"]
    with tenant_context(clinic_a):
        entry.refresh_from_db()  # as the device has it (versions stamped)
        version_before = SyncState.objects.get().version
    connection.set_schema_to_public()
    assert entry.server_version > 0

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        out = run("rotate_encryption_keys")
        assert "alpha: patients_diaryentry.note_encrypted: 1 re-encrypted, 0 changed meanwhile, 0 no key opens" in out
        with tenant_context(clinic_a):
            rotated = DiaryEntry.objects.get(pk=entry.pk)
            assert SyncState.objects.get().version == version_before
        connection.set_schema_to_public()
        assert (rotated.server_version, rotated.field_versions) == (entry.server_version, entry.field_versions)
        assert rotated.note_encrypted != entry.note_encrypted
        after = alice_client.get("/api/v1/sync/pull/", {"cursor": cursor}, **HEADERS)
        assert after.status_code == 200, after.json()
        assert after.json()["changes"] == {}
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):  # the old key can go
        assert crypto.decrypt(rotated.note_encrypted) == "Flare after aspirin"
        # A later real edit is versioned as ever: the flag ended with the re-encryption.
        with tenant_context(clinic_a):
            DiaryEntry.objects.filter(pk=entry.pk).update(itch=3)
            edited = DiaryEntry.objects.get(pk=entry.pk)
        connection.set_schema_to_public()
    assert edited.server_version != entry.server_version


def test_reencryption_never_overwrites_a_concurrent_edit(alice_patient: Patient, clinic_a: Clinic) -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        entry = noted_entry(clinic_a, alice_patient, "before")
    real_reencrypt = crypto.reencrypt

    def the_patient_edits_meanwhile(ciphertext: str) -> str:
        DiaryEntry.objects.filter(pk=entry.pk).update(note_encrypted=crypto.encrypt("after"))
        return real_reencrypt(ciphertext)

    column = next(c for c in encrypted_columns(tenant=True) if c.label == "patients_diaryentry.note_encrypted")
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]),
        tenant_context(clinic_a),
        mock.patch("core.crypto.reencrypt", the_patient_edits_meanwhile),
    ):
        result = column_reencrypt(column)
        assert (result.changed, result.skipped, result.unreadable) == (0, 1, 0)
        assert crypto.decrypt(DiaryEntry.objects.get(pk=entry.pk).note_encrypted) == "after"


def test_check_keys_counts_values_per_key_and_fails_on_values_no_key_opens(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        noted_entry(clinic_a, alice_patient, "Hives after shellfish")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        out = run("check_keys")
        assert "  alpha: patients_diaryentry.note_encrypted: 1 under key 1" in out.splitlines()
        assert out.splitlines()[0] == "FIELD_ENCRYPTION_KEYS: 2 configured (key 0 is the newest)"
        assert "shellfish" not in out  # names and counts only
        run("rotate_encryption_keys")
        assert "  alpha: patients_diaryentry.note_encrypted: 1 under key 0" in run("check_keys").splitlines()
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):  # a process that lacks the new key
        out = io.StringIO()
        with pytest.raises(CommandError, match="opens with no configured key"):
            call_command("check_keys", stdout=out)
        assert "  alpha: patients_diaryentry.note_encrypted: 1 NO KEY OPENS" in out.getvalue().splitlines()


def test_readyz_names_keys_when_a_value_opens_with_no_configured_key(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        noted_entry(clinic_a, alice_patient, "written by the new release")
        assert host_client("alpha.localhost").get("/readyz").status_code == 200
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):  # an old process in a rolling deploy
        response = host_client("alpha.localhost").get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["keys"] == "fail"
        assert response.json()["detail"] == "Not ready: keys."
        # The platform host has no such value.
        assert host_client("localhost").get("/readyz").status_code == 200
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY, NEW_KEY]):  # new key added last: ready
        assert host_client("alpha.localhost").get("/readyz").json()["checks"]["keys"] == "ok"


def test_archives_report_the_key_that_wraps_them(archives: Path) -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        clinic = clinic_create(slug="leaving", name="Leaving Clinic")
        lifecycle.clinic_offboard_request(clinic=clinic)
        exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
        assert exported is not None
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert f"  archive {exported.offboarding_archive}: key 1" in run("check_keys").splitlines()
        plan = run("rotate_keys", "--plan")
        assert "  [todo] 1 archives under older keys: keep those keys while the archives are kept." in plan
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with pytest.raises(CommandError):
            call_command("check_keys", stdout=io.StringIO())


def test_rotate_keys_plan_checks_each_step(alice_patient: Patient, clinic_a: Clinic) -> None:
    with pytest.raises(CommandError, match="rotate_keys --plan"):
        call_command("rotate_keys")
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        noted_entry(clinic_a, alice_patient, "note")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY], HASH_KEYS=[]):
        plan = run("rotate_keys", "--plan").splitlines()
        assert plan[0] == "Field encryption (FIELD_ENCRYPTION_KEYS: 2 keys, key 0 encrypts)"
        assert "  [todo] 1 values under older keys: run `manage.py rotate_encryption_keys`." in plan
        assert any(line.startswith("  [todo] HASH_KEYS is unset") for line in plan)
        run("rotate_encryption_keys")
        plan = run("rotate_keys", "--plan").splitlines()
        assert "  [ok] no value is under an older key" in plan
        assert (
            "  [ok] keys 1..1 open nothing stored here; drop them once backups made under them have expired."
            in plan
        )
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY], HASH_KEYS=["a-hash-key-" + "x" * 40]):
        plan = run("rotate_keys", "--plan").splitlines()
        assert any(line.startswith("  [ok] HASH_KEYS is set") for line in plan)
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):  # the new key dropped too early
        out = io.StringIO()
        with pytest.raises(CommandError, match="A check failed"):
            call_command("rotate_keys", "--plan", stdout=out)
        assert (
            "  [FAIL] 1 values open with no configured key: put the retired key back (at the end)."
            in out.getvalue().splitlines()
        )
