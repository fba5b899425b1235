"""Reads for the patient record. Each returns in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.db.models import F, QuerySet

from patients import scores
from patients.models import (
    DiaryEntry,
    DoseLog,
    DoseStatus,
    FrequencyKind,
    Medication,
    Patient,
    Prescription,
    PushSubscription,
    QuestionnaireResponse,
    Reminder,
    ReminderDelivery,
)

MAX_DIARY_RANGE_DAYS = 366


def patient_for_user(*, user_id: uuid.UUID) -> Patient | None:
    return Patient.objects.filter(user_id=user_id).first()


def diary_entries(*, patient: Patient, start: date, end: date) -> QuerySet[DiaryEntry]:
    return DiaryEntry.objects.filter(
        patient=patient, day__gte=start, day__lte=end, deleted_at__isnull=True
    ).order_by("day", "slot")


def day_scores_from(entries: list[DiaryEntry]) -> dict[date, scores.DayScore]:
    by_day: dict[date, list[scores.HalfDay]] = defaultdict(list)
    for entry in entries:
        by_day[entry.day].append(scores.HalfDay(entry.slot, entry.wheals, entry.itch))  # type: ignore[arg-type]
    return {day: score for day, records in by_day.items() if (score := scores.daily_uas(records))}


def aas_per_day_from(entries: list[DiaryEntry]) -> dict[date, int]:
    """Per local date, the highest half-day AAS (angioedema is a per-day event)."""
    per_day: dict[date, int] = {}
    for entry in entries:
        value = scores.aas_day(entry.angioedema, entry.aas_items)
        per_day[entry.day] = max(per_day.get(entry.day, 0), value)
    return per_day


def uas7_history(*, patient: Patient, end: date, weeks: int) -> list[scores.Uas7]:
    start = end - timedelta(days=7 * weeks - 1)
    entries = list(diary_entries(patient=patient, start=start, end=end).only("day", "slot", "wheals", "itch"))
    return scores.uas7_weeks(day_scores_from(entries), end, weeks)


def prescriptions_overlapping(*, patient: Patient, start: date, end: date) -> list[Prescription]:
    return list(
        Prescription.objects.filter(patient=patient, start__lte=end)
        .exclude(end__lt=start)
        .select_related("medication")
        .order_by("start", "created_at")
    )


def medication_catalogue() -> QuerySet[Medication]:
    """The regimen catalogue a prescription names, in the guideline's order: step 1 first, drugs
    without a step (newer drugs, rescue courses) after the stepped ones, then by name."""
    return Medication.objects.order_by(F("guideline_step").asc(nulls_last=True), "is_rescue", "name")


def prescription_get(*, prescription_id: uuid.UUID | str) -> Prescription | None:
    return Prescription.objects.filter(pk=prescription_id).first()


def prescriptions_of(*, patient: Patient) -> QuerySet[Prescription]:
    """All the patient's prescriptions, stopped ones included, the latest started first."""
    return Prescription.objects.filter(patient=patient).order_by("-start", "-created_at")


def questionnaire_responses(*, patient: Patient, limit: int = 200) -> QuerySet[QuestionnaireResponse]:
    """Live questionnaire results, newest first."""
    return QuestionnaireResponse.objects.filter(patient=patient, deleted_at__isnull=True).order_by(
        "-period_end", "-recorded_at"
    )[:limit]


def uct_responses(*, patient: Patient, limit: int = 100) -> QuerySet[QuestionnaireResponse]:
    """Live UCT and UCT7 results, newest first."""
    return QuestionnaireResponse.objects.filter(
        patient=patient, instrument__in=["uct", "uct7"], deleted_at__isnull=True
    ).order_by("-period_end", "-recorded_at")[:limit]


def doses_due(rx: Prescription, today: date, last_taken: date | None) -> int:
    """How many doses of a prescription are due on the local date `today`: its daily count; for
    an every-n-days drug, one when n days have passed since the last dose taken (or none was);
    none for a drug taken as needed."""
    if rx.frequency_kind == FrequencyKind.N_PER_DAY:
        return rx.frequency_value or 0
    if rx.frequency_kind == FrequencyKind.EVERY_N_DAYS:
        if last_taken is None:
            return 1
        return 1 if (today - last_taken).days >= (rx.frequency_value or 1) else 0
    return 0


MEDICATION_FIELDS = (
    "id",
    "medication_id",
    "medication",
    "dose",
    "frequency_kind",
    "frequency_value",
    "guideline_step",
    "start",
    "end",
)


def medications_today(*, patient: Patient) -> list[dict[str, Any]]:
    """The current prescriptions on the patient's local today, each with the doses due today
    and the doses already logged for today."""
    today = patient.local_today()
    current = prescriptions_overlapping(patient=patient, start=today, end=today)
    logged: dict[uuid.UUID, list[DoseLog]] = {}
    for dose in DoseLog.objects.filter(patient=patient, scheduled_date=today).order_by("created_at"):
        logged.setdefault(dose.prescription_id, []).append(dose)
    last_taken = dict(
        DoseLog.objects.filter(patient=patient, status=DoseStatus.TAKEN, prescription__in=current)
        .order_by("prescription_id", "-scheduled_date")
        .distinct("prescription_id")
        .values_list("prescription_id", "scheduled_date")
    )
    return [
        {
            **{field: getattr(rx, field) for field in MEDICATION_FIELDS},
            "due_today": doses_due(rx, today, last_taken.get(rx.pk)),
            "logged_today": logged.get(rx.pk, []),
        }
        for rx in current
    ]


def reminders_of(*, patient: Patient) -> QuerySet[Reminder]:
    return Reminder.objects.filter(patient=patient, deleted_at__isnull=True).order_by(
        "local_time", "created_at"
    )


def recent_reminder_deliveries(*, patient: Patient, limit: int = 100) -> QuerySet[ReminderDelivery]:
    return ReminderDelivery.objects.filter(patient=patient).order_by("-scheduled_for")[:limit]


def push_subscriptions_of(*, patient: Patient) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(patient=patient).order_by("created_at")
