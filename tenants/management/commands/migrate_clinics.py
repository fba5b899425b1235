"""Deploy-time tenant migrations that skip clinics already at the code's migration state.

django-tenants' executors load the migration graph for every schema even when nothing is to be
applied (~0.19 s per clinic standard, ~0.07 s multiprocessing on 2 cores: minutes at a thousand
clinics). This command reads every clinic's `django_migrations` in ONE query, compares each
schema's set of applied migrations with the code's, and runs django-tenants' executor only for
the clinics that differ (multiprocessing by default), then refreshes the template snapshot.
Run `migrate_schemas --shared` first.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.migration_executors import get_executor

from tenants.db import tenant_connection
from tenants.management.commands.migrate_schemas import Command as MigrateSchemasCommand
from tenants.models import Clinic
from tenants.snapshot import snapshot_current, snapshot_refresh


def expected_migrations_digest() -> str:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return hashlib.md5(  # noqa: S324 (a fingerprint, not security)
        ",".join(sorted(f"{app}.{name}" for app, name in loader.graph.nodes)).encode()
    ).hexdigest()


# Schemas per statement: one UNION ALL over every schema outgrew PostgreSQL's max_stack_depth
# at 10,000 clinics (bench/scale.py); a few hundred keeps each statement small and the count of
# statements at clinics / 500.
SCHEMAS_PER_QUERY = 500


def schemas_behind(schemas: list[str], expected: str) -> list[str]:
    """Schemas whose applied migrations differ from the code's, SCHEMAS_PER_QUERY a query."""
    digests: dict[str, str] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(schemas), SCHEMAS_PER_QUERY):
            batch = schemas[start : start + SCHEMAS_PER_QUERY]
            parts = [
                # Schema names come from the Clinic table (validated at creation), quoted here.
                f"SELECT %s AS s, md5(string_agg(app || '.' || name, ',' ORDER BY app || '.' || name)) AS d "  # noqa: S608
                f'FROM "{schema}".django_migrations'
                for schema in batch
            ]
            cursor.execute(" UNION ALL ".join(parts), batch)
            digests.update(cursor.fetchall())
    return [schema for schema in schemas if digests.get(schema) != expected]


class Command(BaseCommand):
    help = "Migrate only the clinic schemas that are behind the code (one query per 500 clinics finds them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--executor", default="multiprocessing", choices=["standard", "multiprocessing"])
        parser.add_argument(
            "--check", action="store_true", help="Only report; exit 1 if any clinic is behind."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        schemas = list(Clinic.objects.order_by("created_at").values_list("schema_name", flat=True))
        behind = schemas_behind(schemas, expected_migrations_digest())
        self.stdout.write(f"{len(schemas)} clinics; {len(behind)} behind the code's migrations.")
        if options["check"]:
            if behind:
                self.stdout.write("Behind: " + ", ".join(behind))
                raise SystemExit(1)
            return
        if behind:
            command = MigrateSchemasCommand()
            parser = command.create_parser("manage.py", "migrate_schemas")
            migrate_options = vars(
                parser.parse_args(["--noinput", "--tenant", f"--executor={options['executor']}"])
            )
            migrate_options["verbosity"] = options["verbosity"]
            get_executor(options["executor"])((), migrate_options).run_migrations(tenants=behind)
            tenant_connection().set_schema_to_public()
        if snapshot_current() is None:
            snapshot_refresh()
            self.stdout.write("Template schema snapshot refreshed.")
        elapsed = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(f"Done: {len(behind)} migrated in {elapsed:.2f} s."))
