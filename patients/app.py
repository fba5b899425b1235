"""The patient PWA on every clinic host (DESIGN.md §11): the built app under `/app/`, its
manifest with the clinic's name, and the entry points that lead into it (`/`, `/enroll`).

The app is built from `pwa/` into `settings.PWA_DIST_DIR` (`make pwa`; `make run` builds it when
its sources changed). Hashed assets are cached for a year; the shell and the service worker are
revalidated on every load, so a new version is found at once and offered, never forced.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from csp.constants import SELF
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views import View

from core.errors import ErrorCode, problem_response

APP_PREFIX = "/app/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The app's own pages need no inline style (the API docs do, hence the global policy).
APP_CSP = {
    "style-src": [SELF],
    "manifest-src": [SELF],
    "worker-src": [SELF],
}
ICONS = (
    {"src": "/app/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
    {"src": "/app/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
    {"src": "/app/icons/maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
)


def _dist() -> Path:
    return Path(settings.PWA_DIST_DIR)


def _strict(response: HttpResponse) -> HttpResponse:
    response._csp_replace = APP_CSP  # type: ignore[attr-defined]  # read by csp.middleware
    return response


def _not_built() -> HttpResponse:
    return problem_response(
        status_code=503,
        code=ErrorCode.APP_NOT_BUILT,
        detail=(
            f"The patient app is not built: {_dist()} has no index.html. "
            "Run `make pwa` (or `make run`, which builds it), then reload."
        ),
        headers={"Retry-After": "60", "Cache-Control": "no-store"},
    )


def _file(path: Path, cache_control: str, content_type: str | None = None) -> HttpResponse:
    kind = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Small files (the largest bundle is ~150 kB): read whole, so the response has a body.
    response = HttpResponse(path.read_bytes(), content_type=kind)
    response["Cache-Control"] = cache_control
    return response


class AppShellView(View):
    """Every app route (`/app/`, `/app/today`, …) is the same shell: the app routes itself."""

    def get(self, request: HttpRequest, route: str = "") -> HttpResponse:
        if "." in route.rsplit("/", 1)[-1] and route != "index.html":
            return problem_response(status_code=404, code=ErrorCode.NOT_FOUND, detail="No such file.")
        index = _dist() / "index.html"
        if not index.is_file():
            return _not_built()
        return _strict(_file(index, REVALIDATE, "text/html; charset=utf-8"))


class AppFileView(View):
    """Build output that is not the shell: hashed assets (cached for good) and icons."""

    def get(self, request: HttpRequest, folder: str, name: str) -> HttpResponse:
        path = _dist() / folder / name
        if not path.is_file():
            if not (_dist() / "index.html").is_file():
                return _not_built()
            return problem_response(status_code=404, code=ErrorCode.NOT_FOUND, detail="No such file.")
        return _strict(_file(path, IMMUTABLE if folder == "assets" else "public, max-age=86400"))


class ServiceWorkerView(View):
    """`/app/sw.js`, always revalidated (browsers cap it at 24 h anyway), scoped to `/app/`."""

    def get(self, request: HttpRequest) -> HttpResponse:
        path = _dist() / "sw.js"
        if not path.is_file():
            return _not_built()
        response = _file(path, REVALIDATE, "text/javascript; charset=utf-8")
        response["Service-Worker-Allowed"] = APP_PREFIX
        return _strict(response)


class ManifestView(View):
    """The web app manifest, named after the clinic whose host this is."""

    def get(self, request: HttpRequest) -> HttpResponse:
        clinic: Any = request.tenant  # type: ignore[attr-defined]
        name = str(clinic.name)
        manifest = {
            "id": APP_PREFIX,
            "name": name,
            # The home screen is seen by others: the name says whose app, never the condition.
            "short_name": name if len(name) <= 12 else "Diary",
            "description": f"Diary for {name}",
            "start_url": APP_PREFIX,
            "scope": APP_PREFIX,
            "display": "standalone",
            "background_color": "#f6f7f9",
            "theme_color": "#1f5f8b",
            "icons": list(ICONS),
        }
        response = JsonResponse(manifest, content_type="application/manifest+json")
        response["Cache-Control"] = REVALIDATE
        return _strict(response)


class IntoAppView(View):
    """`/` and `/enroll` on a clinic host lead into the app. The enrollment link's `#code=…`
    fragment never reaches the server; browsers carry it across the redirect."""

    def get(self, request: HttpRequest) -> HttpResponse:
        response = HttpResponseRedirect(APP_PREFIX)
        response["Cache-Control"] = "no-store"
        return response
