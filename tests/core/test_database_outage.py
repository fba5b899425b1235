"""Database connection errors answer 503 problem+json with Retry-After (issue 20, fault 2), from
the host routing middleware as from a view; other database errors keep their answers. The real
outage (a proxy in front of PostgreSQL under gunicorn) is in tests/e2e/test_outages.py; here the
error is raised where the outage would raise it."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, OperationalError
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OUTAGE_TEXT = 'connection to server at "10.9.9.9", port 5432 failed: Connection refused'


@pytest.fixture(autouse=True)
def _answers_not_exceptions(alice_client: APIClient, client_a: APIClient) -> None:
    # As a server does: the test client would re-raise what Django turned into a response.
    alice_client.raise_request_exception = False
    client_a.raise_request_exception = False


def _refuse(*args: object, **kwargs: object) -> None:
    raise OperationalError(OUTAGE_TEXT)


def assert_service_unavailable(response) -> None:  # noqa: ANN001
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "type": "http://localhost/problems/service_unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The service is briefly unavailable. Try again in a few seconds.",
        "code": "service_unavailable",
    }
    assert b"10.9.9.9" not in response.content


def test_host_routing_without_a_database_answers_503(
    alice_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tenants.middleware.clinic_for_host", _refuse)
    assert_service_unavailable(alice_client.get("/api/v1/me/profile/"))


def test_a_view_losing_the_database_answers_503(
    alice_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("accounts.authentication.user_with_membership", _refuse)
    assert_service_unavailable(alice_client.get("/api/v1/me/profile/"))


def test_other_database_errors_keep_their_500(
    alice_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def conflict(*args: object, **kwargs: object) -> None:
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr("tenants.middleware.clinic_for_host", conflict)
    response = alice_client.get("/api/v1/me/profile/")
    assert (response.status_code, response.json()["code"]) == (500, "server_error")
    assert "Retry-After" not in response


def test_readyz_on_a_clinic_host_names_the_database_when_the_clinic_cannot_be_looked_up(
    client_a: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tenants.middleware.clinic_for_host", _refuse)
    response = client_a.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["code"], body["detail"]) == ("not_ready", "Not ready: database, migrations, keys.")
    assert body["checks"] == {
        "database": "fail",
        "migrations": "fail",
        "keys": "fail",
        "cache": "ok",
        "broker": "ok",
    }
