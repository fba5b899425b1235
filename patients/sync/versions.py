"""Server versions: rows written are stamped with the clinic's next version just before commit
(migration 0012), and one writer at a time per patient."""

from __future__ import annotations

from django.db import connection

from patients import services
from patients.models import Patient
from tenants.db import tenant_connection


def sync_stamp_now(*, fresh: bool = False) -> int | None:
    """Stamp every row this transaction wrote with the clinic's next version, now (migration 0012).

    Writes only mark their rows pending; the version, and with it the clinic's one lock, is
    taken here, just before commit, or by the commit itself (a deferred trigger) for writers
    that never call this. The deferred foreign-key checks run first, so once the version lock
    is held nothing waits on another row lock (one lock order for every write path: rows, then
    the clinic's version). `fresh` takes a new version even if this transaction already has
    one (a push nested in a larger transaction, as in tests). None if nothing was written."""
    schema = tenant_connection().schema_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('csu.sync_defer', 'skip', true)")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            "SELECT set_config('csu.sync_defer', '', true), sync_stamp_pending(%s, %s)", [schema, fresh]
        )
        version = cursor.fetchone()[1]
    return None if version is None else int(version)


def _pending_marker() -> int:
    """What this transaction's rows carry as server_version until stamped (never a version)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT -txid_current()")
        return int(cursor.fetchone()[0])


def _patient_sync_lock(patient: Patient) -> None:
    """One writer at a time per patient (a push, a REST diary write): two devices' batches
    never deadlock on each other's records, and a natural-key merge sees the other device's
    day. Other patients' pushes run in parallel; only the final stamping is clinic-wide."""
    services.patient_write_lock(patient)
