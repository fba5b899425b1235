"""Bring a purged clinic back from its offboarding archive.

    python manage.py clinic_import offboarding/<clinic id>/<slug>-<stamp>.zip.enc
    python manage.py clinic_import --file ./copied-from-the-bucket.zip.enc [--suspended]

The archive opens with any key in FIELD_ENCRYPTION_KEYS; it is decrypted into an unnamed
temporary file (owner-only, deleted on close) and checked against its manifest. Everything
happens in one transaction (tenants.archive.clinic_import): the clinic, its hosts and schema,
every archived row, memberships, subscription and invoices. Staff and patients sign in as
before; every patient device resets (409 `reset_required`) and downloads again. Refused, with
nothing changed, while a clinic with that slug exists.
"""

from __future__ import annotations

import tempfile
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.crypto import ArchiveCorrupt, ArchiveDecryptor
from tenants.archive import ImportRefused, clinic_import
from tenants.lifecycle import archive_decrypt
from tenants.models import ClinicStatus


class Command(BaseCommand):
    help = (
        "Bring a purged clinic back from its offboarding archive (a name in the archives storage, or --file)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="name in the archives storage (or a path with --file)")
        parser.add_argument("--file", action="store_true", help="ARCHIVE is a local file")
        parser.add_argument("--suspended", action="store_true", help="come back suspended (read-only portal)")

    def handle(self, *args: Any, **options: Any) -> None:
        status = ClinicStatus.SUSPENDED if options["suspended"] else ClinicStatus.ACTIVE
        with tempfile.TemporaryFile() as plain:
            try:
                if options["file"]:
                    with open(options["archive"], "rb") as source:
                        for chunk in ArchiveDecryptor(source):
                            plain.write(chunk)
                else:
                    archive_decrypt(name=options["archive"], destination=plain)
                plain.seek(0)
                report = clinic_import(source=plain, status=status)
            except (ArchiveCorrupt, OSError) as exc:
                raise CommandError(f"Could not open the archive: {exc}") from exc
            except ImportRefused as exc:
                raise CommandError(f"Not imported: {exc}") from exc
        rows = sum(report.tables.values())
        self.stdout.write(
            f"clinic {report.clinic} imported into {report.schema} ({status}): {rows} rows in {len(report.tables)} tables"
        )
        for table, count in sorted(report.public.items()):
            self.stdout.write(f"  public {table}: {count} rows")
        self.stdout.write(
            f"  {report.users_kept} users already there kept as they are; {report.invoices_attached} invoices "
            f"re-attached; {report.reencrypted} values re-encrypted under the newest key"
        )
        for skipped in report.skipped:
            self.stdout.write(f"  skipped: {skipped}")
