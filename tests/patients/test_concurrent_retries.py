"""Two identical POSTs of a questionnaire or a dose (a retry racing the original, same client
id) arriving at the same time: one row, both answered with it, no 500 (issue 14, finding 17).

Real connections and real commits: both requests are held at their INSERT (behind a lock on
the clinic's sync version row, which every insert takes) after both have looked for the id and
found nothing, then released together."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django_tenants.utils import tenant_context

from accounts.models import Membership, User
from patients.models import DoseLog, Patient, QuestionnaireResponse
from tenants.models import Clinic
from tests.conftest import authed_client, make_member
from tests.factories import PatientFactory, PrescriptionFactory
from tests.waiting import wait_until
from tests.workers import database_url


@pytest.fixture
def racer(committed_db: None) -> Iterator[tuple[Clinic, User, Patient]]:
    clinic = Clinic.objects.get(slug="alpha")
    user = make_member(f"racer-{uuid.uuid4().hex[:8]}@example.com", clinic, "patient")
    with tenant_context(clinic):
        patient = PatientFactory(user_id=user.pk, display_name="Racer", timezone="Europe/Berlin")
    connection.set_schema_to_public()
    try:
        yield clinic, user, patient
    finally:
        with tenant_context(clinic):
            Patient.objects.filter(pk=patient.pk).delete()
        connection.set_schema_to_public()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()


def _waiting_on_locks(db: psycopg.Connection) -> int:
    return db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE '%%pg_advisory_xact_lock%%'"
    ).fetchone()[0]


def patient_id(user: User, clinic: Clinic) -> str:
    with tenant_context(clinic):
        return str(Patient.objects.get(user_id=user.pk).pk)


def post_twice_at_once(clinic: Clinic, user: User, path: str, body: dict[str, Any]) -> list[Any]:
    """POST the same body from two threads whose INSERTs meet; returns both responses."""
    responses: list[Any] = [None, None]

    def send(index: int) -> None:
        try:
            responses[index] = authed_client(user, clinic).post(path, body, format="json")
        except Exception as exc:  # the test client re-raises a view's exception
            responses[index] = exc
        finally:
            connections.close_all()

    with psycopg.connect(database_url(), autocommit=False) as blocker:
        blocker.execute(f'SET search_path TO "{clinic.schema_name}"')
        # Both requests queue on the patient's write lock (patients.services.patient_write_lock),
        # then run one after the other: the second finds the first one's row.
        blocker.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"patient-write:{patient_id(user, clinic)}"],
        )
        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        with psycopg.connect(database_url(), autocommit=True) as watcher:
            wait_until(lambda: _waiting_on_locks(watcher) >= 2, 20, interval=0.05)
            assert _waiting_on_locks(watcher) == 2, "both requests should be held at the patient's write lock"
        blocker.rollback()
    for thread in threads:
        thread.join(timeout=30)
    connection.set_schema_to_public()
    return responses


def test_two_identical_questionnaire_posts_at_once_store_one_response_and_answer_it_twice(
    racer: tuple[Clinic, User, Patient],
) -> None:
    clinic, user, patient = racer
    response_id = str(uuid.uuid4())
    body = {"id": response_id, "answers": {"items": [3, 3, 2, 2]}}

    responses = post_twice_at_once(clinic, user, "/api/v1/me/questionnaires/uct/", body)

    assert sorted(getattr(r, "status_code", repr(r)) for r in responses) == [200, 201]
    assert [r.json()["id"] for r in responses] == [response_id, response_id]
    assert [r.json()["score"] for r in responses] == [10, 10]
    with tenant_context(clinic):
        assert list(QuestionnaireResponse.objects.filter(patient=patient).values_list("id", flat=True)) == [
            uuid.UUID(response_id)
        ]


def test_two_identical_dose_posts_at_once_log_one_dose_and_answer_it_twice(
    racer: tuple[Clinic, User, Patient],
) -> None:
    clinic, user, patient = racer
    with tenant_context(clinic):
        rx = PrescriptionFactory(
            patient=patient, medication_id="cetirizine-10", start=patient.local_today() - timedelta(days=10)
        )
    connection.set_schema_to_public()
    dose_id = str(uuid.uuid4())
    body = {"id": dose_id, "prescription": str(rx.pk), "date": str(patient.local_today()), "status": "taken"}

    responses = post_twice_at_once(clinic, user, "/api/v1/me/doses/", body)

    assert sorted(getattr(r, "status_code", repr(r)) for r in responses) == [200, 201]
    assert [r.json()["id"] for r in responses] == [dose_id, dose_id]
    with tenant_context(clinic):
        assert list(DoseLog.objects.filter(patient=patient).values_list("id", flat=True)) == [
            uuid.UUID(dose_id)
        ]
