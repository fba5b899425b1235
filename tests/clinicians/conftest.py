"""Portal personas shared by the clinicians tests: erin (outside Alice's care team), the care
team of dr_bob and Alice, and a client per persona on alpha's host."""

from __future__ import annotations

from datetime import date

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from clinicians.models import CareTeam, Clinician
from patients.models import Patient
from tenants.models import Clinic
from tests.conftest import authed_client, host_client, make_member


@pytest.fixture
def erin(clinic_a: Clinic) -> User:
    """A clinician of alpha who is NOT on Alice's care team."""
    return make_member("erin@example.com", clinic_a, "clinician", "Dr Erin")


@pytest.fixture
def team(alice_patient: Patient, dr_bob: User, clinic_a: Clinic) -> CareTeam:
    with tenant_context(clinic_a):
        clinician = Clinician.objects.create(user_id=dr_bob.pk)
        return CareTeam.objects.create(clinician=clinician, patient=alice_patient, since=date(2020, 1, 1))


def client_for(request: pytest.FixtureRequest, persona: str) -> APIClient:
    """The persona's client on alpha's host (mallory's token is beta's: the other clinic)."""
    if persona == "anonymous":
        return host_client("alpha.localhost")
    user = request.getfixturevalue(persona)
    clinic = Clinic.objects.filter(memberships__user=user).order_by("slug").first()
    client = authed_client(user, clinic)
    client.defaults["HTTP_HOST"] = "alpha.localhost"
    return client
