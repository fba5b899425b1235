"""The account pages every emailed link opens (accounts/web, onboarding/pages; issue 22): each
answers in English and German, under a strict policy, with CSRF, and completes its flow through
the same services as the JSON API."""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pyotp
import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import Membership, Role, TotpDevice, User
from accounts.services import invitation_create
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new clinic passphrase"
PAGES = {
    "alpha.localhost": ("/account/", "/invitation", "/password-reset", "/verify-email"),
    "localhost": ("/password-reset", "/verify-email"),
}
GERMAN = {
    "/account/": "Anmelden",
    "/invitation": "Einladung annehmen",
    "/password-reset": "Passwort zurücksetzen",
    "/verify-email": "E-Mail-Adresse bestätigen",
}


def browser(host: str = "alpha.localhost", language: str = "en") -> Client:
    """A browser: cookies kept, CSRF enforced as on the real site."""
    return Client(HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE=language, enforce_csrf_checks=True)


def csrf(client: Client, path: str) -> str:
    client.get(path)
    return str(client.cookies["csrftoken"].value)


def post(client: Client, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, {"csrfmiddlewaretoken": csrf(client, path), **data})


def policy(response: Any) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    }


def text(response: Any) -> str:
    return response.content.decode()


def link_in_last_email(pattern: str) -> str:
    match = re.search(pattern, mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(0)


# --- Every page: languages, policy, caching, CSRF ---------------------------------------------


@pytest.mark.parametrize(("host", "path"), [(h, p) for h, paths in PAGES.items() for p in paths])
def test_each_page_answers_in_english_and_german_under_a_strict_policy(
    clinic_a: Clinic, host: str, path: str
) -> None:
    english = browser(host).get(path)
    german = browser(host, "de-DE,de;q=0.9,en;q=0.5").get(path)
    assert (english.status_code, german.status_code) == (200, 200)
    assert '<html lang="en">' in text(english) and '<html lang="de">' in text(german)
    assert (english["Content-Language"], german["Content-Language"]) == ("en", "de")
    assert GERMAN[path] in text(german) and GERMAN[path] not in text(english)
    assert "Accept-Language" in english["Vary"]
    assert english["Cache-Control"] == "no-store"
    rules = policy(english)
    assert (rules["script-src"], rules["style-src"], rules["form-action"]) == ("'self'", "'self'", "'self'")
    assert (rules["default-src"], rules["frame-ancestors"]) == ("'none'", "'none'")
    assert "unsafe-inline" not in english["Content-Security-Policy"]
    assert "unsafe-eval" not in english["Content-Security-Policy"]
    assert "<script>" not in text(english) and "style=" not in text(english)  # nothing inline


def test_an_unknown_language_gets_english(clinic_a: Clinic) -> None:
    response = browser(language="fr-FR,fr;q=0.9").get("/account/")
    assert response["Content-Language"] == "en" and '<html lang="en">' in text(response)


def test_the_static_files_of_the_pages_are_served(clinic_a: Clinic) -> None:
    for name in ("pages.css", "pages.js"):
        response = browser().get(f"/static/accounts/{name}")
        assert response.status_code == 200, name


@pytest.mark.parametrize(
    ("host", "path"),
    [("alpha.localhost", p) for p in ("/account/", "/invitation", "/password-reset", "/verify-email")]
    + [("localhost", "/password-reset"), ("localhost", "/verify-email"), ("alpha.localhost", "/account/mfa")],
)
def test_a_post_without_the_csrf_token_is_refused(clinic_a: Clinic, host: str, path: str) -> None:
    response = browser(host).post(path, {"email": "carol@example.com", "password": PASSWORD})
    assert response.status_code == 403


def test_every_field_has_a_label_and_errors_are_tied_to_their_field(clinic_a: Clinic) -> None:
    client = browser()
    page = text(client.get("/account/"))
    for name in ("email", "password", "otp"):
        assert f'<label for="id_{name}">' in page and f'id="id_{name}"' in page
    refused = post(client, "/account/", {"email": "not an email", "password": ""})
    assert refused.status_code == 400
    body = text(refused)
    assert 'aria-invalid="true"' in body
    assert re.search(r'aria-describedby="[^"]*id_email_error', body)
    assert '<ul class="errorlist" id="id_email_error">' in body
    assert 'role="alert"' in body


# --- Invitation ---------------------------------------------------------------------------------


def invite(carol: User, clinic: Clinic, email: str, capture: Any, role: str = Role.CLINICIAN) -> str:
    with capture(execute=True):
        invitation_create(clinic=clinic, email=email, role=role, invited_by=carol)
    link = link_in_last_email(r"http://\S+/invitation#token=\S+")
    return link.split("#token=", 1)[1]


def test_the_invitation_email_names_the_role_and_links_to_the_page_with_the_port(
    carol: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.PUBLIC_PORT = 8000
    invite(carol, clinic_a, "dr-new@example.com", django_capture_on_commit_callbacks, role=Role.CLINIC_ADMIN)
    message = mail.outbox[-1]
    assert message.subject == "You are invited to Alpha Allergy Clinic on CSU Tracker as a clinic admin"
    assert (
        "Carol Admin invited you to join Alpha Allergy Clinic on CSU Tracker as a clinic admin."
        in message.body
    )
    assert "http://alpha.localhost:8000/invitation#token=" in message.body


def test_a_new_clinician_accepts_an_invitation_and_lands_on_their_account(
    carol: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    token = invite(carol, clinic_a, "dr-new@example.com", django_capture_on_commit_callbacks)
    client = browser(language="de")
    opened = post(client, "/invitation", {"step": "open", "token": token})
    assert opened.status_code == 200
    page = text(opened)
    assert "<strong>Carol Admin</strong>" in page and "<strong>Alpha Allergy Clinic</strong>" in page
    assert "<strong>Ärztin/Arzt</strong>" in page  # the role, in German
    assert "Konto anlegen" in page
    accepted = post(
        client,
        "/invitation",
        {"step": "accept", "token": token, "full_name": "Dr New", "password": NEW_PASSWORD},
    )
    assert (accepted.status_code, accepted["Location"]) == (302, "/account/?welcome=1")
    user = User.objects.get(email="dr-new@example.com")
    assert user.full_name == "Dr New" and user.check_password(NEW_PASSWORD) and user.email_verified_at
    assert Membership.objects.get(user=user, clinic=clinic_a).role == Role.CLINICIAN
    account = text(client.get("/account/?welcome=1"))
    assert "dr-new@example.com" in account and "Abmelden" in account
    again = post(client, "/invitation", {"step": "open", "token": token})
    assert again.status_code == 400
    assert "Diese Einladung wurde schon angenommen" in text(again)


def test_a_pasted_invitation_link_opens_it_without_javascript(
    carol: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    token = invite(carol, clinic_a, "dr-new@example.com", django_capture_on_commit_callbacks)
    opened = post(
        browser(),
        "/invitation",
        {"step": "open", "token": f"http://alpha.localhost/invitation#token={token}"},
    )
    assert opened.status_code == 200 and "Create your account" in text(opened)


def test_an_existing_account_joins_with_its_own_password(
    carol: User, mallory: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    token = invite(carol, clinic_a, mallory.email, django_capture_on_commit_callbacks)
    client = browser()
    opened = post(client, "/invitation", {"step": "open", "token": token})
    assert "Sign in with your existing account" in text(opened) and 'name="full_name"' not in text(opened)
    wrong = post(client, "/invitation", {"step": "accept", "token": token, "password": "not her password"})
    assert wrong.status_code == 401 and "The email or password is not right." in text(wrong)
    joined = post(client, "/invitation", {"step": "accept", "token": token, "password": PASSWORD})
    assert joined.status_code == 302
    assert Membership.objects.filter(user=mallory, clinic=clinic_a, role=Role.CLINICIAN).exists()


def test_a_bad_or_foreign_invitation_token_is_refused_with_its_reason(
    carol: User, clinic_a: Clinic, clinic_b: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    token = invite(carol, clinic_a, "dr-new@example.com", django_capture_on_commit_callbacks)
    for host, sent in (("alpha.localhost", "nonsense"), ("beta.localhost", token)):
        refused = post(browser(host), "/invitation", {"step": "open", "token": sent})
        assert refused.status_code == 400, host
        assert "This invitation link is not valid." in text(refused)
        assert 'aria-invalid="true"' in text(refused)
    # Accepting straight away with a made-up token creates nothing.
    forged = post(
        browser(),
        "/invitation",
        {"step": "accept", "token": "nonsense", "full_name": "X", "password": NEW_PASSWORD},
    )
    assert forged.status_code == 400
    assert not User.objects.filter(email="dr-new@example.com").exists()


def test_invitation_to_a_clinic_requiring_mfa_leads_to_the_mfa_setup(
    carol: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    Clinic.objects.filter(pk=clinic_a.pk).update(mfa_required=True)
    token = invite(carol, clinic_a, "dr-new@example.com", django_capture_on_commit_callbacks)
    client = browser()
    post(client, "/invitation", {"step": "open", "token": token})
    accepted = post(
        client,
        "/invitation",
        {"step": "accept", "token": token, "full_name": "Dr New", "password": NEW_PASSWORD},
    )
    assert (accepted.status_code, accepted["Location"]) == (302, "/account/mfa")
    assert "requires two-factor sign-in" in text(client.get("/account/mfa"))


# --- Password reset -------------------------------------------------------------------------------


def reset_link(client: Client, email: str, capture: Any, path: str = "/password-reset") -> tuple[str, str]:
    with capture(execute=True):
        asked = post(client, path, {"step": "request", "email": email})
    assert asked.status_code == 200 and "a reset link is on its way" in text(asked)
    link = link_in_last_email(r"http://\S+/password-reset#uid=\S+")
    uid, token = re.findall(r"(?:uid|token)=([^&\s]+)", link.split("#", 1)[1])
    return uid, token


def test_a_password_is_reset_through_the_emailed_link(
    dr_bob: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    client = browser()
    uid, token = reset_link(client, dr_bob.email, django_capture_on_commit_callbacks)
    assert "http://alpha.localhost/password-reset#uid=" in mail.outbox[-1].body
    different = post(
        client,
        "/password-reset",
        {
            "step": "set",
            "uid": uid,
            "token": token,
            "password": NEW_PASSWORD,
            "password_again": "something else",
        },
    )
    assert different.status_code == 400 and "The two passwords are not the same." in text(different)
    done = post(
        client,
        "/password-reset",
        {"step": "set", "uid": uid, "token": token, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    )
    assert done.status_code == 200 and "Your password is changed." in text(done)
    dr_bob.refresh_from_db()
    assert dr_bob.check_password(NEW_PASSWORD)
    reused = post(
        client,
        "/password-reset",
        {
            "step": "set",
            "uid": uid,
            "token": token,
            "password": PASSWORD + "!",
            "password_again": PASSWORD + "!",
        },
    )
    assert reused.status_code == 400 and "This reset link is invalid or expired." in text(reused)


def test_a_reset_request_answers_the_same_for_an_unknown_email(clinic_a: Clinic) -> None:
    known = text(post(browser(), "/password-reset", {"step": "request", "email": "carol@example.com"}))
    unknown = text(post(browser(), "/password-reset", {"step": "request", "email": "nobody@example.com"}))
    strip = re.compile(r'value="[^"]+"')
    assert strip.sub("", known) == strip.sub("", unknown)


def test_a_weak_new_password_is_refused_next_to_its_field_in_german(
    dr_bob: User, clinic_a: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    client = browser()
    uid, token = reset_link(client, dr_bob.email, django_capture_on_commit_callbacks)
    german = browser(language="de")
    weak = post(
        german,
        "/password-reset",
        {"step": "set", "uid": uid, "token": token, "password": "short", "password_again": "short"},
    )
    assert weak.status_code == 400
    assert '<ul class="errorlist" id="id_password_error">' in text(weak)
    assert "zu kurz" in text(weak)  # Django's own validator message, in German


# --- Email verification -----------------------------------------------------------------------


SIGNUP = {
    "name": "Derm North",
    "slug": "derm-north",
    "timezone": "Europe/Vienna",
    "country": "AT",
    "admin": {"email": "owner@newclinic.example", "full_name": "Ada Admin", "password": NEW_PASSWORD},
}


def test_signup_is_confirmed_on_the_page_and_welcomed_by_email(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.PUBLIC_PORT = 8000
    with django_capture_on_commit_callbacks(execute=True):
        signed_up = host_client("localhost").post("/api/v1/clinics/", SIGNUP, format="json")
    assert signed_up.status_code == 202, signed_up.json()
    link = link_in_last_email(r"http://localhost:8000/verify-email#token=\S+")
    client = browser("localhost", "de")
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = post(client, "/verify-email", {"token": link.split("#token=", 1)[1]})
    assert confirmed.status_code == 200
    assert "Ihre E-Mail-Adresse ist bestätigt." in text(confirmed)
    assert 'href="http://derm-north.localhost:8000/account/"' in text(confirmed)
    assert Clinic.objects.get(slug="derm-north").status == "active"
    welcome = mail.outbox[-1]
    assert welcome.to == ["owner@newclinic.example"]
    assert welcome.subject == "Welcome to CSU Tracker: Derm North is ready"
    assert "http://derm-north.localhost:8000/account/" in welcome.body
    assert "http://derm-north.localhost:8000/account/mfa" in welcome.body


def test_the_url_a_confirmed_signup_returns_answers_200(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        host_client("localhost").post("/api/v1/clinics/", SIGNUP, format="json")
    token = link_in_last_email(r"token=\S+").removeprefix("token=")
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = host_client("localhost").post(
            "/api/v1/auth/verify-email/", {"token": token}, format="json"
        )
    url = confirmed.json()["clinic"]["url"]
    assert url == "http://derm-north.localhost/account/"
    response = browser("derm-north.localhost").get("/account/")
    assert response.status_code == 200 and "Staff of Derm North" in text(response)


def test_a_bad_confirmation_link_is_refused_on_the_page(clinic_a: Clinic) -> None:
    for host in ("localhost", "alpha.localhost"):
        refused = post(browser(host), "/verify-email", {"token": "nonsense"})
        assert refused.status_code == 400
        assert "This confirmation link is invalid or expired." in text(refused)


# --- MFA setup --------------------------------------------------------------------------------


def signed_in(user: User, host: str = "alpha.localhost", otp: str = "") -> Client:
    client = browser(host)
    response = post(client, "/account/", {"email": user.email, "password": PASSWORD, "otp": otp})
    assert response.status_code == 302, text(response)
    return client


def test_staff_set_up_mfa_on_the_page_and_see_the_recovery_codes_once(dr_bob: User, clinic_a: Clinic) -> None:
    client = signed_in(dr_bob)
    assert "Set up two-factor sign-in" in text(client.get("/account/"))
    wrong = post(client, "/account/mfa", {"step": "start", "password": "not the password"})
    assert wrong.status_code == 400 and "The password is not right." in text(wrong)
    scan = post(client, "/account/mfa", {"step": "start", "password": PASSWORD})
    assert scan.status_code == 200
    page = text(scan)
    assert '<img class="qr" src="data:image/png;base64,' in page
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    mistyped = post(client, "/account/mfa", {"step": "confirm", "secret": secret, "otp": "000000"})
    assert mistyped.status_code == 400 and '<img class="qr"' in text(mistyped)  # the code is shown again
    # Without the secret (a stolen session that never passed the password check), nothing of it.
    blind = post(client, "/account/mfa", {"step": "confirm", "otp": "000000"})
    assert blind.status_code == 400 and secret not in text(blind) and '<img class="qr"' not in text(blind)
    done = post(client, "/account/mfa", {"step": "confirm", "secret": secret, "otp": totp.now()})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", text(done))
    assert len(codes) == 10
    assert done["Cache-Control"] == "no-store"
    assert TotpDevice.objects.get(user=dr_bob).confirmed_at is not None
    # This browser stays signed in (now with two factors); the codes are not shown again.
    assert "Two-factor sign-in is on." in text(client.get("/account/"))
    assert "already set up" in text(client.get("/account/mfa"))
    # The code that just confirmed cannot sign in again: the answer says to wait for the next.
    reused = host_client("alpha.localhost").post(
        "/api/v1/auth/token/", {"email": dr_bob.email, "password": PASSWORD, "otp": totp.now()}, format="json"
    )
    assert (reused.status_code, reused.json()["code"]) == (401, "otp_already_used")
    assert "wait for the next code" in reused.json()["detail"].lower()


def test_the_mfa_page_is_for_signed_in_staff_of_this_clinic(alice: User, clinic_a: Clinic) -> None:
    anonymous = browser().get("/account/mfa")
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/account/")
    patient = signed_in(alice)
    assert patient.get("/account/mfa").status_code == 403


# --- Sessions belong to one clinic ------------------------------------------------------------------


def test_a_session_opened_at_one_clinic_is_nobody_at_another(
    carol: User, mallory: User, clinic_a: Clinic
) -> None:
    carols = signed_in(carol)
    assert "carol@example.com" in text(carols.get("/account/"))
    # Her session cookie replayed on beta's host: the sign-in form, nothing of hers.
    replayed = browser("beta.localhost")
    replayed.cookies = carols.cookies
    page = text(replayed.get("/account/"))
    assert "carol@example.com" not in page and 'name="password"' in page
    # Beta's clinician cannot sign in on alpha's page.
    refused = post(browser(), "/account/", {"email": mallory.email, "password": PASSWORD})
    assert refused.status_code == 401 and "The email or password is not right." in text(refused)
    assert replayed.get("/account/mfa").status_code == 302


def test_signing_out_ends_the_session(carol: User, clinic_a: Clinic) -> None:
    client = signed_in(carol)
    out = post(client, "/account/", {"action": "sign-out"})
    assert (out.status_code, out["Location"]) == (302, "/account/")
    assert 'name="password"' in text(client.get("/account/"))


# --- Part 7 frictions -------------------------------------------------------------------------


def test_an_admin_without_mfa_cannot_require_it_and_is_told_how_to_set_it_up(
    carol: User, clinic_a: Clinic
) -> None:
    response = authed_client(carol, clinic_a).patch(
        "/api/v1/admin/clinic/", {"mfa_required": True}, format="json"
    )
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("mfa_setup_first", ["mfa_required"])
    assert "/account/mfa" in body["detail"]
    clinic_a.refresh_from_db()
    assert clinic_a.mfa_required is False
    # Switching it off, or leaving it off, needs nothing.
    assert (
        authed_client(carol, clinic_a)
        .patch("/api/v1/admin/clinic/", {"mfa_required": False}, format="json")
        .status_code
        == 200
    )


def test_the_pages_forms_are_throttled_like_their_api(clinic_a: Clinic) -> None:
    """Tokens cannot be tried, nor reset emails queued, faster through the pages than the API."""
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()  # earlier tests' posts from this address
    client = browser(language="de")
    with mock.patch.object(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "auth": "3/min"}
    ):
        statuses = [
            post(client, "/invitation", {"step": "open", "token": f"guess-{n}"}).status_code for n in range(4)
        ]
        assert statuses == [400, 400, 400, 429]
        throttled = post(client, "/password-reset", {"step": "request", "email": "carol@example.com"})
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert "Zu viele Versuche" in text(throttled)
    assert 'name="email"' not in text(throttled)


def test_a_locked_out_sign_in_stays_the_page_and_says_when_to_try_again(
    carol: User, clinic_a: Clinic
) -> None:
    client = browser(language="de")
    statuses = [
        post(client, "/account/", {"email": carol.email, "password": f"wrong {n}"}).status_code
        for n in range(5)
    ]
    locked = post(client, "/account/", {"email": carol.email, "password": PASSWORD})
    assert statuses[:4] == [401, 401, 401, 401]
    assert locked.status_code == 429
    assert locked["Content-Type"].startswith("text/html") and int(locked["Retry-After"]) > 0
    assert re.search(
        r"Zu viele fehlgeschlagene Anmeldeversuche\. Versuchen Sie es in \d+ Minuten erneut\.", text(locked)
    )
    assert 'name="password"' in text(locked)


@pytest.mark.parametrize(
    ("scheme", "port", "expected"),
    [
        ("http", None, "http://alpha.localhost/invitation"),
        ("http", 8000, "http://alpha.localhost:8000/invitation"),
        ("http", 80, "http://alpha.localhost/invitation"),
        ("https", 443, "https://alpha.localhost/invitation"),
        ("https", 8443, "https://alpha.localhost:8443/invitation"),
    ],
)
def test_links_carry_scheme_host_and_the_port_unless_it_is_the_schemes_own(
    clinic_a: Clinic, settings: Any, scheme: str, port: int | None, expected: str
) -> None:
    from tenants.selectors import clinic_url, platform_url

    settings.PUBLIC_URL_SCHEME, settings.PUBLIC_PORT = scheme, port
    assert clinic_url(clinic_a, "/invitation") == expected
    assert platform_url("/verify-email") == expected.replace("alpha.localhost", "localhost").replace(
        "/invitation", "/verify-email"
    )


def test_a_patient_confirms_their_address_on_the_clinic_host_and_is_pointed_to_the_app(
    clinic_a: Clinic,
) -> None:
    from accounts.services import email_verification_token, user_create

    user = user_create(
        email="newpatient@example.com", password=NEW_PASSWORD, full_name="New Patient", verified=False
    )
    token = email_verification_token(user=user)
    confirmed = post(
        browser(language="de"),
        "/verify-email",
        {"token": f"http://alpha.localhost/verify-email#token={token}"},
    )
    assert confirmed.status_code == 200
    assert "Ihre E-Mail-Adresse ist bestätigt." in text(confirmed) and 'href="/app/"' in text(confirmed)
    user.refresh_from_db()
    assert user.email_verified_at is not None
