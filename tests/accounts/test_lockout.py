"""django-axes lockout on every login path: username + IP, 5 failures, 429 with retry time."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db

WRONG = "definitely-not-the-password"


def token(client: APIClient, email: str, password: str, ip: str = "10.0.0.1"):  # noqa: ANN201
    return client.post(
        "/api/v1/auth/token/", {"email": email, "password": password}, format="json", REMOTE_ADDR=ip
    )


def fail_five_times(client: APIClient, email: str, ip: str = "10.0.0.1") -> None:
    for attempt in range(5):
        response = token(client, email, WRONG, ip)
        assert response.status_code == (429 if attempt == 4 else 401), attempt  # the fifth locks


def test_five_failures_lock_out_even_the_right_password(client_a: APIClient, alice: User) -> None:
    for _ in range(4):
        assert token(client_a, alice.email, WRONG).status_code == 401
    fifth = token(client_a, alice.email, WRONG)
    assert fifth.status_code == 429
    locked = token(client_a, alice.email, PASSWORD)
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/problem+json"
    body = locked.json()
    assert body["code"] == "locked_out"
    assert 14 * 60 <= body["retry_after"] <= 15 * 60
    assert locked["Retry-After"] == str(body["retry_after"])
    assert "Try again after" in body["detail"]


def test_lockout_is_per_username_and_ip(client_a: APIClient, alice: User, dr_bob: User) -> None:
    fail_five_times(client_a, alice.email, ip="10.0.0.1")
    # The same person from another address, and another person from the same address, still sign in.
    assert token(client_a, alice.email, PASSWORD, ip="10.0.0.2").status_code == 200
    assert token(client_a, dr_bob.email, PASSWORD, ip="10.0.0.1").status_code == 200


def test_lockout_spans_clinic_hosts_and_session_login(alice: User, clinic_b) -> None:  # noqa: ANN001
    fail_five_times(host_client("alpha.localhost"), alice.email)
    # Users are global: the lock holds on another clinic's host and on the session login path.
    assert token(host_client("beta.localhost"), alice.email, PASSWORD).status_code == 429
    session = host_client("alpha.localhost")
    session.handler.enforce_csrf_checks = False
    response = session.post(
        "/api/v1/auth/login/",
        {"email": alice.email, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.0.0.1",
    )
    assert response.status_code == 429


def test_session_login_failures_count_too(alice: User) -> None:
    client = host_client("alpha.localhost")
    for _ in range(5):
        client.post(
            "/api/v1/auth/login/",
            {"email": alice.email, "password": WRONG},
            format="json",
            REMOTE_ADDR="10.9.9.9",
        )
    assert token(client, alice.email, PASSWORD, ip="10.9.9.9").status_code == 429


def test_success_resets_the_counter(client_a: APIClient, alice: User) -> None:
    for _ in range(4):
        token(client_a, alice.email, WRONG)
    assert token(client_a, alice.email, PASSWORD).status_code == 200
    for _ in range(4):
        assert token(client_a, alice.email, WRONG).status_code == 401
    assert token(client_a, alice.email, PASSWORD).status_code == 200


# --- Behind the proxy: forged addresses, many addresses, IPv6 (issue 14, finding 5) -------------

CADDY = "172.30.80.2"  # the proxy's fixed address in deploy/compose.yaml
MALLORY_DIRECT = "203.0.113.66"  # a client that reaches gunicorn without going through Caddy


@pytest.fixture
def behind_caddy(settings) -> None:  # noqa: ANN001
    """The documented deployment: one proxy hop, trusted at Caddy's address only."""
    settings.TRUSTED_PROXY_IPS = [CADDY]
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def token_via(client: APIClient, email: str, password: str, *, peer: str, forwarded_for: str | None = None):  # noqa: ANN201
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    return client.post(
        "/api/v1/auth/token/",
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=peer,
        **extra,
    )


def test_a_client_reaching_the_app_directly_cannot_forge_its_way_out_of_the_lockout(
    behind_caddy: None, client_a: APIClient, alice: User
) -> None:
    for i in range(7):
        token_via(client_a, alice.email, WRONG, peer=MALLORY_DIRECT, forwarded_for=f"198.51.100.{i}")
    response = token_via(client_a, alice.email, PASSWORD, peer=MALLORY_DIRECT, forwarded_for="198.51.100.99")
    assert (response.status_code, response.json().get("code")) == (429, "locked_out")


def test_behind_the_proxy_each_client_is_counted_on_the_address_caddy_reports(
    behind_caddy: None, client_a: APIClient, alice: User
) -> None:
    for _ in range(5):
        token_via(client_a, alice.email, WRONG, peer=CADDY, forwarded_for="198.51.100.1")
    assert (
        token_via(client_a, alice.email, PASSWORD, peer=CADDY, forwarded_for="198.51.100.1").status_code
        == 429
    )
    # Another client behind the same proxy is not the one who guessed.
    assert (
        token_via(client_a, alice.email, PASSWORD, peer=CADDY, forwarded_for="198.51.100.2").status_code
        == 200
    )


def test_many_addresses_guessing_one_account_lock_the_account(client_a: APIClient, alice: User) -> None:
    # 20 failures (LOGIN_ACCOUNT_FAILURE_LIMIT), never more than 2 from one address.
    for i in range(20):
        response = token(client_a, alice.email, WRONG, ip=f"192.0.2.{i // 2}")
    assert (response.status_code, response.json().get("code")) == (429, "locked_out")
    locked = token(client_a, alice.email, PASSWORD, ip="192.0.2.200")
    assert (locked.status_code, locked.json().get("code")) == (429, "locked_out")
    # The lock lifts a cool-off after the last failure of the window.
    assert 14 * 60 <= locked.json()["retry_after"] <= 15 * 60
    assert locked["Retry-After"] == str(locked.json()["retry_after"])


def test_fewer_failures_than_the_account_limit_from_many_addresses_lock_nobody_out(
    client_a: APIClient, alice: User
) -> None:
    for i in range(19):
        assert token(client_a, alice.email, WRONG, ip=f"192.0.2.{i}").status_code == 401
    assert token(client_a, alice.email, PASSWORD, ip="192.0.2.200").status_code == 200


def test_the_account_lock_spares_an_address_the_owner_signed_in_from(
    client_a: APIClient, alice: User, dr_bob: User
) -> None:
    home = "198.51.100.50"
    assert token(client_a, alice.email, PASSWORD, ip=home).status_code == 200
    for i in range(20):
        token(client_a, alice.email, WRONG, ip=f"192.0.2.{i}")
    assert token(client_a, alice.email, PASSWORD, ip="192.0.2.201").status_code == 429
    # Alice at home still signs in; the per-address counter still holds there.
    assert token(client_a, alice.email, PASSWORD, ip=home).status_code == 200
    # Another account is untouched.
    assert token(client_a, dr_bob.email, PASSWORD, ip="192.0.2.1").status_code == 200


def test_ipv6_addresses_in_one_64_count_as_one_client(client_a: APIClient, alice: User) -> None:
    for i in range(5):
        token(client_a, alice.email, WRONG, ip=f"2001:db8:1:2::{i + 1:x}")
    same_64 = token(client_a, alice.email, PASSWORD, ip="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert (same_64.status_code, same_64.json().get("code")) == (429, "locked_out")
    assert token(client_a, alice.email, PASSWORD, ip="2001:db8:1:3::1").status_code == 200
