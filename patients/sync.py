"""Offline-first sync: push (idempotent, gap-free mutation ids, per-field merge) and pull
(versions in commit order, keyset pages in one snapshot, signed cursors). DESIGN.md §6 and
reference/sync-protocol.md; the version counter and its triggers are in migration 0006.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DataError, connection, transaction
from django.utils import timezone
from rest_framework import serializers

from core.errors import ApplicationError
from patients import services
from patients.models import (
    DiaryEntry,
    DoseLog,
    Patient,
    QuestionnaireResponse,
    Reminder,
    Slot,
    SyncAlias,
    SyncClient,
    SyncConflict,
    SyncDeletion,
    SyncMutationResult,
    SyncState,
)

logger = logging.getLogger(__name__)

MIN_SCHEMA_VERSION = 1
MAX_BATCH = 500
MAX_PULL = 1000
TABLES = (
    "diary_entry",
    "questionnaire_response",
    "dose_log",
    "patient_settings",
    "prescription",
    "reminder",
    "sync_conflict",
)
PUSHABLE = ("diary_entry", "questionnaire_response", "dose_log", "patient_settings", "reminder")
DIARY_FIELDS = {"day", "slot", "wheals", "itch", "angioedema", "aas_items", "note"}
SETTINGS_FIELDS = {"timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"}
REMINDER_FIELDS = {"kind", "local_time", "days_of_week", "prescription", "enabled"}


def schema_version_check(version: Any) -> None:
    """Clients send their local schema version; older than supported → 426 with the minimum."""
    try:
        number = int(version)
    except (TypeError, ValueError):
        number = 0
    if number < MIN_SCHEMA_VERSION:
        raise ApplicationError(
            code="upgrade_required",
            status_code=426,
            detail=f"This app version is too old to sync; update to schema version {MIN_SCHEMA_VERSION} or newer.",
            extra={"min_schema_version": MIN_SCHEMA_VERSION},
        )


def sync_stamp_now(*, fresh: bool = False) -> int | None:
    """Stamp every row this transaction wrote with the clinic's next version, now (migration 0012).

    Writes only mark their rows pending; the version, and with it the clinic's one lock, is
    taken here, just before commit, or by the commit itself (a deferred trigger) for writers
    that never call this. The deferred foreign-key checks run first, so once the version lock
    is held nothing waits on another row lock (one lock order for every write path: rows, then
    the clinic's version). `fresh` takes a new version even if this transaction already has
    one (a push nested in a larger transaction, as in tests). None if nothing was written."""
    schema = connection.schema_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('csu.sync_defer', 'skip', true)")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            "SELECT set_config('csu.sync_defer', '', true), sync_stamp_pending(%s, %s)", [schema, fresh]
        )
        return cursor.fetchone()[1]


def _pending_marker() -> int:
    """What this transaction's rows carry as server_version until stamped (never a version)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT -txid_current()")
        return cursor.fetchone()[0]


def _patient_sync_lock(patient: Patient) -> None:
    """One writer at a time per patient (a push, a REST diary write): two devices' batches
    never deadlock on each other's records, and a natural-key merge sees the other device's
    day. Other patients' pushes run in parallel; only the final stamping is clinic-wide."""
    services.patient_write_lock(patient)


# --- Push ----------------------------------------------------------------------------------------


class Rejected(Exception):
    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


def _validated_by(serializer_class: type[serializers.Serializer], fields: dict[str, Any]) -> dict[str, Any]:
    """Fields checked by the REST API's own input serializer (DESIGN.md §6: the same rules,
    including no control characters); the first error rejects the mutation, naming the field.
    Callers import the serializers where they use them: patients.api.views imports this module."""
    serializer = serializer_class(data=fields, partial=True)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    field, messages = next(iter(serializer.errors.items()))
    message = messages[0] if isinstance(messages, list) and messages else messages
    raise Rejected("validation_error", f"{field}: {message}", field)


def _rejection(exc: ApplicationError | Rejected) -> dict[str, Any]:
    return {"status": "rejected", "reason": {"code": exc.code, "detail": exc.detail, "field": exc.field}}


def _diary_record(entry: DiaryEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "day": entry.day.isoformat(),
        "slot": entry.slot,
        "wheals": entry.wheals,
        "itch": entry.itch,
        "angioedema": entry.angioedema,
        "aas_items": entry.aas_items,
        "note": entry.note,
        "server_version": entry.server_version,
        "deleted": entry.deleted_at is not None,
    }


def _validated_diary_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - DIARY_FIELDS
    if unknown:
        raise Rejected("unknown_field", f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    clean: dict[str, Any] = {}
    for name in ("wheals", "itch"):
        if name in fields:
            value = fields[name]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3:
                raise Rejected("validation_error", f"{name} must be an integer 0–3.", name)
            clean[name] = value
    if "angioedema" in fields:
        if not isinstance(fields["angioedema"], bool):
            raise Rejected("validation_error", "angioedema must be true or false.", "angioedema")
        clean["angioedema"] = fields["angioedema"]
    if "aas_items" in fields:
        items = fields["aas_items"]
        if items is not None and (
            not isinstance(items, list)
            or len(items) != 5
            or any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i <= 3 for i in items)
        ):
            raise Rejected("validation_error", "aas_items are 5 integers 0–3.", "aas_items")
        clean["aas_items"] = items
    if "note" in fields:
        from patients.api.views import DiaryEntryApi

        if not isinstance(fields["note"], str):
            raise Rejected("validation_error", "note is text of at most 2000 characters.", "note")
        clean["note"] = _validated_by(DiaryEntryApi.InputSerializer, {"note": fields["note"]})["note"]
    if "day" in fields:
        try:
            clean["day"] = date.fromisoformat(str(fields["day"]))
        except ValueError as exc:
            raise Rejected("invalid_date", "day must be YYYY-MM-DD.", "day") from exc
    if "slot" in fields:
        if fields["slot"] not in Slot.values:
            raise Rejected("validation_error", "slot is day, am or pm.", "slot")
        clean["slot"] = fields["slot"]
    return clean


def _record_conflict(
    patient: Patient,
    table: str,
    record_id: uuid.UUID,
    client: SyncClient,
    mutation_id: int,
    fields: list[str],
    client_value: dict[str, Any],
    server_value: dict[str, Any],
    resolution: str,
) -> None:
    SyncConflict.objects.create(
        patient=patient,
        table_name=table,
        record_id=record_id,
        client_id=client.client_id,
        mutation_id=mutation_id,
        fields=fields,
        client_value=_jsonable(client_value),
        server_value=_jsonable(server_value),
        resolution=resolution,
    )


def _alias_target(patient: Patient, table: str, record_id: uuid.UUID) -> uuid.UUID | None:
    alias = SyncAlias.objects.filter(alias_id=record_id, table_name=table).first()
    if alias is None:
        return None
    if alias.patient_id != patient.pk:
        raise Rejected("not_found", "No such record.")
    return alias.record_id


def _purged(patient: Patient, table: str, record_id: uuid.UUID) -> dict[str, Any] | None:
    """A record whose tombstone was purged: delete still wins (never a resurrection)."""
    marker = SyncDeletion.objects.filter(record_id=record_id, table_name=table).first()
    if marker is None:
        return None
    if marker.patient_id != patient.pk:
        raise Rejected("not_found", "No such record.")
    return {
        "status": "conflict",
        "reason": {"code": "deleted"},
        "server_version": None,
        "record": {"id": str(record_id), "deleted": True},
    }


def _apply_diary(patient: Patient, client: SyncClient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    record_id = m["id"]
    # The id a natural-key merge gave up still reaches the winner (DESIGN.md §6).
    winner = _alias_target(patient, "diary_entry", record_id)
    entry = DiaryEntry.objects.select_for_update().filter(pk=winner or record_id).first()
    if entry is not None and entry.patient_id != patient.pk:
        raise Rejected("not_found", "No such record.")
    aliased = {"record_id": str(entry.pk)} if winner and entry is not None else {}
    if m["op"] == "delete":
        if entry is None:
            return {"status": "applied", "server_version": None}
        if entry.deleted_at is None:
            entry.deleted_at = timezone.now()
            entry.save(update_fields=["deleted_at", "updated_at"])
            entry.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": entry.server_version, **aliased}

    fields = _validated_diary_fields(m.get("fields") or {})
    if "aas_items" in fields and fields["aas_items"] is not None and fields.get("angioedema") is False:
        raise Rejected("aas_without_angioedema", "Swelling questions need angioedema: true.", "aas_items")
    if entry is None and (gone := _purged(patient, "diary_entry", winner or record_id)) is not None:
        return gone
    if entry is None:
        # A new record: the same rules as the diary API. Two devices that created the same
        # day offline with different ids meet here: the second merges into the first.
        needed = {"day", "wheals", "itch"} - set(fields)
        if needed:
            raise Rejected(
                "validation_error", f"{sorted(needed)[0]} is required for a new entry.", sorted(needed)[0]
            )
        slot = fields.get("slot", Slot.DAY if patient.diary_mode == "once" else None)
        if slot is None:
            raise Rejected("diary_slot_mismatch", "Twice-daily diaries need slot am or pm.", "slot")
        live = DiaryEntry.objects.filter(
            patient=patient, day=fields["day"], slot=slot, deleted_at__isnull=True
        ).first()
        if live is None:
            entry, _ = services.diary_entry_record(
                patient=patient,
                day=fields["day"],
                slot=slot,
                wheals=fields["wheals"],
                itch=fields["itch"],
                angioedema=fields.get("angioedema", fields.get("aas_items") is not None),
                aas_items=fields.get("aas_items"),
                note=fields.get("note", ""),
                entry_id=record_id,
                late_days=late_days,
            )
            entry.refresh_from_db(fields=["server_version"])
            return {"status": "applied", "server_version": entry.server_version}
        entry = DiaryEntry.objects.select_for_update().get(pk=live.pk)
        SyncAlias.objects.get_or_create(
            alias_id=record_id,
            defaults={"patient": patient, "table_name": "diary_entry", "record_id": entry.pk},
        )
        aliased = {"record_id": str(entry.pk)}
        base_version = 0  # the device never saw the other record: every overlapping field conflicts
    else:
        if entry.deleted_at is not None:  # delete wins
            return {
                "status": "conflict",
                "reason": {"code": "deleted"},
                "server_version": entry.server_version,
                "record": _diary_record(entry),
                **aliased,
            }
        base_version = m.get("base_version") or 0
        for immutable in ("day", "slot"):
            if immutable in fields and fields[immutable] != getattr(entry, immutable):
                raise Rejected(
                    "immutable_field", f"{immutable} cannot change; delete and re-create.", immutable
                )

    changes = {k: v for k, v in fields.items() if k not in ("day", "slot")}
    if changes.get("aas_items") is not None and "angioedema" not in changes:
        # Swelling answers mean the device saw angioedema: both fields travel together, so a
        # stale answer after another device said "no angioedema" is one consistent choice.
        changes["angioedema"] = True
    own = _own_versions(client, [entry.server_version, *entry.field_versions.values()])
    others_changed = entry.server_version > base_version and entry.server_version not in own
    server_changed = sorted(
        f for f in changes if (v := entry.field_versions.get(_column(f), 0)) > base_version and v not in own
    )
    merged = {
        "wheals": changes.get("wheals", entry.wheals),
        "itch": changes.get("itch", entry.itch),
        "angioedema": changes.get("angioedema", entry.angioedema),
        "aas_items": changes.get("aas_items", entry.aas_items),
        "note": changes.get("note", entry.note),
    }
    if not merged["angioedema"]:
        merged["aas_items"] = None
    elif merged["aas_items"] is None:
        # The device said angioedema without its answers and the server has none to keep.
        raise Rejected("aas_required", "Rate the 5 swelling questions.", "aas_items")
    # What actually won, field by field: the conflict names each field this mutation changed
    # over another writer's value (including one changed only to keep the record consistent).
    conflicting = sorted(
        f
        for f in ("wheals", "itch", "angioedema", "aas_items", "note")
        if merged[f] != getattr(entry, f)
        and (
            f in server_changed or (f not in changes and ({"angioedema", "aas_items"} & set(server_changed)))
        )
    )
    if conflicting:
        _record_conflict(
            patient,
            "diary_entry",
            entry.pk,
            client,
            m["mutation_id"],
            conflicting,
            {f: merged[f] for f in conflicting},
            {f: getattr(entry, f) for f in conflicting},
            "last_arrival_wins",
        )
    entry, _ = services.diary_entry_record(
        patient=patient, day=entry.day, slot=entry.slot, entry_id=entry.pk, late_days=late_days, **merged
    )
    entry.refresh_from_db(fields=["server_version"])
    status = "merged" if (others_changed or entry.pk != record_id) else "applied"
    result: dict[str, Any] = {"status": status, "server_version": entry.server_version, **aliased}
    if status == "merged":
        result["record"] = _diary_record(entry)
        result["conflict_fields"] = conflicting
    return result


def _own_versions(client: SyncClient, versions: list[int]) -> set[int]:
    """Versions written by this same device: this push (its rows still carry the transaction's
    pending marker) and its earlier pushes. Its own earlier writes are never a conflict with itself."""
    own = {_pending_marker()}
    candidates = sorted({v for v in versions if v and v not in own})
    if candidates:
        own.update(
            SyncMutationResult.objects.filter(
                client=client, result__server_version__in=candidates
            ).values_list("result__server_version", flat=True)
        )
    return own


def _column(field: str) -> str:
    return "note_encrypted" if field == "note" else field


def _apply_questionnaire(patient: Patient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    """Questionnaires are editable records: a re-upsert applies its answers (delete wins); an
    id of another patient's response is not found, as in the diary."""
    response = QuestionnaireResponse.objects.select_for_update().filter(pk=m["id"]).first()
    if response is not None and response.patient_id != patient.pk:
        raise Rejected("not_found", "No such record.")
    if response is None and (gone := _purged(patient, "questionnaire_response", m["id"])) is not None:
        return gone
    if m["op"] == "delete":
        if response is None:
            raise Rejected("not_found", "No such record.")
        if response.deleted_at is None:
            response.deleted_at = timezone.now()
            response.save(update_fields=["deleted_at"])
            response.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": response.server_version}
    fields = m.get("fields") or {}
    unknown = set(fields) - {"instrument", "answers", "period_end"}
    if unknown:
        raise Rejected("unknown_field", f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    period_end = None
    if fields.get("period_end"):
        try:
            period_end = date.fromisoformat(str(fields["period_end"]))
        except ValueError as exc:
            raise Rejected("invalid_date", "period_end must be YYYY-MM-DD.", "period_end") from exc
    if response is not None:
        if response.deleted_at is not None:
            return {
                "status": "conflict",
                "reason": {"code": "deleted"},
                "server_version": response.server_version,
                "record": {"id": str(response.pk), "deleted": True},
            }
        if "instrument" in fields and fields["instrument"] != response.instrument:
            raise Rejected("immutable_field", "instrument cannot change; record a new one.", "instrument")
        if "answers" not in fields and period_end is None:
            return {"status": "applied", "server_version": response.server_version}
        response = services.questionnaire_update(
            patient=patient,
            response=response,
            answers=fields.get("answers", response.answers),
            period_end=period_end,
            late_days=late_days,
        )
        response.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": response.server_version}
    response, _ = services.questionnaire_record(
        patient=patient,
        instrument=str(fields.get("instrument", "")),
        answers=fields.get("answers"),
        period_end=period_end,
        response_id=m["id"],
        late_days=late_days,
    )
    response.refresh_from_db(fields=["server_version"])
    return {"status": "applied", "server_version": response.server_version}


def _apply_dose(patient: Patient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    if m["op"] == "delete":
        raise Rejected("insert_only", "Dose logs are insert-only: log a correction instead.")
    from patients.api.views import DoseCreateApi

    fields = m.get("fields") or {}
    unknown = set(fields) - {"prescription", "date", "status", "taken_at"}
    if unknown:
        raise Rejected("unknown_field", f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    for name in ("prescription", "date", "status"):
        if name not in fields:
            raise Rejected("validation_error", f"{name} is required.", name)
    clean = _validated_by(DoseCreateApi.InputSerializer, fields)
    existing = DoseLog.objects.filter(pk=m["id"]).first()
    if existing is not None:
        if existing.patient_id != patient.pk:
            raise Rejected("not_found", "No such record.")
        same = (
            existing.prescription_id == clean["prescription"]
            and existing.scheduled_date == clean["date"]
            and existing.status == clean["status"]
            and ("taken_at" not in clean or clean["taken_at"] == existing.taken_at)
        )
        if not same:  # never acknowledge a change that was not made
            raise Rejected("immutable", "Dose logs are insert-only: log a correction instead.")
        return {"status": "applied", "server_version": existing.server_version}
    dose, _ = services.dose_log_record(
        patient=patient,
        dose_id=m["id"],
        prescription_id=clean["prescription"],
        day=clean["date"],
        status=clean["status"],
        taken_at=clean.get("taken_at"),
        late_days=late_days,
    )
    dose.refresh_from_db(fields=["server_version"])
    return {"status": "applied", "server_version": dose.server_version}


def _apply_settings(patient: Patient, client: SyncClient, m: dict[str, Any]) -> dict[str, Any]:
    if m["op"] == "delete" or m["id"] != patient.pk:
        raise Rejected("not_allowed", "Only your own settings can be changed, not deleted.")
    from patients.api.views import ProfileApi

    fields = m.get("fields") or {}
    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise Rejected("unknown_field", f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    fields = _validated_by(ProfileApi.InputSerializer, fields)
    locked = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    base_version = m.get("base_version") or 0
    own = _own_versions(client, list(locked.field_versions.values()))
    server_changed = sorted(
        f for f in fields if (v := locked.field_versions.get(f, 0)) > base_version and v not in own
    )
    conflicting = [f for f in server_changed if getattr(locked, f) != fields[f]]
    if conflicting:
        _record_conflict(
            patient,
            "patient_settings",
            patient.pk,
            client,
            m["mutation_id"],
            conflicting,
            {f: fields[f] for f in conflicting},
            {f: getattr(locked, f) for f in conflicting},
            "last_arrival_wins",
        )
    services.patient_profile_update(patient=locked, **fields)
    locked.refresh_from_db(fields=["server_version"])
    return {"status": "merged" if server_changed else "applied", "server_version": locked.server_version}


def _reminder_record(reminder: Reminder) -> dict[str, Any]:
    return {
        "id": str(reminder.pk),
        "kind": reminder.kind,
        "local_time": reminder.local_time.strftime("%H:%M"),
        "days_of_week": list(reminder.days_of_week),
        "prescription": str(reminder.prescription_id) if reminder.prescription_id else None,
        "enabled": reminder.enabled,
        "server_version": reminder.server_version,
        "deleted": reminder.deleted_at is not None,
    }


def _apply_reminder(patient: Patient, client: SyncClient, m: dict[str, Any]) -> dict[str, Any]:
    """Reminders belong to the patient alone, and merge as the diary does: per field against
    `base_version` (a partial patch keeps the other fields), the last arrival wins a field both
    devices changed (recorded as a conflict), and a delete wins over any later upsert."""
    from patients import reminders

    existing = Reminder.objects.select_for_update().filter(pk=m["id"]).first()
    if existing is not None and existing.patient_id != patient.pk:
        raise Rejected("not_found", "No such reminder.")
    if m["op"] == "delete":
        if existing is None:
            raise Rejected("not_found", "No such reminder.")
        if existing.deleted_at is None:
            existing = reminders.reminder_delete(patient=patient, reminder_id=m["id"])
        existing.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": existing.server_version}
    fields = dict(m.get("fields") or {})
    unknown = set(fields) - REMINDER_FIELDS
    if unknown:
        raise Rejected("unknown_field", f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    if existing is not None and existing.deleted_at is not None:  # delete wins
        return {
            "status": "conflict",
            "reason": {"code": "deleted"},
            "server_version": existing.server_version,
            "record": _reminder_record(existing),
        }
    if existing is None:
        for name in ("kind", "local_time"):
            if name not in fields:
                raise Rejected("validation_error", f"{name} is required.", name)
    if "local_time" in fields:
        try:
            fields["local_time"] = time.fromisoformat(str(fields["local_time"]))
        except ValueError as exc:
            raise Rejected("validation_error", "local_time is HH:MM.", "local_time") from exc
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise Rejected("validation_error", "enabled is true or false.", "enabled")
    if fields.get("prescription") is not None:
        try:
            fields["prescription"] = uuid.UUID(str(fields["prescription"]))
        except ValueError as exc:
            raise Rejected("validation_error", "prescription is a UUID.", "prescription") from exc
    if existing is None:
        reminder, _ = reminders.reminder_save(
            patient=patient,
            reminder_id=m["id"],
            kind=fields["kind"],
            local_time=fields["local_time"],
            days_of_week=fields.get("days_of_week"),
            prescription_id=fields.get("prescription"),
            enabled=fields.get("enabled", True),
        )
        reminder.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": reminder.server_version}

    current = {
        "kind": existing.kind,
        "local_time": existing.local_time,
        "days_of_week": list(existing.days_of_week),
        "prescription": existing.prescription_id,
        "enabled": existing.enabled,
    }
    base_version = m.get("base_version") or 0
    own = _own_versions(client, [existing.server_version, *existing.field_versions.values()])
    others_changed = existing.server_version > base_version and existing.server_version not in own
    column = {"prescription": "prescription_id"}
    conflicting = sorted(
        f
        for f in fields
        if (v := existing.field_versions.get(column.get(f, f), 0)) > base_version
        and v not in own
        and fields[f] != current[f]
    )
    if conflicting:
        _record_conflict(
            patient,
            "reminder",
            existing.pk,
            client,
            m["mutation_id"],
            conflicting,
            {f: fields[f] for f in conflicting},
            {f: current[f] for f in conflicting},
            "last_arrival_wins",
        )
    merged = {**current, **fields}
    reminder, _ = reminders.reminder_save(
        patient=patient,
        reminder_id=existing.pk,
        kind=merged["kind"],
        local_time=merged["local_time"],
        days_of_week=merged["days_of_week"],
        prescription_id=merged["prescription"],
        enabled=merged["enabled"],
    )
    reminder.refresh_from_db(fields=["server_version"])
    result: dict[str, Any] = {
        "status": "merged" if others_changed else "applied",
        "server_version": reminder.server_version,
    }
    if others_changed:
        result["record"] = _reminder_record(reminder)
        result["conflict_fields"] = conflicting
    return result


def _apply(patient: Patient, client: SyncClient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    table = m["table"]
    if table == "diary_entry":
        return _apply_diary(patient, client, m, late_days)
    if table == "questionnaire_response":
        return _apply_questionnaire(patient, m, late_days)
    if table == "dose_log":
        return _apply_dose(patient, m, late_days)
    if table == "patient_settings":
        return _apply_settings(patient, client, m)
    if table == "reminder":
        return _apply_reminder(patient, client, m)
    raise Rejected("server_owned", f"{table} is changed by the clinic only.")


@dataclass(frozen=True)
class PushResult:
    last_mutation_id: int
    results: list[dict[str, Any]]


def sync_push(
    *,
    patient: Patient,
    user_id: uuid.UUID,
    client_id: uuid.UUID,
    mutations: list[dict[str, Any]],
    late_days: int = 7,
) -> PushResult:
    """Apply a batch of a device's mutations in one transaction.

    Mutation ids are per client and gap-free: ids already applied answer `duplicate` with the
    original result; a gap refuses the whole batch (409 `mutation_gap`, nothing applied). Each
    mutation runs in a savepoint: a bad record is `rejected` (and still counts as processed),
    never a 4xx for the batch. `last_mutation_id` is stored with the effects.
    """
    if len(mutations) > MAX_BATCH:
        raise ApplicationError(
            code="batch_too_large", status_code=413, detail=f"At most {MAX_BATCH} mutations per push."
        )
    with transaction.atomic(), services.changes_batched():
        _patient_sync_lock(patient)
        # Deletes and merges change the summary too: it is recomputed once, as the batch ends.
        services.patient_changed(patient)
        client, created = SyncClient.objects.select_for_update().get_or_create(
            client_id=client_id, defaults={"user_id": user_id, "patient": patient}
        )
        if not created and client.patient_id != patient.pk:
            raise ApplicationError(
                code="client_not_yours", status_code=403, detail="This client id belongs to another account."
            )
        expected = client.last_mutation_id + 1
        for m in mutations:
            if m["mutation_id"] >= expected:
                if m["mutation_id"] != expected:
                    raise ApplicationError(
                        code="mutation_gap",
                        status_code=409,
                        detail=f"Expected mutation {expected} next.",
                        extra={"expected": expected},
                    )
                expected += 1
        stored = {
            r.mutation_id: r.result
            for r in SyncMutationResult.objects.filter(
                client=client,
                mutation_id__in=[
                    m["mutation_id"] for m in mutations if m["mutation_id"] <= client.last_mutation_id
                ],
            )
        }
        results, new_results = [], []
        for m in mutations:
            if m["mutation_id"] <= client.last_mutation_id:
                results.append(
                    {
                        "mutation_id": m["mutation_id"],
                        "status": "duplicate",
                        "original": stored.get(m["mutation_id"]),
                    }
                )
                continue
            result = {"mutation_id": m["mutation_id"], **_apply_one(patient, client, m, late_days)}
            client.last_mutation_id = m["mutation_id"]
            results.append(result)
            new_results.append(result)
        # The batch is applied; only now the clinic's version (and its lock, to commit).
        version = sync_stamp_now(fresh=True)
        if version is not None:
            marker = _pending_marker()
            for result in new_results:
                for holder in (result, result.get("record") or {}):
                    if holder.get("server_version") == marker:
                        holder["server_version"] = version
        SyncMutationResult.objects.bulk_create(
            SyncMutationResult(client=client, mutation_id=r["mutation_id"], result=_jsonable(r))
            for r in new_results
        )
        client.save(update_fields=["last_mutation_id", "last_seen_at"])
        return PushResult(client.last_mutation_id, [_jsonable(r) for r in results])


def _apply_one(patient: Patient, client: SyncClient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    """One mutation in its savepoint. Any failure, whatever raised it, refuses this mutation
    alone and undoes its effects: a push never answers 5xx because of its content."""
    try:
        with transaction.atomic():
            return _apply(patient, client, m, late_days)
    except (Rejected, ApplicationError) as exc:
        return _rejection(exc)
    except DataError:
        logger.warning("Sync mutation refused by the database (%s)", m["table"])
        return _rejection(Rejected("invalid_value", "A value could not be stored."))
    except Exception:
        # Never the details (they may quote the record); the savepoint undid the mutation.
        logger.exception("Sync mutation failed (%s)", m["table"])
        return _rejection(Rejected("invalid_value", "This change could not be applied."))


_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127], "\ufffd")


def _printable(text: str) -> str:
    """Control characters (NUL above all: jsonb refuses it) never reach stored results."""
    return text.translate(_CONTROL)


def _jsonable(value: Any) -> Any:
    """JSON-ready, with control characters replaced in every string and key (results and
    conflicts are jsonb, which cannot hold NUL)."""

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            return _printable(item)
        if isinstance(item, dict):
            return {_printable(str(k)): clean(v) for k, v in item.items()}
        if isinstance(item, list):
            return [clean(v) for v in item]
        return item

    return clean(json.loads(json.dumps(value, default=str)))


# --- Pull ----------------------------------------------------------------------------------------

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


def _signer() -> signing.Signer:
    # The clinic's schema is part of the key: a cursor cannot be moved to another clinic.
    return signing.Signer(salt=f"sync-cursor:{connection.schema_name}")


def cursor_encode(payload: dict[str, Any]) -> str:
    """Opaque: the payload (versions, the device's acknowledged mutation id) is encrypted with
    the field-encryption keys (Fernet, authenticated), and signed for the clinic's schema."""
    from core import crypto

    return _signer().sign(crypto.encrypt(json.dumps(payload, separators=(",", ":"))))


def cursor_decode(token: str) -> dict[str, Any]:
    from core import crypto

    try:
        payload = json.loads(crypto.decrypt(_signer().unsign(token)))
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        int(payload["since"])
        return payload
    except (signing.BadSignature, ValueError, TypeError, KeyError, crypto.InvalidToken) as exc:
        raise ApplicationError(
            code="invalid_cursor", field="cursor", detail="This cursor is not valid."
        ) from exc


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
                raise ApplicationError(
                    code="reset_required",
                    status_code=409,
                    detail="Your copy is too old to catch up: download everything again (omit the cursor).",
                )
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
                last_mutation_id = (
                    SyncClient.objects.filter(client_id=client_id, patient=patient)
                    .values_list("last_mutation_id", flat=True)
                    .first()
                    or 0
                )
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
        }
    else:
        next_payload = {"epoch": str(state.epoch), "since": upto, "upto": None, "after": None}
    return PullResult(
        changes={t: c for t, c in changes.items() if c["upserted"] or c["deleted"]},
        cursor=cursor_encode(next_payload),
        has_more=has_more,
        last_mutation_id=last_mutation_id,
    )


# --- Tombstone purge -----------------------------------------------------------------------------


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
