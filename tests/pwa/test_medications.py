"""Medications in a real browser: the clinic prescribes an antihistamine twice a day and an
omalizumab injection every 28 days; the patient logs today's doses with one tap (also offline,
with a change of mind), sees the next injection, and the logs reach the server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import DoseLog, Patient, Prescription
from tests.pwa.conftest import (
    PHONE,
    LiveClinic,
    axe_violations,
    berlin_today,
    enroll_from_link,
    orm,
    screenshot,
)
from tests.workers import wait_until

pytestmark = pytest.mark.slow

ANTIHISTAMINE = "Cetirizine 10 mg twice daily (up-dosed ×2)"
INJECTION = "Omalizumab 300 mg SC every 4 weeks"


def _patient(live: LiveClinic, email: str) -> Patient:
    user = User.objects.get(email=email)
    return Patient.objects.get(user_id=user.pk)


def prescribe(live: LiveClinic, email: str, *, last_injection_days_ago: int | None) -> dict[str, str]:
    """What a clinician does in the portal: a daily antihistamine 2×/day and omalizumab every 28
    days (with its last injection on record, as the clinic gave it)."""

    def work() -> dict[str, str]:
        with tenant_context(live.clinic):
            patient = _patient(live, email)
            today = patient.local_today()
            antihistamine = Prescription.objects.create(
                patient=patient,
                medication_id="cetirizine-10-x2",
                dose="10 mg",
                frequency_kind="n_per_day",
                frequency_value=2,
                guideline_step=2,
                start=today - timedelta(days=40),
            )
            injection = Prescription.objects.create(
                patient=patient,
                medication_id="omalizumab-300-q4w",
                dose="300 mg",
                frequency_kind="every_n_days",
                frequency_value=28,
                guideline_step=3,
                start=today - timedelta(days=90),
            )
            if last_injection_days_ago is not None:
                day = today - timedelta(days=last_injection_days_ago)
                DoseLog.objects.create(
                    patient=patient,
                    prescription=injection,
                    scheduled_date=day,
                    status="taken",
                    taken_at=timezone.now() - timedelta(days=last_injection_days_ago),
                )
            ids = {"antihistamine": str(antihistamine.pk), "injection": str(injection.pk)}
        connection.set_schema_to_public()
        return ids

    return orm(work)


def doses_of(live: LiveClinic, email: str) -> list[tuple[str, str, str, bool]]:
    """(medication, scheduled date, status, has taken_at) of every dose log, in the order made."""

    def work() -> list[tuple[str, str, str, bool]]:
        with tenant_context(live.clinic):
            rows = [
                (d.prescription.medication_id, d.scheduled_date.isoformat(), d.status, d.taken_at is not None)
                for d in DoseLog.objects.filter(patient=_patient(live, email))
                .select_related("prescription")
                .order_by("created_at")
            ]
        connection.set_schema_to_public()
        return rows

    return orm(work)


def card(page: Any, name: str) -> Any:
    return page.get_by_role("article", name=name)


def test_the_clinics_prescriptions_are_logged_with_one_tap_offline_too(
    page: Any, live_clinic: LiveClinic
) -> None:
    email = enroll_from_link(page, live_clinic)
    prescribe(live_clinic, email, last_injection_days_ago=30)
    today = berlin_today().isoformat()
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    page.reload()  # the app syncs on start: the prescriptions and the last injection come down
    page.get_by_role("heading", name="Today").wait_for()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Medications").click()
    page.get_by_role("heading", name="Medications", level=1).wait_for()
    antihistamine = card(page, ANTIHISTAMINE)
    antihistamine.get_by_text("10 mg · Twice a day").wait_for(timeout=10000)
    injection = card(page, INJECTION)
    injection.get_by_text("300 mg · Every 4 weeks (28 days)").wait_for()
    injection.get_by_text("Injection due today").wait_for()
    # The last injection was 30 days ago: 2 days overdue, shown in words, not only in colour.
    upcoming = page.locator(".upcoming")
    upcoming.get_by_text("overdue by 2 day(s)").wait_for()
    assert axe_violations(page) == []
    screenshot(page, "h3-medications-due")

    # Offline: the taps show at once, "not sent yet".
    page.context.set_offline(True)
    antihistamine.get_by_role("button", name="Taken").click()
    antihistamine.get_by_text("not sent yet").wait_for(timeout=2000)
    antihistamine.get_by_role("button", name="Skipped").click()
    antihistamine.get_by_text("1 of 2 taken, 1 skipped, 0 still to log").wait_for(timeout=2000)
    # A change of mind is a new log; the latest counts.
    antihistamine.get_by_role("button", name="I took it after all").click()
    antihistamine.get_by_text("2 of 2 taken, 0 skipped, 0 still to log").wait_for(timeout=2000)
    antihistamine.get_by_text("Changed from “Skipped”").wait_for()
    page.reload()  # offline: the shell from the service worker, the logs from IndexedDB
    page.get_by_role("heading", name="Medications", level=1).wait_for()
    antihistamine.get_by_text("2 of 2 taken, 0 skipped, 0 still to log").wait_for(timeout=5000)
    page.get_by_text("You are offline.").wait_for()
    screenshot(page, "h3-medications-offline")
    given = ("omalizumab-300-q4w", (berlin_today() - timedelta(days=30)).isoformat(), "taken", True)
    assert doses_of(live_clinic, email) == [given]  # nothing of today's has left the device

    page.context.set_offline(False)
    assert wait_until(lambda: len(doses_of(live_clinic, email)) == 4, 20), doses_of(live_clinic, email)
    assert doses_of(live_clinic, email) == [
        given,
        ("cetirizine-10-x2", today, "taken", True),
        ("cetirizine-10-x2", today, "skipped", False),
        ("cetirizine-10-x2", today, "taken", True),
    ]
    page.wait_for_function("() => !document.body.innerText.includes('not sent yet')", timeout=15000)

    # The injection, online: logged, and the next one is 28 days on.
    injection.get_by_role("button", name="Taken").click()
    next_date = (berlin_today() + timedelta(days=28)).strftime("%-d %B %Y")
    upcoming.get_by_text("in 28 days").wait_for(timeout=5000)
    upcoming.get_by_text(next_date).wait_for()
    assert wait_until(
        lambda: ("omalizumab-300-q4w", today, "taken", True) in doses_of(live_clinic, email), 20
    )
    page.wait_for_function("() => !document.body.innerText.includes('not sent yet')", timeout=15000)
    assert axe_violations(page) == []
    screenshot(page, "h3-medications-logged")

    page.get_by_label("Language").select_option("de")
    page.get_by_role("heading", name="Medikamente", level=1).wait_for()
    page.get_by_text("in 28 Tagen").wait_for()
    screenshot(page, "h3-medications-de")


def test_an_empty_list_says_the_clinic_has_not_prescribed_anything(
    page: Any, live_clinic: LiveClinic
) -> None:
    enroll_from_link(page, live_clinic)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Medications").click()
    page.get_by_text("Your clinic has not prescribed any medication yet.").wait_for(timeout=10000)
    assert axe_violations(page) == []
    screenshot(page, "h3-medications-empty")


def test_an_as_needed_dose_and_a_log_the_clinic_refuses(page: Any, live_clinic: LiveClinic) -> None:
    email = enroll_from_link(page, live_clinic)

    def prescribe_two() -> str:
        with tenant_context(live_clinic.clinic):
            patient = _patient(live_clinic, email)
            today = patient.local_today()
            daily = Prescription.objects.create(
                patient=patient,
                medication_id="cetirizine-10",
                dose="10 mg",
                frequency_kind="n_per_day",
                frequency_value=1,
                guideline_step=1,
                start=today - timedelta(days=10),
            )
            Prescription.objects.create(
                patient=patient,
                medication_id="prednisolone-rescue",
                dose="20 mg",
                frequency_kind="prn",
                frequency_value=None,
                guideline_step=1,
                start=today - timedelta(days=10),
            )
            rx_id = str(daily.pk)
        connection.set_schema_to_public()
        return rx_id

    daily_id = orm(prescribe_two)
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    page.reload()
    page.get_by_role("heading", name="Today").wait_for()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Medications").click()
    daily = card(page, "Cetirizine 10 mg once daily (standard dose)")
    daily.get_by_text("10 mg · Once a day").wait_for(timeout=10000)
    rescue = card(page, "Prednisolone short course (≤10 days) for exacerbations")
    rescue.get_by_text("20 mg · As needed").wait_for()
    rescue.get_by_text("No doses logged today.").wait_for()

    page.context.set_offline(True)
    daily.get_by_role("button", name="Taken").click()
    rescue.get_by_role("button", name="Took a dose").click()
    rescue.get_by_text("Logged today:").wait_for(timeout=2000)
    rescue.get_by_text("not sent yet").wait_for()

    # Meanwhile the clinic ends the daily prescription as of yesterday: today's log is refused.
    def end_yesterday() -> None:
        with tenant_context(live_clinic.clinic):
            rx = Prescription.objects.get(pk=daily_id)
            rx.end = rx.patient.local_today() - timedelta(days=1)
            rx.save(update_fields=["end"])
        connection.set_schema_to_public()

    orm(end_yesterday)
    page.context.set_offline(False)
    refused = page.get_by_role("region", name="Logs your clinic could not accept")
    refused.get_by_text("This prescription is not active (it has ended or not yet started).").wait_for(
        timeout=20000
    )
    assert refused.get_by_text("Cetirizine 10 mg once daily (standard dose)").count() == 1
    assert doses_of(live_clinic, email) == [
        ("prednisolone-rescue", berlin_today().isoformat(), "taken", True)
    ]
    page.wait_for_function("() => !document.body.innerText.includes('not sent yet')", timeout=15000)
    assert axe_violations(page) == []
    screenshot(page, "h3-medications-prn-refused")

    # 200 % text: this screen still fits the phone's width, nothing cut off or scrolling sideways.
    page.evaluate("document.documentElement.style.fontSize = '200%'")
    wide = page.evaluate(
        """(width) => [...document.querySelectorAll('main, main *')]
            .filter((el) => el.getBoundingClientRect().right > width + 1)
            .map((el) => `${el.tagName.toLowerCase()}.${el.className}`)""",
        PHONE["width"],
    )
    assert wide == [], f"wider than the screen at 200 % text: {wide}"
    screenshot(page, "h3-medications-text200")
