"""Tombstone purge: old deletions leave only their ids, and old cursors must reset."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from patients.models import DiaryEntry, QuestionnaireResponse, SyncDeletion, SyncState
from patients.sync.versions import sync_stamp_now


def tombstones_purge(*, now: datetime | None = None) -> int:
    """Hard-delete tombstones older than the retention and raise `min_cursor` past them, in one
    transaction: a cursor from before the purge gets `reset_required` and resyncs in full."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SYNC_TOMBSTONE_RETENTION_DAYS)
    purged = 0
    with transaction.atomic():
        # Within a transaction that already wrote (tests), its tombstones get their versions
        # first: the horizon must cover every purged deletion.
        sync_stamp_now(fresh=True)
        state = SyncState.objects.select_for_update().get()
        horizon = state.min_cursor
        # Reminder tombstones are kept: their delivery history hangs off them (and they are few).
        for model, table in ((DiaryEntry, "diary_entry"), (QuestionnaireResponse, "questionnaire_response")):
            old = model.objects.filter(deleted_at__lt=cutoff)
            rows = list(old.values_list("pk", "patient_id", "server_version"))
            horizon = max([horizon, *(version for _, _, version in rows)])
            # The id outlives the payload: a stale device cannot resurrect the record.
            SyncDeletion.objects.bulk_create(
                [
                    SyncDeletion(record_id=pk, patient_id=patient_id, table_name=table)
                    for pk, patient_id, _ in rows
                ],
                ignore_conflicts=True,
            )
            purged += old.delete()[0]
        if horizon != state.min_cursor:
            SyncState.objects.filter(pk=state.pk).update(min_cursor=horizon)
    return purged
