"""The fast path of a push: a batch of the common mutations, checked at once and applied with
set-based SQL in one savepoint (issue 19).

Covered: diary entry upserts that create a new day (no id, alias, purged id or live entry of that
day and slot yet) or change an entry only this device changed since its base version (status
`applied`), and dose logs that are new or an exact replay of a stored one. Every rule of the
per-mutation path holds: the same serializers (run once over the batch), the late-entry window
and future dates, the diary's slot and kind of day, the AAS rules, ownership of ids, the
insert-only doses; the rows are written by the same triggers (pending marker, field versions,
stamping at commit), so versions come out as they would one by one.

Anything else — a delete, another table, an id twice, a merge with another writer, a conflict,
a rejection, a database error — declines that table's group: its savepoint is rolled back and
the caller applies those mutations one at a time, with per-mutation savepoints, exactly as
before. So the statuses and the idempotency records never depend on which path ran
(tests/sync/test_batch_push.py compares both paths on generated batches)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core import crypto
from patients import scores
from patients.models import (
    DiaryEntry,
    DoseLog,
    DoseStatus,
    Patient,
    Prescription,
    Slot,
    SyncAlias,
    SyncClient,
    SyncDeletion,
    SyncMutationResult,
)
from patients.sync.merge import Rejected, _column, _validated_diary_fields
from patients.sync.versions import _pending_marker
from tenants.models import DiaryMode

logger = logging.getLogger("patients.sync")

DOSE_FIELDS = {"prescription", "date", "status", "taken_at"}
DIARY_MERGED = ("wheals", "itch", "angioedema", "aas_items", "note")


class Declined(Exception):
    """The batch holds a mutation only the per-mutation path handles."""


def batch_apply(
    patient: Patient, client: SyncClient, mutations: Sequence[dict[str, Any]], late_days: int
) -> dict[int, dict[str, Any]]:
    """The results of the mutations applied here, by mutation id; the caller applies the others
    one at a time. A table's mutations are applied here all or none: its savepoint is rolled
    back if any of them is one the fast path does not handle.

    Diary entries and dose logs never read each other's rows, nor do the other tables the
    per-mutation path handles read them (questionnaires, reminders; server-owned tables are
    refused), so applying a table's group at once, before the others, gives what applying the
    batch in order gives. A settings change is the exception (time zone and diary mode move the
    date window and the slots): a batch that holds one runs wholly in order."""
    if any(m["table"] == "patient_settings" for m in mutations):
        return {}
    applied: dict[int, dict[str, Any]] = {}
    for table in ("diary_entry", "dose_log"):
        group = [m for m in mutations if m["table"] == table]
        if not group or not _candidate(group):
            continue
        try:
            with transaction.atomic():
                batch = _Batch(patient, client, late_days)
                applied.update(batch.diary(group) if table == "diary_entry" else batch.doses(group))
        except (Declined, Rejected):
            continue
        except Exception as exc:  # a race or a value the database refused: the slow path says which
            logger.info("Sync batch falls back to one mutation at a time (%s)", type(exc).__name__)
            continue
    return {mid: {"mutation_id": mid, **result} for mid, result in applied.items()}


def _candidate(group: list[dict[str, Any]]) -> bool:
    """What can be decided without a query: upserts only, each id once."""
    return all(m["op"] == "upsert" for m in group) and len({m["id"] for m in group}) == len(group)


class _Batch:
    def __init__(self, patient: Patient, client: SyncClient, late_days: int) -> None:
        self.patient, self.client, self.late_days = patient, client, late_days
        self.now = timezone.now()
        self.today = patient.local_today()
        self.marker = _pending_marker()

    def _check_day(self, day: date) -> None:
        """services._check_day: from `late_days` ago up to today, in the patient's time zone."""
        if day > self.today or day < self.today - timedelta(days=self.late_days):
            raise Declined

    # --- diary entries ----------------------------------------------------------------------------

    def diary(self, mutations: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        if not mutations:
            return {}
        from patients.api.views import DiaryEntryApi

        ids = [m["id"] for m in mutations]
        raw_notes = sorted(
            {n for m in mutations if isinstance(n := (m.get("fields") or {}).get("note"), str)}
        )
        notes: dict[str, str] = {}
        if raw_notes:
            checked = DiaryEntryApi.InputSerializer(
                data=[{"note": n} for n in raw_notes], many=True, partial=True
            )
            if not checked.is_valid():
                raise Declined
            notes = {raw: item["note"] for raw, item in zip(raw_notes, checked.validated_data, strict=True)}
        existing = {e.pk: e for e in DiaryEntry.objects.select_for_update().filter(pk__in=ids)}
        if SyncAlias.objects.filter(alias_id__in=ids, table_name="diary_entry").exists():
            raise Declined
        new_ids = [i for i in ids if i not in existing]
        if new_ids and SyncDeletion.objects.filter(record_id__in=new_ids, table_name="diary_entry").exists():
            raise Declined

        plans: list[tuple[dict[str, Any], dict[str, Any]]] = []
        days: set[date] = set()
        for m in mutations:
            fields = _validated_diary_fields(m.get("fields") or {}, notes)
            if (
                "aas_items" in fields
                and fields["aas_items"] is not None
                and fields.get("angioedema") is False
            ):
                raise Declined
            plans.append((m, fields))
            entry = existing.get(m["id"])
            if entry is not None:
                days.add(entry.day)
            elif "day" in fields:
                days.add(fields["day"])
        live: dict[date, set[str]] = {}
        for day, slot in DiaryEntry.objects.filter(
            patient=self.patient, day__in=days, deleted_at__isnull=True
        ).values_list("day", "slot"):
            live.setdefault(day, set()).add(slot)
        own = self._own_versions(plans, existing)

        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        slots: dict[date, set[str]] = {}
        results: dict[int, dict[str, Any]] = {}
        for m, fields in plans:
            entry = existing.get(m["id"])
            if entry is None:
                inserts.append(self._diary_new(m["id"], fields, live))
                day, slot = inserts[-1]["day"], inserts[-1]["slot"]
            else:
                updates.append(self._diary_change(m, fields, entry, own))
                day, slot = entry.day, entry.slot
            if slot in slots.setdefault(day, set()):
                raise Declined  # two mutations of one day and slot: their order matters
            slots[day].add(slot)
            results[m["mutation_id"]] = {"status": "applied", "server_version": self.marker}
        # One kind of entry per day (services._check_slot): with every day of the batch of one
        # kind, checking each entry alone decides as checking them one after the other would.
        for day, batch_slots in slots.items():
            kinds = batch_slots | live.get(day, set())
            if Slot.DAY in kinds and len(kinds) > 1:
                raise Declined
        self._diary_insert(inserts)
        self._diary_update(updates)
        return results

    def _own_versions(
        self, plans: list[tuple[dict[str, Any], dict[str, Any]]], existing: dict[uuid.UUID, DiaryEntry]
    ) -> set[int]:
        """merge._own_versions for the whole batch: of the versions newer than a mutation's base,
        those this device wrote (one query)."""
        candidates: set[int] = set()
        for m, _fields in plans:
            entry = existing.get(m["id"])
            if entry is not None:
                base = m.get("base_version") or 0
                versions = [entry.server_version, *entry.field_versions.values()]
                candidates.update(v for v in versions if v and v > base and v != self.marker)
        own = {self.marker}
        if candidates:
            written = SyncMutationResult.objects.filter(client=self.client, written_version__in=sorted(candidates))
            own.update(v for v in written.values_list("written_version", flat=True) if v is not None)
        return own

    def _diary_new(
        self, record_id: uuid.UUID, fields: dict[str, Any], live: dict[date, set[str]]
    ) -> dict[str, Any]:
        """merge._apply_diary's new record, then services.diary_entry_record's checks."""
        if {"day", "wheals", "itch"} - set(fields):
            raise Declined
        slot = fields.get("slot", Slot.DAY if self.patient.diary_mode == "once" else None)
        if slot is None:
            raise Declined
        day = fields["day"]
        if slot in live.get(day, set()):
            raise Declined  # the day exists under another id: a natural-key merge
        self._check_day(day)
        if not live.get(day):
            expected = (Slot.DAY,) if self.patient.diary_mode == DiaryMode.ONCE else (Slot.AM, Slot.PM)
            if slot not in expected:
                raise Declined
        angioedema = fields.get("angioedema", fields.get("aas_items") is not None)
        aas_items = fields.get("aas_items")
        self._check_aas(angioedema, aas_items)
        note = fields.get("note", "")
        return {
            "id": record_id,
            "day": day,
            "slot": slot,
            "wheals": fields["wheals"],
            "itch": fields["itch"],
            "angioedema": angioedema,
            "aas_items": aas_items if angioedema else None,
            "note_encrypted": crypto.encrypt(note) if note else "",
        }

    def _diary_change(
        self, m: dict[str, Any], fields: dict[str, Any], entry: DiaryEntry, own: set[int]
    ) -> dict[str, Any]:
        """merge._apply_diary's change of an existing entry, when no other writer changed it
        since the device's base version (status `applied`, nothing to record as a conflict)."""
        if entry.patient_id != self.patient.pk or entry.deleted_at is not None:
            raise Declined
        base_version = m.get("base_version") or 0
        for immutable in ("day", "slot"):
            if immutable in fields and fields[immutable] != getattr(entry, immutable):
                raise Declined
        changes = {k: v for k, v in fields.items() if k not in ("day", "slot")}
        if changes.get("aas_items") is not None and "angioedema" not in changes:
            changes["angioedema"] = True
        if entry.server_version > base_version and entry.server_version not in own:
            raise Declined  # another writer changed the record: a merge
        if any(
            (v := entry.field_versions.get(_column(f), 0)) > base_version and v not in own for f in changes
        ):
            raise Declined
        merged = {f: changes[f] if f in changes else getattr(entry, f) for f in DIARY_MERGED}
        if not merged["angioedema"]:
            merged["aas_items"] = None
        elif merged["aas_items"] is None:
            raise Declined
        self._check_day(entry.day)
        self._check_aas(merged["angioedema"], merged["aas_items"])
        note_encrypted = entry.note_encrypted
        if "note" in changes and merged["note"] != entry.note:
            # As diary_entry_record: an unchanged note is not re-encrypted (it would look like an edit).
            note_encrypted = crypto.encrypt(merged["note"]) if merged["note"] else ""
        return {
            "id": entry.pk,
            "wheals": merged["wheals"],
            "itch": merged["itch"],
            "angioedema": merged["angioedema"],
            "aas_items": merged["aas_items"],
            "note_encrypted": note_encrypted,
        }

    @staticmethod
    def _check_aas(angioedema: bool, aas_items: list[int] | None) -> None:
        if angioedema:
            if aas_items is None:
                raise Declined
            try:
                scores.aas_day(True, aas_items)
            except ValueError as exc:
                raise Declined from exc
        elif aas_items is not None:
            raise Declined

    def _diary_insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, aas_items,"
                " note_encrypted, recorded_at, created_at, updated_at, deleted_at, server_version, field_versions)"
                " SELECT u.id, %s, u.day, u.slot, u.wheals, u.itch, u.angioedema, u.aas::smallint[], u.note,"
                " %s, %s, %s, NULL, 0, '{}'::jsonb"
                " FROM unnest(%s::uuid[], %s::date[], %s::text[], %s::smallint[], %s::smallint[], %s::boolean[],"
                " %s::text[], %s::text[]) AS u(id, day, slot, wheals, itch, angioedema, aas, note)",
                [self.patient.pk, self.now, self.now, self.now, *_columns(rows, _DIARY_INSERT)],
            )

    def _diary_update(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE patients_diaryentry AS d SET wheals = u.wheals, itch = u.itch, angioedema = u.angioedema,"
                " aas_items = u.aas::smallint[], note_encrypted = u.note, recorded_at = %s, updated_at = %s"
                " FROM unnest(%s::uuid[], %s::smallint[], %s::smallint[], %s::boolean[], %s::text[], %s::text[])"
                " AS u(id, wheals, itch, angioedema, aas, note) WHERE d.id = u.id",
                [self.now, self.now, *_columns(rows, _DIARY_UPDATE)],
            )

    # --- dose logs ------------------------------------------------------------------------------

    def doses(self, mutations: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """apply._apply_dose and services.dose_log_record for the batch."""
        if not mutations:
            return {}
        from patients.api.views import DoseCreateApi

        raw = []
        for m in mutations:
            fields = m.get("fields") or {}
            if set(fields) - DOSE_FIELDS or {"prescription", "date", "status"} - set(fields):
                raise Declined
            raw.append(fields)
        checked = DoseCreateApi.InputSerializer(data=raw, many=True, partial=True)
        if not checked.is_valid():
            raise Declined
        cleaned: list[dict[str, Any]] = [dict(item) for item in checked.validated_data]
        existing = {d.pk: d for d in DoseLog.objects.filter(pk__in=[m["id"] for m in mutations])}
        prescriptions = {
            rx.pk: rx
            for rx in Prescription.objects.filter(
                patient=self.patient, pk__in={c["prescription"] for c in cleaned}
            )
        }
        results: dict[int, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        for m, clean in zip(mutations, cleaned, strict=True):
            stored = existing.get(m["id"])
            if stored is not None:
                same = (
                    stored.patient_id == self.patient.pk
                    and stored.prescription_id == clean["prescription"]
                    and stored.scheduled_date == clean["date"]
                    and stored.status == clean["status"]
                    and ("taken_at" not in clean or clean["taken_at"] == stored.taken_at)
                )
                if not same:
                    raise Declined
                results[m["mutation_id"]] = {"status": "applied", "server_version": stored.server_version}
                continue
            rx = prescriptions.get(clean["prescription"])
            if rx is None:
                raise Declined
            self._check_day(clean["date"])
            if not rx.active_on(clean["date"]):
                raise Declined
            taken_at: datetime | None = clean.get("taken_at")
            if clean["status"] == DoseStatus.SKIPPED and taken_at is not None:
                raise Declined
            if clean["status"] == DoseStatus.TAKEN and taken_at is None:
                taken_at = self.now
            rows.append(
                {
                    "id": m["id"],
                    "prescription": rx.pk,
                    "date": clean["date"],
                    "status": clean["status"],
                    "taken_at": taken_at,
                }
            )
            results[m["mutation_id"]] = {"status": "applied", "server_version": self.marker}
        if rows:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at,"
                    " created_at, server_version)"
                    " SELECT u.id, %s, u.rx, u.day, u.status, u.taken_at, %s, 0"
                    " FROM unnest(%s::uuid[], %s::uuid[], %s::date[], %s::text[], %s::timestamptz[])"
                    " AS u(id, rx, day, status, taken_at)",
                    [self.patient.pk, self.now, *_columns(rows, _DOSE_INSERT)],
                )
        return results


_DIARY_INSERT = ("id", "day", "slot", "wheals", "itch", "angioedema", "aas_items", "note_encrypted")
_DIARY_UPDATE = ("id", "wheals", "itch", "angioedema", "aas_items", "note_encrypted")
_DOSE_INSERT = ("id", "prescription", "date", "status", "taken_at")


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[list[Any]]:
    """One array per column for `unnest`. AAS items travel as array literals (unnest would
    flatten a two-dimensional array), cast back to smallint[] in the statement."""
    columns = []
    for name in names:
        if name == "aas_items":
            columns.append(
                [
                    None if r[name] is None else "{" + ",".join(str(int(i)) for i in r[name]) + "}"
                    for r in rows
                ]
            )
        else:
            columns.append([r[name] for r in rows])
    return columns
