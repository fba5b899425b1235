"""One mutation applied to its table: questionnaire responses, dose logs, settings, reminders
(diary entries in merge.py), each validated by the REST API's own serializer."""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import Any

from django.utils import timezone

from core.errors import ErrorCode
from patients import services
from patients.models import DoseLog, Patient, QuestionnaireResponse, Reminder, SyncClient
from patients.sync.merge import (
    Rejected,
    _apply_diary,
    _own_versions,
    _purged,
    _record_conflict,
    _validated_by,
)
from patients.sync.tables import REMINDER_FIELDS, SETTINGS_FIELDS


def _apply_questionnaire(patient: Patient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    """Questionnaires are editable records: a re-upsert applies its answers (delete wins); an
    id of another patient's response is not found, as in the diary."""
    response = QuestionnaireResponse.objects.select_for_update().filter(pk=m["id"]).first()
    if response is not None and response.patient_id != patient.pk:
        raise Rejected(ErrorCode.NOT_FOUND, "No such record.")
    if response is None and (gone := _purged(patient, "questionnaire_response", m["id"])) is not None:
        return gone
    if m["op"] == "delete":
        if response is None:
            raise Rejected(ErrorCode.NOT_FOUND, "No such record.")
        if response.deleted_at is None:
            response.deleted_at = timezone.now()
            response.save(update_fields=["deleted_at"])
            response.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": response.server_version}
    fields = m.get("fields") or {}
    unknown = set(fields) - {"instrument", "answers", "period_end"}
    if unknown:
        raise Rejected(ErrorCode.UNKNOWN_FIELD, f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    period_end = None
    if fields.get("period_end"):
        try:
            period_end = date.fromisoformat(str(fields["period_end"]))
        except ValueError as exc:
            raise Rejected(ErrorCode.INVALID_DATE, "period_end must be YYYY-MM-DD.", "period_end") from exc
    if response is not None:
        if response.deleted_at is not None:
            return {
                "status": "conflict",
                "reason": {"code": "deleted"},
                "server_version": response.server_version,
                "record": {"id": str(response.pk), "deleted": True},
            }
        if "instrument" in fields and fields["instrument"] != response.instrument:
            raise Rejected(ErrorCode.IMMUTABLE_FIELD, "instrument cannot change; record a new one.", "instrument")
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
        raise Rejected(ErrorCode.INSERT_ONLY, "Dose logs are insert-only: log a correction instead.")
    from patients.api.views import DoseCreateApi

    fields = m.get("fields") or {}
    unknown = set(fields) - {"prescription", "date", "status", "taken_at"}
    if unknown:
        raise Rejected(ErrorCode.UNKNOWN_FIELD, f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
    for name in ("prescription", "date", "status"):
        if name not in fields:
            raise Rejected(ErrorCode.VALIDATION_ERROR, f"{name} is required.", name)
    clean = _validated_by(DoseCreateApi.InputSerializer, fields)
    existing = DoseLog.objects.filter(pk=m["id"]).first()
    if existing is not None:
        if existing.patient_id != patient.pk:
            raise Rejected(ErrorCode.NOT_FOUND, "No such record.")
        same = (
            existing.prescription_id == clean["prescription"]
            and existing.scheduled_date == clean["date"]
            and existing.status == clean["status"]
            and ("taken_at" not in clean or clean["taken_at"] == existing.taken_at)
        )
        if not same:  # never acknowledge a change that was not made
            raise Rejected(ErrorCode.IMMUTABLE, "Dose logs are insert-only: log a correction instead.")
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
        raise Rejected(ErrorCode.NOT_ALLOWED, "Only your own settings can be changed, not deleted.")
    from patients.api.views import ProfileApi

    fields = m.get("fields") or {}
    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise Rejected(ErrorCode.UNKNOWN_FIELD, f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
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
    # The batch's later mutations are checked against the new settings (a diary mode or time
    # zone changed offline comes before the entries made under it). Found by review.
    for name in SETTINGS_FIELDS:
        setattr(patient, name, getattr(locked, name))
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
        raise Rejected(ErrorCode.NOT_FOUND, "No such reminder.")
    if m["op"] == "delete":
        if existing is None:
            raise Rejected(ErrorCode.NOT_FOUND, "No such reminder.")
        if existing.deleted_at is None:
            existing = reminders.reminder_delete(patient=patient, reminder_id=m["id"])
        existing.refresh_from_db(fields=["server_version"])
        return {"status": "applied", "server_version": existing.server_version}
    fields = dict(m.get("fields") or {})
    unknown = set(fields) - REMINDER_FIELDS
    if unknown:
        raise Rejected(ErrorCode.UNKNOWN_FIELD, f"Unknown field {sorted(unknown)[0]}.", sorted(unknown)[0])
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
                raise Rejected(ErrorCode.VALIDATION_ERROR, f"{name} is required.", name)
    if "local_time" in fields:
        try:
            fields["local_time"] = time.fromisoformat(str(fields["local_time"]))
        except ValueError as exc:
            raise Rejected(ErrorCode.VALIDATION_ERROR, "local_time is HH:MM.", "local_time") from exc
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise Rejected(ErrorCode.VALIDATION_ERROR, "enabled is true or false.", "enabled")
    if fields.get("prescription") is not None:
        try:
            fields["prescription"] = uuid.UUID(str(fields["prescription"]))
        except ValueError as exc:
            raise Rejected(ErrorCode.VALIDATION_ERROR, "prescription is a UUID.", "prescription") from exc
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
    raise Rejected(ErrorCode.SERVER_OWNED, f"{table} is changed by the clinic only.")
