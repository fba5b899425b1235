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
        assert response.status_code in (401, 429), attempt
    assert response.status_code == 429


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
