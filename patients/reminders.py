"""Reminders: the patient's schedule, the per-minute dispatch and the delivery of one occurrence.

Exactly once per reminder per local date: the dispatcher claims due reminders with
`FOR UPDATE SKIP LOCKED`, inserts their `ReminderDelivery` rows with `ON CONFLICT DO NOTHING`
(unique per reminder and local date) and advances each reminder's next occurrence in the same
transaction, which also writes the outbox messages that carry the deliveries to the worker.
A dispatcher run twice in a minute, two workers, or a restart after downtime therefore never
sends an occurrence twice. Occurrences older than `REMINDER_MAX_LATENESS` are recorded as
expired instead of sent (catch-up after downtime never sends stale reminders).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.errors import ApplicationError, ErrorCode
from core.outbox import outbox_enqueue_many
from patients import push
from patients.audit import access_log_write
from patients.consent import ConsentStatus, consent_states
from patients.models import (
    DeliveryStatus,
    DoseLog,
    DoseStatus,
    Patient,
    PatientStatus,
    Prescription,
    PushSubscription,
    QuestionnaireResponse,
    Reminder,
    ReminderDelivery,
    ReminderKind,
    Slot,
)
from patients.schedule import in_quiet_hours, next_occurrence
from tenants.models import DiaryMode

DELIVER_TASK = "patients.reminder_deliver"
DELIVER_CHUNK_TASK = "patients.reminder_deliver_chunk"
CLAIM_TIMEOUT = timedelta(minutes=5)  # a delivery claimed by a worker that died is retaken after this
DISPATCH_BATCH = 5000  # reminders claimed per transaction
# Deliveries per message. One Celery message per delivery made the busy minute cost its
# publishing (issue 19); a chunk of up to 100 is one message and one outbox row. The bound
# keeps a clinic's chunk short, so with prefetch 1 and kombu's rotation between clinic queues
# another clinic's reminder waits for at most one chunk per worker.
DELIVERY_CHUNK = 100

logger = logging.getLogger(__name__)


def max_lateness() -> timedelta:
    return timedelta(minutes=settings.REMINDER_MAX_LATENESS_MINUTES)


def _not_found() -> ApplicationError:
    return ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such reminder.")


# --- The patient's schedule ------------------------------------------------------------------------


def _schedule(reminder: Reminder, patient: Patient, now: datetime | None = None) -> None:
    """Set the next occurrence after now (or clear it when the reminder is off). A paused or
    discharged patient's reminders stay scheduled and are skipped at dispatch, so they resume
    by themselves whatever path changes the patient's status."""
    if not reminder.enabled or reminder.deleted_at is not None:
        reminder.next_fire_at, reminder.next_local_date = None, None
        return
    now = now or timezone.now()
    due = reminder.next_fire_at
    if due is not None and now - max_lateness() <= due <= now:
        return  # an occurrence is due and not dispatched yet: an edit must not drop it
    reminder.next_fire_at, reminder.next_local_date = next_occurrence(
        local_time=reminder.local_time,
        days_of_week=reminder.days_of_week,
        zone=patient.tz,
        after=now,
    )


def _clean_days(days: Any) -> list[int]:
    if not isinstance(days, list | tuple) or not days:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR,
            field="days_of_week",
            detail="Give at least one ISO weekday (1 = Monday).",
        )
    if any(not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7 for d in days):
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR,
            field="days_of_week",
            detail="Weekdays are 1 (Monday) to 7 (Sunday).",
        )
    return sorted(set(days))


def _clean_prescription(patient: Patient, kind: str, prescription_id: Any) -> Prescription | None:
    if kind != ReminderKind.MEDICATION:
        if prescription_id is not None:
            raise ApplicationError(
                code=ErrorCode.VALIDATION_ERROR,
                field="prescription",
                detail="Only medication reminders name a prescription.",
            )
        return None
    if prescription_id is None:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR,
            field="prescription",
            detail="A medication reminder needs a prescription.",
        )
    prescription = Prescription.objects.filter(pk=prescription_id, patient=patient).first()
    if prescription is None:
        raise ApplicationError(
            code=ErrorCode.NOT_FOUND, status_code=404, field="prescription", detail="No such prescription."
        )
    if prescription.end is not None and prescription.end < patient.local_today():
        raise ApplicationError(
            code=ErrorCode.PRESCRIPTION_INACTIVE, field="prescription", detail="This prescription has ended."
        )
    return prescription


