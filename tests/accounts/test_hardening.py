"""Regressions from review: every password check counts toward the lockout, client IPs cannot
be forged, oversized or absurd bodies get a 4xx."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from accounts.models import Membership, TotpDevice, User
from accounts.services import mfa_secret_issue
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client

pytestmark = pytest.mark.django_db


def enroll(code: str, email: str, password: str, **extra: str):  # noqa: ANN201
    return host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {"code": code, "email": email, "password": password, "privacy_notice_version": 1, **extra},
        format="json",
        REMOTE_ADDR="10.1.1.1",
    )


def test_guessing_an_existing_accounts_password_through_enrollment_is_locked_out(
    dr_bob: User, mallory: User, clinic_a: Clinic
) -> None:
    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    for _ in range(4):
        assert enroll(code, mallory.email, "guess guess guess").status_code == 401
    assert enroll(code, mallory.email, "guess guess guess").status_code == 429
    locked = enroll(code, mallory.email, PASSWORD)
    assert (locked.status_code, locked.json()["code"]) == (429, "locked_out")
    assert not Membership.objects.filter(user=mallory, clinic=clinic_a).exists()


def test_linking_an_account_with_totp_requires_the_code(
    dr_bob: User, mallory: User, clinic_a: Clinic
) -> None:
    from django.utils import timezone

    mfa_secret_issue(user=mallory)
    TotpDevice.objects.filter(user=mallory).update(confirmed_at=timezone.now())
    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    response = enroll(code, mallory.email, PASSWORD)
    assert (response.status_code, response.json()["code"]) == (401, "mfa_required")
    assert not Membership.objects.filter(user=mallory, clinic=clinic_a).exists()


def test_enrollment_checks_the_code_before_any_password(mallory: User) -> None:
    response = enroll("AAAA-AAAA", mallory.email, "whatever it is")
    assert (response.status_code, response.json()["code"]) == (400, "enrollment_invalid")


def test_password_change_guesses_are_locked_out(alice: User, clinic_a: Clinic) -> None:
    client = authed_client(alice, clinic_a)
    for _ in range(5):
        client.post(
            "/api/v1/auth/password/",
            {"current_password": "nope nope nope", "new_password": "x new passphrase"},
            format="json",
            REMOTE_ADDR="10.2.2.2",
        )
    response = client.post(
        "/api/v1/auth/password/",
        {"current_password": PASSWORD, "new_password": "x new passphrase"},
        format="json",
        REMOTE_ADDR="10.2.2.2",
    )
    assert response.status_code == 429
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_forged_x_forwarded_for_does_not_change_the_lockout_address(client_a: APIClient, alice: User) -> None:
    for i in range(5):
        client_a.post(
            "/api/v1/auth/token/",
            {"email": alice.email, "password": "wrong wrong wrong"},
            format="json",
            REMOTE_ADDR="10.3.3.3",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}",
        )
    response = client_a.post(
        "/api/v1/auth/token/",
        {"email": alice.email, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.3.3.3",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert response.status_code == 429


def test_forged_x_forwarded_for_does_not_escape_throttling(
    client_a: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates into a class attribute at import time.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "auth": "3/min"}
    )
    cache.clear()
    statuses = [
        client_a.post(
            "/api/v1/auth/password-reset/",
            {"email": "x@example.com"},
            format="json",
            REMOTE_ADDR="10.4.4.4",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(5)
    ]
    assert statuses == [202, 202, 202, 429, 429]
    throttled = client_a.post(
        "/api/v1/auth/password-reset/", {"email": "x@example.com"}, format="json", REMOTE_ADDR="10.4.4.4"
    )
    assert throttled["Retry-After"] and throttled.json()["code"] == "throttled"


def test_oversized_body_is_413(client_a: APIClient) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * 3_000_000})
    response = client_a.post("/api/v1/auth/token/", body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


def test_absurdly_nested_json_is_400(client_a: APIClient) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = client_a.post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 400


def test_invalid_token_detail_is_a_plain_message(client_a: APIClient) -> None:
    response = client_a.get("/api/v1/auth/me/", HTTP_AUTHORIZATION="Bearer not.a.token")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert "ErrorDetail" not in response.json()["detail"]


@pytest.mark.django_db
def test_sync_and_export_are_throttled_per_user_with_retry_after(
    alice_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {**SimpleRateThrottle.THROTTLE_RATES, "sync": "2/min", "export": "1/hour"},
    )
    cache.clear()
    pulls = [alice_client.get("/api/v1/sync/pull/", HTTP_X_SCHEMA_VERSION="1").status_code for _ in range(3)]
    assert pulls == [200, 200, 429]
    exports = [alice_client.get("/api/v1/me/export/") for _ in range(2)]
    assert [r.status_code for r in exports] == [200, 429]
    assert exports[1]["Content-Type"].startswith("application/problem+json")
    assert int(exports[1]["Retry-After"]) > 0


def test_signing_out_is_not_refused_when_the_sign_in_budget_is_spent(
    client_a: APIClient, alice: User, clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clinic's shared network: failed sign-ins spent the `auth` budget. The patient's
    sign-out still revokes the refresh token (it answered 429 and the token stayed valid)."""
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    from tests.conftest import tokens_for

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "auth": "2/min"}
    )
    cache.clear()
    refresh = tokens_for(alice, clinic_a)["refresh"]
    for _ in range(3):
        client_a.post("/api/v1/auth/token/", {"email": alice.email, "password": "wrong"}, format="json")
    assert (
        client_a.post("/api/v1/auth/token/", {"email": alice.email, "password": PASSWORD}, format="json").status_code
        == 429
    )
    assert client_a.post("/api/v1/auth/logout/", {"refresh": refresh}, format="json").status_code == 204
    cache.clear()
    again = client_a.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert again.status_code == 401
