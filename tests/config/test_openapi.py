from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("urlconf", ["config.urls_tenant", "config.urls_public"])
def test_openapi_schema_validates_without_warnings(urlconf: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--urlconf",
            urlconf,
            "--file",
            os.devnull,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
def test_schema_and_docs_are_served_with_local_assets(public_client, clinic_a, host: str) -> None:  # noqa: ANN001
    schema = public_client.get("/api/schema/", HTTP_HOST=host)
    assert schema.status_code == 200
    assert schema.content.startswith(b"openapi: 3")
    docs = public_client.get("/api/docs/", HTTP_HOST=host)
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


@pytest.mark.django_db
def test_every_identity_endpoint_is_in_the_schema(public_client, clinic_a) -> None:  # noqa: ANN001
    import yaml

    schema = yaml.safe_load(public_client.get("/api/schema/", HTTP_HOST="alpha.localhost").content)
    expected = {
        "/api/v1/auth/token/",
        "/api/v1/auth/token/refresh/",
        "/api/v1/auth/logout/",
        "/api/v1/auth/login/",
        "/api/v1/auth/csrf/",
        "/api/v1/auth/me/",
        "/api/v1/auth/password/",
        "/api/v1/auth/password-reset/",
        "/api/v1/auth/password-reset/confirm/",
        "/api/v1/auth/mfa/setup/",
        "/api/v1/auth/mfa/confirm/",
        "/api/v1/auth/invitations/accept/",
        "/api/v1/auth/enroll/",
        "/api/v1/admin/invitations/",
        "/api/v1/admin/invitations/{invitation_id}/revoke/",
        "/api/v1/portal/enrollments/",
        "/api/v1/portal/enrollments/{enrollment_id}/qr.png",
    }
    assert expected <= set(schema["paths"])
    assert {"jwtAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
