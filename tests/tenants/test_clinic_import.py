"""Offboard and come back (issue 21, part 3): export → purge → `clinic_import` round-trips every
table and the clinic's public rows; patients sign in again and their devices reset and see
their data; the archive holds no credentials and opens without the keys of the day."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context

from accounts.models import Membership, Role, User
from billing.models import Invoice, Subscription
from core import crypto
from core.keys import encrypted_columns
from patients.models import AccessLog, DiaryEntry
from tenants import archive as clinic_archive
from tenants import lifecycle
from tenants.models import Clinic, ClinicStatus
from tenants.services import clinic_create
from tests.conftest import PASSWORD, authed_client, host_client, make_member
from tests.factories import PatientFactory
from tests.tenants.test_offboarding_purge import billed

pytestmark = pytest.mark.django_db

HEADERS = {"HTTP_X_SCHEMA_VERSION": "1"}
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def schema_rows(schema: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, with encrypted values decrypted and the sync epoch left out (an
    import starts a new one on purpose)."""
    encrypted = {(c.table, c.column) for c in encrypted_columns(tenant=True)}
    tables: dict[str, list[dict[str, Any]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE'",
            [schema],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{schema}"."{table}" t')
            rows = []
            for (line,) in cursor.fetchall():
                row = json.loads(line)
                for column in list(row):
                    if (table, column) in encrypted and row[column]:
                        row[column] = crypto.decrypt(row[column])
                if table == "patients_syncstate":
                    row.pop("epoch")
                if table == "django_migrations":
                    row.pop("applied")
                rows.append(row)
            tables[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return tables


def public_rows(clinic_id: Any) -> dict[str, list[Any]]:
    return {
        "memberships": sorted(
            Membership.objects.filter(clinic_id=clinic_id).values_list("user__email", "role", "is_active")
        ),
        "subscription": list(
            Subscription.objects.filter(clinic_id=clinic_id).values_list("plan_id", "status")
        ),
        "invoices": sorted(Invoice.objects.filter(clinic_id=clinic_id).values_list("number", "total_minor")),
    }


def test_export_purge_import_round_trips_every_table_and_patients_come_back(archives: Path) -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        clinic = clinic_create(slug="roundtrip", name="Round Trip Clinic", timezone="Europe/Berlin")
        rita = make_member("rita@example.com", clinic, Role.PATIENT, "Rita Patient")
        make_member("ron@example.com", clinic, Role.CLINICIAN, "Dr Ron")
        billed(clinic)
        with tenant_context(clinic):
            patient = PatientFactory(user_id=rita.pk, display_name="Rita P.")
            entry = DiaryEntry.objects.create(patient=patient, day=patient.local_today(), wheals=2, itch=2)
            DiaryEntry.objects.filter(pk=entry.pk).update(
                note_encrypted=crypto.encrypt("Hives after shellfish")
            )
            AccessLog.objects.create(action="read", object_type="diary")
        connection.set_schema_to_public()
        device = authed_client(rita, clinic)
        first = device.get("/api/v1/sync/pull/", **HEADERS)
        assert first.status_code == 200, first.json()
        old_cursor = first.json()["cursor"]
        with tenant_context(clinic):
            before = schema_rows(clinic.schema_name)
        connection.set_schema_to_public()
        public_before = public_rows(clinic.pk)

        lifecycle.clinic_offboard_request(clinic=clinic)
        exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
        assert exported is not None
        name = exported.offboarding_archive
        assert lifecycle.clinics_purge_offboarded(now=timezone.now() + timedelta(days=31)) == ["roundtrip"]
    assert not schema_exists("clinic_roundtrip") and public_rows(clinic.pk)["memberships"] == []

    # The old key is gone by now: the archive still opens (its data key is wrapped under a key
    # still listed) and its notes come back from the plaintext inside it.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        out = io.StringIO()
        call_command("clinic_import", name, stdout=out)
    assert out.getvalue().startswith("clinic roundtrip imported into clinic_roundtrip (active): ")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):  # the notes are under today's key
        imported = Clinic.objects.get(slug="roundtrip")
        assert (imported.pk, imported.status, imported.offboarding_archive) == (
            clinic.pk,
            ClinicStatus.ACTIVE,
            "",
        )
        with tenant_context(imported):
            after = schema_rows(imported.schema_name)
        connection.set_schema_to_public()
        assert sorted(after) == sorted(before)
        for table in before:
            assert after[table] == before[table], table
        assert public_rows(clinic.pk) == public_before

        # Patients sign in again; the device's old cursor belongs to the old epoch: it resets
        # and downloads everything, note included.
        signed_in = host_client("roundtrip.localhost").post(
            "/api/v1/auth/token/", {"email": rita.email, "password": PASSWORD}, format="json"
        )
        assert signed_in.status_code == 200, signed_in.json()
        stale = device.get("/api/v1/sync/pull/", {"cursor": old_cursor}, **HEADERS)
        assert (stale.status_code, stale.json()["code"]) == (409, "reset_required")
        fresh = device.get("/api/v1/sync/pull/", **HEADERS)
        assert fresh.status_code == 200
        notes = [row.get("note") for row in fresh.json()["changes"]["diary_entry"]["upserted"]]
        assert notes == ["Hives after shellfish"]


def test_the_archive_carries_public_rows_and_plaintext_but_no_credentials(
    archives: Path, carol: User
) -> None:
    clinic = clinic_create(slug="leaving", name="Leaving Clinic")
    make_member("lena@example.com", clinic, Role.CLINIC_ADMIN)
    with tenant_context(clinic):
        patient = PatientFactory(display_name="Lena P.")
        DiaryEntry.objects.create(patient=patient, day=patient.local_today(), wheals=0, itch=0)
        DiaryEntry.objects.update(note_encrypted=crypto.encrypt("private note"))
    connection.set_schema_to_public()
    lifecycle.clinic_offboard_request(clinic=clinic)
    exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert exported is not None
    plain = io.BytesIO()
    lifecycle.archive_decrypt(name=exported.offboarding_archive, destination=plain)
    archive = zipfile.ZipFile(plain)
    manifest = json.loads(archive.read("manifest.json"))
    assert sorted(manifest["public"]) == sorted(spec.table for spec in clinic_archive.PUBLIC_TABLES)
    users = [json.loads(line) for line in archive.read("public/accounts_user.jsonl").splitlines()]
    assert [(u["email"], u["password"]) for u in users] == [("lena@example.com", "!")]
    assert "carol@example.com" not in archive.read("public/accounts_user.jsonl").decode()
    notes = [
        json.loads(line)
        for line in archive.read("plaintext/patients_diaryentry.note_encrypted.jsonl").splitlines()
    ]
    assert [n["value"] for n in notes] == ["private note"]
    assert manifest["plaintext"]["patients_diaryentry.note_encrypted"] == {"rows": 1, "unreadable": 0}


def test_every_public_table_keyed_to_the_clinic_is_archived_or_knowingly_left_out() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT source.relname
            FROM pg_constraint c
            JOIN pg_class source ON source.oid = c.conrelid
            JOIN pg_class target ON target.oid = c.confrelid
            JOIN pg_namespace n ON n.oid = source.relnamespace
            WHERE c.contype = 'f' AND target.relname = 'tenants_clinic' AND n.nspname = 'public'
            """
        )
        keyed = {name for (name,) in cursor.fetchall()}
    archived = {spec.table for spec in clinic_archive.PUBLIC_TABLES}
    assert keyed - archived - set(clinic_archive.PUBLIC_TABLES_LEFT_OUT) == set()


def test_an_import_is_refused_while_the_clinic_exists(archives: Path) -> None:
    clinic = clinic_create(slug="twice", name="Twice Clinic")
    lifecycle.clinic_offboard_request(clinic=clinic)
    exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert exported is not None
    with pytest.raises(CommandError, match="Not imported: clinic twice exists"):
        call_command("clinic_import", exported.offboarding_archive, stdout=io.StringIO())
    with pytest.raises(CommandError, match="Could not open the archive"):
        call_command("clinic_import", "offboarding/none/missing.zip.enc", stdout=io.StringIO())


def _rewritten(plain: io.BytesIO, change: Any) -> io.BytesIO:
    """The plaintext zip with `change(name, data) -> data` applied and the manifest updated."""
    source = zipfile.ZipFile(plain)
    manifest = json.loads(source.read("manifest.json"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name == "manifest.json":
                continue
            data = change(name, source.read(name))
            section, _, file = name.partition("/")
            table = file.removesuffix(".jsonl")
            entries = manifest["tables"] if section == "tables" else manifest.get(section, {})
            if section in ("tables", "public") and table in entries:
                entries[table] = {"rows": len(data.splitlines()), "sha256": hashlib.sha256(data).hexdigest()}
            target.writestr(name, data)
        target.writestr("manifest.json", json.dumps(manifest))
    out.seek(0)
    return out


def test_an_import_names_archived_columns_the_code_no_longer_has_and_refuses_foreign_names(
    archives: Path,
) -> None:
    clinic = clinic_create(slug="legacy", name="Legacy Clinic")
    with tenant_context(clinic):
        PatientFactory(display_name="Old P.")
    connection.set_schema_to_public()
    lifecycle.clinic_offboard_request(clinic=clinic)
    exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert exported is not None
    plain = io.BytesIO()
    lifecycle.archive_decrypt(name=exported.offboarding_archive, destination=plain)
    assert lifecycle.clinics_purge_offboarded(now=timezone.now() + timedelta(days=31)) == ["legacy"]

    def with_a_retired_column(name: str, data: bytes) -> bytes:
        if name != "tables/patients_patient.jsonl":
            return data
        rows = [json.loads(line) | {"retired_column": "x"} for line in data.splitlines()]
        return b"".join(json.dumps(row).encode() + b"\n" for row in rows)

    def in_another_schema(name: str, data: bytes) -> bytes:
        return (
            data.replace(b'"clinic_legacy"', b'"public"') if name == "public/tenants_clinic.jsonl" else data
        )

    plain.seek(0)
    with pytest.raises(clinic_archive.ImportRefused, match="does not belong to its clinic"):
        clinic_archive.clinic_import(source=_rewritten(plain, in_another_schema))
    assert not Clinic.objects.filter(slug="legacy").exists()
    plain.seek(0)
    report = clinic_archive.clinic_import(source=_rewritten(plain, with_a_retired_column))
    assert report.skipped == ["patients_patient.retired_column"]
    assert report.tables["patients_patient"] == 1
