"""Scores, questionnaires, medications and doses, summary, export and deletion request."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from patients import scores, selectors
from patients.models import AccessLog, DiaryEntry, DoseLog, Patient, Prescription
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.factories import DiaryEntryFactory, DoseLogFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db


def seed_week(patient: Patient, end: date, values: list[int | None]) -> None:
    """Diary rows for the 7 days ending on `end` (None = no entry)."""
    for i, value in enumerate(values):
        if value is not None:
            DiaryEntryFactory(
                patient=patient, day=end - timedelta(days=6 - i), wheals=value // 2, itch=value - value // 2
            )


@pytest.fixture
def in_alpha(clinic_a: Clinic):  # noqa: ANN201
    with tenant_context(clinic_a):
        yield
    connection.set_schema_to_public()


def test_uas7_history_per_week(alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic) -> None:
    end = alice_patient.local_today()
    with tenant_context(clinic_a):
        seed_week(alice_patient, end, [6, 6, 6, 6, 6, 6, 6])  # 42, complete
        seed_week(alice_patient, end - timedelta(days=7), [4, None, 4, 4, None, 4, 4])  # 20/5×7 = 28
        seed_week(alice_patient, end - timedelta(days=14), [1, None, None, 1, None, None, 1])  # missing
    response = alice_client.get("/api/v1/me/scores/uas7/", {"end": str(end), "weeks": 3})
    assert response.status_code == 200
    weeks = response.json()
    assert [(w["uas7"], w["method"], w["days_observed"], w["band"]) for w in weeks] == [
        (None, "missing", 3, None),
        (28.0, "prorated", 5, "severe"),
        (42.0, "complete", 7, "severe"),
    ]
    assert weeks[-1]["end"] == str(end) and weeks[-1]["start"] == str(end - timedelta(days=6))
    assert alice_client.get("/api/v1/me/scores/uas7/", {"weeks": 0}).status_code == 400
    assert alice_client.get("/api/v1/me/scores/uas7/", {"weeks": 53}).status_code == 400


def test_questionnaires_uct_and_aas(alice_client: APIClient, alice_patient: Patient) -> None:
    response_id = str(uuid.uuid4())
    uct = alice_client.post(
        "/api/v1/me/questionnaires/uct/",
        {"id": response_id, "answers": {"items": [3, 3, 3, 2]}},
        format="json",
    )
    assert uct.status_code == 201
    assert (uct.json()["score"], uct.json()["category"]) == (11, "poorly_controlled")
    replay = alice_client.post(
        "/api/v1/me/questionnaires/uct/",
        {"id": response_id, "answers": {"items": [4, 4, 4, 4]}},
        format="json",
    )
    assert replay.status_code == 200 and replay.json()["score"] == 11  # idempotent on the id
    uct7 = alice_client.post(
        "/api/v1/me/questionnaires/uct7/", {"answers": {"items": [4, 4, 4, 4]}}, format="json"
    )
    assert (uct7.json()["score"], uct7.json()["category"]) == (16, "complete_control")
    aas = alice_client.post(
        "/api/v1/me/questionnaires/aas/",
        {"answers": {"angioedema": True, "items": [1, 2, 3, 0, 1]}},
        format="json",
    )
    assert aas.json()["score"] == 7
    assert sorted(r["instrument"] for r in alice_client.get("/api/v1/me/scores/uct/").json()) == [
        "uct",
        "uct7",
    ]
    assert len(alice_client.get("/api/v1/me/questionnaires/").json()) == 3


@pytest.mark.parametrize(
    ("instrument", "answers", "status", "code"),
    [
        ("uct", {"items": [1, 2, 3]}, 400, "invalid_answers"),
        ("uct", {"items": [1, 2, 3, 5]}, 400, "invalid_answers"),
        ("uct", {"items": "1234"}, 400, "invalid_answers"),
        ("uct", {"items": [1, 2, 3, 4], "extra": 1}, 400, "invalid_answers"),
        ("uct", [1, 2, 3, 4], 400, "invalid_answers"),
        ("aas", {"angioedema": True, "items": [1]}, 400, "invalid_answers"),
        ("aas", {"angioedema": "yes", "items": [1, 1, 1, 1, 1]}, 400, "invalid_answers"),
        ("dlqi", {"items": [1]}, 404, "unknown_instrument"),
    ],
)
def test_questionnaire_answers_are_validated_per_instrument(
    alice_client: APIClient, alice_patient: Patient, instrument: str, answers: object, status: int, code: str
) -> None:
    response = alice_client.post(
        f"/api/v1/me/questionnaires/{instrument}/", {"answers": answers}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_aas_scores_from_the_diary(alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic) -> None:
    end = alice_patient.local_today()
    with tenant_context(clinic_a):
        for i in range(7):
            angio = i in (2, 5)
            DiaryEntryFactory(
                patient=alice_patient,
                day=end - timedelta(days=i),
                wheals=1,
                itch=1,
                angioedema=angio,
                aas_items=[2, 2, 2, 2, 2] if angio else None,
            )
    body = alice_client.get("/api/v1/me/scores/aas/").json()
    assert (body["aas7"]["value"], body["aas7"]["method"]) == (20.0, "complete")
    assert body["aas28"]["method"] == "missing"


@pytest.fixture
def cetirizine(alice_patient: Patient, clinic_a: Clinic) -> Prescription:
    with tenant_context(clinic_a):
        return PrescriptionFactory(
            patient=alice_patient,
            medication_id="cetirizine-10-x2",
            start=alice_patient.local_today() - timedelta(days=40),
        )


def test_medications_show_todays_schedule_and_doses_are_idempotent(
    alice_client: APIClient, alice_patient: Patient, cetirizine: Prescription
) -> None:
    today = alice_patient.local_today()
    listing = alice_client.get("/api/v1/me/medications/").json()
    assert [(m["medication"], m["due_today"], m["logged_today"]) for m in listing] == [
        ("cetirizine-10-x2", 2, [])
    ]
    dose = {
        "id": str(uuid.uuid4()),
        "prescription": str(cetirizine.pk),
        "date": str(today),
        "status": "taken",
    }
    assert alice_client.post("/api/v1/me/doses/", dose, format="json").status_code == 201
    assert alice_client.post("/api/v1/me/doses/", dose, format="json").status_code == 200
    logged = alice_client.get("/api/v1/me/medications/").json()[0]["logged_today"]
    assert [d["id"] for d in logged] == [dose["id"]]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"status": "maybe"}, 400, "validation_error"),
        ({"prescription": str(uuid.uuid4())}, 404, "not_found"),
        ({"date": "2020-01-01"}, 400, "dose_too_late"),
        ({"status": "skipped", "taken_at": "2026-01-01T10:00:00Z"}, 400, "validation_error"),
    ],
)
def test_dose_refusals(
    alice_client: APIClient,
    alice_patient: Patient,
    cetirizine: Prescription,
    change: dict,
    status: int,
    code: str,
) -> None:
    dose = {
        "id": str(uuid.uuid4()),
        "prescription": str(cetirizine.pk),
        "date": str(alice_patient.local_today()),
        "status": "taken",
    }
    response = alice_client.post("/api/v1/me/doses/", {**dose, **change}, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_a_dose_for_tomorrow_is_refused_with_a_dose_code(
    alice_client: APIClient, alice_patient: Patient, cetirizine: Prescription
) -> None:
    dose = {
        "id": str(uuid.uuid4()),
        "prescription": str(cetirizine.pk),
        "date": str(alice_patient.local_today() + timedelta(days=1)),
        "status": "taken",
    }
    response = alice_client.post("/api/v1/me/doses/", dose, format="json")
    assert (response.status_code, response.json()["code"], response.json()["errors"]) == (
        400,
        "dose_future_date",
        {"date": [f"{dose['date']} is in the future in your time zone (Europe/Berlin)."]},
    )


def test_summary_values_match_the_score_functions(
    alice_client: APIClient, alice_patient: Patient, cetirizine: Prescription, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    with tenant_context(clinic_a):
        Patient.objects.filter(pk=alice_patient.pk).update(enrolled_at=timezone.now() - timedelta(days=60))
        seed_week(alice_patient, today, [4, 4, 4, None, 4, 4, 4])  # 24/6×7 = 28
        seed_week(alice_patient, today - timedelta(days=7), [2, 2, 2, 2, 2, 2, 2])  # 14
        for i in range(28):
            for _ in range(2 if i % 4 else 1):  # every 4th day only one of two doses
                DoseLogFactory(
                    prescription=cetirizine, scheduled_date=today - timedelta(days=i), status="taken"
                )
        alice_client.post(
            "/api/v1/me/questionnaires/uct/", {"answers": {"items": [2, 2, 2, 2]}}, format="json"
        )
    body = alice_client.get("/api/v1/me/summary/").json()
    assert (body["uas7"]["uas7"], body["uas7"]["method"], body["uas7"]["band"]) == (
        28.0,
        "prorated",
        "severe",
    )
    assert (body["previous_uas7"]["uas7"], body["change"], body["change_exceeds_mid"]) == (14.0, 14.0, True)
    assert body["last_uct"]["score"] == body["uct"]["score"] == 8
    # Today (one of two doses so far) is not over: it is not counted until covered.
    assert body["adherence_28d"] == [
        {
            "medication": "cetirizine",
            "frequency_kind": "n_per_day",
            "status": "scored",
            "eligible_days": 27,
            "covered_days": 21,
            "pdc": round(21 / 27, 4),
            "adherent": False,
            "dose_ratio": round(48 / 54, 4),
            "doses_due": 0,
            "doses_on_time": 0,
            "on_time_rate": None,
        }
    ]
    assert (body["diary_streak"], body["days_missing_last_7"]) == (3, 1)
    with tenant_context(clinic_a):
        entries = list(DiaryEntry.objects.filter(patient=alice_patient))
    direct = scores.uas7_for_week(selectors.day_scores_from(entries), today)
    assert (body["uas7"]["uas7"], body["uas7"]["days_observed"]) == (direct.uas7, direct.days_observed)


def _queries(client: APIClient, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_summary_and_diary_query_counts_do_not_grow_with_data(
    alice_client: APIClient, alice_patient: Patient, cetirizine: Prescription, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    with tenant_context(clinic_a):
        seed_week(alice_patient, today, [1, 1, 1, 1, 1, 1, 1])
    alice_client.get("/api/v1/me/summary/")  # warm the membership cache
    small = (_queries(alice_client, "/api/v1/me/summary/"), _queries(alice_client, "/api/v1/me/diary/"))
    with tenant_context(clinic_a):
        for week in range(1, 30):
            seed_week(alice_patient, today - timedelta(days=7 * week), [3, 3, 3, 3, 3, 3, 3])
        DoseLog.objects.bulk_create(
            [
                DoseLogFactory.build(
                    prescription=cetirizine, scheduled_date=today - timedelta(days=i), status="taken"
                )
                for i in range(40)
            ]
        )
    big = (
        _queries(alice_client, "/api/v1/me/summary/"),
        _queries(alice_client, "/api/v1/me/diary/?from=" + str(today - timedelta(days=200))),
    )
    assert big == small


def test_export_contains_everything_and_is_audited(
    alice_client: APIClient, alice_patient: Patient, cetirizine: Prescription, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    alice_client.put(f"/api/v1/me/diary/{today}/", {"wheals": 1, "itch": 2, "note": "mild"}, format="json")
    response = alice_client.get("/api/v1/me/export/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    document = response.json()
    assert document["patient"]["id"] == str(alice_patient.pk)
    assert [(e["day"], e["note"]) for e in document["diary"]] == [(str(today), "mild")]
    assert [p["medication_id"] for p in document["prescriptions"]] == ["cetirizine-10-x2"]
    with tenant_context(clinic_a):
        assert list(
            AccessLog.objects.filter(action="patient.export").values_list("patient_id", flat=True)
        ) == [alice_patient.pk]


def test_deletion_request_is_recorded(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    response = alice_client.post("/api/v1/me/deletion-request/", {"reason": "moving abroad"}, format="json")
    assert response.status_code == 202
    with tenant_context(clinic_a):
        assert alice_patient.deletion_requests.count() == 1
        assert AccessLog.objects.filter(action="deletion.request", patient_id=alice_patient.pk).exists()


def test_an_account_without_a_patient_record_gets_404(dr_bob: User, clinic_a: Clinic, alice: User) -> None:
    client = authed_client(alice, clinic_a)  # alice has a membership but no patient record here
    response = client.get("/api/v1/me/summary/")
    assert (response.status_code, response.json()["code"]) == (404, "no_patient_record")


def test_enrollment_creates_the_patient_record(dr_bob: User, clinic_a: Clinic) -> None:
    from tests.conftest import host_client

    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    enrolled = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {
            "code": code,
            "email": "erin@example.com",
            "password": "erin's long passphrase",
            "privacy_notice_version": 1,
        },
        format="json",
    )
    client = host_client("alpha.localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {enrolled.json()['access']}")
    profile = client.get("/api/v1/me/profile/").json()
    assert (profile["timezone"], profile["diary_mode"]) == ("Europe/Berlin", "once")
