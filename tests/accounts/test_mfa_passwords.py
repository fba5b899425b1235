"""TOTP MFA for staff, recovery codes, password reset and change."""

from __future__ import annotations

import re

import pyotp
import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import RecoveryCode, TotpDevice, User
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client, tokens_for

pytestmark = pytest.mark.django_db


def obtain(email: str, otp: str | None = None, password: str = PASSWORD):  # noqa: ANN201
    body = {"email": email, "password": password, **({"otp": otp} if otp is not None else {})}
    return host_client("alpha.localhost").post("/api/v1/auth/token/", body, format="json")


def enable_mfa(user: User, clinic: Clinic, client: APIClient | None = None) -> tuple[pyotp.TOTP, list[str]]:
    """Set up and confirm TOTP; `client` then carries the fresh `pwd+otp` token that
    confirmation hands out (its earlier token is revoked)."""
    client = client or authed_client(user, clinic)
    setup = client.post("/api/v1/auth/mfa/setup/", {"password": PASSWORD}, format="json")
    assert setup.status_code == 200
    body = setup.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/CSU%20Tracker:")
    assert body["qr_png"].startswith("data:image/png;base64,")
    totp = pyotp.TOTP(body["secret"])
    confirm = client.post("/api/v1/auth/mfa/confirm/", {"otp": totp.now()}, format="json")
    assert confirm.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {confirm.json()['access']}")
    return totp, confirm.json()["recovery_codes"]


def next_code(totp: pyotp.TOTP) -> str:
    return totp.at(timezone.now().timestamp() + totp.interval)


def test_after_confirmation_sign_in_needs_a_valid_code(dr_bob: User, clinic_a: Clinic) -> None:
    totp, codes = enable_mfa(dr_bob, clinic_a)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert TotpDevice.objects.get(user=dr_bob).secret_encrypted != totp.secret  # encrypted at rest
    missing = obtain(dr_bob.email)
    assert (missing.status_code, missing.json()["code"]) == (401, "mfa_required")
    wrong = obtain(dr_bob.email, otp="000000")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_otp")
    # A phone clock one step ahead is accepted; after that, older steps are spent.
    assert obtain(dr_bob.email, otp=next_code(totp)).status_code == 200
    assert obtain(dr_bob.email, otp=totp.now()).status_code == 401


def test_a_totp_code_cannot_be_replayed(dr_bob: User, clinic_a: Clinic) -> None:
    totp, _ = enable_mfa(dr_bob, clinic_a)  # confirmation used the current step
    assert obtain(dr_bob.email, otp=totp.now()).status_code == 401


def test_recovery_codes_are_single_use_and_stored_hashed(dr_bob: User, clinic_a: Clinic) -> None:
    _, codes = enable_mfa(dr_bob, clinic_a)
    stored = set(RecoveryCode.objects.filter(user=dr_bob).values_list("code_hash", flat=True))
    assert not stored & set(codes)
    assert obtain(dr_bob.email, otp=codes[0]).status_code == 200
    assert obtain(dr_bob.email, otp=codes[0]).status_code == 401
    assert obtain(dr_bob.email, otp=codes[1].upper()).status_code == 200


def test_wrong_codes_count_towards_the_lockout(dr_bob: User, clinic_a: Clinic) -> None:
    enable_mfa(dr_bob, clinic_a)
    for _ in range(5):
        obtain(dr_bob.email, otp="123456")
    assert obtain(dr_bob.email, otp="123456").status_code == 429


def test_patients_cannot_set_up_staff_mfa(alice: User, clinic_a: Clinic) -> None:
    response = authed_client(alice, clinic_a).post("/api/v1/auth/mfa/setup/", {"password": PASSWORD}, format="json")
    assert response.status_code == 403


