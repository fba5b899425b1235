"""Writes for the patient record: keyword-only, validated, audited where staff are involved."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.errors import ApplicationError, ErrorCode
from core.outbox import outbox_enqueue_many
from patients import scores
from patients.audit import access_log_write
from patients.models import (
    DeletionRequest,
    DiaryEntry,
    DoseLog,
    DoseStatus,
    Instrument,
    Patient,
    Prescription,
    PrivacyNotice,
    QuestionnaireResponse,
    Slot,
)
from patients.summary import ALERTS_EVALUATE_TASK
from tenants.models import DiaryMode, timezone_validate

NOT_FOUND = "No such record."


def _not_found() -> ApplicationError:
    return ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail=NOT_FOUND)


def patient_write_lock(patient: Patient) -> None:
    """The first lock of every write to a patient's synced records (a push, a diary, dose or
    questionnaire write, a settings change), held to commit. One lock order for every path:
    this patient lock, then the records' rows, then — only while committing — the clinic's
    sync version (migration 0012). So a REST delete racing a push waits instead of deadlocking,
    and two devices' batches of one patient apply one after the other."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"patient-write:{patient.pk}"]
        )


def patient_profile_update(*, patient: Patient, **changes: Any) -> Patient:
    """Timezone, locale, diary mode, quiet hours. Changing the timezone never moves recorded
    entries (they keep the local date they were recorded for); reminders follow the new zone."""
    allowed = {"timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"}
    unknown = set(changes) - allowed
    if unknown:
        raise ApplicationError(code=ErrorCode.VALIDATION_ERROR, field=sorted(unknown)[0], detail="Unknown field.")
    if "timezone" in changes:
        timezone_validate(changes["timezone"])
    for field in ("quiet_hours_start", "quiet_hours_end"):
        if isinstance(changes.get(field), str):
            try:
                changes[field] = time.fromisoformat(changes[field])
            except ValueError as exc:
                raise ApplicationError(
                    code=ErrorCode.VALIDATION_ERROR, field=field, detail="Use a time as HH:MM."
                ) from exc
    patient_write_lock(patient)
    moved = "timezone" in changes and changes["timezone"] != patient.timezone
    for field, value in changes.items():
        setattr(patient, field, value)
    patient.save(update_fields=[*changes, "updated_at"])
    if moved:
        from patients.reminders import reminders_reschedule

        reminders_reschedule(patient=patient)
        patient_changed(patient)  # a new local date: the summary follows the new zone
    return patient


_deferred_changes: contextvars.ContextVar[set[uuid.UUID] | None] = contextvars.ContextVar(
    "deferred_changes", default=None
)



def patient_changed(patient: Patient) -> None:
    """A write changed what the patient's summary shows (diary, questionnaire, dose,
    prescription, time zone): the summary row is recomputed in the write's transaction, so a
    clinician reading right after sees it, and the clinician alerts are re-evaluated from it by
    a task on the clinic's queue once the write has committed. In a batch (a sync push) both
    happen once per patient at the batch's end."""
    deferred = _deferred_changes.get()
    if deferred is not None:
        deferred.add(patient.pk)
        return
    _summaries_changed({patient.pk})


def _summaries_changed(patient_ids: set[uuid.UUID]) -> None:
    from patients.summary import summaries_refresh

    summaries_refresh(patient_ids)
    # By name, through the outbox: patients does not import clinicians.
    outbox_enqueue_many(ALERTS_EVALUATE_TASK, [{"patient_id": str(pid)} for pid in sorted(patient_ids)])


@contextlib.contextmanager
def changes_batched() -> Iterator[None]:
    """Collect `patient_changed` calls during a batch and apply them once per patient at its end
    (still inside the batch's transaction)."""
    token = _deferred_changes.set(set())
    try:
        yield
        patient_ids = _deferred_changes.get() or set()
    finally:
        _deferred_changes.reset(token)
    if patient_ids:
        _summaries_changed(patient_ids)


def _check_day(
    *,
    patient: Patient,
    day: date,
    late_days: int,
    now: datetime | None = None,
    field: str = "day",
    future_code: str = "diary_future_date",
    late_code: str = "diary_too_late",
) -> None:
    """The late-entry window: a local date from `late_days` ago up to today, never the future."""
    today = patient.local_today(now)
    if day > today:
        raise ApplicationError(
            code=ErrorCode(future_code),
            field=field,
            detail=f"{day} is in the future in your time zone ({patient.timezone}).",
        )
    if day < today - timedelta(days=late_days):
        raise ApplicationError(
            code=ErrorCode(late_code),
            field=field,
            detail=f"Entries can be added or changed up to {late_days} days back.",
        )


