"""Onboarding benchmark: milliseconds per new clinic schema, three ways, in one run.

1. snapshot   — `tenants.services.clinic_create`: replay the template's DDL snapshot
                (one round trip, one transaction) with the clinic and domain rows.
2. migrations — django-tenants' default: `CREATE SCHEMA` + `migrate_schemas --schema`.
3. clone      — django-tenants' `clone_schema` from the template + `migrate_schemas --fake`
                (what TENANT_BASE_SCHEMA + TENANT_CREATION_FAKES_MIGRATIONS do).
Floor: `CREATE SCHEMA` + one empty table, in one transaction, measured in the same run.

Runs in a throwaway database (`test_<name>` on the configured server), dropped afterwards.
(Not `onboarding.py`: run as a script, that name would shadow the `onboarding` app.)

Usage: `make bench-onboarding` or `python bench/clinic_creation.py [-n 20]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django_tenants.clone import CloneSchema  # noqa: E402

from tenants.models import Clinic, ClinicStatus, Domain  # noqa: E402
from tenants.services import clinic_create, schema_name_for_slug  # noqa: E402


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def rows_for(slug: str) -> Clinic:
    clinic = Clinic.objects.create(
        slug=slug, name=slug, schema_name=schema_name_for_slug(slug), status=ClinicStatus.ACTIVE
    )
    Domain.objects.create(domain=f"{slug}.{settings.PLATFORM_DOMAIN}", tenant=clinic, is_primary=True)
    return clinic


def via_snapshot(slug: str) -> None:
    clinic_create(slug=slug, name=slug)


def via_migrations(slug: str) -> None:
    with transaction.atomic():
        clinic = rows_for(slug)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{clinic.schema_name}"')
    call_command("migrate_schemas", schema_name=clinic.schema_name, interactive=False, verbosity=0)
    connection.set_schema_to_public()


def via_clone(slug: str) -> None:
    with transaction.atomic():
        clinic = rows_for(slug)
    CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, clinic.schema_name, "NODATA")
    call_command("migrate_schemas", schema_name=clinic.schema_name, fake=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()


def floor(slug: str) -> None:
    schema = schema_name_for_slug(slug)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".t (id uuid PRIMARY KEY)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--clinics", type=int, default=20, help="clinics per method (default 20)")
    args = parser.parse_args()
    n = args.clinics

    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            (server_version,) = cursor.fetchone()
            cursor.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = %s", [settings.TENANT_TEMPLATE_SCHEMA]
            )
            (tables,) = cursor.fetchone()
        print(f"PostgreSQL {server_version}; {tables} tables per clinic schema; {n} clinics per method\n")

        methods = {
            "floor (CREATE SCHEMA + 1 table)": floor,
            "snapshot replay (clinic_create)": via_snapshot,
            "migrations (CREATE SCHEMA + migrate_schemas)": via_migrations,
            "clone_schema + fake migrate": via_clone,
        }
        results: dict[str, list[float]] = {}
        for index, (label, create) in enumerate(methods.items()):
            create(f"bench-warm-{index}")  # first call pays imports and graph loading
            results[label] = [
                timed(lambda i=i, index=index, create=create: create(f"bench-{index}-{i}")) for i in range(n)
            ]

        print(f"{'method':<46} {'mean ms':>9} {'p50 ms':>9} {'max ms':>9}")
        for label, samples in results.items():
            print(
                f"{label:<46} {statistics.mean(samples):>9.1f} {statistics.median(samples):>9.1f} "
                f"{max(samples):>9.1f}"
            )
        snapshot = statistics.mean(results["snapshot replay (clinic_create)"])
        print()
        for label in ("migrations (CREATE SCHEMA + migrate_schemas)", "clone_schema + fake migrate"):
            print(f"{label} / snapshot replay = {statistics.mean(results[label]) / snapshot:.1f}x")
        floor_ms = statistics.mean(results["floor (CREATE SCHEMA + 1 table)"])
        print(f"snapshot replay / floor = {snapshot / floor_ms:.1f}x")
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
