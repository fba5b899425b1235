"""Every date the portal accepts has a floor (issue 14, finding 12): dates before 2000-01-01
(birth dates before 1900-01-01) are refused with 400 problem+json naming the parameter; year 1
used to overflow the timeline's and the scores' date arithmetic into a 500."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from accounts.models import User
from clinicians.models import CareTeam
from patients.models import Patient, Prescription
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.factories import PrescriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rx(alice_patient: Patient, clinic_a: Clinic) -> Prescription:
    with tenant_context(clinic_a):
        return PrescriptionFactory(
            patient=alice_patient, medication_id="cetirizine-10", start=alice_patient.local_today()
        )


def _requests(patient: Patient, rx: Prescription, day: str) -> list[tuple[str, str, dict, list[str]]]:
    p = f"/api/v1/portal/patients/{patient.pk}"
    prescription = {"medication": "cetirizine-10", "dose": "10 mg", "guideline_step": 1}
    return [
        ("get", f"{p}/timeline/", {"from": day}, ["from"]),
        ("get", f"{p}/timeline/", {"to": day}, ["to"]),
        ("get", f"{p}/scores/uas7/", {"end": day}, ["end"]),
        ("post", f"{p}/prescriptions/", {**prescription, "start": day}, ["start"]),
        ("post", f"{p}/prescriptions/", {**prescription, "start": "2026-01-05", "end": day}, ["end"]),
        ("post", f"/api/v1/portal/prescriptions/{rx.pk}/stop/", {"end": day}, ["end"]),
        ("post", f"{p}/reports/", {"week_start": day}, ["week_start"]),
    ]


@pytest.mark.parametrize("day", ["0001-01-01", "0001-01-08", "1999-12-31"])
@pytest.mark.parametrize("case", range(7))
def test_a_portal_date_before_2000_is_refused_naming_the_parameter(
    team: CareTeam,
    alice_patient: Patient,
    rx: Prescription,
    dr_bob: User,
    clinic_a: Clinic,
    day: str,
    case: int,
) -> None:
    method, path, body, fields = _requests(alice_patient, rx, day)[case]
    client = authed_client(dr_bob, clinic_a)
    response = client.get(path, body) if method == "get" else client.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert (response.json()["code"], sorted(response.json()["errors"])) == ("validation_error", fields)


@pytest.mark.parametrize("case", range(3))
def test_a_portal_read_far_in_the_future_is_not_a_server_error(
    team: CareTeam, alice_patient: Patient, rx: Prescription, dr_bob: User, clinic_a: Clinic, case: int
) -> None:
    _, path, params, _ = _requests(alice_patient, rx, "9999-12-31")[case]
    response = authed_client(dr_bob, clinic_a).get(path, params)
    if params == {"from": "9999-12-31"}:  # `to` defaults to today, which is before it
        assert (response.status_code, response.json()["code"]) == (400, "invalid_range")
    else:
        assert response.status_code == 200, response.content


def test_a_birth_date_before_1900_is_refused_and_one_from_1950_accepted(
    dr_bob: User, clinic_a: Clinic
) -> None:
    client = authed_client(dr_bob, clinic_a)
    ancient = client.post(
        "/api/v1/portal/patients/", {"display_name": "Old", "date_of_birth": "0001-01-01"}, format="json"
    )
    assert (ancient.status_code, list(ancient.json()["errors"])) == (400, ["date_of_birth"])
    born_1950 = client.post(
        "/api/v1/portal/patients/", {"display_name": "Grace", "date_of_birth": "1950-06-01"}, format="json"
    )
    assert born_1950.status_code == 201, born_1950.json()


def test_an_access_log_cursor_before_2000_is_refused_naming_it(
    alice_patient: Patient, carol: User, clinic_a: Clinic
) -> None:
    response = authed_client(carol, clinic_a).get(
        "/api/v1/admin/access-log/", {"patient": str(alice_patient.pk), "before": "0001-01-01T00:00:00-05:00"}
    )
    assert (response.status_code, list(response.json()["errors"])) == (400, ["before"])
