"""Which field encryption key opens the values stored encrypted at rest (issue 21, part 2).

Fernet tokens carry no key id, so the only way to know whether a key can be dropped, or whether
a restored backup holds notes no configured key opens (each would answer 500), is to try the
keys. `column_census` does that for every encrypted column of the schema the connection is on:
all rows (`manage.py check_keys`, `rotate_keys --plan`) or a small sample (`/readyz`).

Encrypted columns are found, not listed: every model field named `*_encrypted` (the convention
of every encrypted column: notes, diary notes, enrollment codes, TOTP secrets). Models come from
Django's app registry, so core imports no app. Public-schema models (SHARED_APPS) are read on
the public schema; clinic models (TENANT_APPS) in each clinic's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Model

from core import crypto


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[Model]
    field: str

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def column(self) -> str:
        model_field = self.model._meta.get_field(self.field)
        assert isinstance(model_field, models.Field)  # a concrete field, never a relation
        return str(model_field.column)

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class ColumnCensus:
    """How many values of one column each key opens (index 0 is the newest key)."""

    column: EncryptedColumn
    by_key: dict[int, int] = field(default_factory=dict)
    unreadable: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_key.values()) + self.unreadable

    @property
    def under_older_keys(self) -> int:
        return sum(count for index, count in self.by_key.items() if index > 0)


def _app_name(model: type[Model]) -> str:
    return model._meta.app_config.name if model._meta.app_config else ""


def encrypted_columns(*, tenant: bool) -> list[EncryptedColumn]:
    """The encrypted columns of clinic schemas (`tenant=True`) or of the public schema."""
    wanted = set(settings.TENANT_APPS) if tenant else set(settings.SHARED_APPS)
    found = []
    for model in apps.get_models():
        if _app_name(model) not in wanted or model._meta.proxy or not model._meta.managed:
            continue
        for model_field in model._meta.concrete_fields:
            if model_field.name.endswith("_encrypted"):
                found.append(EncryptedColumn(model=model, field=model_field.name))
    return sorted(found, key=lambda column: column.label)


def column_census(*, schema: str, tenant: bool, sample: int | None = None) -> list[ColumnCensus]:
    """Try the configured keys on each encrypted column of `schema` (a clinic's with
    `tenant=True`, else the public one): every non-empty value, or `sample` of them per column
    (ordered by primary key, an index scan: a spread of rows, not the newest).

    Names come from the models and the catalog, quoted; never from input."""
    results = []
    for column in encrypted_columns(tenant=tenant):
        census = ColumnCensus(column=column)
        pk = column.model._meta.pk.column
        limit = f" ORDER BY \"{pk}\" LIMIT {int(sample)}" if sample is not None else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT "{column.column}" FROM "{schema}"."{column.table}" '  # noqa: S608
                f"WHERE \"{column.column}\" <> ''{limit}"
            )
            for (value,) in cursor:
                index = crypto.key_index(value)
                if index is None:
                    census.unreadable += 1
                else:
                    census.by_key[index] = census.by_key.get(index, 0) + 1
        results.append(census)
    return results


def unreadable_sample(*, schema: str, tenant: bool, sample: int = 20) -> list[str]:
    """The encrypted columns of `schema` with a sampled value that no configured key opens
    (readiness: a key dropped too early, or a backup restored from under an older key)."""
    return [
        census.column.label
        for census in column_census(schema=schema, tenant=tenant, sample=sample)
        if census.unreadable
    ]


REENCRYPT_BATCH = 500


@dataclass
class Reencrypted:
    changed: int = 0
    unreadable: int = 0
    skipped: int = 0  # changed by someone else meanwhile (already under the newest key)


def column_reencrypt(column: EncryptedColumn, *, batch: int = REENCRYPT_BATCH) -> Reencrypted:
    """Re-encrypt one column of the schema the connection is on under the newest key, batch by
    batch in primary-key order.

    Each batch is read and written in one transaction that sets `csu.sync_skip_version`, so the
    sync trigger stamps no version (patients 0018): devices see nothing, since the plaintext did
    not change. Each row is updated only where its ciphertext is still the one read
    (compare-and-set): a concurrent edit is never overwritten, and it was written under the
    newest key anyway. A value no key opens is counted and left as it is."""
    manager = column.model._default_manager
    result, last_pk = Reencrypted(), None
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL csu.sync_skip_version = 'on'")
            queryset = manager.exclude(**{column.field: ""}).order_by("pk")
            if last_pk is not None:
                queryset = queryset.filter(pk__gt=last_pk)
            rows = list(queryset.values_list("pk", column.field)[:batch])
            if not rows:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL csu.sync_skip_version = 'off'")
                return result
            for pk, ciphertext in rows:
                try:
                    rotated = crypto.reencrypt(ciphertext)
                except crypto.InvalidToken:
                    result.unreadable += 1
                    continue
                if rotated == ciphertext:
                    continue
                if manager.filter(pk=pk, **{column.field: ciphertext}).update(**{column.field: rotated}):
                    result.changed += 1
                else:
                    result.skipped += 1
            last_pk = rows[-1][0]
            # Inside a caller's transaction (tests, a shell) the flag must not outlive the batch.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL csu.sync_skip_version = 'off'")
