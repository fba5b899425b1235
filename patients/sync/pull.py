"""Pull: versions in commit order, keyset pages in one snapshot, signed cursors."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from patients.models import Patient, SyncClient, SyncState
from patients.sync.cursor import cursor_decode, cursor_encode, sync_reset_required
from patients.sync.tables import MAX_PULL, TABLES
from patients.sync.versions import sync_stamp_now

_PULL_SQL = """
SELECT * FROM (
    SELECT server_version, 'diary_entry' AS tbl, id::text AS id, deleted_at IS NOT NULL AS deleted,
           jsonb_build_object('id', id, 'day', day, 'slot', slot, 'wheals', wheals, 'itch', itch,
                              'angioedema', angioedema, 'aas_items', aas_items, 'recorded_at', recorded_at,
                              'server_version', server_version) AS data,
           note_encrypted AS secret
    FROM patients_diaryentry WHERE patient_id = %(pid)s
    UNION ALL
    SELECT server_version, 'dose_log', id::text, false,
           jsonb_build_object('id', id, 'prescription', prescription_id, 'date', scheduled_date, 'status', status,
                              'taken_at', taken_at, 'server_version', server_version), ''
    FROM patients_doselog WHERE patient_id = %(pid)s
    UNION ALL
    SELECT server_version, 'patient_settings', id::text, false,
           jsonb_build_object('id', id, 'timezone', timezone, 'locale', locale, 'diary_mode', diary_mode,
                              'quiet_hours_start', to_char(quiet_hours_start, 'HH24:MI'),
                              'quiet_hours_end', to_char(quiet_hours_end, 'HH24:MI'),
                              'server_version', server_version), ''
    FROM patients_patient WHERE id = %(pid)s
    UNION ALL
    SELECT server_version, 'reminder', id::text, deleted_at IS NOT NULL,
           jsonb_build_object('id', id, 'kind', kind, 'local_time', to_char(local_time, 'HH24:MI'),
                              'days_of_week', days_of_week, 'prescription', prescription_id, 'enabled', enabled,
                              'server_version', server_version), ''
    FROM patients_reminder WHERE patient_id = %(pid)s
    UNION ALL
    SELECT server_version, 'prescription', id::text, false,
           jsonb_build_object('id', id, 'medication', medication_id,
                              'medication_name', (SELECT name FROM patients_medication m WHERE m.code = medication_id),
                              'dose', dose, 'frequency_kind', frequency_kind,
                              'frequency_value', frequency_value, 'guideline_step', guideline_step, 'start', start,
                              'end', "end", 'server_version', server_version), ''
    FROM patients_prescription WHERE patient_id = %(pid)s
    UNION ALL
    SELECT server_version, 'questionnaire_response', id::text, deleted_at IS NOT NULL,
           jsonb_build_object('id', id, 'instrument', instrument, 'answers', answers, 'score', score,
                              'period_end', period_end, 'server_version', server_version), ''
    FROM patients_questionnaireresponse WHERE patient_id = %(pid)s
    UNION ALL
    SELECT server_version, 'sync_conflict', id::text, false,
           jsonb_build_object('id', id, 'table', table_name, 'record_id', record_id, 'mutation_id', mutation_id,
                              'client_id', client_id, 'fields', fields, 'client_value', client_value,
                              'server_value', server_value, 'resolution', resolution, 'server_version', server_version), ''
    FROM patients_syncconflict WHERE patient_id = %(pid)s
) changes
WHERE server_version > %(since)s AND server_version <= %(upto)s
  AND (server_version, tbl, id) > (%(after_v)s, %(after_t)s, %(after_id)s)
ORDER BY server_version, tbl, id
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class PullResult:
    changes: dict[str, dict[str, list[Any]]]
    cursor: str
    has_more: bool
    last_mutation_id: int


