"""The platform's key inventory: which field encryption key opens every encrypted value, in the
public schema and every clinic's, and every offboarding archive in storage (issue 21, part 2).

`manage.py check_keys` prints it; `manage.py rotate_keys --plan` checks each rotation step
against it. Reads only: nothing is decrypted beyond trying the keys, nothing is logged but table,
column and archive names.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from django.core.files.storage import storages
from django.db import connection

from core import crypto
from core.keys import ColumnCensus, column_census
from tenants.lifecycle import ARCHIVE_STORAGE
from tenants.models import Clinic

ARCHIVE_ROOT = "offboarding"  # where tenants.lifecycle stores each clinic's exports


@dataclass
class KeyReport:
    """Per schema ("public" or a clinic slug), the census of each encrypted column; per stored
    archive, the index of the key that wraps its data key (None: no configured key does)."""

    key_count: int
    columns: list[tuple[str, ColumnCensus]] = field(default_factory=list)
    archives: list[tuple[str, int | None]] = field(default_factory=list)
    archives_error: str | None = None

    @property
    def values(self) -> int:
        return sum(census.total for _, census in self.columns)

    @property
    def unreadable(self) -> int:
        return sum(census.unreadable for _, census in self.columns)

    @property
    def under_older_keys(self) -> int:
        return sum(census.under_older_keys for _, census in self.columns)

    @property
    def archives_unreadable(self) -> list[str]:
        return [name for name, index in self.archives if index is None]

    def oldest_key_needed(self) -> int:
        """The highest key index still opening something (values or archives); -1 for none."""
        indexes = [index for _, census in self.columns for index in census.by_key]
        indexes += [index for _, index in self.archives if index is not None]
        return max(indexes, default=-1)


def clinic_schemas() -> list[tuple[str, str]]:
    """(slug, schema) of every clinic whose schema exists (a pending signup has none)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        existing = {name for (name,) in cursor.fetchall()}
    return [
        (slug, schema)
        for slug, schema in Clinic.objects.order_by("slug").values_list("slug", "schema_name")
        if schema in existing
    ]


def _archive_names() -> list[str]:
    storage = storages[ARCHIVE_STORAGE]
    if not storage.exists(ARCHIVE_ROOT):
        return []
    names = []
    folders, files = storage.listdir(ARCHIVE_ROOT)
    names += [posixpath.join(ARCHIVE_ROOT, name) for name in files]
    for folder in folders:
        _, inner = storage.listdir(posixpath.join(ARCHIVE_ROOT, folder))
        names += [posixpath.join(ARCHIVE_ROOT, folder, name) for name in inner]
    return sorted(names)


def key_report(*, sample: int | None = None) -> KeyReport:
    """The census of every encrypted column (all values, or `sample` per column and schema) and
    of every stored archive. O(clinics × encrypted rows): an operator command, not a probe."""
    report = KeyReport(key_count=crypto.encryption_key_count())
    for census in column_census(schema="public", tenant=False, sample=sample):
        report.columns.append(("public", census))
    for slug, schema in clinic_schemas():
        for census in column_census(schema=schema, tenant=True, sample=sample):
            report.columns.append((slug, census))
    try:
        storage = storages[ARCHIVE_STORAGE]
        for name in _archive_names():
            with storage.open(name, "rb") as stored:
                report.archives.append((name, crypto.archive_key_index(stored)))
    except Exception as exc:  # a storage outage: the columns are still worth reporting
        report.archives_error = type(exc).__name__
    return report