def test_clinic_requiring_mfa_blocks_staff_until_they_enrol(
    dr_bob: User, alice: User, clinic_a: Clinic
) -> None:
    Clinic.objects.filter(pk=clinic_a.pk).update(mfa_required=True)
    clinic_a.refresh_from_db()
    from tenants.selectors import clinic_host_cache_clear

    clinic_host_cache_clear(clinic=clinic_a)
    client = authed_client(dr_bob, clinic_a)
    blocked = client.post("/api/v1/portal/enrollments/", {}, format="json")
    assert (blocked.status_code, blocked.json()["code"]) == (403, "mfa_setup_required")
    me = client.get("/api/v1/auth/me/")
    assert me.status_code == 200 and me.json()["mfa_setup_required"] is True
    assert authed_client(alice, clinic_a).get("/api/v1/auth/me/").json()["mfa_setup_required"] is False
    enable_mfa(dr_bob, clinic_a, client)
    assert client.post("/api/v1/portal/enrollments/", {}, format="json").status_code == 201
    Clinic.objects.filter(pk=clinic_a.pk).update(mfa_required=False)
    clinic_host_cache_clear(clinic=clinic_a)


# --- Passwords --------------------------------------------------------------------------------


def test_password_reset_does_not_reveal_whether_the_email_exists(
    alice: User, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    client = host_client("alpha.localhost")
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post("/api/v1/auth/password-reset/", {"email": alice.email}, format="json")
        unknown = client.post("/api/v1/auth/password-reset/", {"email": "nobody@example.com"}, format="json")
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content) == (202, b"")
    assert [message.to for message in mail.outbox] == [[alice.email]]


def test_password_reset_link_sets_a_new_password_once(
    alice: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    old_refresh = tokens_for(alice, clinic_a)["refresh"]
    client = host_client("localhost")  # the platform host serves resets too
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/auth/password-reset/", {"email": alice.email}, format="json")
    uid, token = re.search(r"uid=([\w-]+)&token=([\w-]+)", mail.outbox[-1].body).groups()
    new = "an entirely new passphrase"
    confirm = {"uid": uid, "token": token, "password": new}
    assert client.post("/api/v1/auth/password-reset/confirm/", confirm, format="json").status_code == 204
    reused = client.post(
        "/api/v1/auth/password-reset/confirm/", {**confirm, "password": "yet another one 99"}, format="json"
    )
    assert (reused.status_code, reused.json()["code"]) == (400, "reset_token_invalid")
    assert obtain(alice.email, password=new).status_code == 200
    refresh = host_client("alpha.localhost").post(
        "/api/v1/auth/token/refresh/", {"refresh": old_refresh}, format="json"
    )
    assert refresh.status_code == 401  # sessions elsewhere are revoked


def test_password_reset_confirm_rejects_garbage(alice: User) -> None:
    response = host_client("localhost").post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": "!!", "token": "x", "password": "whatever 12345"},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (400, "reset_token_invalid")


def test_password_change_needs_the_current_password_and_revokes_other_refresh_tokens(
    alice: User, clinic_a: Clinic
) -> None:
    other_device = tokens_for(alice, clinic_a)["refresh"]
    client = authed_client(alice, clinic_a)
    wrong = client.post(
        "/api/v1/auth/password/",
        {"current_password": "nope nope nope", "new_password": "fresh passphrase 1"},
        format="json",
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")
    weak = client.post(
        "/api/v1/auth/password/", {"current_password": PASSWORD, "new_password": "123"}, format="json"
    )
    assert (weak.status_code, weak.json()["code"]) == (400, "weak_password")
    ok = client.post(
        "/api/v1/auth/password/",
        {"current_password": PASSWORD, "new_password": "fresh passphrase 1"},
        format="json",
    )
    assert ok.status_code == 200 and set(ok.json()) == {"access", "refresh"}
    assert (
        host_client("alpha.localhost")
        .post("/api/v1/auth/token/refresh/", {"refresh": other_device}, format="json")
        .status_code
        == 401
    )
    assert (
        host_client("alpha.localhost")
        .post("/api/v1/auth/token/refresh/", {"refresh": ok.json()["refresh"]}, format="json")
        .status_code
        == 200
    )


def test_emails_are_case_insensitive_and_unique(clinic_a: Clinic) -> None:
    from django.db import IntegrityError, transaction

    User.objects.create_user("Dana@Example.COM", PASSWORD)
    assert User.objects.filter(email="dana@example.com").exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("DANA@example.com", PASSWORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="Mixed@Example.com")  # raw writes cannot bypass lowercase
