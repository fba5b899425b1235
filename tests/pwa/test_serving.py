"""Django serves the built patient app on every clinic host (patients/app.py, DESIGN.md §11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tenants.models import Clinic

pytestmark = pytest.mark.django_db


@pytest.fixture
def dist(tmp_path: Path, settings_override: None) -> Path:  # noqa: ARG001
    return Path(settings.PWA_DIST_DIR)


@pytest.fixture
def settings_override(settings, tmp_path: Path) -> None:  # noqa: ANN001
    """A tiny build of our own, so these tests do not depend on `make pwa`."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "icons").mkdir()
    (tmp_path / "index.html").write_text(
        '<!doctype html><script type="module" src="/app/assets/app-1a2b.js"></script>'
    )
    (tmp_path / "sw.js").write_text("self.addEventListener('push', () => {});")
    (tmp_path / "assets" / "app-1a2b.js").write_text("console.log('app');")
    (tmp_path / "icons" / "icon-192.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    settings.PWA_DIST_DIR = tmp_path


def csp(response) -> dict[str, str]:  # noqa: ANN001
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    }


def test_every_app_route_is_the_shell_revalidated_on_each_load(client_a: APIClient, dist: Path) -> None:
    for path in ("/app/", "/app/today", "/app/enroll", "/app/index.html"):
        response = client_a.get(path)
        assert response.status_code == 200, path
        assert response["Content-Type"] == "text/html; charset=utf-8"
        assert response["Cache-Control"] == "no-cache"
        assert response.content == (dist / "index.html").read_bytes()


def test_the_app_page_is_under_a_strict_policy(client_a: APIClient, dist: Path) -> None:  # noqa: ARG001
    policy = csp(client_a.get("/app/"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["manifest-src"] == "'self'"
    assert policy["worker-src"] == "'self'"
    assert "unsafe-inline" not in str(policy) and "unsafe-eval" not in str(policy)


def test_hashed_assets_are_cached_for_good(client_a: APIClient, dist: Path) -> None:  # noqa: ARG001
    response = client_a.get("/app/assets/app-1a2b.js")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Content-Type"].startswith("text/javascript")
    assert client_a.get("/app/assets/missing-1234.js").status_code == 404
    assert client_a.get("/app/missing.js").status_code == 404


def test_the_service_worker_is_revalidated_and_scoped_to_the_app(client_a: APIClient, dist: Path) -> None:  # noqa: ARG001
    response = client_a.get("/app/sw.js")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-cache"
    assert response["Service-Worker-Allowed"] == "/app/"
    assert response["Content-Type"] == "text/javascript; charset=utf-8"


def test_the_manifest_carries_the_clinics_name(client_a: APIClient, clinic_a: Clinic) -> None:
    response = client_a.get("/app/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == clinic_a.name
    assert manifest["start_url"] == "/app/"
    assert manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone"
    assert {(i["sizes"], i["purpose"]) for i in manifest["icons"]} == {
        ("192x192", "any"),
        ("512x512", "any"),
        ("512x512", "maskable"),
    }


def test_the_root_and_the_enrollment_link_lead_into_the_app(client_a: APIClient) -> None:
    for path in ("/", "/enroll"):
        response = client_a.get(path)
        assert response.status_code == 302
        assert response["Location"] == "/app/"


def test_an_unbuilt_app_tells_the_operator_what_to_run(client_a: APIClient, settings, tmp_path: Path) -> None:  # noqa: ANN001
    settings.PWA_DIST_DIR = tmp_path / "nothing-here"
    for path in ("/app/", "/app/sw.js", "/app/assets/app-1a2b.js"):
        response = client_a.get(path)
        assert response.status_code == 503, path
        body = response.json()
        assert body["code"] == "app_not_built"
        assert "make pwa" in body["detail"]


def test_the_platform_host_has_no_app(public_client: APIClient) -> None:
    assert public_client.get("/app/").status_code == 404
