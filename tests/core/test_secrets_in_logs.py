"""Secrets hygiene: a full request cycle logged at DEBUG never contains the password, the
tokens, a diary note or a clinical note (DESIGN.md §9: no PHI or secrets in logs)."""

from __future__ import annotations

import logging
import uuid

import pytest
from django_tenants.utils import tenant_context

from accounts.models import User
from clinicians.models import CareTeam, Clinician
from patients.models import Patient
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client

pytestmark = pytest.mark.django_db

DIARY_NOTE = "Swelling of the lips after the walnut cake at Tante Hilde's birthday"
CLINICAL_NOTE = "Suspect NSAID-exacerbated urticaria; consider omalizumab step-up"


def test_a_full_request_cycle_logs_no_password_token_or_note(
    caplog: pytest.LogCaptureFixture, alice: User, alice_patient: Patient, dr_bob: User, clinic_a: Clinic
) -> None:
    caplog.set_level(logging.DEBUG)
    client = host_client("alpha.localhost")
    bad = client.post(
        "/api/v1/auth/token/", {"email": alice.email, "password": PASSWORD + "x"}, format="json"
    )
    assert bad.status_code == 401
    tokens = client.post(
        "/api/v1/auth/token/", {"email": alice.email, "password": PASSWORD}, format="json"
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    today = client.get("/api/v1/me/profile/").json()["today"]
    assert (
        client.put(
            f"/api/v1/me/diary/{today}/", {"wheals": 2, "itch": 1, "note": DIARY_NOTE}, format="json"
        ).status_code
        == 201
    )
    sync = client.post(
        "/api/v1/sync/push/",
        {
            "client_id": str(uuid.uuid4()),
            "mutations": [
                {
                    "mutation_id": 1,
                    "table": "diary_entry",
                    "op": "upsert",
                    "id": str(uuid.uuid4()),
                    "fields": {
                        "day": "1999-01-01",
                        "slot": "day",
                        "wheals": 9,
                        "itch": 1,
                        "note": DIARY_NOTE,
                    },
                },
            ],
        },
        format="json",
        HTTP_X_SCHEMA_VERSION="1",
    )
    assert sync.status_code == 200
    client.get("/api/v1/sync/pull/", HTTP_X_SCHEMA_VERSION="1")
    client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    client.post("/api/v1/auth/password-reset/", {"email": alice.email}, format="json")
    with tenant_context(clinic_a):
        clinician = Clinician.objects.create(user_id=dr_bob.pk)
        CareTeam.objects.create(clinician=clinician, patient=alice_patient, since="2020-01-01")
    bob = authed_client(dr_bob, clinic_a)
    assert (
        bob.post(
            f"/api/v1/portal/patients/{alice_patient.pk}/notes/", {"body": CLINICAL_NOTE}, format="json"
        ).status_code
        == 201
    )
    bob.get(f"/api/v1/portal/patients/{alice_patient.pk}/timeline/")
    bob.get("/api/v1/portal/patients/nonsense/")  # a 404 is logged too

    logged = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    assert len(caplog.records) > 5  # the cycle was logged at all
    for secret in (PASSWORD, tokens["access"], tokens["refresh"], DIARY_NOTE, CLINICAL_NOTE, "Alice P."):
        assert secret not in logged, f"{secret[:12]}… appears in the logs"
