"""A newcomer's first week through the emails and the account pages, in Chromium (issue 22): sign
up a clinic over the API, open the confirmation link from the email, sign in, invite a clinician,
who opens the invitation link and joins, sets up two-factor sign-in, then resets the password
through the emailed link and signs in with the new one; the admin issues an enrollment code and
a patient opens its link (with its QR code served) and joins in the patient app. Every link is
taken from an email or the API as sent (file backend), with the port the server runs on
(PUBLIC_PORT), and every page answers.

Run once in English and once in German (the browser's locale decides). axe-core checks each
page (no serious or critical findings). Screenshots of each page
go to ACCOUNT_SCREENSHOTS (default <tmp>/shots, e.g. /tmp/shots).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email import message_from_string
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest
import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connections

from accounts.models import Membership, User
from tenants.models import Clinic
from tests.workers import ROOT, database_url, free_port, wait_until_serving

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SHOTS = Path(os.environ.get("ACCOUNT_SCREENSHOTS", Path(tempfile.gettempdir()) / "shots"))
PHONE = {"width": 390, "height": 844}
ADMIN_PASSWORD = "first week admin passphrase"
CLINICIAN_PASSWORD = "first week clinician passphrase"
NEW_PASSWORD = "first week brand new passphrase"
PATIENT_PASSWORD = "first week patient passphrase"
T = TypeVar("T")

# The live server's workers send mail to files the test reads (the test settings' locmem
# backend would keep it inside the server process).
GUNICORN_HOOKS = """
def post_worker_init(worker):
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = {mail_dir!r}
"""

# What each language shows (the browser's locale sends Accept-Language).
WORDS = {
    "en": {
        "confirmed": "Your email address is confirmed.",
        "sign_in_link": "Sign in to your clinic",
        "sign_in": "Sign in",
        "email": "Email",
        "password": "Password",
        "signed_in_as": "You are signed in as",
        "invited": "invited you to join",
        "role": "clinician",
        "full_name": "Your full name",
        "create": "Create account and join",
        "welcome": "your account is ready",
        "set_up_mfa": "Set up two-factor sign-in",
        "current_password": "Your current password",
        "start": "Start setup",
        "code": "Code from your authenticator app",
        "turn_on": "Turn on two-factor sign-in",
        "codes": "Your recovery codes",
        "sign_out": "Sign out",
        "forgot": "Forgot your password?",
        "send_link": "Send reset link",
        "on_its_way": "a reset link is on its way",
        "new_password": "New password",
        "new_password_again": "New password again",
        "set_password": "Set new password",
        "changed": "Your password is changed.",
        # the patient app (pwa/src/i18n/en.json)
        "join": "Join your clinic",
        "app_email": "Email",
        "app_password": "Password",
        "agree": "I have read the privacy notice",
        "create_account": "Create my account",
        "today": "Today",
    },
    "de": {
        "confirmed": "Ihre E-Mail-Adresse ist bestätigt.",
        "sign_in_link": "Bei Ihrer Klinik anmelden",
        "sign_in": "Anmelden",
        "email": "E-Mail-Adresse",
        "password": "Passwort",
        "signed_in_as": "Sie sind angemeldet als",
        "invited": "hat Sie eingeladen",
        "role": "Ärztin/Arzt",
        "full_name": "Ihr vollständiger Name",
        "create": "Konto anlegen und beitreten",
        "welcome": "Ihr Konto ist bereit",
        "set_up_mfa": "Zwei-Faktor-Anmeldung einrichten",
        "current_password": "Ihr aktuelles Passwort",
        "start": "Einrichtung starten",
        "code": "Code aus Ihrer Authenticator-App",
        "turn_on": "Zwei-Faktor-Anmeldung einschalten",
        "codes": "Ihre Wiederherstellungscodes",
        "sign_out": "Abmelden",
        "forgot": "Passwort vergessen?",
        "send_link": "Link senden",
        "on_its_way": "ist ein Link zum Zurücksetzen unterwegs",
        "new_password": "Neues Passwort",
        "new_password_again": "Neues Passwort wiederholen",
        "set_password": "Neues Passwort setzen",
        "changed": "Ihr Passwort ist geändert.",
        # the patient app (pwa/src/i18n/de.json)
        "join": "Bei Ihrer Klinik anmelden",
        "app_email": "E-Mail",
        "app_password": "Passwort",
        "agree": "Ich habe die Datenschutzerklärung gelesen",
        "create_account": "Konto anlegen",
        "today": "Heute",
    },
}


def orm(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Database work off the test's thread (Playwright's sync API runs an event loop there)."""

    def work() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


