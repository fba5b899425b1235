"""My data in a real browser: the export downloads as a JSON file holding the patient's diary
(a Blob URL the CSP allows), a deletion request with an explicit confirmation creates the
server's row and shows its receipt, switching to Deutsch changes the app at once and the
server's locale (emails, push), and a time zone chosen here reaches the server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import DeletionRequest, DiaryEntry, Patient
from tests.pwa.conftest import DESKTOP, PHONE, LiveClinic, SignedIn, orm, screenshot, watch_context
from tests.workers import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin", accept_downloads=True
    )
    problems: list[str] = []
    watch_context(context, problems)
    yield context
    context.close()
    assert problems == [], "the app broke its CSP or threw"


def patient_row(live: LiveClinic, email: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        user = User.objects.get(email=email)
        with tenant_context(live.clinic):
            patient = Patient.objects.get(user_id=user.pk)
            row = {
                "id": str(patient.pk),
                "locale": patient.locale,
                "timezone": patient.timezone,
                "diary_days": sorted(
                    d.isoformat()
                    for d in DiaryEntry.objects.filter(patient=patient, deleted_at__isnull=True).values_list(
                        "day", flat=True
                    )
                ),
                "deletion_requests": list(
                    DeletionRequest.objects.filter(patient=patient).values("id", "reason", "created_at")
                ),
            }
        connection.set_schema_to_public()  # type: ignore[attr-defined]  # django-tenants adds it
        return row

    return orm(read)


def test_the_export_downloads_a_json_file_of_the_patients_data(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn], tmp_path: Path
) -> None:
    signed = patient_page(context, path="/app/my-data", demo="steady")
    page, email = signed.page, signed.email
    page.get_by_role("heading", name="My data", exact=True).wait_for()
    page.get_by_text("Signed in as").wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download my data").click()
    download = info.value
    assert download.suggested_filename.startswith("csu-tracker-export-")
    assert download.suggested_filename.endswith(".json")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    document = json.loads(saved.read_text())
    server = patient_row(live_clinic, email)
    assert document["patient"]["id"] == server["id"]
    assert server["diary_days"], "the demo patient has a diary"
    assert sorted(e["day"] for e in document["diary"] if not e.get("deleted_at")) == server["diary_days"]
    page.get_by_text(f"Your file “{download.suggested_filename}” has been downloaded.").wait_for()
    screenshot(page, "mydata-en")

    context.set_offline(True)
    page.get_by_role("button", name="Download my data").click()
    page.get_by_text("Downloading your data needs a connection.").wait_for()
    context.set_offline(False)


def test_a_deletion_request_needs_a_confirmation_and_shows_the_receipt(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    signed = patient_page(context, path="/app/my-data")
    page, email = signed.page, signed.email
    section = page.get_by_role("region", name="Ask for my data to be deleted")
    section.get_by_text("Nothing is deleted at once").wait_for()
    section.get_by_label("Reason (optional)").fill("I am moving to another clinic.")
    section.get_by_role("button", name="Send deletion request").click()
    section.get_by_text("Confirmation: tick the box").wait_for()
    assert patient_row(live_clinic, email)["deletion_requests"] == []

    section.get_by_label("I understand, and I ask my clinic to delete my data.").check()
    section.get_by_role("button", name="Send deletion request").click()
    receipt = section.get_by_text("Your clinic received your deletion request on")
    receipt.wait_for()
    (row,) = patient_row(live_clinic, email)["deletion_requests"]
    assert row["reason"] == "I am moving to another clinic."
    assert str(row["id"]) in receipt.inner_text()
    assert str(row["created_at"].astimezone().year) in receipt.inner_text()
    screenshot(page, "mydata-deletion-receipt-en")


def test_language_and_time_zone_change_the_app_and_reach_the_server(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    signed = patient_page(context, path="/app/my-data")
    page, email = signed.page, signed.email
    assert patient_row(live_clinic, email)["locale"] == "en"

    page.get_by_label("Language of the app, emails and notifications").select_option("de")
    page.get_by_role("heading", name="Meine Daten", exact=True).wait_for()  # at once
    assert page.evaluate("document.documentElement.lang") == "de"
    assert wait_until(lambda: patient_row(live_clinic, email)["locale"] == "de", 20)
    screenshot(page, "mydata-de")

    zone = page.get_by_label("Zeitzone", exact=True)
    assert zone.input_value() in {"Europe/Berlin", "UTC"}
    zone.select_option("America/New_York")
    page.get_by_role("button", name="Zeitzone speichern").click()
    page.get_by_text("Zeitzone gespeichert: America/New York.").wait_for()
    assert wait_until(lambda: patient_row(live_clinic, email)["timezone"] == "America/New_York", 20)
    # The device's own zone is offered back.
    page.get_by_role("button", name="Europe/Berlin verwenden").click()
    assert wait_until(lambda: patient_row(live_clinic, email)["timezone"] == "Europe/Berlin", 20)

    page.set_viewport_size(DESKTOP)
    page.get_by_label("Sprache der App, der E-Mails und der Benachrichtigungen").select_option("en")
    page.get_by_role("heading", name="My data", exact=True).wait_for()
    assert wait_until(lambda: patient_row(live_clinic, email)["locale"] == "en", 20)
