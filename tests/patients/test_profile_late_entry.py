"""The profile tells the patient app the clinic's late-entry window (read-only)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenants.models import Clinic
from tenants.selectors import clinic_host_cache_clear

pytestmark = pytest.mark.django_db


def test_profile_carries_the_clinics_late_entry_window(alice_client: APIClient, clinic_a: Clinic) -> None:
    response = alice_client.get("/api/v1/me/profile/")
    assert response.status_code == 200
    assert response.json()["late_entry_days"] == clinic_a.diary_late_entry_days == 7

    Clinic.objects.filter(pk=clinic_a.pk).update(diary_late_entry_days=3)
    clinic_host_cache_clear(clinic=clinic_a)  # the host's clinic is cached
    try:
        assert alice_client.get("/api/v1/me/profile/").json()["late_entry_days"] == 3
        patched = alice_client.patch("/api/v1/me/profile/", {"diary_mode": "twice"}, format="json")
        assert patched.status_code == 200 and patched.json()["late_entry_days"] == 3
    finally:
        clinic_host_cache_clear(clinic=clinic_a)  # the rolled-back clinic is read again


def test_the_late_entry_window_cannot_be_changed_by_the_patient(alice_client: APIClient) -> None:
    response = alice_client.patch("/api/v1/me/profile/", {"late_entry_days": 30}, format="json")
    assert response.status_code == 400 and "late_entry_days" in response.json()["errors"]
