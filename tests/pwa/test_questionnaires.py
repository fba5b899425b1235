"""The UCT in a real browser: prompted when due, all four questions required (the missing one
named), answered offline with the provisional total, scored by the server after sync, and shown
in the history with the server's category; the German wording at 360 px and desktop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import Patient, QuestionnaireResponse
from tests.pwa.conftest import (
    LiveClinic,
    axe_violations,
    berlin_today,
    enroll_from_link,
    orm,
    screenshot,
)
from tests.workers import wait_until

pytestmark = pytest.mark.slow

Q1 = "1. How much have you suffered from the physical symptoms of urticaria (itch, hives and/or swelling) in the last 4 weeks?"
Q2 = "2. How much was your quality of life affected by urticaria in the last 4 weeks?"
Q3 = "3. How often was the treatment for your urticaria in the last 4 weeks not enough to control your urticaria symptoms?"
Q4 = "4. Overall, how well have you had your urticaria under control in the last 4 weeks?"


def _patient(email: str) -> Patient:
    return Patient.objects.get(user_id=User.objects.get(email=email).pk)


def responses_of(live: LiveClinic, email: str) -> list[tuple[str, list[int], int, str]]:
    """(instrument, items, the server's score, period end) of every live response, oldest first."""

    def work() -> list[tuple[str, list[int], int, str]]:
        with tenant_context(live.clinic):
            rows = [
                (r.instrument, r.answers.get("items"), r.score, r.period_end.isoformat())
                for r in QuestionnaireResponse.objects.filter(
                    patient=_patient(email), deleted_at__isnull=True
                ).order_by("period_end", "created_at")
            ]
        connection.set_schema_to_public()
        return rows

    return orm(work)


def answered_before(live: LiveClinic, email: str, days_ago: int, items: list[int]) -> None:
    """A UCT on record from an earlier visit (as the clinic's tablet recorded it)."""

    def work() -> None:
        with tenant_context(live.clinic):
            QuestionnaireResponse.objects.create(
                patient=_patient(email),
                instrument="uct",
                answers={"items": items},
                score=sum(items),
                period_end=berlin_today() - timedelta(days=days_ago),
                recorded_at=timezone.now() - timedelta(days=days_ago),
            )
        connection.set_schema_to_public()

    orm(work)


def answer(page: Any, question: str, option: str) -> None:
    page.get_by_role("group", name=question).get_by_label(option, exact=True).check()


def test_the_uct_is_due_answered_offline_and_scored_by_the_server(page: Any, live_clinic: LiveClinic) -> None:
    email = enroll_from_link(page, live_clinic)
    answered_before(live_clinic, email, 35, [1, 1, 2, 1])  # more than 4 weeks ago: due again
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    page.reload()
    page.get_by_role("heading", name="Today").wait_for()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Questionnaires").click()
    page.get_by_role("heading", name="Questionnaires", level=1).wait_for()
    page.get_by_text("Your UCT is due: please answer it every 4 weeks.").wait_for(timeout=10000)
    earlier = (berlin_today() - timedelta(days=35)).strftime("%-d %B %Y")
    page.get_by_text("Your last UCT was on").wait_for()
    assert earlier in page.locator(".due-notice").inner_text()
    # The earlier result, from the server: its score and category.
    history = page.locator("ul.uct-history")
    history.get_by_text("5 / 16").wait_for()
    history.get_by_text("Poorly controlled (below 12)").wait_for()
    for question in (Q1, Q2, Q3, Q4):
        assert page.get_by_role("group", name=question).get_by_role("radio").count() == 5
    assert axe_violations(page) == []
    screenshot(page, "h3-uct-due")

    # All four are required: the missing question is named.
    page.context.set_offline(True)
    answer(page, Q1, "A little")
    answer(page, Q3, "Seldom")
    page.get_by_role("button", name="Save my answers").click()
    page.get_by_role("alert").get_by_text("Please answer questions 2 and 4.").wait_for()
    answer(page, Q2, "Somewhat")
    page.get_by_role("button", name="Save my answers").click()
    page.get_by_role("alert").get_by_text("Please answer question 4.").wait_for()
    screenshot(page, "h3-uct-missing")
    answer(page, Q4, "Very well")
    page.get_by_role("button", name="Save my answers").click()

    # Offline: kept on the device, the plain sum shown as provisional, the category not guessed.
    status = page.locator("form .status")
    status.get_by_text("Provisional total: 12 of 16").wait_for(timeout=3000)
    status.get_by_text("Not sent yet: it will be sent to your clinic when you are online.").wait_for()
    row = history.get_by_role("listitem").first
    assert "score after sync" in row.inner_text()
    assert "control category after sync" in row.inner_text()
    assert "Well controlled" not in page.locator("main").inner_text()
    screenshot(page, "h3-uct-offline")
    assert [r[0] for r in responses_of(live_clinic, email)] == ["uct"]

    page.context.set_offline(False)
    assert wait_until(lambda: len(responses_of(live_clinic, email)) == 2, 20), (
        "the UCT never reached the server"
    )
    assert responses_of(live_clinic, email)[1] == ("uct", [3, 2, 3, 4], 12, berlin_today().isoformat())

    # Back from the server: its score and category, and the UCT is current again.
    page.get_by_text("Score: 12 of 16 · Well controlled (12 or more)").wait_for(timeout=20000)
    history.get_by_text("Well controlled (12 or more)").wait_for()
    next_due = (berlin_today() + timedelta(days=28)).strftime("%-d %B %Y")
    assert next_due in page.locator(".up-to-date").inner_text()
    assert axe_violations(page) == []
    screenshot(page, "h3-uct-scored")

    # A change of answers today edits the same response.
    page.get_by_text("You answered the UCT today.").wait_for()
    answer(page, Q4, "Well")
    page.get_by_role("button", name="Save changed answers").click()
    assert wait_until(lambda: responses_of(live_clinic, email)[1][2] == 11, 20)
    assert len(responses_of(live_clinic, email)) == 2
    page.get_by_text("Score: 11 of 16 · Poorly controlled (below 12)").wait_for(timeout=20000)

    page.get_by_label("Language").select_option("de")
    page.get_by_role("heading", name="Fragebögen", level=1).wait_for()
    page.get_by_role(
        "group", name="4. Wie gut war Ihre Urtikaria in den letzten 4 Wochen insgesamt unter Kontrolle?"
    ).get_by_label("Gut", exact=True).wait_for()
    page.get_by_text("Punktzahl: 11 von 16 · Schlecht kontrolliert (unter 12)").wait_for()
    screenshot(page, "h3-uct-de")


def test_a_new_patient_is_prompted_for_a_first_uct(page: Any, live_clinic: LiveClinic) -> None:
    enroll_from_link(page, live_clinic)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Questionnaires").click()
    page.get_by_text("You have not answered the UCT yet.").wait_for(timeout=10000)
    page.get_by_text("No results yet.").wait_for()
