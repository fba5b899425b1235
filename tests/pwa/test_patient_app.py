"""A patient in a real browser: join from the clinic's link and record a day; record while
offline, reload offline (the service worker serves the shell), come back online and find the
entry on the server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import DiaryEntry, Patient
from tests.pwa.conftest import PHONE, LiveClinic, orm, screenshot
from tests.workers import wait_until

pytestmark = pytest.mark.slow


def diary_of(live: LiveClinic, email: str) -> list[tuple[str, int, int, str]]:
    return orm(_diary_of, live, email)


def _diary_of(live: LiveClinic, email: str) -> list[tuple[str, int, int, str]]:
    user = User.objects.filter(email=email).first()
    with tenant_context(live.clinic):
        patient = None if user is None else Patient.objects.filter(user_id=user.pk).first()
        rows = (
            []
            if patient is None
            else [
                (e.day.isoformat(), e.wheals, e.itch, e.slot)
                for e in DiaryEntry.objects.filter(patient=patient, deleted_at__isnull=True)
            ]
        )
    connection.set_schema_to_public()
    return rows


def local_today(live: LiveClinic) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()


def enroll(page: Any, live: LiveClinic, *, shots: str | None = None) -> str:
    code = live.enrollment_code()
    email = live.new_email()
    page.goto(f"{live.base}/enroll#code={code}")
    page.get_by_role("heading", name="Join your clinic").wait_for()
    assert page.url == f"{live.base}/app/enroll"  # the code left the address bar
    assert page.get_by_label("Enrollment code").input_value() == code
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("pwa correct horse battery staple")
    # The clinic's privacy notice is shown in full, and joining waits for the agreement to it.
    notice = page.get_by_role("region", name=f"Privacy notice of {live.clinic.name} (version 1)")
    notice.wait_for()
    assert "Who sees it: the clinicians of your care team" in notice.inner_text()
    submit = page.get_by_role("button", name="Create my account")
    assert submit.is_disabled()
    page.get_by_label("I have read the privacy notice", exact=False).check()
    assert submit.is_enabled()
    if shots:
        screenshot(page, shots)
    submit.click()
    page.get_by_role("heading", name="Today").wait_for()
    return email


def record(page: Any, wheals: str, itch: str) -> None:
    page.get_by_role("group", name="Wheals (hives) in the past 24 hours").get_by_label(wheals).check()
    page.get_by_role("group", name="Itch (pruritus) in the past 24 hours").get_by_label(itch).check()
    page.get_by_role("button", name="Save").click()


def test_a_patient_joins_from_the_link_and_records_today(page: Any, live_clinic: LiveClinic) -> None:
    email = enroll(page, live_clinic, shots="01-enroll")
    screenshot(page, "02-today-empty")

    record(page, "Moderate (20–50 wheals/24 h)", "Mild (present but not annoying or troublesome)")

    # Shown at once from the device, then confirmed by the server.
    page.get_by_text("Daily score (UAS): 3 of 6").wait_for(timeout=2000)
    page.get_by_text("Saved and sent to your clinic.").wait_for(timeout=15000)
    assert diary_of(live_clinic, email) == [(local_today(live_clinic), 2, 1, "day")]
    screenshot(page, "03-today-saved")

    # The manifest names the clinic.
    manifest = page.evaluate("fetch('/app/manifest.webmanifest').then(r => r.json())")
    assert manifest["name"] == "Sonnenberg Skin Clinic"


def _seed_entry(live: LiveClinic, email: str, day: str, wheals: int, itch: int) -> None:
    from datetime import date

    with tenant_context(live.clinic):
        patient = Patient.objects.get(user_id=User.objects.get(email=email).pk)
        DiaryEntry.objects.create(
            patient=patient, day=date.fromisoformat(day), slot="day", wheals=wheals, itch=itch
        )
    connection.set_schema_to_public()


def portal_uas7(live: LiveClinic, email: str) -> tuple[float | None, str | None]:
    """The patient's UAS7 and method as a clinic admin's portal list shows them (over HTTP)."""
    import requests

    from accounts.models import Role
    from tests.conftest import PASSWORD as STAFF_PASSWORD
    from tests.conftest import make_member

    admin = f"admin-{email}"
    if not orm(User.objects.filter(email=admin).exists):
        orm(make_member, admin, live.clinic, Role.CLINIC_ADMIN, "Clinic Admin")
        live.emails.append(admin)
    host = live.base.removeprefix("http://")  # *.localhost resolves in Chromium, not here
    port = host.rsplit(":", 1)[1]
    origin, headers = f"http://127.0.0.1:{port}", {"Host": host}
    token = requests.post(
        f"{origin}/api/v1/auth/token/",
        headers=headers,
        json={"email": admin, "password": STAFF_PASSWORD},
        timeout=10,
    ).json()["access"]
    body = requests.get(
        f"{origin}/api/v1/portal/patients/?limit=200",
        headers={**headers, "Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    patient_id = orm(_patient_id, live, email)
    (row,) = [r for r in body["results"] if r["id"] == patient_id]
    return row["uas7"], row["uas7_method"]


def _patient_id(live: LiveClinic, email: str) -> str:
    with tenant_context(live.clinic):
        patient_id = str(Patient.objects.get(user_id=User.objects.get(email=email).pk).pk)
    connection.set_schema_to_public()
    return patient_id


def test_three_days_recorded_offline_survive_a_reload_and_reach_the_portal(
    page: Any, live_clinic: LiveClinic
) -> None:
    from datetime import date, timedelta

    email = enroll(page, live_clinic)
    # The service worker controls the page before the network goes.
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    today = date.fromisoformat(local_today(live_clinic))
    days = [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    # A fourth day already on the server, so the week has enough days for a UAS7 (4 of 7).
    orm(_seed_entry, live_clinic, email, (today - timedelta(days=3)).isoformat(), 1, 1)

    page.context.set_offline(True)
    values = [
        (
            "Intense (>50 wheals/24 h or large confluent areas of wheals)",
            "Intense (severe itch, sufficiently troublesome to interfere with normal daily activity or sleep)",
            6,
        ),
        ("Moderate (20–50 wheals/24 h)", "Mild (present but not annoying or troublesome)", 3),
        ("Mild (<20 wheals/24 h)", "None", 1),
    ]
    for day, (wheals, itch, score) in zip(days, values, strict=True):
        page.locator("#entry-day").select_option(day)
        record(page, wheals, itch)
        page.get_by_text(f"Daily score (UAS): {score} of 6").wait_for(timeout=2000)
        page.get_by_text("Waiting to be sent to your clinic.").wait_for(timeout=5000)

    page.reload()  # offline: the shell comes from the service worker, the entries from IndexedDB
    page.get_by_role("heading", name="Today").wait_for()
    page.get_by_text("Daily score (UAS): 1 of 6").wait_for(timeout=5000)
    page.locator("#entry-day").select_option(days[0])
    page.get_by_text("Daily score (UAS): 6 of 6").wait_for(timeout=5000)
    assert (
        page.get_by_role("group", name="Wheals (hives) in the past 24 hours")
        .get_by_label("Intense (>50 wheals/24 h or large confluent areas of wheals)")
        .is_checked()
    )
    screenshot(page, "04-today-offline")
    assert [row[0] for row in diary_of(live_clinic, email)] == [(today - timedelta(days=3)).isoformat()]

    page.context.set_offline(False)  # `online`: sync refreshes the token and pushes the outbox
    assert wait_until(lambda: len(diary_of(live_clinic, email)) == 4, 20), (
        "the entries never reached the server"
    )
    assert sorted(diary_of(live_clinic, email))[1:] == [
        (days[0], 3, 3, "day"),
        (days[1], 2, 1, "day"),
        (days[2], 1, 0, "day"),
    ]
    page.get_by_text("Saved and sent to your clinic.").wait_for(timeout=15000)
    # The clinic sees the week: 2 + 6 + 3 + 1 over 4 of 7 days, prorated to 7 days = 21.0.
    assert portal_uas7(live_clinic, email) == (21.0, "prorated")


STORED = """async () => {
  const out = {};
  for (const { name } of await indexedDB.databases()) {
    const db = await new Promise((ok, fail) => {
      const open = indexedDB.open(name);
      open.onsuccess = () => ok(open.result);
      open.onerror = () => fail(open.error);
    });
    for (const store of db.objectStoreNames) {
      out[`${name}/${store}`] = await new Promise((ok) => {
        const count = db.transaction(store).objectStore(store).count();
        count.onsuccess = () => ok(count.result);
      });
    }
    db.close();
  }
  return out;
}"""
REFRESH_TOKEN = """async () => new Promise((ok, fail) => {
  const open = indexedDB.open("csu-tracker");
  open.onerror = () => fail(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction("meta").objectStore("meta").get("refresh_token");
    get.onsuccess = () => { ok(get.result ? get.result.value : null); open.result.close(); };
  };
})"""


def test_signing_out_revokes_the_sign_in_and_leaves_nothing_on_the_device(
    page: Any, live_clinic: LiveClinic
) -> None:
    email = enroll(page, live_clinic)
    record(page, "Mild (<20 wheals/24 h)", "None")
    page.get_by_text("Saved and sent to your clinic.").wait_for(timeout=15000)
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    refresh = page.evaluate(REFRESH_TOKEN)
    assert refresh
    assert page.evaluate("caches.keys()") != []

    page.get_by_role("button", name="Sign out").click()  # the confirmation is accepted
    page.get_by_role("heading", name="Sign in").wait_for()

    assert set(page.evaluate(STORED).values()) <= {0}, page.evaluate(STORED)
    assert page.evaluate("caches.keys()") == []
    answer = page.evaluate(
        """async (refresh) => (await fetch('/api/v1/auth/token/refresh/', {method: 'POST',
           headers: {'Content-Type': 'application/json'}, body: JSON.stringify({refresh})})).status""",
        refresh,
    )
    assert answer == 401
    screenshot(page, "05-sign-in")

    # Signing in again (the address confirmed from the emailed link) downloads the diary.
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("pwa correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Confirm your email address first").wait_for()
    orm(lambda: User.objects.filter(email=email).update(email_verified_at=timezone.now()))
    page.get_by_label("Password", exact=True).fill("pwa correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Today").wait_for()
    page.get_by_text("Daily score (UAS): 1 of 6").wait_for(timeout=15000)
    page.get_by_text("Saved and sent to your clinic.").wait_for()


def _account_with_authenticator(email: str) -> tuple[str, list[str]]:
    """An existing, confirmed account (of another clinic, say) with TOTP: its secret and
    recovery codes."""
    import pyotp

    from accounts.services import mfa as mfa_services
    from accounts.services.users import user_create

    user = user_create(email=email, password="pwa correct horse battery staple", verified=True)
    secret, _uri = mfa_services.mfa_secret_issue(user=user)
    totp = pyotp.TOTP(secret)
    recovery = mfa_services.mfa_confirm(user=user, otp=totp.at(time.time() - totp.interval))
    return secret, recovery


def test_an_existing_account_with_an_authenticator_joins_and_signs_in_with_its_code(
    page: Any, live_clinic: LiveClinic
) -> None:
    """Item 1: link an existing account with password and TOTP *when the API asks for them*:
    the one-time code field is not on the forms until the server answers mfa_required."""
    import pyotp

    email = live_clinic.new_email()
    secret, recovery = orm(_account_with_authenticator, email)

    page.goto(f"{live_clinic.base}/enroll#code={live_clinic.enrollment_code()}")
    page.get_by_role("heading", name="Join your clinic").wait_for()
    code_field = page.get_by_label("One-time code from your authenticator app")
    assert code_field.count() == 0
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("pwa correct horse battery staple")
    page.get_by_label("I have read the privacy notice", exact=False).check()
    page.get_by_role("button", name="Create my account").click()
    page.get_by_text("Your account needs a one-time code").wait_for()
    code_field.wait_for()
    assert page.evaluate("document.activeElement.id") == "otp"
    screenshot(page, "10-enroll-asks-for-code")
    code_field.fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Today").wait_for()
    assert orm(_patient_id, live_clinic, email)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.get_by_label("One-time code from your authenticator app").count() == 0
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("pwa correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Your account needs a one-time code").wait_for()
    # A wrong code keeps the field and says so; a recovery code signs in.
    page.get_by_label("One-time code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("The one-time code is not right").wait_for()
    page.get_by_label("One-time code from your authenticator app").fill(recovery[0])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Today").wait_for()


def test_signing_out_with_a_second_tab_syncing_leaves_nothing_for_the_next_patient(
    browser: Any, live_clinic: LiveClinic, patient_page: Any
) -> None:
    """A shared browser (review: 3 runs in 3): tab 2, on a slow network, is mid-sync when tab 1
    signs out. Its late answer must not be written into the emptied database (Dexie would
    reopen it), where the next patient would resume from the first one's cursor."""
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    try:
        first = patient_page(context, demo="steady").page
        first.on("dialog", lambda dialog: dialog.accept())  # "Sign out and remove your diary…?"
        second = context.new_page()
        second.goto(f"{live_clinic.base}/app/history")
        second.get_by_role("heading", name="History", exact=True).wait_for()
        cdp = context.new_cdp_session(second)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        second.evaluate("window.dispatchEvent(new Event('online'))")  # its sync is on the way
        second.wait_for_timeout(200)
        first.get_by_role("button", name="Sign out").click()
        first.get_by_role("heading", name="Sign in").wait_for()
        first.wait_for_timeout(5000)  # tab 2's answers have long arrived
        left = first.evaluate(
            """async () => new Promise((ok) => { const o = indexedDB.open('csu-tracker'); o.onsuccess = () => {
                const db = o.result; const out = {}; const names = [...db.objectStoreNames];
                const tx = db.transaction(names); let n = names.length;
                for (const name of names) { const r = tx.objectStore(name).getAllKeys();
                  r.onsuccess = () => { if (r.result.length) out[name] = r.result; if (--n === 0) { db.close(); ok(out); } }; }
              }; })"""
        )
        assert left == {}, left
        second.get_by_role("heading", name="Sign in").wait_for()  # tab 2 reloaded, signed out
    finally:
        context.close()


