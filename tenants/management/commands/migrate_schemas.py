"""django-tenants' migrate_schemas, plus: keep the template schema and its DDL snapshot in step.

After the shared schema and every clinic are migrated, the template schema is migrated and its
snapshot recaptured for the new migration state, so clinics created after a deploy are built
from DDL that matches the code (DESIGN.md §3).
"""

from __future__ import annotations

from typing import Any

from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand

from tenants.snapshot import SnapshotUnavailable, snapshot_current, snapshot_refresh


class Command(MigrateSchemasCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        read_only = options.get("plan") or options.get("check_unapplied") or options.get("fake")
        if self.sync_tenant and not options.get("schema_name") and not read_only:
            try:
                if snapshot_current() is None or options.get("verbosity", 1) > 2:
                    snapshot = snapshot_refresh()
                    self.stdout.write(
                        f"Template schema snapshot captured ({snapshot.statement_count} statements)."
                    )
                else:
                    self.stdout.write("Template schema snapshot is current.")
            except SnapshotUnavailable as exc:
                self.stderr.write(f"Template snapshot not captured ({exc}); new clinics will be migrated.")
