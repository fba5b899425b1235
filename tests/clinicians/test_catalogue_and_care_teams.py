"""Issue 22, parts 4 and 5: the medication catalogue is readable (nothing to guess), a
prescription states only what differs from its entry, and care teams are shown with names and
roles to each persona within what they may see."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts.models import User
from clinicians.models import CareTeam, Clinician
from patients.models import AccessLog, Medication, Patient, Prescription
from tenants.models import Clinic
from tests.clinicians.conftest import client_for
from tests.conftest import authed_client, make_member
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


# --- The catalogue ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [("anonymous", 401), ("alice", 403), ("mallory", 401), ("erin", 200), ("dr_bob", 200), ("carol", 200)],
)
def test_the_catalogue_is_for_the_clinics_staff(
    request: pytest.FixtureRequest, alice_patient: Patient, erin: User, persona: str, status: int
) -> None:
    assert client_for(request, persona).get("/api/v1/portal/medications/").status_code == status


def test_the_catalogue_lists_every_entry_with_its_defaults_in_step_order(
    request: pytest.FixtureRequest, dr_bob: User, clinic_a: Clinic
) -> None:
    body = client_for(request, "dr_bob").get("/api/v1/portal/medications/").json()
    with tenant_context(clinic_a):
        assert sorted(row["code"] for row in body) == sorted(
            Medication.objects.values_list("code", flat=True)
        )
    assert body[0] == {
        "code": "bilastine-20",
        "name": "Bilastine 20 mg once daily (standard dose)",
        "drug": "bilastine",
        "strength": "20 mg",
        "route": "oral",
        "frequency_kind": "n_per_day",
        "frequency_value": 1,
        "guideline_step": 1,
        "is_rescue": False,
    }
    steps = [row["guideline_step"] for row in body]
    stepped = [s for s in steps if s is not None]
    assert stepped == sorted(stepped) and steps[len(stepped) :] == [None] * (len(steps) - len(stepped))
    assert body[-1]["code"] == "prednisolone-rescue"  # a rescue course comes last


def test_a_prescription_naming_only_the_medication_takes_the_catalogue_entry(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient
) -> None:
    path = f"/api/v1/portal/patients/{alice_patient.pk}/prescriptions/"
    response = client_for(request, "dr_bob").post(path, {"medication": "omalizumab-300-q4w"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {
        k: body[k] for k in ("medication", "dose", "frequency_kind", "frequency_value", "guideline_step")
    } == {
        "medication": "omalizumab-300-q4w",
        "dose": "300 mg",
        "frequency_kind": "every_n_days",
        "frequency_value": 28,
        "guideline_step": 3,
    }
    assert (body["start"], body["end"]) == (str(alice_patient.local_today()), None)


def test_a_prescription_states_what_differs_and_keeps_the_rest(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient
) -> None:
    path = f"/api/v1/portal/patients/{alice_patient.pk}/prescriptions/"
    response = client_for(request, "dr_bob").post(
        path, {"medication": "cetirizine-10", "frequency_value": 2, "start": "2026-02-02"}, format="json"
    )
    body = response.json()
    assert (body["dose"], body["frequency_kind"], body["frequency_value"], body["guideline_step"]) == (
        "10 mg",
        "n_per_day",
        2,
        1,
    )
    assert body["start"] == "2026-02-02"
    as_needed = client_for(request, "dr_bob").post(
        path, {"medication": "cetirizine-10", "frequency_kind": "prn"}, format="json"
    )
    assert (as_needed.json()["frequency_kind"], as_needed.json()["frequency_value"]) == ("prn", None)
    # Another kind of frequency does not borrow the catalogue's n (1 a day is not every 1 days).
    other_kind = client_for(request, "dr_bob").post(
        path, {"medication": "cetirizine-10", "frequency_kind": "every_n_days"}, format="json"
    )
    assert (other_kind.status_code, other_kind.json()["errors"]) == (
        400,
        {"frequency_value": ["Give how often."]},
    )


def test_a_medication_without_a_guideline_step_needs_one(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, clinic_a: Clinic
) -> None:
    path = f"/api/v1/portal/patients/{alice_patient.pk}/prescriptions/"
    missing = client_for(request, "dr_bob").post(path, {"medication": "dupilumab-300-q2w"}, format="json")
    assert (missing.status_code, missing.json()["code"], list(missing.json()["errors"])) == (
        400,
        "validation_error",
        ["guideline_step"],
    )
    with tenant_context(clinic_a):
        assert not Prescription.objects.exists()
    given = client_for(request, "dr_bob").post(
        path, {"medication": "dupilumab-300-q2w", "guideline_step": 4}, format="json"
    )
    assert (given.status_code, given.json()["guideline_step"], given.json()["frequency_value"]) == (
        201,
        4,
        14,
    )


def test_an_unknown_medication_points_at_the_catalogue(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient
) -> None:
    path = f"/api/v1/portal/patients/{alice_patient.pk}/prescriptions/"
    response = client_for(request, "dr_bob").post(path, {"medication": "Cetirizine"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "unknown_medication")
    assert response.json()["errors"] == {
        "medication": ["Not in the medication catalogue (GET /api/v1/portal/medications/ lists its codes)."]
    }


# --- Care teams ---------------------------------------------------------------------------------


@pytest.fixture
def full_team(team: CareTeam, erin: User, clinic_a: Clinic, alice_patient: Patient) -> CareTeam:
    """Alice's team: dr_bob (primary, titled Prof.) and carol the admin (secondary); erin's
    assignment ended (she is not on the team any more)."""
    with tenant_context(clinic_a):
        Clinician.objects.filter(pk=team.clinician_id).update(title="Prof.")
        carol_user = User.objects.get(email="carol@example.com")
        CareTeam.objects.create(
            clinician=Clinician.objects.create(user_id=carol_user.pk),
            patient=alice_patient,
            role="secondary",
            since=date(2021, 1, 1),
        )
        CareTeam.objects.create(
            clinician=Clinician.objects.create(user_id=erin.pk),
            patient=alice_patient,
            since=date(2020, 1, 1),
            until=date(2020, 6, 1),
        )
    return team


def test_a_clinician_on_the_team_sees_the_team_with_names_and_roles(
    request: pytest.FixtureRequest, carol: User, full_team: CareTeam, alice_patient: Patient, dr_bob: User
) -> None:
    response = client_for(request, "dr_bob").get(f"/api/v1/portal/patients/{alice_patient.pk}/care-team/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "clinician_user_id": str(dr_bob.pk),
            "name": "Prof. Dr Bob",
            "title": "Prof.",
            "email": "bob@example.com",
            "staff_role": "clinician",
            "care_role": "primary",
            "since": "2020-01-01",
        },
        {
            "clinician_user_id": str(carol.pk),
            "name": "Carol Admin",
            "title": "",
            "email": "carol@example.com",
            "staff_role": "clinic_admin",
            "care_role": "secondary",
            "since": "2021-01-01",
        },
    ]
    detail = client_for(request, "dr_bob").get(f"/api/v1/portal/patients/{alice_patient.pk}/").json()
    assert detail["care_team"] == response.json()


@pytest.mark.parametrize(
    ("persona", "status"),
    [("anonymous", 401), ("alice", 403), ("mallory", 401), ("erin", 404), ("dr_bob", 200), ("carol", 200)],
)
def test_the_portal_care_team_persona_matrix(
    request: pytest.FixtureRequest,
    carol: User,
    full_team: CareTeam,
    alice_patient: Patient,
    clinic_a: Clinic,
    persona: str,
    status: int,
) -> None:
    response = client_for(request, persona).get(f"/api/v1/portal/patients/{alice_patient.pk}/care-team/")
    assert response.status_code == status
    if persona == "erin":  # outside the team (her assignment ended): refused, and audited
        with tenant_context(clinic_a):
            refused = AccessLog.objects.get(action="portal.care_team")
        assert (refused.allowed, refused.patient_id) == (False, alice_patient.pk)


def test_the_patient_sees_her_own_team_by_name_and_role_only(
    alice_client,
    carol: User,
    full_team: CareTeam,
    dave: User,
    clinic_a: Clinic,  # noqa: ANN001
) -> None:
    response = alice_client.get("/api/v1/me/care-team/")
    assert response.status_code == 200
    assert response.json() == [
        {"name": "Prof. Dr Bob", "care_role": "primary", "since": "2020-01-01"},
        {"name": "Carol Admin", "care_role": "secondary", "since": "2021-01-01"},
    ]
    assert b"@" not in response.content  # no staff email reaches a patient
    # Dave, another patient of the clinic, has no team: he sees none of Alice's.
    assert authed_client(dave, clinic_a).get("/api/v1/me/care-team/").json() == []


@pytest.mark.parametrize(
    ("persona", "status"), [("anonymous", 401), ("mallory", 401), ("dr_bob", 403), ("carol", 403)]
)
def test_only_patients_read_their_own_care_team(
    request: pytest.FixtureRequest, alice_patient: Patient, carol: User, persona: str, status: int
) -> None:
    assert client_for(request, persona).get("/api/v1/me/care-team/").status_code == status


def test_a_clinician_without_a_name_is_not_shown_by_email(
    alice_client,
    alice_patient: Patient,
    clinic_a: Clinic,  # noqa: ANN001
) -> None:
    nameless = make_member("nameless@example.com", clinic_a, "clinician")
    User.objects.filter(pk=nameless.pk).update(full_name="")
    with tenant_context(clinic_a):
        CareTeam.objects.create(
            clinician=Clinician.objects.create(user_id=nameless.pk),
            patient=alice_patient,
            since=date(2020, 1, 1),
        )
    assert alice_client.get("/api/v1/me/care-team/").json() == [
        {"name": "Clinician", "care_role": "primary", "since": "2020-01-01"}
    ]


def test_the_admin_list_names_clinicians_patients_and_roles(
    request: pytest.FixtureRequest, carol: User, full_team: CareTeam, alice_patient: Patient, erin: User
) -> None:
    rows = client_for(request, "carol").get(f"/api/v1/admin/care-teams/?patient={alice_patient.pk}").json()
    assert rows[0]["since"] == "2021-01-01"  # newest first
    assert sorted(
        (r["clinician_name"], r["clinician_role"], r["role"], r["patient_name"], r["active"], r["until"])
        for r in rows
    ) == [
        ("Carol Admin", "clinic_admin", "secondary", "Alice P.", True, None),
        ("Dr Erin", "clinician", "primary", "Alice P.", False, "2020-06-01"),
        ("Prof. Dr Bob", "clinician", "primary", "Alice P.", True, None),
    ]
    assert {r["clinician_email"] for r in rows} == {
        "carol@example.com",
        "bob@example.com",
        "erin@example.com",
    }


def test_the_admin_list_costs_the_same_queries_for_more_assignments(
    request: pytest.FixtureRequest, carol: User, full_team: CareTeam, clinic_a: Clinic
) -> None:
    admin = client_for(request, "carol")
    admin.get("/api/v1/admin/care-teams/")  # warm caches (membership, host)
    with CaptureQueriesContext(connection) as few:
        assert len(admin.get("/api/v1/admin/care-teams/").json()) == 3
    with tenant_context(clinic_a):
        for n in range(5):
            user = make_member(f"doc{n}@example.com", clinic_a, "clinician")
            CareTeam.objects.create(
                clinician=Clinician.objects.create(user_id=user.pk),
                patient=PatientFactory(),
                since=date(2020, 1, 1),
            )
    with CaptureQueriesContext(connection) as many:
        assert len(admin.get("/api/v1/admin/care-teams/").json()) == 8
    assert len(many) == len(few)


def test_a_clinician_asking_the_admin_list_is_pointed_to_the_portal(
    request: pytest.FixtureRequest, team: CareTeam, alice_patient: Patient, clinic_a: Clinic
) -> None:
    response = client_for(request, "dr_bob").get(f"/api/v1/admin/care-teams/?patient={alice_patient.pk}")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert "/api/v1/portal/patients/{id}/care-team/" in response.json()["detail"]
    with tenant_context(clinic_a):  # refused and audited as before
        assert AccessLog.objects.filter(allowed=False, actor_id=team.clinician.user_id).exists()
