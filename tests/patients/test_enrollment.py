"""Enrollment codes: issued through the staff access function, single use, expiring, stored
hashed, redeemed into a plan seat, and guarded by a per-clinic guessing budget."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
from billing.models import Plan
from billing.services import subscription_start
from clinicians.models import CareTeam, Clinician
from patients.models import AccessLog, Enrollment, Patient
from tenants.models import Clinic, ClinicStatus
from tests.clinicians.conftest import client_for
from tests.conftest import authed_client, host_client, make_member
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a brand new passphrase"


def create_enrollment(client: APIClient, **body: object) -> dict:
    response = client.post("/api/v1/portal/enrollments/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def enroll(code: str, email: str = "newpatient@example.com", password: str = NEW_PASSWORD):  # noqa: ANN201
    return host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/", {"code": code, "email": email, "password": password, "privacy_notice_version": 1}, format="json"
    )


@pytest.fixture
def frank(clinic_a: Clinic, dr_bob: User) -> Patient:
    """A patient record without an account yet, in dr_bob's care team."""
    with tenant_context(clinic_a):
        patient = PatientFactory(display_name="Frank F.", timezone="Europe/Berlin")
        clinician, _ = Clinician.objects.get_or_create(user_id=dr_bob.pk)
        CareTeam.objects.create(clinician=clinician, patient=patient, since=date(2020, 1, 1))
    return patient


@pytest.fixture
def erin(clinic_a: Clinic) -> User:
    """A clinician of alpha outside Frank's and Alice's care teams."""
    return make_member("erin@example.com", clinic_a, "clinician", "Dr Erin")


def issue_rows(clinic: Clinic) -> list[tuple[str, bool]]:
    with tenant_context(clinic):
        return list(
            AccessLog.objects.filter(action="enrollment.issue")
            .order_by("created_at")
            .values_list("actor_role", "allowed")
        )


# --- Issuing ----------------------------------------------------------------------------------


def test_clinician_creates_a_code_and_the_patient_enrolls(dr_bob: User, clinic_a: Clinic) -> None:
    body = create_enrollment(authed_client(dr_bob, clinic_a))
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", body["code"])
    assert body["enroll_url"].startswith("http://alpha.localhost/enroll#code=")
    assert body["patient_id"] is None
    with tenant_context(clinic_a):
        enrollment = Enrollment.objects.get(pk=body["id"])
    assert body["code"].replace("-", "") not in enrollment.code_encrypted + enrollment.code_hash
    assert enrollment.expires_at - timezone.now() > timedelta(days=13, hours=23)
    response = enroll(body["code"].lower().replace("-", " "))  # forgiving about case and spacing
    assert response.status_code == 201
    assert set(response.json()) == {"access", "refresh", "user_id", "role"}
    assert response.json()["role"] == "patient"
    assert Membership.objects.get(user__email="newpatient@example.com", clinic=clinic_a).role == "patient"
    with tenant_context(clinic_a):
        patient = Patient.objects.get(user_id=response.json()["user_id"])
        assert AccessLog.objects.filter(action="enrollment.redeem", patient_id=patient.pk).count() == 1


@pytest.mark.parametrize(
    ("accept_language", "locale"), [("de-DE,de;q=0.9,en;q=0.5", "de"), ("en-GB", "en"), ("fr-FR", "en"), (None, "en")]
)
def test_a_patient_joins_in_the_language_their_browser_asks_for(
    dr_bob: User, clinic_a: Clinic, accept_language: str | None, locale: str
) -> None:
    """Emails and reminders speak the patient's language from the start (a German patient who
    joined from a German browser had English ones; found by review)."""
    code = create_enrollment(authed_client(dr_bob, clinic_a))["code"]
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    response = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": "newpatient@example.com", "password": NEW_PASSWORD, "privacy_notice_version": 1},
        format="json",
        **headers,
    )
    assert response.status_code == 201, response.json()
    with tenant_context(clinic_a):
        assert Patient.objects.get(user_id=response.json()["user_id"]).locale == locale


def test_a_code_for_a_patient_in_the_care_team_links_that_record(
    dr_bob: User, frank: Patient, clinic_a: Clinic
) -> None:
    body = create_enrollment(authed_client(dr_bob, clinic_a), patient_id=str(frank.pk))
    assert body["patient_id"] == str(frank.pk)
    assert issue_rows(clinic_a) == [("clinician", True)]
    response = enroll(body["code"], email="frank@example.com")
    assert response.status_code == 201
    with tenant_context(clinic_a):
        frank.refresh_from_db()
        assert str(frank.user_id) == response.json()["user_id"]
        assert Patient.objects.count() == 1  # linked, not a second record


