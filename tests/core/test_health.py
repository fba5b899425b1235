from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost", "127.0.0.1", "unknown.example"])
def test_healthz_answers_on_any_host_without_dependencies(public_client, host: str) -> None:  # noqa: ANN001
    response = public_client.get("/healthz", HTTP_HOST=host)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost", "beta.localhost"])
def test_readyz_checks_database_redis_and_migrations(public_client, clinic_a, host: str) -> None:  # noqa: ANN001
    response = public_client.get("/readyz", HTTP_HOST=host)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "migrations": "ok"},
    }


def test_readyz_names_redis_when_it_is_down(public_client) -> None:  # noqa: ANN001
    dead_cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_FUNCTION": "django_tenants.cache.make_key",
        }
    }
    # override_settings resets Django's cache handlers (setting_changed), so this really
    # talks to a port where nothing listens.
    with override_settings(CACHES=dead_cache):
        response = public_client.get("/readyz", HTTP_HOST="localhost")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["detail"] == "Not ready: redis."
    assert body["checks"] == {"database": "ok", "redis": "fail", "migrations": "ok"}


def test_readyz_names_migrations_when_a_clinic_schema_is_behind(public_client, clinic_a) -> None:  # noqa: ANN001
    with tenant_context(clinic_a), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'patients' AND name = '0002_accesslog_append_only'"
        )
    connection.set_schema_to_public()
    response = public_client.get("/readyz", HTTP_HOST="alpha.localhost")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "fail"}
    # The platform host is unaffected.
    assert public_client.get("/readyz", HTTP_HOST="localhost").status_code == 200
