"""A task the test worker imports (`-I tests.celery_probe`): records where it ran."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import connection
from tenant_schemas_celery.task import TenantTask


@shared_task(base=TenantTask, name="tests.record_schema")
def record_schema(key: str) -> None:
    # The cache key is prefixed with the schema, so the reader must be in the same clinic.
    cache.set(key, {"schema": connection.schema_name, "slug": getattr(connection.tenant, "slug", None)}, 120)