def _check_slot(*, patient: Patient, day: date, slot: str) -> None:
    """One kind of entry per day: a whole day (`day`) or its halves (`am`/`pm`), never both, so a
    day's score is never ambiguous. A new day follows the patient's diary mode; a day recorded
    in the other mode (before the clinic switched it) stays that kind and can still be changed
    or deleted. Call with the patient's write lock held."""
    kinds = set(
        DiaryEntry.objects.filter(patient=patient, day=day, deleted_at__isnull=True).values_list(
            "slot", flat=True
        )
    )
    whole = slot == Slot.DAY
    if kinds:
        if whole == (Slot.DAY in kinds):
            return
        recorded = "as a whole day" if Slot.DAY in kinds else "as morning and evening"
        raise ApplicationError(
            code=ErrorCode.DIARY_DAY_KIND,
            status_code=409,
            field="slot",
            detail=f"This day is already recorded {recorded}: change that entry instead.",
        )
    expected = (Slot.DAY,) if patient.diary_mode == DiaryMode.ONCE else (Slot.AM, Slot.PM)
    if slot not in expected:
        raise ApplicationError(
            code=ErrorCode.DIARY_SLOT_MISMATCH,
            field="slot",
            detail=f"Your diary is {patient.diary_mode}-daily: use slot {' or '.join(expected)}.",
        )


@transaction.atomic
def diary_entry_record(
    *,
    patient: Patient,
    day: date,
    slot: str,
    wheals: int,
    itch: int,
    angioedema: bool = False,
    aas_items: list[int] | None = None,
    note: str = "",
    entry_id: uuid.UUID | None = None,
    recorded_at: datetime | None = None,
    late_days: int = 7,
    now: datetime | None = None,
) -> tuple[DiaryEntry, bool]:
    """Record or replace the diary entry for a local date and slot (idempotent upsert).

    Returns (entry, created). The entry keeps its id when replaced. A client id that belongs to
    another patient's record is answered as not found (ids are never a way in).
    """
    _check_day(patient=patient, day=day, late_days=late_days, now=now)
    patient_write_lock(patient)
    _check_slot(patient=patient, day=day, slot=slot)
    if angioedema:
        if aas_items is None:
            raise ApplicationError(
                code=ErrorCode.AAS_REQUIRED, field="aas_items", detail="Rate the 5 swelling questions."
            )
        scores.aas_day(True, aas_items)
    elif aas_items is not None:
        raise ApplicationError(
            code=ErrorCode.AAS_WITHOUT_ANGIOEDEMA,
            field="aas_items",
            detail="Swelling questions need angioedema: true.",
        )
    if entry_id is not None and DiaryEntry.objects.filter(pk=entry_id).exclude(patient=patient).exists():
        raise _not_found()
    entry = (
        DiaryEntry.objects.select_for_update()
        .filter(patient=patient, day=day, slot=slot, deleted_at__isnull=True)
        .first()
    )
    created = entry is None
    if entry is None:
        if entry_id is not None and DiaryEntry.objects.filter(pk=entry_id).exists():
            # The id is this patient's tombstoned or other-slot record: ids are not reused.
            raise ApplicationError(
                code=ErrorCode.DIARY_ID_CONFLICT,
                status_code=409,
                field="id",
                detail="This id belongs to another entry.",
            )
        entry = DiaryEntry(id=entry_id or uuid.uuid4(), patient=patient, day=day, slot=slot)
    entry.wheals, entry.itch, entry.angioedema = wheals, itch, angioedema
    entry.aas_items = aas_items if angioedema else None
    if entry.note != note:  # re-encrypting an unchanged note would look like an edit to sync
        entry.note = note
    entry.recorded_at = recorded_at or timezone.now()
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:
        # A concurrent writer created the same date/slot first: report it, do not lose either.
        raise ApplicationError(
            code=ErrorCode.DIARY_CONFLICT,
            status_code=409,
            detail="This day was just recorded elsewhere; reload and retry.",
        ) from exc
    patient_changed(patient)
    return entry, created


@transaction.atomic
def diary_entry_delete(*, patient: Patient, day: date, slot: str, late_days: int = 7) -> DiaryEntry:
    """Tombstone the live entry (offline devices learn of the deletion through sync)."""
    _check_day(patient=patient, day=day, late_days=late_days)
    patient_write_lock(patient)
    _check_slot(patient=patient, day=day, slot=slot)
    entry = (
        DiaryEntry.objects.select_for_update()
        .filter(patient=patient, day=day, slot=slot, deleted_at__isnull=True)
        .first()
    )
    if entry is None:
        raise _not_found()
    entry.deleted_at = timezone.now()
    entry.save(update_fields=["deleted_at", "updated_at"])
    patient_changed(patient)
    return entry


