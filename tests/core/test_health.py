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
def test_readyz_checks_database_migrations_cache_and_broker(public_client, clinic_a, host: str) -> None:  # noqa: ANN001
    response = public_client.get("/readyz", HTTP_HOST=host)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "keys": "ok", "cache": "ok", "broker": "ok"},
    }


def test_readyz_names_the_cache_when_it_is_down(public_client) -> None:  # noqa: ANN001
    dead_cache = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
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
    assert body["detail"] == "Not ready: cache."
    # The cache's URL now differs from the broker's: the broker is probed on its own, and is up.
    assert body["checks"] == {"database": "ok", "migrations": "ok", "keys": "ok", "cache": "fail", "broker": "ok"}


def test_readyz_names_migrations_when_a_clinic_schema_is_behind(public_client, clinic_a) -> None:  # noqa: ANN001
    with tenant_context(clinic_a), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'patients' AND name = '0002_accesslog_append_only'"
        )
    connection.set_schema_to_public()
    response = public_client.get("/readyz", HTTP_HOST="alpha.localhost")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "fail",
        "keys": "ok",
        "cache": "ok",
        "broker": "ok",
    }
    # The platform host is unaffected.
    assert public_client.get("/readyz", HTTP_HOST="localhost").status_code == 200


def test_readyz_costs_one_query_on_a_clinic_host(public_client, clinic_a) -> None:  # noqa: ANN001
    from django.test.utils import CaptureQueriesContext

    assert public_client.get("/readyz", HTTP_HOST="alpha.localhost").status_code == 200  # host cached
    with CaptureQueriesContext(connection) as queries:
        assert public_client.get("/readyz", HTTP_HOST="alpha.localhost").status_code == 200
    # No scan of pg_class (MigrationLoader): the schema's applied migrations, whatever the
    # number of clinics (and django-tenants' search_path for the clinic's schema).
    assert [q["sql"] for q in queries.captured_queries] == [
        'SET search_path = "clinic_alpha","public"',
        "SELECT 'here', app, name FROM django_migrations"
        " UNION ALL SELECT 'public', app, name FROM public.django_migrations",
    ]


def test_readyz_on_a_clinic_host_names_migrations_when_the_public_schema_is_behind(
    public_client, clinic_a
) -> None:  # noqa: ANN001
    """A clinic host's requests use the public schema too (users, memberships): found by review,
    its readyz read only the clinic's records."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM public.django_migrations WHERE app = 'tenants' AND name = '0006_clinic_due'")
    response = public_client.get("/readyz", HTTP_HOST="alpha.localhost")
    assert (response.status_code, response.json()["checks"]["migrations"]) == (503, "fail")
    assert public_client.get("/readyz", HTTP_HOST="localhost").status_code == 503


def test_readyz_runs_outside_the_request_transaction() -> None:
    from core.health import readyz

    assert getattr(readyz, "_non_atomic_requests", set()) == {"default"}