@transaction.atomic
def reminder_save(
    *,
    patient: Patient,
    reminder_id: uuid.UUID | None = None,
    kind: str,
    local_time: time,
    days_of_week: list[int] | None = None,
    prescription_id: uuid.UUID | None = None,
    enabled: bool = True,
) -> tuple[Reminder, bool]:
    """Create a reminder, or replace one of the patient's own (the id comes from the device)."""
    if kind not in ReminderKind.values:
        raise ApplicationError(code=ErrorCode.VALIDATION_ERROR, field="kind", detail="Unknown reminder kind.")
    days = _clean_days(days_of_week if days_of_week is not None else [1, 2, 3, 4, 5, 6, 7])
    prescription = _clean_prescription(patient, kind, prescription_id)
    reminder = None
    if reminder_id is not None:
        reminder = Reminder.objects.select_for_update().filter(pk=reminder_id).first()
        if reminder is not None and reminder.patient_id != patient.pk:
            raise _not_found()
    created = reminder is None
    if created:
        live = Reminder.objects.filter(patient=patient, deleted_at__isnull=True).count()
        if live >= settings.REMINDERS_PER_PATIENT_MAX:
            raise ApplicationError(
                code=ErrorCode.TOO_MANY_REMINDERS,
                detail=f"At most {settings.REMINDERS_PER_PATIENT_MAX} reminders per patient.",
            )
        reminder = Reminder(id=reminder_id or uuid.uuid4(), patient=patient)
    assert reminder is not None
    reminder.kind = kind
    reminder.local_time = local_time.replace(second=0, microsecond=0, tzinfo=None)
    reminder.days_of_week = days
    reminder.prescription = prescription
    reminder.enabled = enabled
    reminder.deleted_at = None
    _schedule(reminder, patient)
    reminder.save()
    return reminder, created


@transaction.atomic
def reminder_update(*, patient: Patient, reminder_id: uuid.UUID, **changes: Any) -> Reminder:
    reminder = Reminder.objects.filter(pk=reminder_id, patient=patient, deleted_at__isnull=True).first()
    if reminder is None:
        raise _not_found()
    current = {
        "kind": reminder.kind,
        "local_time": reminder.local_time,
        "days_of_week": reminder.days_of_week,
        "prescription_id": reminder.prescription_id,
        "enabled": reminder.enabled,
    }
    if "prescription" in changes:
        changes["prescription_id"] = changes.pop("prescription")
    saved, _ = reminder_save(patient=patient, reminder_id=reminder_id, **{**current, **changes})
    return saved


@transaction.atomic
def reminder_delete(*, patient: Patient, reminder_id: uuid.UUID) -> Reminder:
    """A tombstone (offline devices learn of it through sync); its deliveries are kept."""
    reminder = (
        Reminder.objects.select_for_update()
        .filter(pk=reminder_id, patient=patient, deleted_at__isnull=True)
        .first()
    )
    if reminder is None:
        raise _not_found()
    reminder.deleted_at = timezone.now()
    _schedule(reminder, patient)
    reminder.save()
    return reminder


@transaction.atomic
def reminders_reschedule(*, patient: Patient, now: datetime | None = None) -> int:
    """After a timezone or status change: every live reminder's next occurrence, recomputed."""
    reminders = list(Reminder.objects.select_for_update().filter(patient=patient, deleted_at__isnull=True))
    for reminder in reminders:
        _schedule(reminder, patient, now)
    Reminder.objects.bulk_update(reminders, ["next_fire_at", "next_local_date"])
    return len(reminders)


# --- Push subscriptions ---------------------------------------------------------------------------


class PushEndpointTaken(ApplicationError):
    """Another patient's endpoint: a refused access whose AccessLog row survives the error
    response (the exception handler keeps the request transaction for it)."""

    keep_transaction = True


