"""Host → schema routing: a clinic's host reaches only that clinic's schema."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory
from django_tenants.utils import tenant_context

from patients.models import AccessLog
from tenants.middleware import ClinicHostMiddleware
from tenants.models import Clinic, ClinicStatus
from tenants.selectors import clinic_host_cache_clear

pytestmark = pytest.mark.django_db


def _seen_by(host: str) -> dict:
    """What a view behind the middleware sees: its schema and the access-log rows there."""

    def view(request: HttpRequest) -> HttpResponse:
        return JsonResponse(
            {
                "schema": connection.schema_name,
                "tenant": getattr(request.tenant, "slug", None),
                "urlconf": request.urlconf,
                "actions": (
                    sorted(AccessLog.objects.values_list("action", flat=True))
                    if connection.schema_name != "public"
                    else None
                ),
            }
        )

    response = ClinicHostMiddleware(view)(RequestFactory().get("/x", HTTP_HOST=host))
    return {"status": response.status_code, **json.loads(response.content)}


def test_each_clinic_host_sees_only_its_own_schema(clinic_a: Clinic, clinic_b: Clinic) -> None:
    with tenant_context(clinic_a):
        AccessLog.objects.create(action="only-in-alpha")
    with tenant_context(clinic_b):
        AccessLog.objects.create(action="only-in-beta")

    assert _seen_by("alpha.localhost") == {
        "status": 200,
        "schema": "clinic_alpha",
        "tenant": "alpha",
        "urlconf": "config.urls_tenant",
        "actions": ["only-in-alpha"],
    }
    assert _seen_by("beta.localhost:8000") == {
        "status": 200,
        "schema": "clinic_beta",
        "tenant": "beta",
        "urlconf": "config.urls_tenant",
        "actions": ["only-in-beta"],
    }


def test_platform_host_is_the_public_schema() -> None:
    seen = _seen_by("localhost")
    assert (seen["schema"], seen["urlconf"]) == ("public", "config.urls_public")


@pytest.mark.parametrize("host", ["nope.localhost", "alpha.example.com", "clinic_alpha.localhost"])
def test_unknown_host_is_a_404_problem(host: str, clinic_a: Clinic) -> None:
    response = ClinicHostMiddleware(lambda r: HttpResponse("leak"))(RequestFactory().get("/", HTTP_HOST=host))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert b"leak" not in response.content


def test_unknown_host_through_the_full_stack(public_client) -> None:  # noqa: ANN001
    response = public_client.get("/readyz", HTTP_HOST="ghost.localhost")
    assert response.status_code == 404
    assert response.json() == {
        "type": "http://localhost/problems/unknown_host",
        "title": "Not found",
        "status": 404,
        "detail": "Unknown host 'ghost.localhost': no clinic answers here. The platform is at localhost, "
        "clinics at <slug>.localhost.",
        "code": "unknown_host",
    }


def test_provisioning_clinic_is_not_routable_and_status_change_is_seen_at_once(clinic_a: Clinic) -> None:
    assert _seen_by("alpha.localhost")["status"] == 200  # now cached
    Clinic.objects.filter(pk=clinic_a.pk).update(status=ClinicStatus.PROVISIONING)
    clinic_host_cache_clear(clinic=clinic_a)
    assert _seen_by("alpha.localhost")["status"] == 404
    Clinic.objects.filter(pk=clinic_a.pk).update(status=ClinicStatus.ACTIVE)
    clinic_host_cache_clear(clinic=clinic_a)
    assert _seen_by("alpha.localhost")["status"] == 200


def test_cache_keys_are_prefixed_with_the_clinic_schema(clinic_a: Clinic, clinic_b: Clinic) -> None:
    with tenant_context(clinic_a):
        cache.set("greeting", "hello from alpha")
    with tenant_context(clinic_b):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from beta")
    with tenant_context(clinic_a):
        assert cache.get("greeting") == "hello from alpha"
        cache.delete("greeting")
    with tenant_context(clinic_b):
        cache.delete("greeting")
