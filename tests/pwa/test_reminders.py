"""Reminders in a real browser: a reminder added offline reaches the server when back online,
changed and deleted from the list; quiet hours reach the patient's row; notifications: opting
in registers this browser's push subscription with the server, turning off and signing out
remove it, and the next person signing in on the browser finds nothing of the last one.

Chromium here cannot reach a push service (no network to FCM), so `PushManager.subscribe` is
replaced by a stand-in (`STUB_PUSH`, an init script) that returns a subscription with a real
P-256 key and an FCM-shaped endpoint; the rest (permission, the VAPID key from the server,
registration, deletion) is the app's own code against the live server.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from datetime import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone as dj_timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from patients.models import Patient, PushSubscription, Reminder
from tests.pwa.conftest import (
    DESKTOP,
    PASSWORD,
    PHONE,
    LiveClinic,
    SignedIn,
    agree_to_privacy_notice,
    orm,
    screenshot,
    watch_context,
)
from tests.workers import wait_until

pytestmark = pytest.mark.slow

# A PushManager that needs no push service: subscribe() gives an FCM-shaped endpoint and a real
# P-256 key (the server checks both), remembers the applicationServerKey it was given.
STUB_PUSH = """(() => {
  if (!('PushManager' in self)) return;
  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  let current = null;
  self.__pushStub = { subscribed: 0, unsubscribed: 0, key: null };
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function (options) {
    if (current) return current;
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
    const p256dh = b64url(await crypto.subtle.exportKey('raw', pair.publicKey));
    const auth = b64url(crypto.getRandomValues(new Uint8Array(16)));
    const endpoint = `https://fcm.googleapis.com/fcm/send/stub-${crypto.randomUUID()}`;
    const key = new Uint8Array(options.applicationServerKey).slice().buffer;
    self.__pushStub.subscribed += 1;
    self.__pushStub.key = b64url(key);
    current = {
      endpoint, expirationTime: null, options: { userVisibleOnly: options.userVisibleOnly, applicationServerKey: key },
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
      unsubscribe: async () => { current = null; self.__pushStub.unsubscribed += 1; return true; },
    };
    return current;
  };
})();"""


# This browser's subscription as the app keeps it (IndexedDB `views`, key "push").
VIEW_PUSH = """async () => new Promise((ok, fail) => {
  const open = indexedDB.open('csu-tracker');
  open.onerror = () => fail(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction('views').objectStore('views').get('push');
    get.onsuccess = () => { ok(get.result ? get.result.value : null); open.result.close(); };
  };
})"""


@pytest.fixture
def context(browser: Any, live_clinic: LiveClinic) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/Berlin")
    context.grant_permissions(["notifications"], origin=live_clinic.base)
    context.add_init_script(STUB_PUSH)
    problems: list[str] = []
    watch_context(context, problems)
    yield context
    context.close()
    assert problems == [], "the app broke its CSP or threw"


def _patient(live: LiveClinic, email: str) -> Patient:
    user = User.objects.get(email=email)
    return Patient.objects.get(user_id=user.pk)


def in_clinic(live: LiveClinic, work: Callable[[], Any]) -> Any:
    def run() -> Any:
        with tenant_context(live.clinic):
            result = work()
        connection.set_schema_to_public()  # type: ignore[attr-defined]  # django-tenants adds it
        return result

    return orm(run)


def reminders_of(live: LiveClinic, email: str) -> list[dict[str, Any]]:
    return in_clinic(
        live,
        lambda: [
            {
                "kind": r.kind,
                "local_time": r.local_time,
                "days_of_week": list(r.days_of_week),
                "prescription": r.prescription_id,
                "enabled": r.enabled,
                "deleted": r.deleted_at is not None,
            }
            for r in Reminder.objects.filter(patient=_patient(live, email)).order_by("local_time")
        ],
    )


def subscriptions_of(live: LiveClinic, email: str) -> list[str]:
    return in_clinic(
        live,
        lambda: list(
            PushSubscription.objects.filter(patient=_patient(live, email)).values_list("endpoint", flat=True)
        ),
    )


def controlled(page: Any) -> None:
    """The service worker controls the page. Under the full suite's load its first install
    sometimes does not finish on the first load (seen about once in a full run); the browser
    installs it again on the next load, as it would for a patient, so one reload is allowed."""
    if not wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 20):
        page.reload()
        assert wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), 20)


def test_a_reminder_added_offline_reaches_the_server_and_can_be_changed_and_deleted(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    signed = patient_page(context, path="/app/reminders", demo="steady")  # the demo has prescriptions
    page, email = signed.page, signed.email
    page.get_by_role("heading", name="Reminders", exact=True).wait_for()
    page.get_by_text("You have no reminders yet.").wait_for()
    controlled(page)
    prescriptions = in_clinic(
        live_clinic, lambda: list(_patient(live_clinic, email).prescriptions.values_list("id", flat=True))
    )
    assert prescriptions, "the demo patient has prescriptions"

    context.set_offline(True)
    page.get_by_role("button", name="Add a reminder").click()
    form = page.get_by_role("form", name="New reminder")
    form.get_by_role("button", name="Save reminder").click()
    form.get_by_text("Time: choose the time of day for the reminder.").wait_for()  # names the field
    assert page.get_by_label("Time").evaluate("e => e === document.activeElement")
    page.get_by_label("Time").fill("20:30")
    days = form.get_by_role("group", name="Days")
    days.get_by_label("Saturday").uncheck()
    days.get_by_label("Sunday").uncheck()
    form.get_by_role("group", name="What to remind you of").get_by_label("Medicine").check()
    form.get_by_role("button", name="Save reminder").click()
    form.get_by_text("Medicine: choose which medicine to be reminded of.").wait_for()
    medicine = form.get_by_role("combobox", name="Medicine")
    medicine.select_option(index=1)
    chosen = medicine.input_value()
    screenshot(page, "reminders-form-en")
    form.get_by_role("button", name="Save reminder").click()

    # At once, offline, with "not sent yet".
    item = page.get_by_role("listitem").filter(has_text="Mon, Tue, Wed, Thu, Fri")
    item.wait_for(timeout=3000)
    item.get_by_text("Not sent yet").wait_for()
    assert "Medicine:" in item.inner_text()
    assert reminders_of(live_clinic, email) == []

    context.set_offline(False)
    assert wait_until(lambda: reminders_of(live_clinic, email), 20), "the reminder never reached the server"
    assert reminders_of(live_clinic, email) == [
        {
            "kind": "medication",
            "local_time": time(20, 30),
            "days_of_week": [1, 2, 3, 4, 5],
            "prescription": uuid.UUID(chosen),
            "enabled": True,
            "deleted": False,
        }
    ]
    item.get_by_text("Not sent yet").wait_for(state="detached", timeout=15000)

    # Change it: a diary reminder every day at 07:15, off for now.
    page.get_by_role("button", name="Change the reminder at 20:30").click()
    form = page.get_by_role("form", name="Change reminder")
    form.get_by_label("Time").fill("07:15")
    form.get_by_role("group", name="Days").get_by_label("Saturday").check()
    form.get_by_role("group", name="Days").get_by_label("Sunday").check()
    form.get_by_role("group", name="What to remind you of").get_by_label("Diary").check()
    form.get_by_label("This reminder is on").uncheck()
    form.get_by_role("button", name="Save reminder").click()
    page.get_by_role("listitem").filter(has_text="Every day").get_by_text("Off").wait_for()
    assert wait_until(lambda: reminders_of(live_clinic, email)[0]["local_time"] == time(7, 15), 20), (
        reminders_of(live_clinic, email)
    )
    assert reminders_of(live_clinic, email)[0] == {
        "kind": "diary",
        "local_time": time(7, 15),
        "days_of_week": [1, 2, 3, 4, 5, 6, 7],
        "prescription": None,
        "enabled": False,
        "deleted": False,
    }
    screenshot(page, "reminders-list-en")

    # Delete, with a confirmation first.
    page.get_by_role("button", name="Delete the reminder at 07:15").click()
    page.get_by_text("Delete the reminder at 07:15?").wait_for()
    page.get_by_role("button", name="Yes, delete").click()
    page.get_by_text("You have no reminders yet.").wait_for()
    assert wait_until(lambda: reminders_of(live_clinic, email)[0]["deleted"], 20)


def test_quiet_hours_reach_the_patient_row(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    signed = patient_page(context, path="/app/reminders")
    page, email = signed.page, signed.email
    quiet = page.get_by_role("region", name="Quiet hours")
    quiet.get_by_text("Now: no quiet hours.").wait_for()
    quiet.get_by_label("Quiet from").fill("22:00")
    quiet.get_by_role("button", name="Save quiet hours").click()
    quiet.get_by_text("Quiet hours: give both a start and an end time, or leave both empty.").wait_for()
    quiet.get_by_label("Quiet until").fill("07:00")
    quiet.get_by_role("button", name="Save quiet hours").click()
    quiet.get_by_text("Quiet hours saved.").wait_for()

    def quiet_hours() -> tuple[Any, Any]:
        return in_clinic(
            live_clinic,
            lambda: (lambda p: (p.quiet_hours_start, p.quiet_hours_end))(_patient(live_clinic, email)),
        )

    assert wait_until(lambda: quiet_hours() == (time(22, 0), time(7, 0)), 20), quiet_hours()

    quiet.get_by_role("button", name="No quiet hours").click()
    quiet.get_by_text("Quiet hours removed.").wait_for()
    assert wait_until(lambda: quiet_hours() == (None, None), 20), quiet_hours()


def test_notifications_opt_in_off_and_sign_out_leave_no_subscription_behind(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    signed = patient_page(context, path="/app/reminders")
    page, email = signed.page, signed.email
    push = page.get_by_role("region", name="Notifications on this device")
    push.get_by_text("Notifications are off for this device.").wait_for()
    controlled(page)
    push.get_by_role("button", name="Turn on notifications").click()
    push.get_by_text("Notifications are on for this device.").wait_for(timeout=15000)
    # Registered with the server, subscribed with the server's VAPID key.
    (endpoint,) = subscriptions_of(live_clinic, email)
    assert endpoint.startswith("https://fcm.googleapis.com/fcm/send/stub-")
    # (The live server's key pair is its own, made when its settings load: the app kept the key
    # the server answered, and subscribed with exactly that.)
    kept = page.evaluate(VIEW_PUSH)
    assert page.evaluate("self.__pushStub.key") == kept["vapid_public_key"]
    assert len(base64.urlsafe_b64decode(kept["vapid_public_key"] + "=")) == 65  # a P-256 point
    assert kept["endpoint"] == endpoint and kept["id"]
    screenshot(page, "reminders-push-on-en")

    push.get_by_role("button", name="Turn off notifications").click()
    push.get_by_text("Notifications are off for this device.").wait_for()
    assert subscriptions_of(live_clinic, email) == []
    assert page.evaluate("self.__pushStub.unsubscribed") == 1

    # On again, then sign out: the server's subscription goes first, then everything local.
    push.get_by_role("button", name="Turn on notifications").click()
    push.get_by_text("Notifications are on for this device.").wait_for(timeout=15000)
    assert len(subscriptions_of(live_clinic, email)) == 1
    page.get_by_role("button", name="Add a reminder").click()
    page.get_by_label("Time").fill("09:00")
    page.get_by_role("button", name="Save reminder").click()
    assert wait_until(lambda: reminders_of(live_clinic, email), 20)
    page.on("dialog", lambda dialog: dialog.accept())
    page.evaluate("localStorage.setItem('left-by-the-app', 'x'); localStorage.setItem('csu-locale', 'en')")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert subscriptions_of(live_clinic, email) == []
    # The browser honoured the logout's Clear-Site-Data (the app itself never clears
    # localStorage); the language chosen is put back.
    assert page.evaluate("Object.keys(localStorage)") == ["csu-locale"]
    assert page.evaluate("self.__pushStub.unsubscribed") == 2
    assert page.evaluate("caches.keys()") == []

    # Someone else signs in on this browser: nothing of the previous patient.
    other = live_clinic.new_email()
    code = live_clinic.enrollment_code()
    page.get_by_role("button", name="I have an enrollment code").click()
    page.get_by_label("Enrollment code").fill(code)
    page.get_by_label("Email").fill(other)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    agree_to_privacy_notice(page)
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Today").wait_for()
    orm(lambda: User.objects.filter(email=other).update(email_verified_at=dj_timezone.now()))
    page.get_by_role("link", name="Reminders").click()
    page.get_by_text("You have no reminders yet.").wait_for()
    push = page.get_by_role("region", name="Notifications on this device")
    push.get_by_text("Notifications are off for this device.").wait_for()
    push.get_by_role("button", name="Turn on notifications").click()
    push.get_by_text("Notifications are on for this device.").wait_for(timeout=15000)
    assert len(subscriptions_of(live_clinic, other)) == 1
    assert subscriptions_of(live_clinic, email) == []
    page.get_by_role("link", name="My data").click()
    page.get_by_text("Signed in as").wait_for()
    assert email not in page.content()


def test_reminders_in_german_and_at_desktop_width(
    browser: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    context = browser.new_context(viewport=DESKTOP, locale="de-DE", timezone_id="Europe/Berlin")
    context.add_init_script(STUB_PUSH)
    try:
        page = patient_page(context, path="/app/reminders", demo="steady").page
        page.get_by_role("heading", name="Erinnerungen", exact=True).wait_for()
        page.get_by_role("button", name="Erinnerung hinzufügen").click()
        page.get_by_label("Uhrzeit").fill("08:00")
        page.get_by_role("button", name="Erinnerung speichern").click()
        page.get_by_role("listitem").filter(has_text="Jeden Tag").wait_for()
        page.get_by_role("button", name="Erinnerung hinzufügen").click()
        screenshot(page, "reminders-de")
    finally:
        context.close()


def test_a_refused_reminder_shows_the_servers_reason(
    context: Any, live_clinic: LiveClinic, patient_page: Callable[..., SignedIn]
) -> None:
    from datetime import timedelta

    from patients.models import Prescription

    signed = patient_page(context, path="/app/reminders", demo="steady")
    page, email = signed.page, signed.email
    page.get_by_text("You have no reminders yet.").wait_for()
    controlled(page)
    context.set_offline(True)
    page.get_by_role("button", name="Add a reminder").click()
    form = page.get_by_role("form", name="New reminder")
    form.get_by_label("Time").fill("12:00")
    form.get_by_role("group", name="What to remind you of").get_by_label("Medicine").check()
    form.get_by_role("combobox", name="Medicine").select_option(index=1)
    chosen = form.get_by_role("combobox", name="Medicine").input_value()
    form.get_by_role("button", name="Save reminder").click()
    page.get_by_text("Not sent yet").wait_for()

    # Meanwhile the clinic ended that prescription: the server refuses the reminder.
    def end_it() -> None:
        patient = _patient(live_clinic, email)
        Prescription.objects.filter(pk=chosen).update(end=patient.local_today() - timedelta(days=1))

    in_clinic(live_clinic, end_it)
    context.set_offline(False)
    page.get_by_text(
        "Your clinic could not accept this change: This prescription is not active (it has ended or not yet started)."
    ).wait_for(timeout=20000)
    assert reminders_of(live_clinic, email) == []
    assert "Medicine: " in page.get_by_role("listitem").first.inner_text()  # the ended one still named
    screenshot(page, "reminders-refused-en")