@dataclass
class LiveSite:
    port: int
    mail_dir: Path
    log: Path

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def api(self, method: str, host: str, path: str, **kwargs: Any) -> requests.Response:
        """An API call as a script makes it (the system resolver may not know *.localhost)."""
        headers = {"Host": f"{host}:{self.port}", **kwargs.pop("headers", {})}
        url = f"http://127.0.0.1:{self.port}{path}"
        return requests.request(method, url, headers=headers, timeout=60, **kwargs)

    def link_sent_to(self, address: str, pattern: str, after: float, timeout: float = 30) -> str:
        """The newest link matching `pattern` in an email to `address` written after `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found: list[tuple[float, str]] = []
            for path in self.mail_dir.glob("*.log"):
                if path.stat().st_mtime < after:
                    continue
                for raw in path.read_text().split("-" * 79):
                    message = message_from_string(raw.strip())
                    if address not in str(message.get("To", "")):
                        continue
                    payload = message.get_payload(decode=True)
                    body = payload.decode() if isinstance(payload, bytes) else str(message.get_payload())
                    found += [(path.stat().st_mtime, match) for match in re.findall(pattern, body)]
            if found:
                return sorted(found)[-1][1]
            time.sleep(0.2)
        pytest.fail(f"No email to {address} with {pattern}:\n" + self.log.read_text()[-3000:])


@pytest.fixture(scope="module")
def live_site(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveSite]:  # noqa: ARG001
    """gunicorn with the test settings on the test database; tasks run in the server's process
    (eager), its mail goes to files."""
    if not AXE.is_file():
        pytest.fail(
            f"No axe-core at {AXE}: run `make pwa-check` (installs the PWA's npm packages).", pytrace=False
        )
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"No Chromium at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH).", pytrace=False
        )
    port = free_port()
    mail_dir = Path(tempfile.mkdtemp(prefix="csu-first-week-mail-"))
    hooks = tempfile.NamedTemporaryFile("w", prefix="csu-first-week-", suffix=".py", delete=False)  # noqa: SIM115
    hooks.write(GUNICORN_HOOKS.format(mail_dir=str(mail_dir)))
    hooks.close()
    log = Path(tempfile.mkstemp(prefix="csu-first-week-server-", suffix=".log")[1])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PUBLIC_PORT": str(port),
    }
    with django_db_blocker.unblock():
        cache.clear()
    with log.open("w") as out:
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", hooks.name]
            + ["-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "4", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    site = LiveSite(port=port, mail_dir=mail_dir, log=log)
    try:
        wait_until_serving(port, server, log)
        yield site
    finally:
        server.terminate()
        server.wait(timeout=30)
        Path(hooks.name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _cleanup(slug: str, emails: list[str]) -> None:
    from tenants.services import clinic_delete

    Membership.objects.filter(user__email__in=emails).delete()
    clinic = Clinic.objects.filter(slug=slug).first()
    if clinic is not None:
        clinic_delete(clinic=clinic)
    User.objects.filter(email__in=emails).delete()


AXE = ROOT / "pwa" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS_AXE = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')
  .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)"""


