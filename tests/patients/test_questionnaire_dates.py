"""Questionnaires follow the diary's late-entry window (issue 14, finding 16): a period that
ends in the future, or further back than the clinic's window, is refused, by the API and by
sync alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from patients.models import Patient, QuestionnaireResponse
from tenants.models import Clinic
from tests.factories import QuestionnaireResponseFactory
from tests.sync.test_sync import push

pytestmark = pytest.mark.django_db

UCT = {"items": [3, 3, 3, 3]}


def answer_uct(client: APIClient, **body: object):  # noqa: ANN201
    return client.post("/api/v1/me/questionnaires/uct/", {"answers": UCT, **body}, format="json")


def test_a_questionnaire_backdated_past_the_late_entry_window_is_refused(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    eight_days_ago = alice_patient.local_today() - timedelta(days=clinic_a.diary_late_entry_days + 1)
    response = answer_uct(alice_client, period_end=str(eight_days_ago))
    assert response.status_code == 400
    assert (response.json()["code"], list(response.json()["errors"])) == (
        "questionnaire_too_late",
        ["period_end"],
    )
    with tenant_context(clinic_a):
        assert not QuestionnaireResponse.objects.exists()


def test_a_questionnaire_dated_year_one_is_refused_naming_the_period_end(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    response = answer_uct(alice_client, period_end="0001-01-01")
    assert (response.status_code, list(response.json()["errors"])) == (400, ["period_end"])
    with tenant_context(clinic_a):
        assert not QuestionnaireResponse.objects.exists()


def test_a_questionnaire_ending_tomorrow_is_refused(alice_client: APIClient, alice_patient: Patient) -> None:
    tomorrow = alice_patient.local_today() + timedelta(days=1)
    response = answer_uct(alice_client, period_end=str(tomorrow))
    assert (response.status_code, response.json()["code"]) == (400, "future_date")


def test_a_questionnaire_at_the_edge_of_the_window_is_recorded(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    edge = alice_patient.local_today() - timedelta(days=clinic_a.diary_late_entry_days)
    response = answer_uct(alice_client, period_end=str(edge))
    assert (response.status_code, response.json()["period_end"]) == (201, str(edge))


def test_a_replayed_questionnaire_is_answered_after_its_window_has_passed(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """An offline device that retries after the window closed gets its stored answer back."""
    response_id = uuid.uuid4()
    with tenant_context(clinic_a):
        QuestionnaireResponseFactory(
            id=response_id,
            patient=alice_patient,
            instrument="uct",
            answers=UCT,
            score=12,
            period_end=alice_patient.local_today() - timedelta(days=30),
        )
    replay = answer_uct(
        alice_client, id=str(response_id), period_end=str(alice_patient.local_today() - timedelta(days=30))
    )
    assert (replay.status_code, replay.json()["id"]) == (200, str(response_id))


def test_sync_refuses_a_backdated_questionnaire_and_applies_the_rest_of_the_batch(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    today = alice_patient.local_today()
    old, fresh = uuid.uuid4(), uuid.uuid4()

    def questionnaire(mutation_id: int, record_id: uuid.UUID, period_end: str) -> dict:
        return {
            "mutation_id": mutation_id,
            "table": "questionnaire_response",
            "id": str(record_id),
            "op": "upsert",
            "fields": {"instrument": "uct", "answers": UCT, "period_end": period_end},
        }

    response = push(
        alice_client,
        uuid.uuid4(),
        [questionnaire(1, old, "0001-01-01"), questionnaire(2, fresh, str(today))],
    )
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert (results[0]["status"], results[0]["reason"]["code"], results[0]["reason"]["field"]) == (
        "rejected",
        "questionnaire_too_late",
        "period_end",
    )
    assert results[1]["status"] == "applied"
    with tenant_context(clinic_a):
        assert list(QuestionnaireResponse.objects.values_list("id", flat=True)) == [fresh]
