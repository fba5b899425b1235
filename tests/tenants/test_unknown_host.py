"""An unknown host is named in the 404 (issue 22, part 7), but only as a host name can be
written: the Host header is the caller's text."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from tenants.middleware import ClinicHostMiddleware

pytestmark = pytest.mark.django_db


def _detail(host: str) -> str:
    response = ClinicHostMiddleware(lambda r: HttpResponse("leak"))(RequestFactory().get("/", HTTP_HOST=host))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["code"] == "unknown_host"
    return str(body["detail"])


def test_a_clinic_that_does_not_exist_is_named_with_where_clinics_live() -> None:
    assert _detail("ghost.localhost:8000") == (
        "Unknown host 'ghost.localhost': no clinic answers here. The platform is at localhost, "
        "clinics at <slug>.localhost."
    )


def test_a_host_outside_allowed_hosts_is_named_too() -> None:
    assert _detail("alpha.example.com").startswith("Unknown host 'alpha.example.com':")


def test_markup_and_control_characters_in_the_host_are_not_echoed() -> None:
    detail = _detail("<script>alert(1)</script>\x1b[31m.localhost")
    assert "<script>" not in detail and "\x1b" not in detail and "(" not in detail
    assert detail.startswith("Unknown host '?script?alert?1???script??[31m.localhost'")


def test_a_long_host_is_cut_short() -> None:
    detail = _detail("a" * 150 + ".localhost")
    assert "a" * 100 + "…'" in detail
    assert len(detail) < 300