def _validate_answers(instrument: str, answers: Any) -> tuple[dict[str, Any], int]:
    """Per-instrument answers → (normalised answers, score)."""
    try:
        if instrument in (Instrument.UCT, Instrument.UCT7):
            if not isinstance(answers, dict) or set(answers) - {"items"}:
                raise ValueError("only 'items' is accepted")
            items = answers.get("items")
            if not isinstance(items, list):
                raise ValueError("items must be a list")
            return {"items": list(items)}, scores.uct_total(list(items))
        if instrument == Instrument.AAS:
            if not isinstance(answers, dict) or set(answers) - {"angioedema", "items"}:
                raise ValueError("answers are {angioedema, items}")
            angioedema = answers.get("angioedema")
            if not isinstance(angioedema, bool):
                raise ValueError("angioedema must be true or false")
            items = answers.get("items")
            if angioedema and not isinstance(items, list):
                raise ValueError("items must be a list")
            score = scores.aas_day(angioedema, items)
            return {"angioedema": angioedema, "items": list(items) if angioedema and items else None}, score
    except (TypeError, ValueError, AttributeError) as exc:
        raise ApplicationError(
            code=ErrorCode.INVALID_ANSWERS, field="answers", detail=str(exc) or "Invalid answers."
        ) from exc
    raise ApplicationError(code=ErrorCode.UNKNOWN_INSTRUMENT, field="instrument", detail="Unknown instrument.")


@transaction.atomic
def questionnaire_record(
    *,
    patient: Patient,
    instrument: str,
    answers: Any,
    period_end: date | None = None,
    response_id: uuid.UUID | None = None,
    late_days: int = 7,
) -> tuple[QuestionnaireResponse, bool]:
    """Record a questionnaire (idempotent on the client id, also under concurrent retries).

    The period ends within the diary's late-entry window: not in the future, at most
    `late_days` back (a replay of an already recorded id is answered whatever its date)."""
    patient_write_lock(patient)
    existing = _client_record(QuestionnaireResponse, patient, response_id)
    if existing is not None:
        return existing, False
    period_end = period_end or patient.local_today()
    _check_day(
        patient=patient,
        day=period_end,
        late_days=late_days,
        field="period_end",
        future_code="future_date",
        late_code="questionnaire_too_late",
    )
    normalised, score = _validate_answers(instrument, answers)
    response, created = _insert_once(
        QuestionnaireResponse,
        patient,
        response_id or uuid.uuid4(),
        instrument=instrument,
        answers=normalised,
        score=score,
        period_end=period_end,
    )
    if created:
        patient_changed(patient)
    return response, created


@transaction.atomic
def questionnaire_update(
    *,
    patient: Patient,
    response: QuestionnaireResponse,
    answers: Any,
    period_end: date | None,
    late_days: int = 7,
) -> QuestionnaireResponse:
    """Edit a recorded questionnaire (an offline device's later change): same rules as a new one,
    the instrument stays."""
    patient_write_lock(patient)
    if period_end is not None and period_end != response.period_end:
        _check_day(
            patient=patient,
            day=period_end,
            late_days=late_days,
            field="period_end",
            future_code="future_date",
            late_code="questionnaire_too_late",
        )
        response.period_end = period_end
    response.answers, response.score = _validate_answers(response.instrument, answers)
    response.save()
    patient_changed(patient)
    return response


_Record = TypeVar("_Record", QuestionnaireResponse, DoseLog)


def _client_record(model: type[_Record], patient: Patient, record_id: uuid.UUID | None) -> _Record | None:
    """The row already stored under a client-generated id; another patient's id is not found."""
    if record_id is None:
        return None
    existing = model.objects.filter(pk=record_id).first()
    if existing is not None and existing.patient_id != patient.pk:
        raise _not_found()
    return existing


def _insert_once(
    model: type[_Record], patient: Patient, record_id: uuid.UUID, **values: Any
) -> tuple[_Record, bool]:
    """Insert an insert-only row under its client id, or return the row stored under that id.

    Two identical requests (a retry racing the original) both find no row, then both INSERT:
    the second waits for the first to commit (on the clinic's sync version, then the primary
    key) and then fails on the key. The INSERT runs in a savepoint (`get_or_create`), so that
    failure reads the committed row instead of aborting the request, and the savepoint's
    rollback returns the sync version it took (no gap)."""
    row, created = model.objects.get_or_create(pk=record_id, defaults={"patient": patient, **values})
    if row.patient_id != patient.pk:
        raise _not_found()
    return row, created


