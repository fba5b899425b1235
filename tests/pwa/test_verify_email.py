"""A patient who joined in the app is told to confirm the address, and can have the link sent
again, from the notice after joining and from the sign-in screen once signed out (the server
answers `email_unverified` until the address is confirmed). Found by review: a patient who
signed out after the first link's 24 hours was locked out.

The live server's emails go through the Celery worker, in another process, whose test settings
keep them in its own memory: that an email left is read from the worker's side instead, the
per-recipient counter `email_verification_send` takes just before it sends (one per link sent
to the account) and the worker's log of the resend task. The link followed is the one the
email carries, built here as the worker builds it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import User
from core.models import OutboxMessage
from tests.pwa.conftest import PASSWORD, PHONE, LiveClinic, enroll_from_link, orm, screenshot, watch
from tests.workers import wait_until

pytestmark = pytest.mark.slow

NOTICE = "Confirm your address within 24 hours: you need it to sign in again."
SENT = (
    "If this address belongs to an account that still needs confirming, we sent a new link. "
    "It is valid for 24 hours."
)


def links_sent(live: LiveClinic, email: str) -> int:
    """How many confirmation emails the worker sent the account this hour."""
    return orm(_links_sent, live, email)


def _links_sent(live: LiveClinic, email: str) -> int:
    user = User.objects.get(email=email)
    with tenant_context(live.clinic):  # the worker counts in the clinic's schema (cache key prefix)
        count = cache.get(f"mail-cap:verify:{user.pk}")
    connection.set_schema_to_public()
    return int(count or 0)


def resends_done(live: LiveClinic) -> int:
    """Resend tasks the server queued (the clinic schema's outbox, published) and the worker ran."""
    published = orm(_resends_published, live)
    ran = live.worker_log_tail(200_000).count("verification email resent user=")
    return min(published, ran)


def _resends_published(live: LiveClinic) -> int:
    with tenant_context(live.clinic):  # each schema has its own outbox
        count = OutboxMessage.objects.filter(
            task_name="accounts.email_verification_resend", sent_at__isnull=False
        ).count()
    connection.set_schema_to_public()
    return count


def confirmation_link(live: LiveClinic, email: str) -> str:
    """The link the confirmation email carries (accounts.services.email_verification_send)."""

    def build() -> str:
        from accounts.services import clinic_link, email_verification_token

        token = email_verification_token(user=User.objects.get(email=email))
        return clinic_link(str(live.clinic.pk), f"/verify-email#token={token}")

    # On the live server's port (the settings' public URL has none).
    link = urlsplit(orm(build))
    assert link.hostname == f"{live.clinic.slug}.localhost"
    return f"{live.base}{link.path}#{link.fragment}"


def test_a_patient_who_signed_out_unconfirmed_has_the_link_sent_again_and_signs_in(
    page: Any, live_clinic: LiveClinic
) -> None:
    before = resends_done(live_clinic)
    email = enroll_from_link(page, live_clinic)

    # Joined: the app says where the link went and why it matters.
    notice = page.get_by_text(f"We sent a link to {email}. {NOTICE}")
    notice.wait_for()
    assert wait_until(lambda: links_sent(live_clinic, email) == 1, 30)  # enrollment's own email
    screenshot(page, "20-verify-email-notice")
    page.get_by_role("button", name="Send it again").click()
    page.get_by_text(SENT).wait_for()
    assert wait_until(lambda: links_sent(live_clinic, email) == 2, 30), live_clinic.worker_log_tail()
    page.get_by_role("button", name="Hide").click()
    notice.wait_for(state="detached")

    # Signed out before confirming: sign-in is refused, and the link can be had again.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    resend = page.get_by_role("button", name="Send the link again")
    assert resend.count() == 0
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Confirm your email address first").wait_for()
    resend.click()
    page.get_by_text(SENT).wait_for()
    screenshot(page, "21-sign-in-send-link-again")
    assert wait_until(lambda: links_sent(live_clinic, email) == 3, 30), live_clinic.worker_log_tail()
    assert wait_until(lambda: resends_done(live_clinic) == before + 2, 30), live_clinic.worker_log_tail()

    # The emailed link confirms the address (the page submits the token itself) ...
    confirm = page.context.new_page()
    confirm.goto(confirmation_link(live_clinic, email))
    confirm.get_by_text("Your email address is confirmed.").wait_for()
    confirm.close()
    assert orm(lambda: User.objects.get(email=email).email_verified_at) is not None

    # ... and signing in works, with nothing left to confirm.
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Today").wait_for()
    page.wait_for_timeout(500)  # the notice would have asked the server by now
    assert page.get_by_text(NOTICE, exact=False).count() == 0


def test_the_notice_speaks_german_and_goes_once_the_address_is_confirmed(
    browser: Any, live_clinic: LiveClinic
) -> None:
    context = browser.new_context(viewport=PHONE, locale="de-DE", timezone_id="Europe/Berlin")
    page = context.new_page()
    problems: list[str] = []
    watch(page, problems)
    try:
        email = live_clinic.new_email()
        page.goto(f"{live_clinic.base}/enroll#code={live_clinic.enrollment_code()}")
        page.get_by_label("E-Mail").fill(email)
        page.get_by_label("Passwort", exact=True).fill(PASSWORD)
        page.locator("section.privacy-notice h2").wait_for()
        page.get_by_label("Ich habe die Datenschutzerklärung gelesen", exact=False).check()
        page.get_by_role("button", name="Konto anlegen").click()
        page.get_by_role("heading", name="Heute").wait_for()
        notice = page.get_by_text(
            f"Wir haben einen Link an {email} geschickt. Bestätigen Sie Ihre Adresse innerhalb von "
            "24 Stunden: Sie brauchen sie, um sich erneut anzumelden."
        )
        notice.wait_for()
        page.get_by_role("button", name="Erneut senden").click()
        page.get_by_text("Falls diese Adresse zu einem Konto gehört", exact=False).wait_for()
        screenshot(page, "22-verify-email-notice-de")

        # Confirmed in another tab: back in the app, the notice is gone.
        confirm = context.new_page()
        confirm.goto(confirmation_link(live_clinic, email))
        confirm.get_by_text("E-Mail-Adresse ist bestätigt", exact=False).wait_for()
        confirm.close()
        page.bring_to_front()
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        notice.wait_for(state="detached")
    finally:
        context.close()
    assert problems == [], "the app broke its CSP or threw"