def test_signing_out_offline_wipes_the_device_and_revokes_the_sign_in_once_back_online(
    page: Any, live_clinic: LiveClinic
) -> None:
    enroll(page, live_clinic)
    assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
    refresh = page.evaluate(REFRESH_TOKEN)
    assert refresh

    page.context.set_offline(True)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert set(page.evaluate(STORED).values()) <= {0}, page.evaluate(STORED)
    # Nothing of the session is left but the token still to revoke.
    assert page.evaluate("localStorage.getItem('csu-unrevoked-refresh')") == refresh

    page.context.set_offline(False)  # `online`: the app revokes it
    assert wait_until(lambda: page.evaluate("localStorage.getItem('csu-unrevoked-refresh')") is None, 15)
    answer = page.evaluate(
        """async (refresh) => (await fetch('/api/v1/auth/token/refresh/', {method: 'POST',
           headers: {'Content-Type': 'application/json'}, body: JSON.stringify({refresh})})).status""",
        refresh,
    )
    assert answer == 401


def test_the_app_speaks_german_to_a_german_browser(browser: Any, live_clinic: LiveClinic) -> None:
    context = browser.new_context(viewport=PHONE, locale="de-DE", timezone_id="Europe/Berlin")
    page = context.new_page()
    try:
        page.goto(f"{live_clinic.base}/")
        page.get_by_role("heading", name="Anmelden").wait_for()
        assert page.evaluate("document.documentElement.lang") == "de"
        screenshot(page, "06-sign-in-de")
        page.get_by_role("button", name="Ich habe einen Anmeldecode").click()
        page.get_by_role("heading", name="Bei Ihrer Klinik anmelden").wait_for()
        screenshot(page, "07-enroll-de")
        # The whole diary in German, as a patient at 360 px sees it.
        page.get_by_label("Anmeldecode").fill(live_clinic.enrollment_code())
        page.get_by_label("E-Mail").fill(live_clinic.new_email())
        page.get_by_label("Passwort", exact=True).fill("pwa correct horse battery staple")
        page.get_by_role("region", name="Datenschutzerklärung", exact=False).get_by_text(
            "Wer sie sieht", exact=False
        ).wait_for()
        page.get_by_label("Ich habe die Datenschutzerklärung gelesen", exact=False).check()
        page.get_by_role("button", name="Konto anlegen").click()
        page.get_by_role("heading", name="Heute").wait_for()
        page.get_by_role("group", name="Quaddeln in den letzten 24 Stunden").get_by_role("radio").nth(
            1
        ).check()
        page.get_by_role("group", name="Juckreiz in den letzten 24 Stunden").get_by_role("radio").nth(
            2
        ).check()
        page.get_by_role("button", name="Speichern").click()
        page.get_by_text("Tageswert (UAS): 3 von 6").wait_for(timeout=2000)
        screenshot(page, "09-today-de")
    finally:
        context.close()


