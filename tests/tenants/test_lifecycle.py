"""Clinic settings and staff (clinic admins), suspension, offboarding, operator endpoints."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
from core.crypto import ARCHIVE_MAGIC, ArchiveEncryptor
from patients.models import AccessLog
from tenants import lifecycle
from tenants.management.commands.migrate_clinics import expected_migrations_digest, schemas_behind
from tenants.models import Clinic, ClinicStatus
from tenants.services import clinic_create
from tests.conftest import PASSWORD, authed_client, host_client

pytestmark = pytest.mark.django_db


# --- Clinic settings and staff ------------------------------------------------------------------


def test_admin_reads_and_patches_clinic_settings(carol: User, clinic_a: Clinic) -> None:
    client = authed_client(carol, clinic_a)
    before = client.get("/api/v1/admin/clinic/").json()
    assert before["slug"] == "alpha" and before["default_diary_mode"] == "once"
    response = client.patch(
        "/api/v1/admin/clinic/",
        {"default_diary_mode": "twice", "diary_late_entry_days": 3, "reminder_default_time": "19:30"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["default_diary_mode"], response.json()["reminder_default_time"]) == (
        "twice",
        "19:30",
    )
    clinic_a.refresh_from_db()
    assert (clinic_a.default_diary_mode, clinic_a.diary_late_entry_days) == ("twice", 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"default_diary_mode": "thrice"}, "default_diary_mode"),
        ({"diary_late_entry_days": 99}, "diary_late_entry_days"),
        ({"slug": "renamed"}, "slug"),
        ({"status": "active"}, "status"),
        ({"locale": "english"}, "locale"),
    ],
)
def test_clinic_settings_refuse_bad_or_read_only_fields(
    carol: User, clinic_a: Clinic, body: dict, field: str
) -> None:
    response = authed_client(carol, clinic_a).patch("/api/v1/admin/clinic/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    clinic_a.refresh_from_db()
    assert clinic_a.slug == "alpha"


@pytest.mark.parametrize(("persona", "expected"), [("alice", 403), ("dr_bob", 403), ("mallory", 401)])
def test_clinic_settings_are_for_this_clinics_admins_only(
    request: pytest.FixtureRequest, persona: str, expected: int
) -> None:
    user = request.getfixturevalue(persona)
    client = authed_client(user, Clinic.objects.get(memberships__user=user))
    client.defaults["HTTP_HOST"] = "alpha.localhost"
    assert client.get("/api/v1/admin/clinic/").status_code == expected
    assert client.patch("/api/v1/admin/clinic/", {"name": "Hacked"}, format="json").status_code == expected
    assert host_client("alpha.localhost").get("/api/v1/admin/clinic/").status_code == 401


def test_admin_lists_staff_and_deactivation_stops_tokens_at_once(
    carol: User, dr_bob: User, alice: User, mallory: User, clinic_a: Clinic
) -> None:
    admin = authed_client(carol, clinic_a)
    members = admin.get("/api/v1/admin/members/").json()
    assert sorted((m["email"] or "", m["role"], m["is_active"]) for m in members) == [
        ("", "patient", True),  # a patient's identity is shown only in the audited portal
        ("bob@example.com", "clinician", True),
        ("carol@example.com", "clinic_admin", True),
    ]
    bob_client = authed_client(dr_bob, clinic_a)
    assert bob_client.get("/api/v1/auth/me/").status_code == 200
    bob_membership = next(m["id"] for m in members if m["email"] == dr_bob.email)
    response = admin.post(f"/api/v1/admin/members/{bob_membership}/deactivate/")
    assert (response.status_code, response.json()["is_active"]) == (200, False)
    assert bob_client.get("/api/v1/auth/me/").status_code == 401
    assert admin.post(f"/api/v1/admin/members/{bob_membership}/reactivate/").status_code == 200
    assert bob_client.get("/api/v1/auth/me/").status_code == 200
    # Another clinic's membership is not reachable from here.
    foreign = Membership.objects.get(user=mallory).pk
    assert admin.post(f"/api/v1/admin/members/{foreign}/deactivate/").status_code == 404
    own = next(m["id"] for m in members if m["email"] == carol.email)
    assert admin.post(f"/api/v1/admin/members/{own}/deactivate/").json()["code"] == "cannot_deactivate_self"


# --- Suspension -------------------------------------------------------------------------------


@pytest.fixture
def suspended_a(clinic_a: Clinic) -> Clinic:
    clinic = lifecycle.clinic_suspend(clinic=clinic_a)
    yield clinic
    lifecycle.clinic_host_cache_clear(clinic=clinic)


def test_suspended_clinic_refuses_portal_writes_and_enrollments_but_allows_reads(
    carol: User, dr_bob: User, alice: User, suspended_a: Clinic
) -> None:
    doctor = authed_client(dr_bob, suspended_a)
    blocked = doctor.post("/api/v1/portal/enrollments/", {}, format="json")
    assert (blocked.status_code, blocked.json()["code"]) == (403, "clinic_suspended")
    admin = authed_client(carol, suspended_a)
    assert admin.get("/api/v1/admin/clinic/").status_code == 200
    assert (
        admin.patch("/api/v1/admin/clinic/", {"name": "X"}, format="json").json()["code"]
        == "clinic_suspended"
    )
    assert (
        admin.post(
            "/api/v1/admin/invitations/", {"email": "n@example.com", "role": "clinician"}, format="json"
        ).status_code
        == 403
    )
    assert admin.get("/api/v1/admin/members/").status_code == 200
    # Patients still sign in (their diary and sync stay open: patient safety).
    patient = host_client("alpha.localhost").post(
        "/api/v1/auth/token/", {"email": alice.email, "password": PASSWORD}, format="json"
    )
    assert patient.status_code == 200
    assert doctor.get("/api/v1/auth/me/").status_code == 200


def test_suspended_clinic_refuses_new_patient_enrollments(dr_bob: User, clinic_a: Clinic) -> None:
    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    lifecycle.clinic_suspend(clinic=clinic_a)
    response = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": "new@example.com", "password": "a fine passphrase", "privacy_notice_version": 1},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (403, "clinic_suspended")
    lifecycle.clinic_reactivate(clinic=clinic_a)
    response = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": "new@example.com", "password": "a fine passphrase", "privacy_notice_version": 1},
        format="json",
    )
    assert response.status_code == 201


# --- Operators --------------------------------------------------------------------------------


def test_operator_sign_in_requires_staff_and_totp(operator: tuple[User, pyotp.TOTP], carol: User) -> None:
    user, totp = operator
    client = host_client("localhost")
    no_otp = client.post(
        "/api/v1/platform/auth/token/", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert no_otp.status_code == 400
    wrong = client.post(
        "/api/v1/platform/auth/token/",
        {"email": user.email, "password": PASSWORD, "otp": "000000"},
        format="json",
    )
    assert wrong.status_code == 401
    not_staff = client.post(
        "/api/v1/platform/auth/token/",
        {"email": carol.email, "password": PASSWORD, "otp": "123456"},
        format="json",
    )
    assert (not_staff.status_code, not_staff.json()["code"]) == (401, "invalid_credentials")


def test_operator_lists_clinics_with_counts(
    ops_client: APIClient, alice: User, dr_bob: User, carol: User
) -> None:
    response = ops_client.get("/api/v1/platform/clinics/")
    assert response.status_code == 200, response.json()
    alpha = next(c for c in response.json() if c["slug"] == "alpha")
    assert (alpha["status"], alpha["member_count"], alpha["patient_count"]) == ("active", 2, 1)


def test_non_operators_get_401_or_403_on_operator_endpoints(carol: User, clinic_a: Clinic) -> None:
    anonymous = host_client("localhost")
    assert anonymous.get("/api/v1/platform/clinics/").status_code == 401
    clinic_token = authed_client(carol, clinic_a)
    clinic_token.defaults["HTTP_HOST"] = "localhost"
    assert (
        clinic_token.get("/api/v1/platform/clinics/").status_code == 401
    )  # a clinic token is not for this host
    assert clinic_token.post("/api/v1/platform/clinics/alpha/suspend/").status_code == 401
    clinic_a.refresh_from_db()
    assert clinic_a.status == "active"


def test_operator_token_is_refused_on_clinic_hosts(ops_client: APIClient) -> None:
    ops_client.defaults["HTTP_HOST"] = "alpha.localhost"
    assert ops_client.get("/api/v1/auth/me/").status_code == 401


def test_operator_suspends_and_reactivates(ops_client: APIClient, clinic_a: Clinic) -> None:
    response = ops_client.post("/api/v1/platform/clinics/alpha/suspend/")
    assert (response.status_code, response.json()["status"]) == (200, "suspended")
    again = ops_client.post("/api/v1/platform/clinics/alpha/suspend/")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_status")
    assert ops_client.post("/api/v1/platform/clinics/alpha/reactivate/").json()["status"] == "active"
    assert ops_client.post("/api/v1/platform/clinics/nope/suspend/").status_code == 404


def test_offboard_endpoint_enqueues_the_export_after_commit(
    ops_client: APIClient, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    with mock.patch("tenants.tasks.clinic_offboard.apply_async") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = ops_client.post("/api/v1/platform/clinics/alpha/offboard/")
            delay.assert_not_called()
    assert response.status_code == 202
    delay.assert_called_once_with(kwargs={"clinic_id": str(clinic_a.pk)}, retry=False)  # from the outbox
    assert ops_client.get("/api/v1/platform/clinics/alpha/archive/").json()["code"] == "archive_not_ready"


# --- Offboarding archives ----------------------------------------------------------------------


def offboarded(slug: str = "leaving") -> Clinic:
    """A clinic with two audit rows, exported and offboarding."""
    clinic = clinic_create(slug=slug, name="Leaving Clinic")
    with tenant_context(clinic):
        AccessLog.objects.create(action="read", object_type="diary")
        AccessLog.objects.create(action="write", object_type="diary")
    connection.set_schema_to_public()
    lifecycle.clinic_offboard_request(clinic=clinic)  # read-only first, then the export
    exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert exported is not None
    return exported


def after_grace() -> datetime:
    return timezone.now() + timedelta(days=31)


def purge_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "tenants.lifecycle" and r.levelno == logging.ERROR
    ]


def test_offboarding_stores_an_encrypted_owner_only_archive_with_its_checksum(archives: Path) -> None:
    clinic = offboarded()
    assert clinic.status == ClinicStatus.OFFBOARDING
    assert clinic.offboarding_archive.startswith(f"offboarding/{clinic.pk}/leaving-")
    path = archives / clinic.offboarding_archive
    stored = path.read_bytes()
    assert hashlib.sha256(stored).hexdigest() == clinic.offboarding_archive_sha256
    assert stored.startswith(ARCHIVE_MAGIC)
    # No zip structure, file names or row contents in the clear.
    for plaintext in (b"PK\x03\x04", b"PK\x05\x06", b"manifest.json", b"patients_accesslog", b'"action"'):
        assert plaintext not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_operator_downloads_the_decrypted_archive_with_every_table_then_the_purge_drops_it(
    ops_client: APIClient, archives: Path
) -> None:
    offboarded()
    response = ops_client.get("/api/v1/platform/clinics/leaving/archive/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"].startswith('attachment; filename="leaving-')
    assert response["Content-Disposition"].endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'clinic_leaving' "
            "AND table_type = 'BASE TABLE'"
        )
        tables = sorted(name for (name,) in cursor.fetchall())
    assert sorted(manifest["tables"]) == tables
    for table, entry in manifest["tables"].items():
        data = archive.read(f"tables/{table}.jsonl")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data.splitlines()) == entry["rows"]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM clinic_leaving."{table}"')
            assert cursor.fetchone()[0] == entry["rows"]
    assert manifest["tables"]["patients_accesslog"]["rows"] == 2
    assert {
        json.loads(line)["action"] for line in archive.read("tables/patients_accesslog.jsonl").splitlines()
    } == {"read", "write"}

    assert lifecycle.clinics_purge_offboarded() == []  # still inside the grace period
    assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["leaving"]
    assert not schema_exists("clinic_leaving")
    assert host_client("leaving.localhost").get("/readyz").status_code == 404


def test_purge_keeps_a_clinic_whose_archive_is_missing(
    ops_client: APIClient, archives: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = offboarded()
    (archives / clinic.offboarding_archive).unlink()
    with caplog.at_level(logging.ERROR, logger="tenants.lifecycle"):
        assert lifecycle.clinics_purge_offboarded(now=after_grace()) == []
    assert schema_exists("clinic_leaving")
    clinic.refresh_from_db()
    assert clinic.status == ClinicStatus.OFFBOARDING
    assert purge_errors(caplog) == [
        "clinic leaving not purged: archive_missing; it stays offboarding until an operator re-exports it"
    ]
    response = ops_client.get("/api/v1/platform/clinics/leaving/archive/")
    assert (response.status_code, response.json()["code"]) == (404, "archive_missing")


def _flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]


def _another_valid_archive(data: bytes) -> bytes:
    sink = io.BytesIO()
    encryptor = ArchiveEncryptor(sink)
    encryptor.write(b"not this clinic's export")
    encryptor.close()
    return sink.getvalue()


@pytest.mark.parametrize(
    "damage",
    [_flip_a_byte, lambda data: data[:-1], lambda data: data + b"\0", _another_valid_archive],
    ids=["flipped-byte", "truncated", "extended", "replaced-by-another-archive"],
)
def test_purge_keeps_a_clinic_whose_archive_checksum_does_not_match(
    ops_client: APIClient, archives: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes]
) -> None:
    clinic = offboarded()
    path = archives / clinic.offboarding_archive
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.ERROR, logger="tenants.lifecycle"):
        assert lifecycle.clinics_purge_offboarded(now=after_grace()) == []
    assert schema_exists("clinic_leaving")
    clinic.refresh_from_db()
    assert clinic.status == ClinicStatus.OFFBOARDING
    assert purge_errors(caplog) == [
        "clinic leaving not purged: archive_checksum_mismatch; it stays offboarding until an operator "
        "re-exports it"
    ]
    response = ops_client.get("/api/v1/platform/clinics/leaving/archive/")
    assert (response.status_code, response.json()["code"]) == (409, "archive_checksum_mismatch")


def test_archives_open_with_any_configured_key_and_the_purge_waits_while_none_does(
    ops_client: APIClient,
    archives: Path,
    settings,
    caplog: pytest.LogCaptureFixture,  # noqa: ANN001
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    offboarded()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key retired too early
    with caplog.at_level(logging.ERROR, logger="tenants.lifecycle"):
        assert lifecycle.clinics_purge_offboarded(now=after_grace()) == []
    assert purge_errors(caplog) == [
        "clinic leaving not purged: archive_unreadable; it stays offboarding until an operator re-exports it"
    ]
    response = ops_client.get("/api/v1/platform/clinics/leaving/archive/")
    assert (response.status_code, response.json()["code"]) == (409, "archive_unreadable")

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]  # rotation keeps the old key to decrypt
    response = ops_client.get("/api/v1/platform/clinics/leaving/archive/")
    assert response.status_code == 200
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["leaving"]
    assert not schema_exists("clinic_leaving")


def test_offboarding_again_replaces_the_archive_and_deletes_the_old_one(
    ops_client: APIClient,
    archives: Path,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    clinic = offboarded()
    first = clinic.offboarding_archive
    with mock.patch("tenants.tasks.clinic_offboard.apply_async") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = ops_client.post("/api/v1/platform/clinics/leaving/offboard/")
    assert (response.status_code, response.json()["status"]) == (202, "offboarding")
    delay.assert_called_once_with(kwargs={"clinic_id": str(clinic.pk)}, retry=False)
    with django_capture_on_commit_callbacks(execute=True):
        clinic = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert clinic.offboarding_archive != first
    assert not (archives / first).exists()
    stored = (archives / clinic.offboarding_archive).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == clinic.offboarding_archive_sha256
    assert lifecycle.clinic_archive_problem(clinic=clinic) is None


def test_an_export_racing_the_purge_deletes_no_archive(
    archives: Path,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    clinic = offboarded()
    verified = clinic.offboarding_archive
    real_export = lifecycle.clinic_export

    def export_while_the_purge_drops_the_clinic(*, clinic: Clinic) -> lifecycle.StoredArchive:
        archive = real_export(clinic=clinic)
        Clinic.objects.filter(pk=clinic.pk).delete()  # the purge, after verifying `verified`
        return archive

    with (
        mock.patch("tenants.lifecycle.clinic_export", export_while_the_purge_drops_the_clinic),
        django_capture_on_commit_callbacks(execute=True),
    ):
        lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert not Clinic.objects.filter(pk=clinic.pk).exists()
    assert (archives / verified).exists()
    assert len(list((archives / "offboarding" / str(clinic.pk)).iterdir())) == 2


def test_archive_decrypt_command_writes_the_zip_owner_only(archives: Path, tmp_path: Path) -> None:
    clinic = offboarded()
    output = tmp_path / "export.zip"
    call_command("archive_decrypt", clinic.offboarding_archive, str(output), stdout=io.StringIO())
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    manifest = json.loads(zipfile.ZipFile(output).read("manifest.json"))
    assert manifest["tables"]["patients_accesslog"]["rows"] == 2
    with pytest.raises(CommandError, match="exists"):
        call_command("archive_decrypt", clinic.offboarding_archive, str(output))

    damaged = tmp_path / "damaged.zip.enc"
    damaged.write_bytes((archives / clinic.offboarding_archive).read_bytes()[:-1])
    with pytest.raises(CommandError, match="Could not decrypt"):
        call_command("archive_decrypt", "--file", str(damaged), str(tmp_path / "partial.zip"))
    assert not (tmp_path / "partial.zip").exists()


ARCHIVES_CONFIG = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.STORAGES['archives'], default=str))"
)


def archives_config(**overrides: str) -> dict:
    """settings.STORAGES["archives"] as production settings build it from this environment."""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": "k3Jf9-QpL2x_7vN4mZ8rT1yW6bH0cS5dA9eG3uI7oP2lK4jH8fD6sX1zC5vB9nM0",
        "ALLOWED_HOSTS": "csu.example.com",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ARCHIVE_STORAGE_DIR": "/srv/archives",
        "PYTHONPATH": os.pathsep.join([str(root / "platform"), str(root)]),
        **overrides,
    }
    for name in ("ARCHIVE_S3_BUCKET", "ARCHIVE_S3_ENDPOINT_URL", "ARCHIVE_S3_REGION"):
        if name not in overrides:
            env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", ARCHIVES_CONFIG],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_archives_go_to_an_owner_only_directory_unless_an_s3_bucket_is_configured() -> None:
    assert archives_config() == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": "/srv/archives",
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    }
    assert archives_config(
        ARCHIVE_S3_BUCKET="csu-archives",
        ARCHIVE_S3_ENDPOINT_URL="https://s3.example.net",
        ARCHIVE_S3_REGION="eu-1",
    ) == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "csu-archives",
            "endpoint_url": "https://s3.example.net",
            "region_name": "eu-1",
            "access_key": None,
            "secret_key": None,
            "file_overwrite": False,
        },
    }


# --- Deploy migrations ------------------------------------------------------------------------


def test_migrate_clinics_finds_exactly_the_clinics_behind_in_one_query(
    clinic_a: Clinic, clinic_b: Clinic, django_assert_num_queries
) -> None:  # noqa: ANN001
    schemas = [clinic_a.schema_name, clinic_b.schema_name]
    expected = expected_migrations_digest()
    with django_assert_num_queries(1):
        assert schemas_behind(schemas, expected) == []
    with tenant_context(clinic_b), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'patients' AND name = '0002_accesslog_append_only'"
        )
    connection.set_schema_to_public()
    assert schemas_behind(schemas, expected) == ["clinic_beta"]


def test_migrate_clinics_batches_its_check_so_ten_thousand_clinics_fit_in_a_statement(
    clinic_a: Clinic, clinic_b: Clinic, monkeypatch
) -> None:  # noqa: ANN001
    """One UNION ALL over 10,000 schemas exceeded max_stack_depth (bench/scale.py)."""
    from tenants.management.commands import migrate_clinics

    monkeypatch.setattr(migrate_clinics, "SCHEMAS_PER_QUERY", 1)
    with tenant_context(clinic_a), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'patients' AND name = '0002_accesslog_append_only'"
        )
    connection.set_schema_to_public()
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        behind = schemas_behind([clinic_a.schema_name, clinic_b.schema_name], expected_migrations_digest())
    assert behind == ["clinic_alpha"]
    assert len([q for q in queries.captured_queries if "django_migrations" in q["sql"]]) == 2
