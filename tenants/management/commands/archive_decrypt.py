"""Decrypt an offboarding archive into its zip, e.g. after the clinic was purged.

    python manage.py archive_decrypt offboarding/<clinic id>/<slug>-<stamp>.zip.enc export.zip
    python manage.py archive_decrypt --file ./copied-from-the-bucket.zip.enc export.zip

ARCHIVE is a name in the "archives" storage (the clinic's `offboarding_archive`, also logged when
the clinic is purged), or with --file a local copy. It opens with any key in
FIELD_ENCRYPTION_KEYS. The output is created owner-only (0600) and never overwrites a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.crypto import ArchiveCorrupt, ArchiveDecryptor
from tenants.lifecycle import archive_decrypt


class Command(BaseCommand):
    help = "Decrypt an offboarding archive (a name in the archives storage, or --file) into a zip."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="name in the archives storage (or a path with --file)")
        parser.add_argument("output", help="zip file to create (must not exist)")
        parser.add_argument("--file", action="store_true", help="ARCHIVE is a local file")

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(options["output"])
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise CommandError(f"{output} exists; choose a new file.") from exc
        try:
            with os.fdopen(fd, "wb") as destination:
                if options["file"]:
                    with open(options["archive"], "rb") as source:
                        for chunk in ArchiveDecryptor(source):
                            destination.write(chunk)
                else:
                    archive_decrypt(name=options["archive"], destination=destination)
        except (ArchiveCorrupt, OSError) as exc:
            output.unlink(missing_ok=True)  # never leave a partial plaintext behind
            raise CommandError(f"Could not decrypt the archive: {exc}") from exc
        self.stdout.write(f"wrote {output}")