def service_worker(page: Any, live: LiveClinic) -> tuple[Any, str]:
    """A DevTools session of `page`'s context and the id of the clinic's service worker
    registration (to deliver a push or fire a sync event to it)."""
    cdp = page.context.new_cdp_session(page)
    registrations: dict[str, Any] = {}
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.update({r["registrationId"]: r for r in event["registrations"]}),
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(40):  # Playwright delivers CDP events while it runs, not during sleep
        if any(r["scopeURL"].startswith(live.base) for r in registrations.values()):
            break
        page.wait_for_timeout(250)
    (registration,) = [key for key, r in registrations.items() if r["scopeURL"].startswith(live.base)]
    return cdp, registration


def test_a_lost_answer_while_online_is_tried_again_within_seconds(page: Any, live_clinic: LiveClinic) -> None:
    """The push reached the server but its answer was lost (the connection dropped): the app
    tries again within seconds, not at the minute's timer, and the replay applies nothing twice.
    In Chromium the Background Sync registration that the failed round makes fires at once too;
    browsers without it have the session's own retry (5, 10, 20, 40 s)."""
    email = enroll(page, live_clinic)
    lost: list[int] = []

    host = live_clinic.base.removeprefix("http://")  # *.localhost resolves in Chromium, not here

    def lose_the_answer(route: Any) -> None:
        # The server gets and applies the push (sent to loopback with the clinic's Host).
        url = route.request.url.replace(host, f"127.0.0.1:{host.rsplit(':', 1)[1]}", 1)
        route.fetch(url=url, headers={**route.request.headers, "host": host})
        route.abort()  # the device never hears back
        lost.append(1)

    page.route("**/api/v1/sync/push/", lose_the_answer, times=1)
    record(page, "Mild (<20 wheals/24 h)", "None")
    for _ in range(100):  # Playwright runs the route handler while it runs, not during a sleep
        if lost:
            break
        page.wait_for_timeout(100)
    assert lost
    assert diary_of(live_clinic, email) == [(local_today(live_clinic), 1, 0, "day")]
    page.get_by_text("Saved and sent to your clinic.").wait_for(timeout=12000)
    assert diary_of(live_clinic, email) == [(local_today(live_clinic), 1, 0, "day")]


