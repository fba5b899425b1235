"""Offline-first sync: push (idempotent, gap-free mutation ids, per-field merge) and pull
(versions in commit order, keyset pages in one snapshot, signed cursors). DESIGN.md §6 and
reference/sync-protocol.md; the version counter and its triggers are in migration 0006.

Modules: tables (what syncs, limits), versions (stamping, the per-patient lock), push, merge and
apply (one mutation per table), pull, cursor, purge (tombstones). The names other modules use
are re-exported here.
"""

from __future__ import annotations

from patients.sync.cursor import cursor_decode, cursor_encode
from patients.sync.merge import Rejected
from patients.sync.pull import PullResult, sync_pull
from patients.sync.purge import tombstones_purge
from patients.sync.push import PushResult, sync_push
from patients.sync.tables import (
    DIARY_FIELDS,
    MAX_BATCH,
    MAX_PULL,
    MIN_SCHEMA_VERSION,
    REMINDER_FIELDS,
    SETTINGS_FIELDS,
    TABLES,
    schema_version_check,
)
from patients.sync.versions import sync_stamp_now

__all__ = [
    "DIARY_FIELDS",
    "MAX_BATCH",
    "MAX_PULL",
    "MIN_SCHEMA_VERSION",
    "REMINDER_FIELDS",
    "SETTINGS_FIELDS",
    "TABLES",
    "PullResult",
    "PushResult",
    "Rejected",
    "cursor_decode",
    "cursor_encode",
    "schema_version_check",
    "sync_pull",
    "sync_push",
    "sync_stamp_now",
    "tombstones_purge",
]
