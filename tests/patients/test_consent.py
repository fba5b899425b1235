"""Consent to the clinic's privacy notice (issue 22, part 6; DESIGN.md §9): a versioned notice
per clinic in the app's languages, accepted at enrollment, recorded, withdrawable, exported;
without it nothing but the account is stored."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from clinicians.models import CareTeam, Clinician
from patients.models import (
    AccessLog,
    Consent,
    DiaryEntry,
    DoseLog,
    Patient,
    PrivacyNotice,
    QuestionnaireResponse,
)
from tenants.models import Clinic
from tests.clinicians.conftest import client_for
from tests.conftest import authed_client, host_client, make_member
from tests.factories import PatientFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a long new passphrase"
TEXTS = {
    "en": "Privacy notice, version two.\n\nWe store your diary.",
    "de": "Datenschutzerklärung, Fassung zwei.",
}


def _issue_code(request: pytest.FixtureRequest) -> str:
    response = client_for(request, "carol").post("/api/v1/portal/enrollments/", {}, format="json")
    assert response.status_code == 201
    return str(response.json()["code"])


def _enroll(code: str, **extra: object) -> object:
    body = {"code": code, "email": "newpatient@example.com", "password": NEW_PASSWORD, **extra}
    return host_client("alpha.localhost").post("/api/v1/auth/enroll/", body, format="json")


def _diary_put(client: APIClient, patient: Patient) -> object:
    return client.put(f"/api/v1/me/diary/{patient.local_today()}/", {"wheals": 1, "itch": 2}, format="json")


def _publish(request: pytest.FixtureRequest, **body: object) -> object:
    return client_for(request, "carol").post(
        "/api/v1/admin/privacy-notices/", {"texts": TEXTS, **body}, format="json"
    )


@pytest.fixture
def team(alice_patient: Patient, dr_bob: User, clinic_a: Clinic) -> CareTeam:
    with tenant_context(clinic_a):
        clinician = Clinician.objects.create(user_id=dr_bob.pk)
        return CareTeam.objects.create(clinician=clinician, patient=alice_patient, since=date(2020, 1, 1))


# --- The notice ---------------------------------------------------------------------------------


def test_every_clinic_has_the_default_notice_in_english_and_german(
    clinic_a: Clinic, clinic_b: Clinic
) -> None:
    for clinic in (clinic_a, clinic_b):
        with tenant_context(clinic):
            notice = PrivacyNotice.objects.get()
        assert notice.version == 1 and sorted(notice.texts) == ["de", "en"]
        assert notice.texts["en"].startswith("Privacy notice") and notice.texts["de"].startswith(
            "Datenschutz"
        )


def test_the_notice_is_public_on_the_clinic_host_only(clinic_a: Clinic) -> None:
    response = host_client("alpha.localhost").get("/api/v1/auth/privacy-notice/")
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["clinic"], body["requires_reacceptance"]) == (1, clinic_a.name, False)
    assert sorted(body["texts"]) == ["de", "en"]
    assert host_client("localhost").get("/api/v1/auth/privacy-notice/").status_code == 404


# --- Enrollment requires the accepted version ---------------------------------------------------


def test_enrollment_records_the_accepted_version(
    request: pytest.FixtureRequest, carol: User, clinic_a: Clinic
) -> None:
    code = _issue_code(request)
    missing = _enroll(code)
    assert (missing.status_code, list(missing.json()["errors"])) == (400, ["privacy_notice_version"])
    stale = _enroll(code, privacy_notice_version=2)
    assert (stale.status_code, stale.json()["code"], list(stale.json()["errors"])) == (
        400,
        "privacy_notice_outdated",
        ["privacy_notice_version"],
    )
    joined = _enroll(code, privacy_notice_version=1)  # the code was not spent by either refusal
    assert joined.status_code == 201, joined.content
    with tenant_context(clinic_a):
        patient = Patient.objects.get(user_id=joined.json()["user_id"])
        consent = Consent.objects.get(patient=patient)
        assert (consent.kind, consent.version, consent.withdrawn_at) == ("privacy_notice", "1", None)
        assert AccessLog.objects.filter(action="consent.accept", patient_id=patient.pk).count() == 1
    client = APIClient(HTTP_HOST="alpha.localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {joined.json()['access']}")
    assert _diary_put(client, patient).status_code == 201


# --- Without consent, nothing but the account ------------------------------------------------------


@pytest.fixture
def unconsented(clinic_a: Clinic) -> tuple[APIClient, Patient]:
    """Uma, enrolled before consent existed: an account and a record, no acceptance."""
    user = make_member("uma@example.com", clinic_a, "patient", "Uma")
    with tenant_context(clinic_a):
        patient = PatientFactory(user_id=user.pk, display_name="Uma P.", consented=False)
        rx = PrescriptionFactory(patient=patient)
    patient.rx = rx  # type: ignore[attr-defined]
    return authed_client(user, clinic_a), patient


def test_without_consent_no_health_data_is_stored(
    unconsented: tuple[APIClient, Patient], clinic_a: Clinic
) -> None:
    client, patient = unconsented
    today = str(patient.local_today())
    writes = [
        client.put(f"/api/v1/me/diary/{today}/", {"wheals": 1, "itch": 2}, format="json"),
        client.post(
            "/api/v1/me/doses/",
            {"id": str(uuid.uuid4()), "prescription": str(patient.rx.pk), "date": today, "status": "taken"},  # type: ignore[attr-defined]
            format="json",
        ),
        client.post("/api/v1/me/questionnaires/uct/", {"answers": {"items": [2, 2, 2, 2]}}, format="json"),
        client.post(
            "/api/v1/sync/push/",
            {"client_id": str(uuid.uuid4()), "schema_version": 1, "mutations": []},
            format="json",
            HTTP_X_SCHEMA_VERSION="1",
        ),
        client.post("/api/v1/me/reminders/", {"kind": "diary", "local_time": "20:00"}, format="json"),
    ]
    assert [(w.status_code, w.json()["code"]) for w in writes] == [(403, "consent_required")] * 5
    assert writes[0].json()["detail"] == (
        "You have not agreed to the clinic's privacy notice: nothing is stored until you do."
    )
    assert (writes[0].json()["consent_status"], writes[0].json()["privacy_notice_version"]) == ("none", 1)
    with tenant_context(clinic_a):
        assert not DiaryEntry.objects.exists()
        assert not DoseLog.objects.exists()
        assert not QuestionnaireResponse.objects.exists()
    # Reading, the account's settings, asking for deletion and the consent itself stay open.
    assert client.get("/api/v1/me/diary/").status_code == 200
    assert client.patch("/api/v1/me/profile/", {"locale": "de"}, format="json").status_code == 200
    assert client.post("/api/v1/me/deletion-request/", {"reason": ""}, format="json").status_code == 202
    state = client.get("/api/v1/me/consent/").json()
    assert (state["status"], state["version"], state["notice"]["version"], state["history"]) == (
        "none",
        None,
        1,
        [],
    )
    accepted = client.post("/api/v1/me/consent/", {"version": 1}, format="json")
    assert (accepted.status_code, accepted.json()["status"]) == (200, "given")
    assert _diary_put(client, patient).status_code == 201


def test_a_withdrawal_stops_new_writes_keeps_the_record_and_the_clinic_sees_it(
    request: pytest.FixtureRequest,
    alice_client: APIClient,
    alice_patient: Patient,
    team: CareTeam,
    clinic_a: Clinic,
) -> None:
    assert _diary_put(alice_client, alice_patient).status_code == 201
    withdrawn = alice_client.post("/api/v1/me/consent/withdraw/")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["withdrawn_at"] is not None
    refused = alice_client.put(
        f"/api/v1/me/diary/{alice_patient.local_today() - timedelta(days=1)}/",
        {"wheals": 3, "itch": 3},
        format="json",
    )
    assert (refused.status_code, refused.json()["code"], refused.json()["consent_status"]) == (
        403,
        "consent_required",
        "withdrawn",
    )
    with tenant_context(clinic_a):
        assert DiaryEntry.objects.filter(patient=alice_patient).count() == 1  # what was recorded stays
        assert AccessLog.objects.filter(action="consent.withdraw", patient_id=alice_patient.pk).count() == 1
    again = alice_client.post("/api/v1/me/consent/withdraw/")
    assert (again.status_code, again.json()["code"]) == (409, "consent_not_given")
    unknown = alice_client.post("/api/v1/me/consent/withdraw/", {"reason": "x"}, format="json")
    assert (unknown.status_code, list(unknown.json()["errors"])) == (400, ["reason"])
    # The clinic sees it: on the patient's page and in the list.
    doctor = client_for(request, "dr_bob")
    detail = doctor.get(f"/api/v1/portal/patients/{alice_patient.pk}/").json()
    assert (detail["consent"]["status"], detail["consent"]["version"]) == ("withdrawn", 1)
    assert [r["consent"] for r in doctor.get("/api/v1/portal/patients/").json()["results"]] == ["withdrawn"]
    # The export carries the acceptance, its withdrawal and the text accepted.
    export = alice_client.get("/api/v1/me/export/").json()
    assert [(c["kind"], c["version"], c["withdrawn_at"] is not None) for c in export["consents"]] == [
        ("privacy_notice", "1", True)
    ]
    assert [n["version"] for n in export["privacy_notices"]] == [1]
    assert export["privacy_notices"][0]["texts"]["en"].startswith("Privacy notice")
    # Accepting again opens writes again, and the history keeps both acceptances.
    assert alice_client.post("/api/v1/me/consent/", {"version": 1}, format="json").json()["status"] == "given"
    assert _diary_put(alice_client, alice_patient).status_code == 200
    history = alice_client.get("/api/v1/me/consent/").json()["history"]
    assert [(h["version"], h["withdrawn_at"] is None) for h in history] == [(1, False), (1, True)]


# --- New versions ---------------------------------------------------------------------------------


def test_a_new_version_keeps_consents_unless_it_requires_reacceptance(
    request: pytest.FixtureRequest, alice_client: APIClient, alice_patient: Patient, carol: User
) -> None:
    clarified = _publish(request)
    assert (clarified.status_code, clarified.json()["version"], clarified.json()["published_by_id"]) == (
        201,
        2,
        str(carol.pk),
    )
    assert alice_client.get("/api/v1/me/consent/").json()["status"] == "given"
    assert _diary_put(alice_client, alice_patient).status_code == 201
    # Only the current version can be accepted: the patient reads what they agree to.
    stale = alice_client.post("/api/v1/me/consent/", {"version": 1}, format="json")
    assert (stale.status_code, stale.json()["code"], list(stale.json()["errors"])) == (
        400,
        "privacy_notice_outdated",
        ["version"],
    )
    material = _publish(request, requires_reacceptance=True)
    assert material.json()["version"] == 3
    state = alice_client.get("/api/v1/me/consent/").json()
    assert (state["status"], state["version"], state["required_version"]) == ("outdated", 1, 3)
    refused = _diary_put(alice_client, alice_patient)
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_required")
    assert refused.json()["detail"].startswith("Your clinic published version 3 of its privacy notice")
    assert alice_client.post("/api/v1/me/consent/", {"version": 3}, format="json").json()["status"] == "given"
    assert _diary_put(alice_client, alice_patient).status_code == 200
    listed = client_for(request, "carol").get("/api/v1/admin/privacy-notices/").json()
    assert [(n["version"], n["requires_reacceptance"]) for n in listed] == [(3, True), (2, False), (1, False)]
    assert listed[-1]["published_by_id"] is None


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ({"en": "Only English."}, "Give the notice in every language the patient app speaks; missing: de."),
        ({"en": "x", "de": "  "}, "Give the notice in every language the patient app speaks; missing: de."),
        ({"en": "x", "de": "y", "fr": "z"}, "Unknown language 'fr': the patient app speaks en, de."),
        ({"en": "x", "de": "bad\x00text"}, None),
        ("not an object", None),
    ],
)
def test_publishing_refuses_a_notice_not_readable_in_every_language(
    request: pytest.FixtureRequest, carol: User, clinic_a: Clinic, texts: object, message: str | None
) -> None:
    response = client_for(request, "carol").post(
        "/api/v1/admin/privacy-notices/", {"texts": texts}, format="json"
    )
    assert response.status_code == 400
    assert [field.split(".")[0] for field in response.json()["errors"]] == ["texts"]
    if message:
        assert response.json()["errors"]["texts"] == [message]
    with tenant_context(clinic_a):
        assert PrivacyNotice.objects.count() == 1


@pytest.mark.parametrize(
    ("persona", "status"),
    [("anonymous", 401), ("alice", 403), ("dr_bob", 403), ("mallory", 401), ("carol", 201)],
)
def test_only_the_clinics_admins_publish(
    request: pytest.FixtureRequest,
    alice_patient: Patient,
    dr_bob: User,
    carol: User,
    clinic_a: Clinic,
    persona: str,
    status: int,
) -> None:
    response = client_for(request, persona).post(
        "/api/v1/admin/privacy-notices/", {"texts": TEXTS}, format="json"
    )
    assert response.status_code == status
    with tenant_context(clinic_a):
        assert PrivacyNotice.objects.count() == (2 if status == 201 else 1)


@pytest.mark.parametrize(
    ("persona", "status"), [("anonymous", 401), ("dr_bob", 403), ("carol", 403), ("mallory", 401)]
)
def test_only_patients_hold_a_consent(
    request: pytest.FixtureRequest,
    alice_patient: Patient,
    dr_bob: User,
    carol: User,
    persona: str,
    status: int,
) -> None:
    client = client_for(request, persona)
    assert client.get("/api/v1/me/consent/").status_code == status
    assert client.post("/api/v1/me/consent/withdraw/").status_code == status


def test_one_patients_withdrawal_leaves_another_patients_consent(
    alice_client: APIClient, alice_patient: Patient, dave: User, clinic_a: Clinic
) -> None:
    assert alice_client.post("/api/v1/me/consent/withdraw/").status_code == 200
    dave_client = authed_client(dave, clinic_a)
    assert dave_client.get("/api/v1/me/consent/").json()["status"] == "given"
    with tenant_context(clinic_a):
        dave_patient = Patient.objects.get(user_id=dave.pk)
    written = dave_client.put(
        f"/api/v1/me/diary/{dave_patient.local_today()}/am/", {"wheals": 1, "itch": 1}, format="json"
    )
    assert written.status_code == 201  # Dave keeps twice-daily entries