def test_an_entry_saved_without_signal_is_sent_by_background_sync_with_the_app_closed(
    browser: Any, live_clinic: LiveClinic
) -> None:
    """Background Sync "where the browser has it": the patient saves on the train and closes the
    app; when the signal is back the browser wakes the service worker, which sends the entry
    itself (no page is open to do it). The DevTools protocol fires the sync event."""
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    page = context.new_page()
    try:
        email = enroll(page, live_clinic)
        assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
        context.set_offline(True)
        record(page, "Mild (<20 wheals/24 h)", "Mild (present but not annoying or troublesome)")
        page.get_by_text("Daily score (UAS): 2 of 6").wait_for(timeout=2000)
        page.close()  # the app is closed
        context.set_offline(False)
        assert diary_of(live_clinic, email) == []

        blank = context.new_page()  # a page of no origin of ours: the DevTools protocol's way in
        cdp, registration = service_worker(blank, live_clinic)
        cdp.send(
            "ServiceWorker.dispatchSyncEvent",
            {
                "origin": live_clinic.base,
                "registrationId": registration,
                "tag": "csu-sync",
                "lastChance": False,
            },
        )
        assert wait_until(lambda: diary_of(live_clinic, email) == [(local_today(live_clinic), 1, 1, "day")], 20)
    finally:
        context.close()


