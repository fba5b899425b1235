"""A patient's write racing the withdrawal of their consent (patients.consent): the check runs
under the patient's write lock, so a write never lands after a withdrawal committed.

Real connections and real commits (no test transaction), as tests/patients/test_concurrent_retries.py."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
from django.db import connection, connections
from django_tenants.utils import tenant_context

from accounts.models import Membership, User
from patients.models import Consent, DiaryEntry, Patient
from tenants.models import Clinic
from tests.conftest import authed_client, make_member
from tests.factories import PatientFactory
from tests.waiting import wait_until
from tests.workers import database_url


def test_a_write_waiting_behind_a_withdrawal_is_refused_once_it_commits(committed_db: None) -> None:
    """The consent check runs under the patient's write lock: a diary write that arrives while a
    withdrawal holds it waits, then sees the withdrawal (never stored after it)."""
    clinic = Clinic.objects.get(slug="alpha")
    user = make_member(f"race-{uuid.uuid4().hex[:8]}@example.com", clinic, "patient")
    with tenant_context(clinic):
        patient = PatientFactory(user_id=user.pk, display_name="Racer", timezone="Europe/Berlin")
        consent = Consent.objects.get(patient=patient)
    connection.set_schema_to_public()
    answer: list[Any] = []

    def write() -> None:
        try:
            answer.append(
                authed_client(user, clinic).put(
                    f"/api/v1/me/diary/{patient.local_today()}/", {"wheals": 1, "itch": 2}, format="json"
                )
            )
        finally:
            connections.close_all()

    try:
        with (
            psycopg.connect(database_url(), autocommit=False) as withdrawal,
            psycopg.connect(database_url(), autocommit=True) as watcher,
        ):
            withdrawal.execute(f'SET search_path TO "{clinic.schema_name}"')
            # What consent_withdraw does: the patient's lock, then the withdrawal (not yet committed).
            withdrawal.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"patient-write:{patient.pk}"]
            )
            withdrawal.execute("UPDATE patients_consent SET withdrawn_at = now() WHERE id = %s", [consent.pk])
            writer = threading.Thread(target=write)
            writer.start()
            # Polled from another connection: pg_stat_activity is read once per transaction.
            blocked = wait_until(
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query ILIKE '%%pg_advisory_xact_lock%%'"
                    ).fetchone()[0]
                    == 1
                ),
                10,
            )
            assert blocked
            withdrawal.commit()
        writer.join(20)
        assert [(r.status_code, r.json()["code"]) for r in answer] == [(403, "consent_required")]
        with tenant_context(clinic):
            assert not DiaryEntry.objects.filter(patient=patient).exists()
    finally:
        with tenant_context(clinic):
            Patient.objects.filter(pk=patient.pk).delete()
        connection.set_schema_to_public()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()
