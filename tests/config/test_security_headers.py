"""Transport and browser headers on every response: CSP, nosniff, referrer policy, framing,
no-store on API bodies, CORS for the PWA's origin only, and a docs page that works under CSP."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_api_responses_carry_the_security_headers(alice_client: APIClient) -> None:
    response = alice_client.get("/api/v1/me/profile/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src 'self'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/api/v1/clinics/slug-availability/?slug=abc", "/api/v1/nowhere/"])
def test_even_public_and_error_responses_are_not_stored(public_client: APIClient, path: str) -> None:
    assert public_client.get(path)["Cache-Control"] == "no-store"


def test_the_docs_page_loads_its_script_from_the_same_origin_under_csp(public_client: APIClient) -> None:
    page = public_client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>" not in html  # no inline script: CSP script-src 'self' allows the page
    assert '<script src="/api/docs/?script="></script>' in html
    script = public_client.get("/api/docs/?script")
    assert (script.status_code, script["Content-Type"].split(";")[0]) == (200, "application/javascript")
    assert "script-src 'self'" in page["Content-Security-Policy"]


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.csu.example"])
def test_cors_allows_only_the_pwa_origin(alice_client: APIClient) -> None:
    allowed = alice_client.options(
        "/api/v1/me/profile/",
        HTTP_ORIGIN="https://app.csu.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )
    assert allowed["Access-Control-Allow-Origin"] == "https://app.csu.example"
    assert "authorization" in allowed["Access-Control-Allow-Headers"]
    other = alice_client.get("/api/v1/me/profile/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
