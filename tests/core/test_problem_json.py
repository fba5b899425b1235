"""Every error is RFC 9457 application/problem+json with a stable code."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@pytest.fixture
def api(clinic_a) -> APIClient:  # noqa: ANN001
    # The host middleware picks ROOT_URLCONF for clinic hosts; point it at the test views.
    with override_settings(ROOT_URLCONF="tests.core.urls"):
        yield APIClient(HTTP_HOST="alpha.localhost", raise_request_exception=False)


def test_validation_error_names_each_field(api: APIClient) -> None:
    response = api.post("/echo/", {"wheals": 7}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == PROBLEM_KEYS | {"errors"}
    assert body["code"] == "validation_error"
    assert body["errors"] == {"wheals": ["Ensure this value is less than or equal to 3."]}
    assert body["status"] == 400


def test_unknown_fields_are_refused_not_dropped(api: APIClient) -> None:
    response = api.post("/echo/", {"wheals": 1, "itchy": 2, "zz": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"itchy": ["Unknown field."], "zz": ["Unknown field."]}


def test_valid_input_passes(api: APIClient) -> None:
    response = api.post("/echo/", {"wheals": 2}, format="json")
    assert (response.status_code, response.json()) == (200, {"wheals": 2})


def test_malformed_json_is_a_400_problem(api: APIClient) -> None:
    response = api.post("/echo/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_application_error_keeps_its_code_and_field(api: APIClient) -> None:
    response = api.post("/rule/", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "type": "http://localhost/problems/diary_future_date",
        "title": "Invalid request",
        "status": 400,
        "detail": "Cannot record a future day.",
        "code": "diary_future_date",
        "errors": {"date": ["Cannot record a future day."]},
    }


def test_unhandled_error_is_a_500_problem_without_internals(api: APIClient) -> None:
    response = api.get("/boom/")
    assert response.status_code == 500
    assert response.json() == {
        "type": "http://localhost/problems/server_error",
        "title": "Internal server error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "code": "server_error",
    }
    assert b"secret internal detail" not in response.content
    assert b"Traceback" not in response.content


def test_throttled_says_when_to_retry(api: APIClient) -> None:
    response = api.get("/throttled/")
    assert response.status_code == 429
    assert response["Retry-After"] == "42"
    assert response.json()["code"] == "throttled"
    assert response.json()["retry_after"] == 42


def test_anonymous_on_a_protected_view_is_a_problem(api: APIClient) -> None:
    response = api.get("/private/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"


def test_unknown_url_is_a_404_problem(api: APIClient) -> None:
    response = api.get("/no/such/thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_a_405_problem(api: APIClient) -> None:
    response = api.delete("/echo/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
