"""Reads for the patient record. Each returns in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta

from django.db.models import QuerySet

from patients import scores
from patients.models import (
    DiaryEntry,
    Patient,
    Prescription,
    PushSubscription,
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


def reminders_of(*, patient: Patient) -> QuerySet[Reminder]:
    return Reminder.objects.filter(patient=patient, deleted_at__isnull=True).order_by(
        "local_time", "created_at"
    )


def recent_reminder_deliveries(*, patient: Patient, limit: int = 100) -> QuerySet[ReminderDelivery]:
    return ReminderDelivery.objects.filter(patient=patient).order_by("-scheduled_for")[:limit]


def push_subscriptions_of(*, patient: Patient) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(patient=patient).order_by("created_at")
