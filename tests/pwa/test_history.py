"""History and a finished Today in a real browser: a patient with twelve weeks of diary sees the
4-week calendar from the device, the weekly UAS7 chart and the current UAS7 exactly as
GET /api/v1/me/summary/ says; a twice-daily patient records both halves of a day and sees the
day's UAS (the mean of the halves), answers the swelling (AAS) questions, and picks earlier days
within the clinic's late-entry window but never a future one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import DiaryEntry, Patient
from tenants.models import Clinic
from tests.pwa.conftest import (
    DESKTOP,
    PASSWORD,
    PHONE,
    LiveClinic,
    agree_to_privacy_notice,
    api_as,
    axe_violations,
    orm,
    screenshot,
)
from tests.workers import wait_until

pytestmark = pytest.mark.slow

LATE_DAYS = 5  # the clinic's window, set for this module (the server's default is 7)
DIARY_COUNT = """async () => new Promise((ok, fail) => {
  const open = indexedDB.open("csu-tracker");
  open.onerror = () => fail(open.error);
  open.onsuccess = () => {
    const count = open.result.transaction("diary").objectStore("diary").count();
    count.onsuccess = () => { ok(count.result); open.result.close(); };
  };
})"""


# --- Helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clinic(live_clinic: LiveClinic) -> Iterator[LiveClinic]:
    """The module's clinic with a late-entry window of LATE_DAYS (the host's cached clinic too)."""
    orm(_set_window, live_clinic.clinic, LATE_DAYS)
    yield live_clinic
    orm(_set_window, live_clinic.clinic, 7)


def _set_window(clinic: Clinic, days: int) -> None:
    from tenants.selectors import clinic_host_cache_clear

    Clinic.objects.filter(pk=clinic.pk).update(diary_late_entry_days=days)
    clinic_host_cache_clear(clinic=clinic)


def enroll(page: Any, live: LiveClinic) -> str:
    """Join from the clinic's link, as a patient does; the address is then confirmed (so the test
    can also ask the API with the patient's own password)."""
    code = live.enrollment_code()
    email = live.new_email()
    page.goto(f"{live.base}/enroll#code={code}")
    page.get_by_role("heading", name="Join your clinic").wait_for()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    agree_to_privacy_notice(page)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Today").wait_for()
    orm(lambda: User.objects.filter(email=email).update(email_verified_at=timezone.now()))
    return email


def api_get(page: Any, email: str, path: str) -> Any:
    """GET an API path as the patient, from the app's origin (a token of its own)."""
    return api_as(page, email, "GET", path)[1]


def api_patch(page: Any, email: str, path: str, body: dict[str, Any]) -> Any:
    return api_as(page, email, "PATCH", path, body)[1]


def _patient(live: LiveClinic, email: str) -> Patient:
    user = User.objects.get(email=email)
    return Patient.objects.get(user_id=user.pk)


def local_today(live: LiveClinic, email: str) -> date:
    def work() -> date:
        with tenant_context(live.clinic):
            today = _patient(live, email).local_today()
        connection.set_schema_to_public()
        return today

    return orm(work)


# Twelve weeks back from today (week 0 ends today): which days have an entry and its values.
def plan(days_back: int) -> tuple[int, int] | None:
    week, weekday = divmod(days_back, 7)
    if week == 0:
        return (1, 1)  # complete, 7 × 2 = 14 (mild)
    if week == 1:
        return (3, 3) if weekday < 5 else None  # 5 days × 6: prorated 42 (severe)
    if week == 2:
        return (2, 1) if weekday in (0, 3) else None  # 2 days: no score (a gap)
    if week == 3:
        return (0, 0)  # complete 0: urticaria-free
    if week == 6:
        return None  # nothing at all: a gap
    if week == 8:
        return (2, 2) if weekday < 4 else None  # 4 days: prorated
    return (days_back % 4, days_back % 3)


def seed(live: LiveClinic, email: str, today: date) -> None:
    from patients import services

    def work() -> None:
        with tenant_context(live.clinic):
            patient = _patient(live, email)
            for back in range(84):
                values = plan(back)
                if values is not None:
                    services.diary_entry_record(
                        patient=patient,
                        day=today - timedelta(days=back),
                        slot="day",
                        wheals=values[0],
                        itch=values[1],
                        late_days=120,
                    )
        connection.set_schema_to_public()

    orm(work)


