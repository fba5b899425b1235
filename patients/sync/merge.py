"""The per-field merge: rejections, conflict records, aliases of merged ids, purged ids, and the
diary entry's merge (a natural key per patient, day and slot)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from core.errors import ApplicationError, ErrorCode
from patients import services
from patients.models import (
    DiaryEntry,
    Patient,
    Slot,
    SyncAlias,
    SyncClient,
    SyncConflict,
    SyncDeletion,
    SyncMutationResult,
)
from patients.sync.tables import DIARY_FIELDS
from patients.sync.versions import _pending_marker


class Rejected(Exception):
    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


def _validated_by(
    serializer_class: type[serializers.Serializer[Any]], fields: dict[str, Any]
) -> dict[str, Any]:
    """Fields checked by the REST API's own input serializer (DESIGN.md §6: the same rules,
    including no control characters); the first error rejects the mutation, naming the field.
    Callers import the serializers where they use them: patients.api.views imports this module."""
    serializer = serializer_class(data=fields, partial=True)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    field, messages = next(iter(serializer.errors.items()))
    message = messages[0] if isinstance(messages, list) and messages else messages
    raise Rejected(ErrorCode.VALIDATION_ERROR, f"{field}: {message}", field)


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


def _validated_diary_fields(fields: dict[str, Any], notes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The diary fields of a mutation, checked. `notes` maps notes the REST API's serializer
    already accepted (a batch checks them at once) to their clean value; any other note is
    checked here, by the same serializer."""
    unknown = set(fields) - DIARY_FIELDS
    if unknown:
        raise Rejected(ErrorCode.UNKNOWN_FIELD, f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    clean: dict[str, Any] = {}
    for name in ("wheals", "itch"):
        if name in fields:
            value = fields[name]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3:
                raise Rejected(ErrorCode.VALIDATION_ERROR, f"{name} must be an integer 0–3.", name)
            clean[name] = value
    if "angioedema" in fields:
        if not isinstance(fields["angioedema"], bool):
            raise Rejected(ErrorCode.VALIDATION_ERROR, "angioedema must be true or false.", "angioedema")
        clean["angioedema"] = fields["angioedema"]
    if "aas_items" in fields:
        items = fields["aas_items"]
        if items is not None and (
            not isinstance(items, list)
            or len(items) != 5
            or any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i <= 3 for i in items)
        ):
            raise Rejected(ErrorCode.VALIDATION_ERROR, "aas_items are 5 integers 0–3.", "aas_items")
        clean["aas_items"] = items
    if "note" in fields:
        from patients.api.views import DiaryEntryApi

        if not isinstance(fields["note"], str):
            raise Rejected(ErrorCode.VALIDATION_ERROR, "note is text of at most 2000 characters.", "note")
        if notes is not None and fields["note"] in notes:
            clean["note"] = notes[fields["note"]]
        else:
            clean["note"] = _validated_by(DiaryEntryApi.InputSerializer, {"note": fields["note"]})["note"]
    if "day" in fields:
        try:
            clean["day"] = date.fromisoformat(str(fields["day"]))
        except ValueError as exc:
            raise Rejected(ErrorCode.INVALID_DATE, "day must be YYYY-MM-DD.", "day") from exc
    if "slot" in fields:
        if fields["slot"] not in Slot.values:
            raise Rejected(ErrorCode.VALIDATION_ERROR, "slot is day, am or pm.", "slot")
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
        raise Rejected(ErrorCode.NOT_FOUND, "No such record.")
    return alias.record_id


def _purged(patient: Patient, table: str, record_id: uuid.UUID) -> dict[str, Any] | None:
    """A record whose tombstone was purged: delete still wins (never a resurrection)."""
    marker = SyncDeletion.objects.filter(record_id=record_id, table_name=table).first()
    if marker is None:
        return None
    if marker.patient_id != patient.pk:
        raise Rejected(ErrorCode.NOT_FOUND, "No such record.")
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
        raise Rejected(ErrorCode.NOT_FOUND, "No such record.")
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
        raise Rejected(
            ErrorCode.AAS_WITHOUT_ANGIOEDEMA, "Swelling questions need angioedema: true.", "aas_items"
        )
    if entry is None and (gone := _purged(patient, "diary_entry", winner or record_id)) is not None:
        return gone
    if entry is None:
        # A new record: the same rules as the diary API. Two devices that created the same
        # day offline with different ids meet here: the second merges into the first.
        needed = {"day", "wheals", "itch"} - set(fields)
        if needed:
            raise Rejected(
                ErrorCode.VALIDATION_ERROR,
                f"{sorted(needed)[0]} is required for a new entry.",
                sorted(needed)[0],
            )
        slot = fields.get("slot", Slot.DAY if patient.diary_mode == "once" else None)
        if slot is None:
            raise Rejected(ErrorCode.DIARY_SLOT_MISMATCH, "Twice-daily diaries need slot am or pm.", "slot")
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
                    ErrorCode.IMMUTABLE_FIELD, f"{immutable} cannot change; delete and re-create.", immutable
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
        raise Rejected(ErrorCode.AAS_REQUIRED, "Rate the 5 swelling questions.", "aas_items")
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
    pending marker) and its earlier pushes (`written_version`, never a version a result merely
    names). Its own earlier writes are never a conflict with itself."""
    own = {_pending_marker()}
    candidates = sorted({v for v in versions if v and v not in own})
    if candidates:
        written = SyncMutationResult.objects.filter(client=client, written_version__in=candidates)
        own.update(v for v in written.values_list("written_version", flat=True) if v is not None)
    return own


def _column(field: str) -> str:
    return "note_encrypted" if field == "note" else field


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
