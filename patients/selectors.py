"""Reads for the patient record. Each returns in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import QuerySet

from patients import scores
from patients.models import (
    DiaryEntry,
    DoseLog,
    DoseStatus,
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


def adherence_for(*, patient: Patient, start: date, end: date) -> list[tuple[Prescription, scores.Adherence]]:
    """PDC per prescription over [start, end], in two queries."""
    return adherence_by_patient(patient_ids=[patient.pk], start=start, end=end).get(patient.pk, [])


def adherence_by_patient(
    *, patient_ids: list[uuid.UUID], start: date, end: date
) -> dict[uuid.UUID, list[tuple[Prescription, scores.Adherence]]]:
    """PDC per prescription over [start, end] for many patients, in two queries."""
    prescriptions = list(
        Prescription.objects.filter(patient_id__in=patient_ids, start__lte=end)
        .exclude(end__lt=start)
        .select_related("medication")
        .order_by("start", "created_at")
    )
    lookback = start - timedelta(days=60)  # injections taken before the period still cover days in it
    taken: dict[uuid.UUID, list[date]] = defaultdict(list)
    for prescription_id, day in DoseLog.objects.filter(
        patient_id__in=patient_ids,
        status=DoseStatus.TAKEN,
        scheduled_date__gte=lookback,
        scheduled_date__lte=end,
    ).values_list("prescription_id", "scheduled_date"):
        taken[prescription_id].append(day)
    result: dict[uuid.UUID, list[tuple[Prescription, scores.Adherence]]] = defaultdict(list)
    for rx in prescriptions:
        result[rx.patient_id].append((rx, scores.adherence(_regimen(rx), taken.get(rx.pk, []), start, end)))
    return result


def _regimen(rx: Prescription) -> scores.Regimen:
    return scores.Regimen(
        key=str(rx.pk),
        frequency_kind=rx.frequency_kind,  # type: ignore[arg-type]
        frequency_value=rx.frequency_value,
        start=rx.start,
        end=rx.end,
    )


def last_questionnaire(*, patient: Patient, instrument: str) -> QuestionnaireResponse | None:
    return (
        QuestionnaireResponse.objects.filter(patient=patient, instrument=instrument, deleted_at__isnull=True)
        .order_by("-period_end", "-recorded_at")
        .first()
    )


@dataclass(frozen=True)
class Summary:
    today: date
    current: scores.Uas7
    previous: scores.Uas7
    change: scores.Change
    last_uct: QuestionnaireResponse | None
    adherence: list[tuple[Prescription, scores.Adherence]]
    streak: int
    missing_last_7: int


def patient_summary(*, patient: Patient, today: date | None = None) -> Summary:
    """Current UAS7 (the 7 local dates ending today), change vs the week before, last UCT,
    28-day PDC per prescription, diary streak and days missing in the last 7. Five queries,
    whatever the amount of data."""
    today = today or patient.local_today()
    entries = list(
        DiaryEntry.objects.filter(
            patient=patient, deleted_at__isnull=True, day__lte=today, day__gte=today - timedelta(days=365)
        )
        .only("day", "slot", "wheals", "itch")
        .order_by("-day")
    )
    day_scores = day_scores_from(entries)
    current = scores.uas7_for_week(day_scores, today)
    previous = scores.uas7_for_week(day_scores, today - timedelta(days=7))
    recorded = set(day_scores)
    # The streak counts back from today, or from yesterday when today is not recorded yet.
    cursor = today if today in recorded else today - timedelta(days=1)
    streak = 0
    while cursor in recorded:
        streak += 1
        cursor -= timedelta(days=1)
    missing = sum(1 for i in range(7) if today - timedelta(days=i) not in recorded)
    return Summary(
        today=today,
        current=current,
        previous=previous,
        change=scores.uas7_change(current.uas7, previous.uas7),
        last_uct=last_questionnaire(patient=patient, instrument="uct"),
        adherence=adherence_for(patient=patient, start=today - timedelta(days=27), end=today),
        streak=streak,
        missing_last_7=missing,
    )


def reminders_of(*, patient: Patient) -> QuerySet[Reminder]:
    return Reminder.objects.filter(patient=patient, deleted_at__isnull=True).order_by(
        "local_time", "created_at"
    )


def recent_reminder_deliveries(*, patient: Patient, limit: int = 100) -> QuerySet[ReminderDelivery]:
    return ReminderDelivery.objects.filter(patient=patient).order_by("-scheduled_for")[:limit]


def push_subscriptions_of(*, patient: Patient) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(patient=patient).order_by("created_at")