def diary_of(live: LiveClinic, email: str) -> list[tuple[str, str, int, int, bool, list[int] | None]]:
    def work() -> list[tuple[str, str, int, int, bool, list[int] | None]]:
        with tenant_context(live.clinic):
            rows = [
                (e.day.isoformat(), e.slot, e.wheals, e.itch, e.angioedema, e.aas_items)
                for e in DiaryEntry.objects.filter(
                    patient=_patient(live, email), deleted_at__isnull=True
                ).order_by("day", "slot")
            ]
        connection.set_schema_to_public()
        return rows

    return orm(work)


def shown(value: float | None) -> str:
    """A score as the app writes it in English (Intl: at most one decimal, no trailing .0)."""
    if value is None:
        return "no score"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def axe(page: Any, where: str) -> list[str]:
    return [f"{where}: {v}" for v in axe_violations(page)]


def both_widths(page: Any, check: Any) -> list[str]:
    found: list[str] = []
    for label, viewport in (("360", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        found += check(label)
    page.set_viewport_size(PHONE)
    return found


# --- History -------------------------------------------------------------------------------------


def test_history_shows_the_calendar_the_chart_and_the_servers_current_uas7(
    page: Any, clinic: LiveClinic
) -> None:
    email = enroll(page, clinic)
    today = local_today(clinic, email)
    seed(clinic, email, today)
    page.reload()  # the app's start syncs: twelve weeks of diary come down
    page.get_by_role("heading", name="Today").wait_for()
    seeded = len([back for back in range(84) if plan(back) is not None])
    assert wait_until(lambda: page.evaluate(DIARY_COUNT) == seeded, 20), page.evaluate(DIARY_COUNT)
    page.get_by_role("link", name="History").click()
    page.get_by_role("heading", name="History", exact=True).wait_for()

    summary = api_get(page, email, "/api/v1/me/summary/")
    end = summary["uas7"]["end"]
    weeks = api_get(page, email, f"/api/v1/me/scores/uas7/?weeks=12&end={end}")
    assert (summary["uas7"]["uas7"], summary["uas7"]["method"], summary["uas7"]["band"]) == (
        14,
        "complete",
        "mild",
    )
    assert summary["change_exceeds_mid"] is True

    # The current UAS7 is the server's, with its band, method and change.
    current = page.locator("section.current")
    page.locator(f'section.current [data-uas7="{shown(summary["uas7"]["uas7"])}"]').wait_for(timeout=15000)
    text = current.inner_text()
    assert f"UAS7: {shown(summary['uas7']['uas7'])} of 42" in text
    assert "Mild (6.5–15.4)" in text  # UAS7 has halves and prorated tenths: exact ranges
    assert "Complete: all 7 days recorded." in text
    change = summary["change"]
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    assert (
        f"Change since the previous week: {sign}{shown(abs(change))} "
        f"(previous week: {shown(summary['previous_uas7']['uas7'])})." in text
    )
    assert "This change exceeds the minimal important difference." in text

    # The calendar: 28 local days from the device's diary, the score written in each cell, days
    # without an entry marked, and only days within the clinic's window are buttons.
    page.locator(f'.cal [data-day="{today.isoformat()}"]').wait_for()
    page.wait_for_function("document.querySelectorAll('.cal .day .val').length === 28")
    cells = page.evaluate(
        """() => [...document.querySelectorAll('.cal .day')].map((el) => ({
             day: el.dataset.day, tag: el.tagName.toLowerCase(), value: el.querySelector('.val').textContent,
             label: el.textContent, none: el.classList.contains('none')}))"""
    )
    assert len(cells) == 28
    for cell in cells:
        back = (today - date.fromisoformat(cell["day"])).days
        values = plan(back)
        expected = "–" if values is None else shown(sum(values))
        assert cell["value"] == expected, (cell, back)
        assert cell["none"] is (values is None)
        assert ("no entry" in cell["label"].lower()) is (values is None)
        assert cell["tag"] == ("button" if back <= LATE_DAYS else "span"), cell
    # Monday to Sunday rows.
    headers = page.locator(".cal thead th").all_inner_texts()
    assert headers == ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]
    first_row = page.locator(".cal tbody tr").first.locator("td")
    column = date.fromisoformat(cells[0]["day"]).weekday()
    assert first_row.nth(column).locator(".day").get_attribute("data-day") == cells[0]["day"]

    # The chart: the server's twelve weeks, prorated hollow, missing weeks as gaps.
    chart = page.locator("figure.chart svg")
    chart.wait_for()
    assert chart.locator("title").text_content() == "Weekly UAS7, last 12 weeks"
    scored = [w for w in weeks if w["uas7"] is not None]
    assert chart.locator("circle.point").count() == len(scored)
    assert chart.locator("circle.point.prorated").count() == len(
        [w for w in weeks if w["method"] == "prorated"]
    )
    assert {w["method"] for w in weeks} == {"complete", "prorated", "missing"}
    runs, run = [], 0
    for week in weeks:
        if week["uas7"] is None:
            runs.append(run)
            run = 0
        else:
            run += 1
    runs.append(run)
    assert chart.locator("path.line").count() == len([r for r in runs if r > 1])
    assert chart.locator("text.value").all_text_contents() == [shown(w["uas7"]) for w in scored]
    # The table alternative carries the same numbers.
    rows = page.locator(".visually-hidden table tbody tr")
    assert rows.count() == 12
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(12)] == [
        shown(w["uas7"]) for w in weeks
    ]
    assert weeks[-1]["uas7"] == summary["uas7"]["uas7"]

    # Nothing waits to be sent, and the figures are fresh: no notes.
    assert "not been sent" not in page.locator("section.current").inner_text()

    screenshot(page, "h01-history-en")
    found = both_widths(page, lambda label: axe(page, f"history [en, {label}]"))

    # German.
    page.get_by_label("Language").select_option("de")
    page.get_by_role("heading", name="Verlauf", exact=True).wait_for()
    assert f"UAS7: {shown(summary['uas7']['uas7'])} von 42" in page.locator("section.current").inner_text()
    german_days = page.locator(".cal thead th").all_inner_texts()
    assert [d[:2] for d in german_days] == ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"], german_days
    screenshot(page, "h02-history-de")
    found += both_widths(page, lambda label: axe(page, f"history [de, {label}]"))
    page.get_by_label("Sprache").select_option("en")
    page.get_by_role("heading", name="History", exact=True).wait_for()

    # A day within the window opens on Today with its entry.
    two_back = today - timedelta(days=2)
    page.locator(f'.cal button[data-day="{two_back.isoformat()}"]').click()
    page.get_by_role("heading", name="Earlier day").wait_for()
    assert page.get_by_label("Day of the entry").input_value() == two_back.isoformat()
    wheals = page.get_by_role("group", name="Wheals (hives) in the past 24 hours")
    wheals.get_by_label("Mild (<20 wheals/24 h)").wait_for()
    assert wait_until(lambda: wheals.get_by_label("Mild (<20 wheals/24 h)").is_checked(), 5)
    page.get_by_text("Daily score (UAS): 2 of 6").wait_for(timeout=5000)

    # Offline: the kept copy is shown with its time, and an unsent change is mentioned.
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    page.context.set_offline(True)
    wheals.get_by_label("Intense (>50 wheals/24 h or large confluent areas of wheals)").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Waiting to be sent to your clinic.").wait_for(timeout=5000)
    page.get_by_role("link", name="History").click()
    page.get_by_text("kept on this device (no connection now)").wait_for(timeout=10000)
    page.get_by_text("1 change on this device has not been sent yet").wait_for()
    assert page.locator(f'.cal [data-day="{two_back.isoformat()}"] .val').inner_text() == "4"
    page.locator(f'section.current [data-uas7="{shown(summary["uas7"]["uas7"])}"]').wait_for()
    screenshot(page, "h03-history-offline-en")
    page.context.set_offline(False)
    assert wait_until(
        lambda: (two_back.isoformat(), "day", 3, 1, False, None) in diary_of(clinic, email), 20
    ), "the offline change never reached the server"
    assert found == [], "axe: serious or critical violations\n" + "\n".join(found)


