"""Request entry: liveness without any dependency, then host → clinic schema routing; headers
every response carries."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import set_urlconf

from core.errors import problem_response
from core.net import peer_is_trusted_proxy

Handler = Callable[[HttpRequest], HttpResponse]


class HealthzMiddleware:
    """`GET /healthz`: the process is alive. Answers before host checks and database access,
    so load balancers and container health checks can probe any address."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return JsonResponse({"status": "ok"})
        return self.get_response(request)


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
        from tenants.selectors import clinic_for_host

        connection.set_schema_to_public()  # type: ignore[attr-defined]
        host = request.GET.get("domain", "").lower().rstrip(".")
        allowed = peer_is_trusted_proxy(request) and (
            host in settings.PLATFORM_HOSTS or (bool(host) and clinic_for_host(host) is not None)
        )
        if not allowed:
            return problem_response(status_code=404, code="unknown_host", detail="Unknown host.")
        return JsonResponse({"domain": host})


class ClinicHostMiddleware:
    """Selects the schema from the host: PLATFORM_DOMAIN is the public site,
    `<slug>.<PLATFORM_DOMAIN>` a clinic. Any other host gets a 404 problem, never a fallback
    to another schema (replaces django-tenants' TenantMainMiddleware, whose 404 is HTML)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from tenants.selectors import clinic_for_host

        connection.set_schema_to_public()
        try:
            host = request.get_host().rsplit(":", 1)[0].lower().rstrip(".")
        except DisallowedHost:
            return problem_response(status_code=404, code="unknown_host", detail="Unknown host.")

        if host in settings.PLATFORM_HOSTS:
            request.tenant = connection.tenant  # type: ignore[attr-defined]
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        else:
            clinic = clinic_for_host(host)
            if clinic is None:
                return problem_response(status_code=404, code="unknown_host", detail="Unknown host.")
            clinic.domain_url = host
            request.tenant = clinic  # type: ignore[attr-defined]
            connection.set_tenant(clinic)
            request.urlconf = settings.ROOT_URLCONF
        set_urlconf(request.urlconf)
        return self.get_response(request)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every API response that does not set its own: API bodies
    carry patient data or credentials, and no browser, proxy or CDN may keep a copy."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/v1/") and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response


class PermissionsPolicyMiddleware:
    """`Permissions-Policy` on every response: no page of ours, nor anything it frames, may use
    the browser features listed in PERMISSIONS_POLICY (camera, microphone, geolocation,
    payment...). Neither the API docs nor the patient PWA need any of them."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(allowlist)})" for feature, allowlist in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.header and not response.has_header("Permissions-Policy"):
            response["Permissions-Policy"] = self.header
        return response
