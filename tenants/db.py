"""django-tenants' connection, typed once. Its database wrapper adds the tenant and schema
switching to Django's connection; the stubs know only Django's, so code asks for the tenant
connection here instead of repeating `# type: ignore` at each use."""

from __future__ import annotations

from typing import Any, Protocol, cast

from django.db import connection


class TenantConnection(Protocol):
    tenant: Any  # tenants.models.Clinic, or django-tenants' FakeTenant in the public schema
    schema_name: str

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None: ...

    def set_schema(self, schema_name: str, include_public: bool = True, tenant_type: str | None = None) -> None: ...

    def set_schema_to_public(self) -> None: ...


def tenant_connection() -> TenantConnection:
    """The default connection, seen as django-tenants' wrapper (DATABASES ENGINE is
    django_tenants.postgresql_backend)."""
    return cast(TenantConnection, connection)


def table_columns(schema: str, table: str) -> list[str]:
    """The columns of `schema`.`table`, in their order (restore and import copy rows by name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            [schema, table],
        )
        return [name for (name,) in cursor.fetchall()]
