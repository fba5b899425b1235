"""Request entry: liveness without any dependency, and the headers every response carries.
Host → clinic schema routing is tenancy: `tenants.middleware`."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

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
