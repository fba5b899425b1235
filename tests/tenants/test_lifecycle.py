"""Clinic settings and staff (clinic admins), suspension, offboarding, operator endpoints."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from unittest import mock

import pyotp
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
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
    assert sorted((m["email"], m["role"], m["is_active"]) for m in members) == [
        ("alice@example.com", "patient", True),
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
        {"code": code, "email": "new@example.com", "password": "a fine passphrase"},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (403, "clinic_suspended")
    lifecycle.clinic_reactivate(clinic=clinic_a)
    response = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": "new@example.com", "password": "a fine passphrase"},
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
    with mock.patch("tenants.tasks.clinic_offboard.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = ops_client.post("/api/v1/platform/clinics/alpha/offboard/")
            delay.assert_not_called()
    assert response.status_code == 202
    delay.assert_called_once_with(clinic_id=str(clinic_a.pk))
    assert ops_client.get("/api/v1/platform/clinics/alpha/archive/").json()["code"] == "archive_not_ready"


def test_offboarding_exports_every_table_with_verifiable_checksums_then_purges(
    ops_client: APIClient,
    settings,
    tmp_path,  # noqa: ANN001
) -> None:
    settings.OFFBOARDING_EXPORT_DIR = tmp_path
    clinic = clinic_create(slug="leaving", name="Leaving Clinic")
    with tenant_context(clinic):
        AccessLog.objects.create(action="read", object_type="diary")
        AccessLog.objects.create(action="write", object_type="diary")
    connection.set_schema_to_public()

    clinic = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert clinic.status == ClinicStatus.OFFBOARDING

    response = ops_client.get("/api/v1/platform/clinics/leaving/archive/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
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
    } == {
        "read",
        "write",
    }

    assert lifecycle.clinics_purge_offboarded() == []  # still inside the grace period
    later = timezone.now() + timedelta(days=31)
    assert lifecycle.clinics_purge_offboarded(now=later) == ["leaving"]
    assert not schema_exists("clinic_leaving")
    assert host_client("leaving.localhost").get("/readyz").status_code == 404


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
