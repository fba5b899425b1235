"""Host → clinic schema routing (tenancy): the proxy's certificate question and the request's
schema, both decided by `tenants.selectors.clinic_for_host`."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import set_urlconf

from core.errors import ErrorCode, database_unavailable, problem_response
from core.health import readiness
from core.net import peer_is_trusted_proxy
from tenants.db import tenant_connection
from tenants.selectors import clinic_for_host

Handler = Callable[[HttpRequest], HttpResponse]

# What of an unknown Host header goes back in the answer: the characters a host name (or an
# IPv6 literal with its port) can hold, nothing else, and not much of it. The header is the
# caller's text; echoed as it came it could carry control characters, markup for whoever
# renders the problem, or a page of text made to look like our own words.
_HOST_SHOWN = re.compile(r"[^a-z0-9.:\[\]-]")
_HOST_SHOWN_MAX = 100


def unknown_host_response(raw_host: str) -> HttpResponse:
    """404 `unknown_host` naming the host asked for (cleaned: see `_HOST_SHOWN`) and where
    clinics live, so a newcomer who typed `demo.localhost` without its port, or a clinic that
    does not exist, can tell which host was meant."""
    shown = _HOST_SHOWN.sub("?", raw_host.lower())
    if len(shown) > _HOST_SHOWN_MAX:
        shown = shown[:_HOST_SHOWN_MAX] + "…"
    detail = (
        f"Unknown host {shown!r}: no clinic answers here. The platform is at {settings.PLATFORM_DOMAIN}, "
        f"clinics at <slug>.{settings.PLATFORM_DOMAIN}."
        if shown
        else "Unknown host: the request named none."
    )
    return problem_response(status_code=404, code=ErrorCode.UNKNOWN_HOST, detail=detail)


class TlsAskMiddleware:
    """`GET /internal/tls-allowed?domain=<host>`: the proxy asks before it obtains a certificate
    on demand (deploy/Caddyfile). 200 for the platform host and every routable clinic host, 404
    for anything else, so nobody can make the proxy request certificates for names of their
    choosing (ACME rate limits). Only a trusted proxy may ask; answers before host checks."""

    PATH = "/internal/tls-allowed"

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != self.PATH:
            return self.get_response(request)
        tenant_connection().set_schema_to_public()
        host = request.GET.get("domain", "").lower().rstrip(".")
        allowed = peer_is_trusted_proxy(request) and (
            host in settings.PLATFORM_HOSTS or (bool(host) and clinic_for_host(host) is not None)
        )
        if not allowed:
            return unknown_host_response(host)
        return JsonResponse({"domain": host})


class ClinicHostMiddleware:
    """Selects the schema from the host: PLATFORM_DOMAIN is the public site,
    `<slug>.<PLATFORM_DOMAIN>` a clinic. Any other host gets a 404 problem, never a fallback
    to another schema (replaces django-tenants' TenantMainMiddleware, whose 404 is HTML)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        db = tenant_connection()
        db.set_schema_to_public()
        try:
            host = request.get_host().rsplit(":", 1)[0].lower().rstrip(".")
        except DisallowedHost:
            # Not in ALLOWED_HOSTS: Django's own check refused it; the raw header is named.
            return unknown_host_response(request.META.get("HTTP_HOST", ""))

        if host in settings.PLATFORM_HOSTS:
            request.tenant = db.tenant  # type: ignore[attr-defined]
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        else:
            try:
                clinic = clinic_for_host(host)
            except DatabaseError as exc:
                # The database is down: a clinic host's readiness still answers, naming it
                # (anything else becomes the 503 problem of core.errors.server_error_view).
                if request.path == "/readyz" and database_unavailable(exc):
                    return readiness(schema_resolved=False)
                raise
            if clinic is None:
                return unknown_host_response(host)
            clinic.domain_url = host
            request.tenant = clinic  # type: ignore[attr-defined]
            db.set_tenant(clinic)
            request.urlconf = settings.ROOT_URLCONF
        set_urlconf(request.urlconf)
        return self.get_response(request)
