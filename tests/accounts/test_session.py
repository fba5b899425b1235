"""Session sign-in for the portal in a browser: CSRF, clinic binding, idle and absolute limits."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def csrf_client(host: str) -> tuple[APIClient, str]:
    client = APIClient(HTTP_HOST=host, enforce_csrf_checks=True)
    token = client.get("/api/v1/auth/csrf/").json()["csrf_token"]
    return client, token


def login(client: APIClient, csrf: str, email: str):  # noqa: ANN201
    return client.post(
        "/api/v1/auth/login/", {"email": email, "password": PASSWORD}, format="json", HTTP_X_CSRFTOKEN=csrf
    )


def test_session_login_then_me_then_logout(dr_bob: User) -> None:
    client, csrf = csrf_client("alpha.localhost")
    assert login(client, csrf, dr_bob.email).status_code == 204
    csrf = client.cookies["csrftoken"].value
    me = client.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert (me.json()["auth_method"], me.json()["role"]) == ("session", "clinician")
    assert client.post("/api/v1/auth/logout/", {}, format="json", HTTP_X_CSRFTOKEN=csrf).status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_login_without_csrf_token_is_refused(dr_bob: User) -> None:
    client = APIClient(HTTP_HOST="alpha.localhost", enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/auth/login/", {"email": dr_bob.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_unsafe_request_with_a_session_but_without_csrf_is_refused(dr_bob: User) -> None:
    client, csrf = csrf_client("alpha.localhost")
    assert login(client, csrf, dr_bob.email).status_code == 204
    response = client.post("/api/v1/auth/mfa/setup/", {"password": PASSWORD}, format="json")  # no X-CSRFToken
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    with_token = client.post(
        "/api/v1/auth/mfa/setup/",
        {"password": PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert with_token.status_code == 200


def test_a_session_opened_on_one_clinic_does_not_work_on_another(dr_bob: User, clinic_b) -> None:  # noqa: ANN001
    client, csrf = csrf_client("alpha.localhost")
    assert login(client, csrf, dr_bob.email).status_code == 204
    assert client.get("/api/v1/auth/me/", HTTP_HOST="beta.localhost").status_code == 401


def test_idle_timeout_is_sliding_and_absolute_cap_ends_the_session(dr_bob: User) -> None:
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client, csrf = csrf_client("alpha.localhost")
    assert login(client, csrf, dr_bob.email).status_code == 204
    session = client.session
    session["csu.started"] = int(time.time()) - settings.SESSION_ABSOLUTE_SECONDS - 1
    session.save()
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"
    assert client.get("/api/v1/auth/me/").status_code == 401  # and it stays ended