def test_a_reminder_push_shows_a_notification_without_health_data(
    browser: Any, live_clinic: LiveClinic
) -> None:
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    context.grant_permissions(["notifications"], origin=live_clinic.base)
    page = context.new_page()
    try:
        enroll(page, live_clinic)
        assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 15)
        cdp, registration = service_worker(page, live_clinic)
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": live_clinic.base,
                "registrationId": registration,
                "data": '{"type": "reminder", "delivery": "d-1"}',
            },
        )
        shown = wait_until(
            lambda: page.evaluate(
                """async () => (await (await navigator.serviceWorker.ready).getNotifications())
                   .map((n) => ({title: n.title, body: n.body, tag: n.tag}))"""
            ),
            10,
        )
        assert shown == [
            {
                "title": "Reminder",
                "body": "You have a reminder from your clinic. Tap to open the app.",
                "tag": "reminder-d-1",
            }
        ]

        # Tapping it opens today's entry. Headless Chromium cannot tap a system notification,
        # so the worker gets the click event the browser would send (its focus() permission is
        # the browser's to give; the handler navigates whether or not it is granted).
        page.goto(f"{live_clinic.base}/app/history")
        page.get_by_role("heading", name="History").wait_for()
        (worker,) = [w for w in context.service_workers if w.url.endswith("/app/sw.js")]
        worker.evaluate(
            """async () => {
                const [notification] = await self.registration.getNotifications();
                const event = new NotificationEvent("notificationclick", { notification });
                const waits = [];
                Object.defineProperty(event, "waitUntil", { value: (p) => waits.push(p) });
                self.dispatchEvent(event);
                await Promise.all(waits);
            }"""
        )
        page.wait_for_url(f"{live_clinic.base}/app/", timeout=10000)
        page.get_by_role("heading", name="Today").wait_for()
        assert (
            page.evaluate(
                "async () => (await (await navigator.serviceWorker.ready).getNotifications()).length"
            )
            == 0
        )
    finally:
        context.close()


