"""Every date the patient's API accepts has a floor (issue 14, finding 12): dates before
2000-01-01 are refused with 400 problem+json naming the parameter (year 1 used to overflow
date arithmetic into a 500), and dates far in the future never answer 500 either."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from patients.models import Patient, Prescription
from tenants.models import Clinic
from tests.factories import PrescriptionFactory
from tests.sync.test_sync import push

pytestmark = pytest.mark.django_db

ANCIENT = ("0001-01-01", "0001-01-08", "1999-12-31")


@pytest.fixture
def rx(alice_patient: Patient, clinic_a: Clinic) -> Prescription:
    with tenant_context(clinic_a):
        return PrescriptionFactory(
            patient=alice_patient,
            medication_id="cetirizine-10",
            start=alice_patient.local_today() - timedelta(days=3),
        )


def _reads(day: str) -> list[tuple[str, dict[str, str], list[str]]]:
    return [
        ("/api/v1/me/diary/", {"from": day}, ["from"]),
        ("/api/v1/me/diary/", {"to": day}, ["to"]),
        ("/api/v1/me/diary/", {"from": day, "to": day}, ["from", "to"]),
        ("/api/v1/me/scores/uas7/", {"end": day}, ["end"]),
        ("/api/v1/me/scores/aas/", {"end": day}, ["end"]),
    ]


@pytest.mark.parametrize("day", ANCIENT)
@pytest.mark.parametrize("case", range(5))
def test_a_read_with_a_date_before_2000_is_refused_naming_the_parameter(
    alice_client: APIClient, alice_patient: Patient, day: str, case: int
) -> None:
    path, params, fields = _reads(day)[case]
    response = alice_client.get(path, params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert (response.json()["code"], sorted(response.json()["errors"])) == ("validation_error", fields)


@pytest.mark.parametrize("case", range(5))
def test_a_read_with_a_date_far_in_the_future_is_not_a_server_error(
    alice_client: APIClient, alice_patient: Patient, case: int
) -> None:
    path, params, _ = _reads("9999-12-31")[case]
    response = alice_client.get(path, params)
    if params == {"from": "9999-12-31"}:  # `to` defaults to today, which is before it
        assert (response.status_code, response.json()["code"]) == (400, "invalid_range")
    else:
        assert response.status_code == 200, response.content


def test_the_earliest_accepted_day_reads_fine(alice_client: APIClient, alice_patient: Patient) -> None:
    assert (
        alice_client.get("/api/v1/me/diary/", {"from": "2000-01-01", "to": "2000-12-31"}).status_code == 200
    )
    assert alice_client.get("/api/v1/me/scores/uas7/", {"end": "2000-01-01"}).status_code == 200
    assert alice_client.get("/api/v1/me/scores/aas/", {"end": "2000-01-01"}).status_code == 200


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31"])
def test_a_diary_day_before_2000_in_the_path_is_refused_naming_the_day(
    alice_client: APIClient, alice_patient: Patient, day: str
) -> None:
    put = alice_client.put(f"/api/v1/me/diary/{day}/", {"wheals": 1, "itch": 1}, format="json")
    delete = alice_client.delete(f"/api/v1/me/diary/{day}/")
    assert [(r.status_code, list(r.json()["errors"])) for r in (put, delete)] == [(400, ["day"])] * 2


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_dose_or_questionnaire_dated_out_of_range_is_refused_naming_the_date(
    alice_client: APIClient, rx: Prescription, day: str
) -> None:
    dose = alice_client.post(
        "/api/v1/me/doses/",
        {"id": str(uuid.uuid4()), "prescription": str(rx.pk), "date": day, "status": "taken"},
        format="json",
    )
    questionnaire = alice_client.post(
        "/api/v1/me/questionnaires/uct/",
        {"answers": {"items": [1, 1, 1, 1]}, "period_end": day},
        format="json",
    )
    assert (dose.status_code, list(dose.json()["errors"])) == (400, ["date"])
    assert (questionnaire.status_code, list(questionnaire.json()["errors"])) == (400, ["period_end"])


@pytest.mark.parametrize(
    "instant", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00-05:00", "9999-12-31T23:59:59-12:00"]
)
def test_a_diary_or_dose_time_out_of_range_is_refused_naming_the_field(
    alice_client: APIClient, alice_patient: Patient, rx: Prescription, instant: str
) -> None:
    today = alice_patient.local_today()
    diary = alice_client.put(
        f"/api/v1/me/diary/{today}/", {"wheals": 1, "itch": 1, "recorded_at": instant}, format="json"
    )
    dose = alice_client.post(
        "/api/v1/me/doses/",
        {
            "id": str(uuid.uuid4()),
            "prescription": str(rx.pk),
            "date": str(today),
            "status": "taken",
            "taken_at": instant,
        },
        format="json",
    )
    assert (diary.status_code, list(diary.json()["errors"])) == (400, ["recorded_at"])
    assert (dose.status_code, list(dose.json()["errors"])) == (400, ["taken_at"])


def test_sync_refuses_a_dose_taken_in_year_one_naming_the_field_and_logs_the_next(
    alice_client: APIClient, alice_patient: Patient, rx: Prescription
) -> None:
    def dose(mutation_id: int, taken_at: str) -> dict:
        return {
            "mutation_id": mutation_id,
            "table": "dose_log",
            "id": str(uuid.uuid4()),
            "op": "upsert",
            "fields": {
                "prescription": str(rx.pk),
                "date": str(alice_patient.local_today()),
                "status": "taken",
                "taken_at": taken_at,
            },
        }

    response = push(
        alice_client, uuid.uuid4(), [dose(1, "0001-01-01T00:00:00-05:00"), dose(2, "2026-11-30T08:00:00Z")]
    )
    results = response.json()["results"]
    assert [(r["status"], (r.get("reason") or {}).get("field")) for r in results] == [
        ("rejected", "taken_at"),
        ("applied", None),
    ]