def shot(page: Any, language: str, name: str) -> None:
    """A screenshot of the page, after axe-core (from the PWA's node_modules, injected through
    DevTools, so the page's own CSP is untouched) found nothing serious or critical on it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    assert page.evaluate(SERIOUS_AXE) == [], name
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{language}.png"), full_page=True)


def watch(page: Any, problems: list[str]) -> None:
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None,
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_newcomers_first_week_through_every_emailed_link(
    live_site: LiveSite, chromium: Any, django_db_blocker: Any, language: str
) -> None:
    words = WORDS[language]
    slug = f"week-{language}-{uuid.uuid4().hex[:6]}"
    admin_email, clinician_email = f"admin-{slug}@example.com", f"doc-{slug}@example.com"
    patient_email = f"patient-{slug}@example.com"
    clinic_host = f"{slug}.localhost"
    problems: list[str] = []
    context = chromium.new_context(viewport=PHONE, locale="de-DE" if language == "de" else "en-GB")
    try:
        # --- Sign up (API, as the README shows), then the confirmation link from the email ---------
        started = time.time() - 1
        signed_up = live_site.api(
            "POST",
            "localhost",
            "/api/v1/clinics/",
            json={
                "name": f"First Week {language.upper()}",
                "slug": slug,
                "timezone": "Europe/Berlin",
                "country": "DE",
                "admin": {"email": admin_email, "full_name": "Ada Admin", "password": ADMIN_PASSWORD},
            },
        )
        assert signed_up.status_code == 202, signed_up.text
        verify = live_site.link_sent_to(
            admin_email, rf"http://localhost:{live_site.port}/verify-email#token=\S+", after=started
        )
        page = context.new_page()
        watch(page, problems)
        page.goto(verify)
        page.get_by_text(words["confirmed"]).wait_for()
        assert "#token" not in page.url and "token=" not in page.url  # the secret left the address bar
        shot(page, language, "01-verify-email")

        # --- The welcome email, and the clinic's sign-in page it leads to ------------------------------
        sign_in_url = live_site.link_sent_to(
            admin_email, rf"http://{re.escape(clinic_host)}:{live_site.port}/account/(?=\s)", after=started
        )
        page.get_by_role("link", name=words["sign_in_link"]).click()
        page.wait_for_url(sign_in_url)
        shot(page, language, "02-sign-in")
        page.get_by_label(words["email"]).fill(admin_email)
        page.get_by_label(words["password"], exact=True).fill(ADMIN_PASSWORD)
        page.get_by_role("button", name=words["sign_in"]).click()
        page.get_by_text(words["signed_in_as"]).wait_for()
        shot(page, language, "03-account")

        # --- The admin invites a clinician; the invitation link from the email ---------------------------
        token = live_site.api(
            "POST",
            clinic_host,
            "/api/v1/auth/token/",
            json={"email": admin_email, "password": ADMIN_PASSWORD},
        ).json()["access"]
        invited_at = time.time() - 1
        invited = live_site.api(
            "POST",
            clinic_host,
            "/api/v1/admin/invitations/",
            json={"email": clinician_email, "role": "clinician"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert invited.status_code == 201, invited.text
        invitation = live_site.link_sent_to(
            clinician_email,
            rf"http://{re.escape(clinic_host)}:{live_site.port}/invitation#token=\S+",
            after=invited_at,
        )
        doctor = context.browser.new_context(viewport=PHONE, locale="de-DE" if language == "de" else "en-GB")
        page = doctor.new_page()
        watch(page, problems)
        page.goto(invitation)
        page.get_by_text(words["invited"]).wait_for()
        assert words["role"] in page.content() and "Ada Admin" in page.content()
        assert "#token" not in page.url
        shot(page, language, "04-invitation")
        page.get_by_label(words["full_name"]).fill("Dr Dora Doc")
        page.get_by_label(words["password"], exact=True).fill(CLINICIAN_PASSWORD)
        page.get_by_role("button", name=words["create"]).click()
        page.get_by_text(words["welcome"]).wait_for()
        shot(page, language, "05-invitation-accepted")

        # --- Two-factor sign-in: QR code, then the recovery codes, once -------------------------------------
        page.get_by_role("link", name=words["set_up_mfa"]).click()
        shot(page, language, "06-mfa-start")
        page.get_by_label(words["current_password"]).fill(CLINICIAN_PASSWORD)
        page.get_by_role("button", name=words["start"]).click()
        page.locator("img.qr").wait_for()
        shot(page, language, "07-mfa-qr")
        secret = page.locator("code.secret").inner_text()
        page.get_by_label(words["code"]).fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name=words["turn_on"]).click()
        page.get_by_role("heading", name=words["codes"]).wait_for()
        assert page.locator("ul.codes li").count() == 10
        shot(page, language, "08-mfa-recovery-codes")
        page.goto(live_site.url(clinic_host, "/account/"))
        page.get_by_role("button", name=words["sign_out"]).click()

        # --- Forgot the password: the reset link from the email --------------------------------------------
        page.get_by_role("link", name=words["forgot"]).click()
        shot(page, language, "09-reset-request")
        asked_at = time.time() - 1
        page.get_by_label(words["email"]).fill(clinician_email)
        page.get_by_role("button", name=words["send_link"]).click()
        page.get_by_text(words["on_its_way"]).wait_for()
        reset = live_site.link_sent_to(
            clinician_email,
            rf"http://{re.escape(clinic_host)}:{live_site.port}/password-reset#uid=\S+",
            after=asked_at,
        )
        page.close()
        page = doctor.new_page()  # a link from an email opens in a new tab
        watch(page, problems)
        page.goto(reset)
        page.get_by_label(words["new_password"], exact=True).fill(NEW_PASSWORD)
        assert "#uid" not in page.url
        page.get_by_label(words["new_password_again"]).fill(NEW_PASSWORD)
        shot(page, language, "10-reset-set")
        page.get_by_role("button", name=words["set_password"]).click()
        page.get_by_text(words["changed"]).wait_for()
        shot(page, language, "11-reset-done")

        # --- And signs in with the new password and a fresh code -------------------------------------------
        page.goto(live_site.url(clinic_host, "/account/"))
        page.get_by_label(words["email"]).fill(clinician_email)
        page.get_by_label(words["password"], exact=True).fill(NEW_PASSWORD)
        totp = pyotp.TOTP(secret)
        page.get_by_label(words["code"]).fill(totp.at(time.time() + totp.interval))  # the next step
        page.get_by_role("button", name=words["sign_in"]).click()
        page.get_by_text(words["signed_in_as"]).wait_for()
        assert clinician_email in page.content()
        doctor.close()

        # --- The admin hands a patient the enrollment link (or its QR code); she joins in the app -----
        token = live_site.api(
            "POST",
            clinic_host,
            "/api/v1/auth/token/",
            json={"email": admin_email, "password": ADMIN_PASSWORD},
        ).json()["access"]
        issued = live_site.api(
            "POST",
            clinic_host,
            "/api/v1/portal/enrollments/",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert issued.status_code == 201, issued.text
        enroll_url = issued.json()["enroll_url"]
        assert enroll_url.startswith(f"http://{clinic_host}:{live_site.port}/enroll#code="), enroll_url
        qr = live_site.api(
            "GET", clinic_host, issued.json()["qr_url"], headers={"Authorization": f"Bearer {token}"}
        )
        assert (qr.status_code, qr.headers["Content-Type"]) == (200, "image/png")
        phone = context.browser.new_context(viewport=PHONE, locale="de-DE" if language == "de" else "en-GB")
        page = phone.new_page()
        watch(page, problems)
        page.goto(enroll_url)
        page.get_by_role("heading", name=words["join"]).wait_for()
        assert "#code" not in page.url  # the code left the address bar
        page.get_by_label(words["app_email"]).fill(patient_email)
        page.get_by_label(words["app_password"], exact=True).fill(PATIENT_PASSWORD)
        page.locator("section.privacy-notice h2").wait_for()
        page.get_by_label(words["agree"], exact=False).check()
        shot(page, language, "12-patient-enroll")
        page.get_by_role("button", name=words["create_account"]).click()
        page.get_by_role("heading", name=words["today"]).wait_for()
        shot(page, language, "13-patient-today")
        phone.close()
    finally:
        context.close()
        with django_db_blocker.unblock():
            orm(_cleanup, slug, [admin_email, clinician_email, patient_email])
    assert problems == [], "a page broke its CSP or threw"