def test_a_clinician_outside_the_care_team_cannot_issue_a_code_for_the_patient(
    erin: User, frank: Patient, clinic_a: Clinic
) -> None:
    """The takeover of the security review: erin gets the same 404 as on Frank's page, no code
    exists, and the refusal is in the access log."""
    client = authed_client(erin, clinic_a)
    assert client.get(f"/api/v1/portal/patients/{frank.pk}/").status_code == 404
    response = client.post("/api/v1/portal/enrollments/", {"patient_id": str(frank.pk)}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    with tenant_context(clinic_a):
        assert not Enrollment.objects.exists()
        refused = AccessLog.objects.get(action="enrollment.issue")
        assert (refused.allowed, refused.patient_id, refused.actor_id) == (False, frank.pk, erin.pk)


def test_a_code_for_an_unknown_patient_is_refused(carol: User, clinic_a: Clinic) -> None:
    response = authed_client(carol, clinic_a).post(
        "/api/v1/portal/enrollments/", {"patient_id": "00000000-0000-4000-8000-000000000000"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    with tenant_context(clinic_a):
        assert not Enrollment.objects.exists()


def test_a_patient_who_has_an_account_gets_no_code(
    carol: User, alice_patient: Patient, clinic_a: Clinic
) -> None:
    response = authed_client(carol, clinic_a).post(
        "/api/v1/portal/enrollments/", {"patient_id": str(alice_patient.pk)}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "patient_already_enrolled")
    with tenant_context(clinic_a):
        assert not Enrollment.objects.exists()


def test_a_new_code_for_a_patient_revokes_the_open_one(
    dr_bob: User, frank: Patient, clinic_a: Clinic
) -> None:
    client = authed_client(dr_bob, clinic_a)
    first = create_enrollment(client, patient_id=str(frank.pk))
    second = create_enrollment(client, patient_id=str(frank.pk))
    assert (enroll(first["code"]).status_code, enroll(first["code"]).json()["code"]) == (
        400,
        "enrollment_revoked",
    )
    assert enroll(second["code"], email="frank@example.com").status_code == 201


def test_a_code_cannot_take_over_a_patient_linked_meanwhile(
    dr_bob: User, frank: Patient, clinic_a: Clinic
) -> None:
    code = create_enrollment(authed_client(dr_bob, clinic_a), patient_id=str(frank.pk))["code"]
    other = make_member("someone@example.com", clinic_a, "patient")
    with tenant_context(clinic_a):
        Patient.objects.filter(pk=frank.pk).update(user_id=other.pk)
    response = enroll(code, email="intruder@example.com")
    assert (response.status_code, response.json()["code"]) == (400, "enrollment_invalid")
    assert not User.objects.filter(email="intruder@example.com").exists()


def test_identity_imports_nothing_clinical() -> None:
    """`accounts` knows no clinical data: enrollment lives with the patient record."""
    root = Path(__file__).resolve().parents[2] / "platform" / "accounts"
    imported: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    assert not imported & {"patients", "clinicians"}


# --- Redeeming ---------------------------------------------------------------------------------


def test_enrollment_code_is_single_use_and_expires(dr_bob: User, clinic_a: Clinic) -> None:
    client = authed_client(dr_bob, clinic_a)
    used = create_enrollment(client)["code"]
    assert enroll(used).status_code == 201
    again = enroll(used, email="someone.else@example.com")
    assert (again.status_code, again.json()["code"]) == (400, "enrollment_used")
    late = create_enrollment(client)
    with tenant_context(clinic_a):
        Enrollment.objects.filter(pk=late["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert enroll(late["code"], email="late@example.com").json()["code"] == "enrollment_expired"
    assert enroll("ZZZZ-ZZZZ", email="guess@example.com").json()["code"] == "enrollment_invalid"
    assert not User.objects.filter(email__in=["someone.else@example.com", "late@example.com"]).exists()


def test_enrollment_code_works_only_on_its_own_clinic(
    dr_bob: User, clinic_a: Clinic, clinic_b: Clinic
) -> None:
    code = create_enrollment(authed_client(dr_bob, clinic_a))["code"]
    response = host_client("beta.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": "x@example.com", "password": NEW_PASSWORD, "privacy_notice_version": 1},
        format="json",
    )
    assert response.json()["code"] == "enrollment_invalid"


def test_redeeming_a_code_that_creates_a_record_takes_a_plan_seat(carol: User, clinic_a: Clinic) -> None:
    """A code minted without a patient used to bypass `max_patients` (103 of 100 seats)."""
    subscription_start(clinic=clinic_a, plan_code="starter")
    Plan.objects.filter(code="starter").update(max_patients=1)
    client = authed_client(carol, clinic_a)
    first, second = create_enrollment(client)["code"], create_enrollment(client)["code"]
    assert enroll(first, email="one@example.com").status_code == 201
    response = enroll(second, email="two@example.com")
    assert (response.status_code, response.json()["code"], response.json()["limit"]) == (
        403,
        "plan_limit",
        "max_patients",
    )
    assert not User.objects.filter(email="two@example.com").exists()
    with tenant_context(clinic_a):
        assert Patient.objects.count() == 1
    assert enroll(second, email="two@example.com").json()["code"] == "plan_limit"  # the code is not spent


@pytest.fixture
def host_cache_cleared() -> Iterator[None]:
    """The host → clinic cache outlives the test's rolled-back status change: clear it."""
    cache.clear()
    yield
    cache.clear()


def test_an_offboarding_clinic_takes_no_new_patients_codes_or_invitations(
    carol: User, dr_bob: User, clinic_a: Clinic, host_cache_cleared: None
) -> None:
    client = authed_client(carol, clinic_a)
    code = create_enrollment(client)["code"]
    Clinic.objects.filter(pk=clinic_a.pk).update(status=ClinicStatus.OFFBOARDING)
    cache.clear()
    for path, body in [
        ("/api/v1/portal/enrollments/", {}),
        ("/api/v1/portal/patients/", {"display_name": "Late"}),
        ("/api/v1/admin/invitations/", {"email": "late@example.com", "role": "clinician"}),
    ]:
        response = client.post(path, body, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "clinic_offboarding"), path
    response = enroll(code)
    assert (response.status_code, response.json()["code"]) == (403, "clinic_offboarding")
    assert client.get("/api/v1/portal/patients/").status_code == 200  # still readable


# --- QR codes and personas ------------------------------------------------------------------------


def test_enrollment_qr_is_a_png(dr_bob: User, clinic_a: Clinic) -> None:
    client = authed_client(dr_bob, clinic_a)
    body = create_enrollment(client)
    response = client.get(body["qr_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("persona", "create", "qr"),
    [
        ("anonymous", 401, 401),
        ("alice", 403, 403),
        ("dr_bob", 201, 200),
        ("erin", 404, 404),
        ("carol", 201, 200),
        ("mallory", 401, 401),
    ],
)
def test_enrollment_persona_matrix(
    request: pytest.FixtureRequest,
    persona: str,
    create: int,
    qr: int,
    dr_bob: User,
    frank: Patient,
    alice_patient: Patient,
    clinic_a: Clinic,
) -> None:
    enrollment_id = create_enrollment(authed_client(dr_bob, clinic_a), patient_id=str(frank.pk))["id"]
    client = client_for(request, persona)
    response = client.post("/api/v1/portal/enrollments/", {"patient_id": str(frank.pk)}, format="json")
    assert response.status_code == create
    if create == 201:  # the new code revoked the first one
        enrollment_id = response.json()["id"]
    assert client.get(f"/api/v1/portal/enrollments/{enrollment_id}/qr.png").status_code == qr


# --- The clinic's guessing budget -----------------------------------------------------------------


def test_wrong_codes_from_many_addresses_spend_the_clinic_budget_and_alert_its_admins(
    settings, carol: User, dr_bob: User, clinic_a: Clinic, clinic_b: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    settings.ENROLLMENT_FAILURE_BUDGET = 3
    code = create_enrollment(authed_client(dr_bob, clinic_a))["code"]
    # The admins' alert goes through the outbox, published once its row commits (the test's
    # transaction never commits: run the callbacks as a commit would).
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            guess = host_client("alpha.localhost").post(
                "/api/v1/auth/enroll/",
                {
                    "code": f"ZZZZ-ZZZ{n + 2}",
                    "email": "guess@example.com",
                    "password": NEW_PASSWORD,
                    "privacy_notice_version": 1,
                },
                format="json",
                REMOTE_ADDR=f"203.0.113.{n + 1}",
            )
            assert guess.json()["code"] == "enrollment_invalid"
    response = enroll(code)  # even the right code waits while the budget is spent
    assert (response.status_code, response.json()["code"]) == (429, "enrollment_paused")
    assert int(response["Retry-After"]) == settings.ENROLLMENT_FAILURE_WINDOW_SECONDS
    alerts = [m for m in mail.outbox if "Enrollment paused" in m.subject]
    assert [m.to for m in alerts] == [["carol@example.com"]]
    assert "3 wrong enrollment codes" in alerts[0].body
    # The other clinic's budget is its own.
    other = host_client("beta.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": "ZZZZ-ZZZZ", "email": "g@example.com", "password": NEW_PASSWORD, "privacy_notice_version": 1},
        format="json",
    )
    assert other.json()["code"] == "enrollment_invalid"


def test_the_daily_purge_forgets_week_old_wrong_codes(clinic_a: Clinic) -> None:
    from patients.enrollment import enrollment_failures_purge
    from patients.models import EnrollmentFailure

    with tenant_context(clinic_a):
        EnrollmentFailure.objects.create(created_at=timezone.now() - timedelta(days=8))
        recent = EnrollmentFailure.objects.create()
        assert enrollment_failures_purge() == 1
        assert list(EnrollmentFailure.objects.values_list("pk", flat=True)) == [recent.pk]


def test_patients_of_an_offboarding_clinic_can_read_and_export_but_not_record(
    alice_client: APIClient, clinic_a: Clinic, host_cache_cleared: None
) -> None:
    Clinic.objects.filter(pk=clinic_a.pk).update(status=ClinicStatus.OFFBOARDING)
    cache.clear()
    today = timezone.now().date().isoformat()
    refused = alice_client.put(f"/api/v1/me/diary/{today}/", {"wheals": 1, "itch": 1}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "clinic_offboarding")
    assert alice_client.get("/api/v1/me/export/").status_code == 200
    assert alice_client.post("/api/v1/me/deletion-request/", {"reason": ""}, format="json").status_code == 202
