"""Consent in the patient app (issue 22, part 6): a patient who joined with the privacy notice
sees their consent on My data, withdraws it, and what they record then waits on the device (the
server stores nothing); agreeing again sends it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from patients.models import Patient
from tests.conftest import make_member
from tests.pwa.conftest import LiveClinic, enroll_from_link, orm, screenshot
from tests.pwa.test_patient_app import diary_of, local_today, record
from tests.workers import wait_until

pytestmark = pytest.mark.slow


def _care_team_for(live: LiveClinic, email: str) -> None:
    """Dr Weber (a clinician of the clinic) on the new patient's care team, as an admin assigns."""
    from clinicians.models import CareTeam, Clinician

    doctor = make_member(live.new_email(), live.clinic, Role.CLINICIAN, "Dr Weber")
    patient_user = User.objects.get(email=email)
    with tenant_context(live.clinic):
        patient = Patient.objects.get(user_id=patient_user.pk)
        CareTeam.objects.create(
            clinician=Clinician.objects.create(user_id=doctor.pk),
            patient=patient,
            since=patient.local_today(),
        )
    connection.set_schema_to_public()


def test_a_withdrawal_keeps_new_entries_on_the_device_until_the_patient_agrees_again(
    page: Any, live_clinic: LiveClinic
) -> None:
    email = enroll_from_link(page, live_clinic)
    orm(_care_team_for, live_clinic, email)
    page.get_by_role("link", name="My data").click()
    # My data also names the care team: names and roles, no email.
    team = page.get_by_role("region", name="Your care team")
    team.get_by_text("Dr Weber, your main clinician").wait_for()
    assert "@" not in team.inner_text()
    card = page.get_by_role("region", name="Privacy notice and consent")
    card.get_by_text("You agreed to your clinic's privacy notice (version 1)").wait_for()
    card.get_by_text("Read the privacy notice (version 1)").click()
    card.get_by_text("Who sees it: the clinicians of your care team").wait_for()
    screenshot(page, "30-mydata-consent")

    card.get_by_role("button", name="Withdraw my consent").click()
    card.get_by_role("button", name="Yes, withdraw").click()
    card.get_by_text("Your consent is withdrawn.").wait_for()
    card.get_by_text("You withdrew your consent on").wait_for()

    page.get_by_role("link", name="Today").click()
    record(page, "Moderate (20–50 wheals/24 h)", "Mild (present but not annoying or troublesome)")
    page.get_by_text("Daily score (UAS): 3 of 6").wait_for(timeout=2000)
    # The sync round after the save is refused (consent_required): a banner says why and leads
    # to My data; the entry stays on the device, the server has nothing.
    page.get_by_text("Nothing new is saved while you have not agreed").wait_for(timeout=15000)
    screenshot(page, "31-consent-banner")
    assert diary_of(live_clinic, email) == []

    page.get_by_role("button", name="Open My data").click()
    card.get_by_label("I have read the privacy notice", exact=False).check()
    card.get_by_role("button", name="Agree").click()
    card.get_by_text("Thank you: your clinic stores your entries again.").wait_for()
    assert wait_until(lambda: diary_of(live_clinic, email) == [(local_today(live_clinic), 2, 1, "day")], 20)
