"""`manage.py clinic_backup <slug> --to <file>`: the dump `clinic_restore` takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Clinic
from tenants.restore import RestoreError, clinic_backup


class Command(BaseCommand):
    help = (
        "Dump one clinic's schema (pg_dump custom format, no owners or privileges) to a file "
        "that clinic_restore can restore."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--to", required=True, type=Path, help="The dump file to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = Clinic.objects.filter(slug=options["slug"]).first()
        if clinic is None:
            raise CommandError(f"No clinic {options['slug']!r}.")
        try:
            path = clinic_backup(clinic=clinic, path=options["to"])
        except RestoreError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Dumped {clinic.schema_name} to {path}"))
