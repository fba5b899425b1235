"""`manage.py clinic_restore <slug> --from <dump> [--repair]`: restore one clinic in place
(tenants/restore.py); `--report` lists, after a restore, what is out of step without restoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_exists

from tenants.models import Clinic
from tenants.restore import RestoreError, RestoreReport, clinic_restore, clinic_restore_report


class Command(BaseCommand):
    help = (
        "Restore a clinic's schema from a clinic_backup dump: loaded into a side schema (one "
        "transaction, stops at the first error), migrated if behind, then swapped in one "
        "transaction with the live schema, which is kept as restore_old_<slug>; every device "
        "resets (new sync epoch). Reports public rows out of step (--repair fixes them) and the "
        "writes only restore_old_<slug> holds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--from", dest="dump", type=Path, help="The dump written by clinic_backup.")
        parser.add_argument("--repair", action="store_true", help="Repair the public rows out of step.")
        parser.add_argument(
            "--report",
            action="store_true",
            help="Do not restore: list (and with --repair, fix) what is out of step after a restore.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = Clinic.objects.filter(slug=options["slug"]).first()
        if clinic is None:
            raise CommandError(f"No clinic {options['slug']!r}.")
        if options["report"]:
            self._print(clinic_restore_report(clinic=clinic, repair=options["repair"]))
            return
        if options["dump"] is None:
            raise CommandError("--from <dump> is required (or --report).")
        try:
            report = clinic_restore(clinic=clinic, dump=options["dump"], repair=options["repair"])
        except RestoreError as exc:
            raise CommandError(f"Restore stopped, {clinic.schema_name} is unchanged: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {report.schema} from {options['dump']}; the replaced schema is kept as "
                f"{report.old_schema}. Devices reset on their next sync (new sync epoch)."
            )
        )
        if report.migrated:
            self.stdout.write(f"Migrations applied to the restored schema: {', '.join(report.migrated)}")
        self._print(report)

    def _print(self, report: RestoreReport) -> None:
        if report.findings:
            self.stdout.write("Public rows out of step with the restored schema:")
            for finding in report.findings:
                state = "repaired" if finding.repaired else "not repaired"
                self.stdout.write(f"  [{finding.kind}] {finding.detail} ({state})")
        else:
            self.stdout.write("Public rows: all match the restored schema.")
        if not schema_exists(report.old_schema):
            self.stdout.write(f"There is no {report.old_schema} (no restore to reconcile).")
        elif report.later_writes:
            self.stdout.write(f"Rows only {report.old_schema} holds (written after the backup), per table:")
            for table, count in sorted(report.later_writes.items()):
                self.stdout.write(f"  {table}: {count}")
            self.stdout.write(
                f'Reconcile them, then drop the old schema: DROP SCHEMA "{report.old_schema}" CASCADE'
            )
        else:
            self.stdout.write(f"No rows written after the backup in {report.old_schema}.")
