"""Re-encrypt every field encrypted at rest under the newest FIELD_ENCRYPTION_KEYS key.

Rotation: prepend a new key to FIELD_ENCRYPTION_KEYS (old keys stay listed, so everything
remains readable), deploy, run this command, then drop the old key from the list. Covers
clinical notes, diary notes and enrollment codes in every clinic, and TOTP secrets in the
public schema. Idempotent; batches of 500 rows, one transaction per batch.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Model
from django_tenants.utils import tenant_context

from accounts.models import TotpDevice
from clinicians.models import ClinicalNote
from core import crypto
from patients.models import DiaryEntry, Enrollment
from tenants.models import Clinic

BATCH = 500


def reencrypt_field(model: type[Model], field: str) -> int:
    """Re-encrypt one column, batch by batch, ordered by primary key."""
    changed, last_pk = 0, None
    while True:
        queryset = model._default_manager.exclude(**{field: ""}).order_by("pk")
        if last_pk is not None:
            queryset = queryset.filter(pk__gt=last_pk)
        batch = list(queryset.values_list("pk", field)[:BATCH])
        if not batch:
            return changed
        with transaction.atomic():
            for pk, ciphertext in batch:
                rotated = crypto.reencrypt(ciphertext)
                if rotated != ciphertext:
                    model._default_manager.filter(pk=pk).update(**{field: rotated})
                    changed += 1
        last_pk = batch[-1][0]


class Command(BaseCommand):
    help = "Re-encrypt notes, diary notes, TOTP secrets and enrollment codes under the newest key."

    def handle(self, *args: Any, **options: Any) -> None:
        total = reencrypt_field(TotpDevice, "secret_encrypted")
        for clinic in Clinic.objects.order_by("slug"):
            with tenant_context(clinic):
                notes = reencrypt_field(ClinicalNote, "body_encrypted")
                diary = reencrypt_field(DiaryEntry, "note_encrypted")
                codes = reencrypt_field(Enrollment, "code_encrypted")
            total += notes + diary + codes
            self.stdout.write(
                f"{clinic.slug}: {notes} clinical notes, {diary} diary notes, {codes} enrollment codes re-encrypted"
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {total} values under the newest key."))