# --- Today ---------------------------------------------------------------------------------------


def test_today_twice_daily_score_swelling_questions_and_the_late_window(
    page: Any, clinic: LiveClinic
) -> None:
    email = enroll(page, clinic)
    today = local_today(clinic, email)
    assert api_patch(page, email, "/api/v1/me/profile/", {"diary_mode": "twice"})["diary_mode"] == "twice"
    page.reload()  # the setting comes down with the start's sync
    slots = page.get_by_role("group", name="Which half of the day")
    slots.wait_for(timeout=15000)

    wheals = page.get_by_role("group", name="Wheals (hives) in the past 12 hours")
    itch = page.get_by_role("group", name="Itch (pruritus) in the past 12 hours")
    slots.get_by_label("Morning (past 12 hours)").check()
    wheals.get_by_label("Intense (>12 wheals/12 h)").check()
    itch.get_by_label(
        "Moderate (troublesome but does not interfere with normal daily activity or sleep)"
    ).check()
    page.get_by_role("button", name="Save").click()
    # One half only: that half is the day's score.
    page.get_by_text("Daily score (UAS): 5 of 6").wait_for(timeout=2000)
    page.get_by_text("Only the morning is recorded so far").wait_for()

    slots.get_by_label("Evening (past 12 hours)").check()
    assert wait_until(lambda: not wheals.get_by_label("Intense (>12 wheals/12 h)").is_checked(), 5)
    wheals.get_by_label("None").check()
    itch.get_by_label("None").check()

    # Swelling: "yes" brings up the five AAS questions, which must all be answered.
    swelling = page.get_by_role("group", name="Swelling (angioedema) in the past 24 hours")
    swelling.get_by_label("Yes").check()
    page.get_by_role("heading", name="About the swelling").wait_for()
    questions = page.locator("section.aas fieldset")
    assert questions.count() == 5
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Answer the 5 questions about the swelling.").wait_for()
    swelling.get_by_label("No").check()
    assert page.locator("section.aas").count() == 0  # "no" clears them
    swelling.get_by_label("Yes").check()
    assert all(
        not questions.nth(i).get_by_role("radio").nth(j).is_checked() for i in range(5) for j in range(4)
    )
    for i, answer in enumerate([1, 2, 0, 3, 2]):
        questions.nth(i).get_by_role("radio").nth(answer).check()
    screenshot(page, "h04-today-aas-en")
    found = both_widths(page, lambda label: axe(page, f"today+aas [en, {label}]"))
    page.get_by_role("button", name="Save").click()

    # Both halves: the day's score is their mean, (5 + 0) / 2.
    page.get_by_text("Daily score (UAS): 2.5 of 6").wait_for(timeout=2000)
    page.get_by_text("The average of morning (5) and evening (0).").wait_for()
    page.get_by_text("Saved and sent to your clinic.").wait_for(timeout=15000)
    day = today.isoformat()
    assert diary_of(clinic, email) == [
        (day, "am", 3, 2, False, None),
        (day, "pm", 0, 0, True, [1, 2, 0, 3, 2]),
    ]
    screenshot(page, "h05-today-twice-en")

    # The late window: the day control offers today and the clinic's LATE_DAYS days before it,
    # never a day still to come nor one the server would refuse as too late.
    picker = page.get_by_label("Day of the entry")
    offered = picker.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    assert offered == [(today - timedelta(days=back)).isoformat() for back in range(LATE_DAYS + 1)]
    assert picker.locator("option").first.inner_text().startswith("Today, ")
    page.get_by_text(f"up to {LATE_DAYS} days back").first.wait_for()
    earlier = today - timedelta(days=LATE_DAYS)
    picker.select_option(earlier.isoformat())
    page.get_by_role("heading", name="Earlier day").wait_for()
    slots.get_by_label("Morning (past 12 hours)").check()
    wheals.get_by_label("Mild (<6 wheals/12 h)").check()
    itch.get_by_label("None").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Daily score (UAS): 1 of 6").wait_for(timeout=2000)
    page.get_by_text("Saved and sent to your clinic.").wait_for(timeout=15000)
    assert (earlier.isoformat(), "am", 1, 0, False, None) in diary_of(clinic, email)
    page.get_by_role("button", name="Back to today").click()
    page.get_by_role("heading", name="Today").wait_for()
    slots.get_by_label("Evening (past 12 hours)").check()
    page.get_by_role("heading", name="About the swelling").wait_for()  # the stored answers
    assert questions.nth(3).get_by_role("radio").nth(3).is_checked()
    page.get_by_text("Daily score (UAS): 2.5 of 6").wait_for(timeout=5000)

    # German, with the day's mean written the German way.
    page.get_by_label("Language").select_option("de")
    page.get_by_role("heading", name="Heute").wait_for()
    page.get_by_text("Tageswert (UAS): 2,5 von 6").wait_for()
    page.get_by_role("heading", name="Zur Schwellung").wait_for()
    screenshot(page, "h06-today-aas-de")
    found += both_widths(page, lambda label: axe(page, f"today+aas [de, {label}]"))
    assert found == [], "axe: serious or critical violations\n" + "\n".join(found)