def sign_in(page: Any, live: LiveClinic, email: str) -> None:
    page.goto(f"{live.base}/app/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("pwa correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Today").wait_for()


def test_two_devices_record_the_same_day_offline_and_converge_with_the_conflict_shown(
    browser: Any, live_clinic: LiveClinic
) -> None:
    phone = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    tablet = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    try:
        on_phone, on_tablet = phone.new_page(), tablet.new_page()
        email = enroll(on_phone, live_clinic)
        orm(lambda: User.objects.filter(email=email).update(email_verified_at=timezone.now()))
        sign_in(on_tablet, live_clinic, email)
        for page in (on_phone, on_tablet):
            assert wait_until(
                lambda page=page: page.evaluate("navigator.serviceWorker.controller !== null"), 15
            )

        phone.set_offline(True)
        tablet.set_offline(True)
        record(on_phone, "Mild (<20 wheals/24 h)", "None")
        record(on_tablet, "Intense (>50 wheals/24 h or large confluent areas of wheals)", "None")
        on_tablet.get_by_text("Waiting to be sent to your clinic.").wait_for()

        phone.set_offline(False)  # the phone's entry reaches the server first
        assert wait_until(lambda: diary_of(live_clinic, email), 20)
        tablet.set_offline(False)  # the tablet's arrives second: merged, the conflict recorded
        on_tablet.get_by_text("was also changed on another device").wait_for(timeout=20000)
        on_tablet.get_by_text(
            "The value that counts now: wheals 3 (Intense (>50 wheals/24 h or large confluent areas of wheals))."
        ).wait_for()
        screenshot(on_tablet, "08-conflict")
        assert diary_of(live_clinic, email) == [(local_today(live_clinic), 3, 0, "day")]

        # The phone catches up on its next sync (here: coming back to the page).
        phone.set_offline(True)
        phone.set_offline(False)
        on_phone.get_by_text("Daily score (UAS): 3 of 6").wait_for(timeout=20000)
        on_phone.get_by_text("was also changed on another device").wait_for()
    finally:
        phone.close()
        tablet.close()