def push_subscription_register(
    *, patient: Patient, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> tuple[PushSubscription, bool]:
    """Register (or refresh the keys of) this browser's subscription.

    An endpoint that belongs to another patient is refused (409 `push_endpoint_taken`, audited)
    and that subscription is left untouched: knowing an endpoint must not let anyone take over
    another patient's reminders. A browser that changes hands is released by its previous
    user's sign-out, which deletes the subscription (DESIGN.md §11).
    """
    push.endpoint_check(endpoint)
    push.keys_check(p256dh, auth)
    subscription, created = _push_subscription_save(
        patient=patient, endpoint=endpoint, p256dh=p256dh, auth=auth, user_agent=user_agent
    )
    if subscription.patient_id != patient.pk:
        # Outside the save's atomic block, so the refusal's audit row is not rolled back with it.
        access_log_write(
            actor_id=patient.user_id,
            actor_role="patient",
            action="push_subscription.register",
            patient_id=subscription.patient_id,
            obj=subscription,
            allowed=False,
        )
        raise PushEndpointTaken(
            code=ErrorCode.PUSH_ENDPOINT_TAKEN,
            status_code=409,
            field="endpoint",
            detail="This push endpoint is registered to another account.",
        )
    return subscription, created


@transaction.atomic
def _push_subscription_save(
    *, patient: Patient, endpoint: str, p256dh: str, auth: str, user_agent: str
) -> tuple[PushSubscription, bool]:
    """The endpoint's row, created for this patient or refreshed if already theirs; another
    patient's row is returned unchanged."""
    mine = PushSubscription.objects.filter(patient=patient).exclude(endpoint=endpoint).count()
    if mine >= settings.PUSH_SUBSCRIPTIONS_PER_PATIENT_MAX:
        raise ApplicationError(
            code=ErrorCode.TOO_MANY_PUSH_SUBSCRIPTIONS,
            detail=f"At most {settings.PUSH_SUBSCRIPTIONS_PER_PATIENT_MAX} devices; remove one first.",
        )
    values = {"p256dh": p256dh, "auth": auth, "user_agent": user_agent[:200]}
    # The endpoint is unique: get_or_create inserts in a savepoint and, if a concurrent request
    # committed the same endpoint first, reads that row; the row lock then serialises the
    # ownership check against a concurrent register or delete.
    subscription, created = PushSubscription.objects.select_for_update().get_or_create(
        endpoint=endpoint, defaults={"patient": patient, **values}
    )
    if not created and subscription.patient_id == patient.pk:
        for name, value in values.items():
            setattr(subscription, name, value)
        subscription.save(update_fields=list(values))
    return subscription, created


def push_subscription_delete(*, patient: Patient, subscription_id: uuid.UUID) -> None:
    deleted, _ = PushSubscription.objects.filter(pk=subscription_id, patient=patient).delete()
    if not deleted:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such push subscription.")


# --- Dispatch: one clinic, one minute ---------------------------------------------------------------


@dataclass
class DispatchResult:
    due: int = 0
    queued: int = 0
    skipped: int = 0
    expired: int = 0
    duplicates: int = 0
    messages: int = 0  # Celery messages (outbox rows) carrying the queued deliveries
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(slots=True)
class _DuePatient:
    status: str
    timezone: str
    diary_mode: str
    quiet_hours_start: time | None
    quiet_hours_end: time | None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(slots=True)
class _DuePrescription:
    start: date
    end: date | None
    frequency_kind: str
    frequency_value: int | None

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(slots=True)
class _Due:
    """A due reminder as the dispatch reads it: the schedule and what the skip rules need
    (no name or birth date in the dispatcher's memory; plain rows, not model instances, which
    cost more to build than the rest of the dispatch)."""

    pk: uuid.UUID
    patient_id: uuid.UUID
    kind: str
    local_time: time
    days_of_week: list[int]
    next_fire_at: datetime
    next_local_date: date
    prescription_id: uuid.UUID | None
    patient: _DuePatient
    prescription: _DuePrescription | None


# Reminder.objects.select_for_update(skip_locked=True, of=("self",)).filter(next_fire_at__lte=now,
# enabled=True, deleted_at__isnull=True).select_related("patient", "prescription"), as rows.
_DUE_SQL = """
SELECT r.id, r.patient_id, r.kind, r.local_time, r.days_of_week, r.next_fire_at, r.next_local_date,
       r.prescription_id, p.status, p.timezone, p.diary_mode, p.quiet_hours_start, p.quiet_hours_end,
       rx.start, rx."end", rx.frequency_kind, rx.frequency_value
FROM patients_reminder r
JOIN patients_patient p ON p.id = r.patient_id
LEFT JOIN patients_prescription rx ON rx.id = r.prescription_id
WHERE r.next_fire_at <= %(now)s AND r.enabled AND r.deleted_at IS NULL
ORDER BY r.next_fire_at
LIMIT %(limit)s
FOR UPDATE OF r SKIP LOCKED
"""


def _due_rows(cursor: Any, now: datetime, limit: int) -> list[_Due]:
    cursor.execute(_DUE_SQL, {"now": now, "limit": limit})
    patients: dict[uuid.UUID, _DuePatient] = {}
    due = []
    for pk, patient_id, kind, local_time, days, fire_at, local_date, rx_id, *rest in cursor.fetchall():
        patient = patients.get(patient_id)
        if patient is None:
            patient = patients[patient_id] = _DuePatient(*rest[:5])
        prescription = _DuePrescription(*rest[5:]) if rx_id is not None else None
        due.append(
            _Due(pk, patient_id, kind, local_time, days, fire_at, local_date, rx_id, patient, prescription)
        )
    return due


_RECORDED_DIARY_SQL = """
SELECT patient_id, day, slot FROM patients_diaryentry
WHERE patient_id = ANY(%(patients)b::uuid[]) AND day = ANY(%(days)b::date[]) AND deleted_at IS NULL
"""


def _diary_slot(reminder: _Due, patient: _DuePatient) -> str:
    if patient.diary_mode == DiaryMode.TWICE:
        return Slot.AM if reminder.local_time < time(12) else Slot.PM
    return Slot.DAY


def _already_recorded(cursor: Any, due: list[_Due]) -> set[uuid.UUID]:
    """Reminders whose task for their local date is already done (three queries in all)."""
    done: set[uuid.UUID] = set()
    by_kind: dict[str, list[_Due]] = defaultdict(list)
    for reminder in due:
        by_kind[reminder.kind].append(reminder)
    if diary := by_kind.get(ReminderKind.DIARY):
        cursor.execute(
            _RECORDED_DIARY_SQL,
            {
                "patients": list({r.patient_id for r in diary}),
                "days": list({r.next_local_date for r in diary}),
            },
        )
        recorded = set(cursor.fetchall())
        done |= {
            r.pk for r in diary if (r.patient_id, r.next_local_date, _diary_slot(r, r.patient)) in recorded
        }
    if medication := by_kind.get(ReminderKind.MEDICATION):
        logged = {
            (row["prescription_id"], row["scheduled_date"]): row["n"]
            for row in DoseLog.objects.filter(
                status=DoseStatus.TAKEN,
                prescription_id__in={r.prescription_id for r in medication},
                scheduled_date__in={r.next_local_date for r in medication},
            )
            .values("prescription_id", "scheduled_date")
            .annotate(n=Count("id"))
        }
        for r in medication:
            rx = r.prescription
            if rx is None or r.prescription_id is None or r.next_local_date is None:
                continue  # a medication reminder always names its prescription and next date
            needed = rx.frequency_value if rx.frequency_kind == "n_per_day" else 1
            if logged.get((r.prescription_id, r.next_local_date), 0) >= (needed or 1):
                done.add(r.pk)
    if questionnaire := by_kind.get(ReminderKind.QUESTIONNAIRE):
        answered = set(
            QuestionnaireResponse.objects.filter(
                Q(instrument="uct") | Q(instrument="uct7"),
                patient_id__in={r.patient_id for r in questionnaire},
                period_end__in={r.next_local_date for r in questionnaire},
                deleted_at__isnull=True,
            ).values_list("patient_id", "period_end")
        )
        done |= {r.pk for r in questionnaire if (r.patient_id, r.next_local_date) in answered}
    return done


def _without_consent(due: list[_Due]) -> set[uuid.UUID]:
    """Patients of the batch who withdrew their consent to the clinic's privacy notice
    (patients.consent): the clinic stores nothing they record, so nothing asks them to record
    (three queries). A patient who has not yet agreed (enrolled before consent existed) or whose
    consent is outdated is still reminded: the app they open asks them to agree."""
    states = consent_states(patient_ids=list({r.patient_id for r in due}))
    return {patient_id for patient_id, state in states.items() if state.status == ConsentStatus.WITHDRAWN}


def _skip_reason(
    reminder: _Due,
    fire_at: datetime,
    now: datetime,
    done: set[uuid.UUID],
    local_now: time,
    unconsented: frozenset[uuid.UUID] | set[uuid.UUID] = frozenset(),
) -> tuple[str, str]:
    patient = reminder.patient
    if fire_at < now - max_lateness():
        return DeliveryStatus.EXPIRED, "late"
    if patient.status != PatientStatus.ACTIVE:
        return DeliveryStatus.SKIPPED, "patient_inactive"
    if reminder.patient_id in unconsented:
        return DeliveryStatus.SKIPPED, "no_consent"
    if reminder.pk in done:
        return DeliveryStatus.SKIPPED, "already_recorded"
    if (
        reminder.prescription is not None
        and reminder.next_local_date is not None
        and not reminder.prescription.active_on(reminder.next_local_date)
    ):
        return DeliveryStatus.SKIPPED, "prescription_inactive"
    if in_quiet_hours(local_now, patient.quiet_hours_start, patient.quiet_hours_end):
        return DeliveryStatus.SKIPPED, "quiet_hours"
    return DeliveryStatus.PENDING, ""


# One statement: record the deliveries (one per reminder and local date, a second run inserts
# nothing) and advance the schedules. Only scheduling columns are updated, so the sync trigger
# (UPDATE OF patient-owned columns) stays quiet, and the due-hint trigger (patients 0014, 0015)
# only fires when a time moves earlier, which an advance never does.
_RECORD_AND_ADVANCE = """
WITH advanced AS (
    UPDATE patients_reminder r SET next_fire_at = n.next_fire_at, next_local_date = n.next_local_date
    FROM unnest(%(reminders)b::uuid[], %(next_times)b::timestamptz[], %(next_dates)b::date[])
         AS n(id, next_fire_at, next_local_date)
    WHERE r.id = n.id
)
INSERT INTO patients_reminderdelivery
    (id, reminder_id, patient_id, local_date, scheduled_for, status, reason, channel, attempts, created_at)
SELECT gen_random_uuid(), d.reminder_id, d.patient_id, d.local_date, d.scheduled_for, d.status, d.reason,
       '', 0, %(now)b
FROM unnest(%(reminders)b::uuid[], %(patients)b::uuid[], %(dates)b::date[], %(times)b::timestamptz[],
            %(statuses)b::text[], %(reasons)b::text[])
     AS d(reminder_id, patient_id, local_date, scheduled_for, status, reason)
ON CONFLICT (reminder_id, local_date) DO NOTHING
RETURNING id, status
"""


def _server_bound_cursor() -> Any:
    """A cursor on the current connection (its transaction and clinic search path) that binds
    parameters on the server, in binary. Django's psycopg cursor quotes them into the SQL text
    in Python, which for a few hundred array elements cost more than the statement itself."""
    import psycopg

    with connection.cursor():  # connects and sets the clinic's search path (django-tenants)
        pass
    raw: Any = psycopg.Cursor(connection.connection)  # the stubs expect Django's wrapper here
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def reminders_dispatch_due(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> DispatchResult:
    """Claim this clinic's due reminders and record one delivery per occurrence (see module doc).

    Runs in the clinic's schema; a batch is one transaction. Deliveries to send are published
    through the outbox when it commits, one message per chunk (`deliveries_enqueue`).
    """
    now = now or timezone.now()
    result = DispatchResult()
    with transaction.atomic(), _server_bound_cursor() as cursor:
        due = _due_rows(cursor, now, limit)
        if not due:
            return result
        result.due = len(due)
        done = _already_recorded(cursor, due)
        unconsented = _without_consent(due)
        floor = now - max_lateness()
        local_times: dict[str, time] = {}  # the local wall-clock time now, per zone
        rows: dict[str, list[Any]] = defaultdict(list)
        for reminder in due:
            fire_at = reminder.next_fire_at
            patient = reminder.patient
            zone = patient.tz
            local_now = local_times.get(patient.timezone)
            if local_now is None:
                local_now = local_times[patient.timezone] = now.astimezone(zone).time()
            status, reason = _skip_reason(reminder, fire_at, now, done, local_now, unconsented)
            rows["reminders"].append(reminder.pk)
            rows["patients"].append(reminder.patient_id)
            rows["dates"].append(reminder.next_local_date)
            rows["times"].append(fire_at)
            rows["statuses"].append(str(status))
            rows["reasons"].append(reason)
            result.reasons[reason or "queued"] += 1
            # The next occurrence: after this one, and never one already too late to send.
            next_at, next_date = next_occurrence(
                local_time=reminder.local_time,
                days_of_week=reminder.days_of_week,
                zone=zone,
                after=max(fire_at, floor),
            )
            rows["next_times"].append(next_at)
            rows["next_dates"].append(next_date)
        cursor.execute(_RECORD_AND_ADVANCE, {"now": now, **rows})
        inserted = cursor.fetchall()
        to_send = [str(delivery_id) for delivery_id, status in inserted if status == DeliveryStatus.PENDING]
        result.messages = deliveries_enqueue(to_send)
        result.queued = len(to_send)
        result.skipped = sum(1 for _, status in inserted if status == DeliveryStatus.SKIPPED)
        result.expired = sum(1 for _, status in inserted if status == DeliveryStatus.EXPIRED)
        result.duplicates = len(due) - len(inserted)
    return result


def delivery_chunks(delivery_ids: list[str], size: int | None = None) -> list[list[str]]:
    """The ids in order, split into as few chunks of at most `size` as possible, of even length
    (201 deliveries are three chunks of 67, not 100 + 100 + 1)."""
    size = size or DELIVERY_CHUNK
    if not delivery_ids:
        return []
    count = -(-len(delivery_ids) // size)
    step = -(-len(delivery_ids) // count)
    return [delivery_ids[start : start + step] for start in range(0, len(delivery_ids), step)]


def deliveries_enqueue(delivery_ids: list[str]) -> int:
    """Queue the deliveries through the outbox, in the caller's transaction: one message per
    chunk (`patients.reminder_deliver_chunk`, ids only), or the per-delivery task for a lone
    delivery. Returns the number of messages."""
    chunks = delivery_chunks(delivery_ids)
    if not chunks:
        return 0
    if len(chunks) == 1 and len(chunks[0]) == 1:
        outbox_enqueue_many(DELIVER_TASK, [{"delivery_id": chunks[0][0]}])
    else:
        outbox_enqueue_many(DELIVER_CHUNK_TASK, [{"delivery_ids": chunk} for chunk in chunks])
    return len(chunks)


# --- Delivery of one occurrence ---------------------------------------------------------------------


class DeliveryInProgress(Exception):
    """Another worker holds a fresh claim on this delivery."""


def reminder_deliveries_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Every minute, per clinic: deliveries that can no longer be sent in time are recorded as
    expired; deliveries whose worker died mid-send (claim timed out) are queued again."""
    now = now or timezone.now()
    open_statuses = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    expired = ReminderDelivery.objects.filter(
        status__in=open_statuses, scheduled_for__lt=now - max_lateness()
    ).update(status=DeliveryStatus.EXPIRED, reason="late", claimed_at=None)
    with transaction.atomic():
        stuck = list(
            ReminderDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - CLAIM_TIMEOUT)
            .values_list("pk", flat=True)[:1000]
        )
        ReminderDelivery.objects.filter(pk__in=stuck).update(status=DeliveryStatus.PENDING, claimed_at=None)
        deliveries_enqueue([str(pk) for pk in stuck])
    return {"expired": expired, "requeued": len(stuck)}


def _claim(delivery_id: uuid.UUID | str, now: datetime) -> ReminderDelivery | None:
    """Take the delivery for this worker (one UPDATE: two copies of the task cannot both send)."""
    claimed = ReminderDelivery.objects.filter(
        Q(status=DeliveryStatus.PENDING)
        | Q(status=DeliveryStatus.SENDING, claimed_at__lt=now - CLAIM_TIMEOUT),
        pk=delivery_id,
    ).update(status=DeliveryStatus.SENDING, claimed_at=now)
    if not claimed:
        return None
    return ReminderDelivery.objects.select_related("patient").get(pk=delivery_id)


def _finish(delivery: ReminderDelivery, status: str, *, reason: str = "", channel: str = "") -> None:
    ReminderDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        reason=reason,
        channel=channel,
        attempts=delivery.attempts + 1,
        sent_at=timezone.now() if status == DeliveryStatus.SENT else None,
    )


def _email_of(patient: Patient) -> str:
    from accounts.models import User

    if patient.user_id is None:
        return ""
    return (
        User.objects.filter(pk=patient.user_id, is_active=True).values_list("email", flat=True).first() or ""
    )


def reminder_deliver(
    *, delivery_id: uuid.UUID | str, now: datetime | None = None, final_attempt: bool = False
) -> str:
    """Send one occurrence by Web Push, falling back to email; returns the final status.

    Raises `TransientDeliveryError` (after releasing the claim) when every channel failed in a
    way that may succeed later; the task retries it with backoff until it is too late.
    """
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        if ReminderDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).exists():
            # Claimed moments ago by a worker that may have died mid-send (this message is its
            # redelivery): come back when the claim has timed out.
            raise DeliveryInProgress(str(delivery_id))
        return "not_pending"
    patient = delivery.patient
    if delivery.scheduled_for < now - max_lateness():
        _finish(delivery, DeliveryStatus.EXPIRED, reason="late")
        return DeliveryStatus.EXPIRED
    if in_quiet_hours(now.astimezone(patient.tz).time(), patient.quiet_hours_start, patient.quiet_hours_end):
        _finish(delivery, DeliveryStatus.SKIPPED, reason="quiet_hours")
        return DeliveryStatus.SKIPPED
    outcome = None
    if push.push_configured():
        subscriptions = list(PushSubscription.objects.filter(patient=patient))
        if subscriptions:
            outcome = push.push_send(subscriptions, {"type": "reminder", "delivery": str(delivery.pk)})
            if outcome.delivered:
                _finish(delivery, DeliveryStatus.SENT, channel="push")
                return DeliveryStatus.SENT
    address = _email_of(patient)
    try:
        if address and (outcome is None or not outcome.transient or final_attempt):
            push.email_send(address)
            _finish(delivery, DeliveryStatus.SENT, channel="email")
            return DeliveryStatus.SENT
        if outcome is not None and outcome.transient and not final_attempt:
            raise push.TransientDeliveryError("push service unavailable")
    except push.TransientDeliveryError:
        if final_attempt:
            _finish(delivery, DeliveryStatus.FAILED, reason="channels_unavailable")
            return DeliveryStatus.FAILED
        ReminderDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, claimed_at=None, attempts=delivery.attempts + 1
        )
        raise
    _finish(delivery, DeliveryStatus.FAILED, reason="no_channel")
    return DeliveryStatus.FAILED


# --- Delivery of a chunk ------------------------------------------------------------------------------


@dataclass
class ChunkResult:
    """What became of a chunk's deliveries. `retry`: released after a transient failure of
    every channel, for the task to retry with backoff; `in_progress`: claimed moments ago by
    another run (a worker that died mid-send), left to the sweep once the claim times out;
    `errors`: failed unexpectedly and left claimed, so the sweep retakes them the same way."""

    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    retry: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def reminder_deliver_chunk(
    *, delivery_ids: list[str], now: datetime | None = None, final_attempt: bool = False
) -> ChunkResult:
    """Deliver each of a chunk's deliveries with `reminder_deliver`, one after another.

    Each delivery is claimed on its own (one UPDATE), so a chunk run twice (its worker died
    midway and the message came back) skips what was sent and sends the rest; the delivery
    being sent at the moment of death stays claimed and is requeued by the sweep. One
    delivery's failure does not stop the others; a database or broker outage does (the task
    retries the chunk, and the claims make that safe).
    """
    from core.tasks import CONNECTION_ERRORS

    result = ChunkResult()
    for delivery_id in delivery_ids:
        try:
            status = reminder_deliver(delivery_id=delivery_id, now=now, final_attempt=final_attempt)
        except push.TransientDeliveryError:
            result.retry.append(delivery_id)
            status = "retry"
        except DeliveryInProgress:
            result.in_progress.append(delivery_id)
            status = "in_progress"
        except CONNECTION_ERRORS:
            raise
        except Exception:  # a defect in one delivery must not strand the rest of the chunk
            logger.exception("Reminder delivery %s failed", delivery_id)
            result.errors.append(delivery_id)
            status = "error"
        result.statuses[status] += 1
    return result