def sync_pull(*, patient: Patient, client_id: uuid.UUID | None, cursor: str | None, limit: int) -> PullResult:
    """Changes for the patient's own records (and the clinic's changes that concern them) with
    `since < server_version <= V`, V read at the start of a paging session and kept in the
    cursor; pages in (version, table, id) order. One REPEATABLE READ snapshot per page when the
    caller is not already in a transaction (then the V cap alone keeps it exact)."""
    limit = max(1, min(limit, MAX_PULL))
    payload = cursor_decode(cursor) if cursor else None
    connection.ensure_connection()
    with connection.cursor():
        pass  # sets the clinic's search_path before the transaction starts
    outer = connection.in_atomic_block
    if outer:
        # A pull inside a transaction that wrote (tests; never a request) sees its own writes,
        # stamped as the commit would stamp them.
        sync_stamp_now(fresh=True)
    with transaction.atomic():
        if not outer:
            with connection.cursor() as db:
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        state = SyncState.objects.get()
        if payload is not None:
            # A full download (since 0) stays valid across a purge: it lists what exists.
            # A paging session is as old as the last version it delivered: a purge since then
            # may have removed a tombstone it has still to bring (found by the state machine).
            position = int((payload.get("after") or [payload["since"]])[0])
            if payload.get("epoch") != str(state.epoch) or (
                int(payload["since"]) > 0 and position < state.min_cursor
            ):
                raise sync_reset_required()
            if "patient" in payload and payload["patient"] != str(patient.pk):
                # Another patient's position (a shared browser whose wipe a second tab undid):
                # resuming from it would never bring this patient's older records.
                raise sync_reset_required()
            since = int(payload["since"])
            upto = int(payload.get("upto") or state.version)
            after = payload.get("after") or [since, "", ""]
        else:
            since, upto, after = 0, state.version, [0, "", ""]
        with connection.cursor() as db:
            db.execute(
                _PULL_SQL,
                {
                    "pid": patient.pk,
                    "since": since,
                    "upto": upto,
                    "after_v": int(after[0]),
                    "after_t": str(after[1]),
                    "after_id": str(after[2]),
                    "limit": limit + 1,
                },
            )
            rows = db.fetchall()
        # The device's applied mutations as of the session's first snapshot, the one that fixed
        # `upto`: a later page must not acknowledge a push whose rows this session will not
        # bring (the device would drop it from its outbox and lose the entry until next time).
        client_key = str(client_id) if client_id is not None else None
        if payload is not None and payload.get("upto") and payload.get("client") == client_key:
            last_mutation_id = int(payload.get("lm") or 0)
        elif payload is not None and payload.get("upto"):
            last_mutation_id = 0  # another device's paging session: acknowledge nothing
        else:
            last_mutation_id = 0
            if client_id is not None:
                known = (
                    SyncClient.objects.filter(client_id=client_id, patient=patient)
                    .values_list("last_mutation_id", "epoch")
                    .first()
                )
                if known is not None and known[1] != state.epoch:
                    # A device of an older epoch (the clinic was restored): its acknowledged
                    # mutations may be gone; it must come back as a new client.
                    raise sync_reset_required()
                last_mutation_id = known[0] if known is not None else 0
    has_more = len(rows) > limit
    rows = rows[:limit]
    changes: dict[str, dict[str, list[Any]]] = {table: {"upserted": [], "deleted": []} for table in TABLES}
    for _version, table, record_id, deleted, data, secret in rows:
        if deleted:
            changes[table]["deleted"].append(record_id)
            continue
        data = json.loads(data) if isinstance(data, str) else data
        if table == "diary_entry":
            from core import crypto

            data["note"] = crypto.decrypt(secret) if secret else ""
        changes[table]["upserted"].append(data)
    if has_more:
        last = rows[-1]
        next_payload = {
            "epoch": str(state.epoch),
            "since": since,
            "upto": upto,
            "after": [last[0], last[1], last[2]],
            "client": client_key,
            "lm": last_mutation_id,
            "patient": str(patient.pk),
        }
    else:
        next_payload = {
            "epoch": str(state.epoch),
            "since": upto,
            "upto": None,
            "after": None,
            "patient": str(patient.pk),
        }
    return PullResult(
        changes={t: c for t, c in changes.items() if c["upserted"] or c["deleted"]},
        cursor=cursor_encode(next_payload),
        has_more=has_more,
        last_mutation_id=last_mutation_id,
    )