@transaction.atomic
def dose_log_record(
    *,
    patient: Patient,
    dose_id: uuid.UUID,
    prescription_id: uuid.UUID,
    day: date,
    status: str,
    taken_at: datetime | None = None,
    late_days: int = 7,
) -> tuple[DoseLog, bool]:
    """Log a dose taken or skipped (insert-only; idempotent on the client id, also under
    concurrent retries)."""
    patient_write_lock(patient)
    existing = _client_record(DoseLog, patient, dose_id)
    if existing is not None:
        return existing, False
    prescription = Prescription.objects.filter(pk=prescription_id, patient=patient).first()
    if prescription is None:
        raise ApplicationError(
            code=ErrorCode.NOT_FOUND, status_code=404, field="prescription", detail="No such prescription."
        )
    _check_day(
        patient=patient,
        day=day,
        late_days=late_days,
        field="date",
        future_code="dose_future_date",
        late_code="dose_too_late",
    )
    if not prescription.active_on(day):
        raise ApplicationError(
            code=ErrorCode.PRESCRIPTION_INACTIVE, field="date", detail="The prescription is not active on that date."
        )
    if status == DoseStatus.SKIPPED and taken_at is not None:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="taken_at", detail="A skipped dose has no time taken."
        )
    if status == DoseStatus.TAKEN and taken_at is None:
        taken_at = timezone.now()
    dose, created = _insert_once(
        DoseLog,
        patient,
        dose_id,
        prescription=prescription,
        scheduled_date=day,
        status=status,
        taken_at=taken_at,
    )
    if created:
        patient_changed(patient)
    return dose, created


@transaction.atomic
def deletion_request_create(*, patient: Patient, reason: str = "") -> DeletionRequest:
    request = DeletionRequest.objects.create(patient=patient, reason=reason)
    access_log_write(
        actor_id=patient.user_id,
        actor_role="patient",
        action="deletion.request",
        patient_id=patient.pk,
        obj=request,
    )
    return request


@transaction.atomic
def patient_export(
    *, patient: Patient, actor_id: uuid.UUID | None, actor_role: str, ip: str | None = None
) -> dict[str, Any]:
    """Everything the clinic holds about the patient, as one JSON document (right of access).
    Every export is audited, whoever asks."""

    access_log_write(
        actor_id=actor_id,
        actor_role=actor_role,
        action="patient.export",
        patient_id=patient.pk,
        obj=patient,
        ip=ip,
    )

    def rows(queryset: Any, fields: list[str]) -> list[dict[str, Any]]:
        return [{f: _export_value(getattr(row, f)) for f in fields} for row in queryset]

    diary = DiaryEntry.objects.filter(patient=patient).order_by("day", "slot")
    return {
        "exported_at": timezone.now().isoformat(),
        "patient": {
            f: _export_value(getattr(patient, f))
            for f in (
                "id",
                "display_name",
                "date_of_birth",
                "timezone",
                "locale",
                "diary_mode",
                "status",
                "enrolled_at",
            )
        },
        "consents": rows(
            patient.consents.order_by("granted_at"), ["id", "kind", "version", "granted_at", "withdrawn_at"]
        ),
        # The texts the patient accepted, so the export shows what each consent agreed to.
        "privacy_notices": rows(
            PrivacyNotice.objects.filter(
                version__in=[int(v) for v in patient.consents.values_list("version", flat=True) if v.isdigit()]
            ).order_by("version"),
            ["version", "texts", "created_at"],
        ),
        "diary": [
            {
                **{
                    f: _export_value(getattr(e, f))
                    for f in (
                        "id",
                        "day",
                        "slot",
                        "wheals",
                        "itch",
                        "angioedema",
                        "aas_items",
                        "recorded_at",
                        "deleted_at",
                    )
                },
                "note": e.note,
            }
            for e in diary
        ],
        "questionnaires": rows(
            QuestionnaireResponse.objects.filter(patient=patient).order_by("period_end"),
            ["id", "instrument", "answers", "score", "period_end", "recorded_at", "deleted_at"],
        ),
        "prescriptions": rows(
            Prescription.objects.filter(patient=patient).order_by("start"),
            [
                "id",
                "medication_id",
                "dose",
                "frequency_kind",
                "frequency_value",
                "guideline_step",
                "start",
                "end",
            ],
        ),
        "doses": rows(
            DoseLog.objects.filter(patient=patient).order_by("scheduled_date", "created_at"),
            ["id", "prescription_id", "scheduled_date", "status", "taken_at"],
        ),
        "deletion_requests": rows(
            patient.deletion_requests.order_by("created_at"), ["id", "created_at", "handled_at"]
        ),
    }


def _export_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
