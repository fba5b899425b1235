"""Re-encrypt every field encrypted at rest under the newest FIELD_ENCRYPTION_KEYS key.

Rotation (`manage.py rotate_keys --plan` checks each step): add the new key at the END of
FIELD_ENCRYPTION_KEYS and deploy everywhere (every process can read what the new key will
write); move it to the FRONT and deploy (new values use it); run this command; `check_keys`
then shows nothing under older keys. Drop an old key only once every backup, WAL archive and
offboarding archive made under it has expired.

Covers every `*_encrypted` column (core.keys): clinical notes, diary notes and enrollment codes
in every clinic, TOTP secrets in the public schema. Batches of 500 rows, each read and written in
one transaction, compare-and-set per row, no sync version stamped (devices see nothing).
Idempotent; a value no configured key opens is counted, left as it is, and fails the command
(exit 1) at the end.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django_tenants.utils import schema_context

from core.keys import Reencrypted, column_reencrypt, encrypted_columns
from tenants.keys import clinic_schemas


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column (notes, diary notes, TOTP secrets, enrollment codes) under the newest key."

    def _schema(self, label: str, schema: str, *, tenant: bool) -> Reencrypted:
        total = Reencrypted()
        with schema_context(schema):
            for column in encrypted_columns(tenant=tenant):
                result = column_reencrypt(column)
                total.changed += result.changed
                total.unreadable += result.unreadable
                total.skipped += result.skipped
                self.stdout.write(
                    f"{label}: {column.label}: {result.changed} re-encrypted, {result.skipped} changed meanwhile, "
                    f"{result.unreadable} no key opens"
                )
        return total

    def handle(self, *args: Any, **options: Any) -> None:
        totals = [self._schema("public", "public", tenant=False)]
        for slug, schema in clinic_schemas():
            totals.append(self._schema(slug, schema, tenant=True))
        connection.set_schema_to_public()  # type: ignore[attr-defined]
        changed = sum(t.changed for t in totals)
        unreadable = sum(t.unreadable for t in totals)
        if unreadable:
            raise CommandError(
                f"{changed} values re-encrypted; {unreadable} open with no configured key and were left as they "
                "are (`check_keys` lists where)."
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {changed} values re-encrypted under the newest key."))
