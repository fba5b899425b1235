"""The per-patient summary row (`PatientSummary`): loaded from the records, computed by
`scores.patient_summary` (the only place its rules live), stored one row per patient.

Freshness (DESIGN §5):
- Every write that changes a patient's summary refreshes the row in its own transaction
  (`services.patient_changed`; a sync push once per push).
- A row is valid for one local date. When the patient's date rolls over, the clinic's
  `patients.summaries_roll` task (every 15 minutes) recomputes the rows whose `stale_after` has
  passed.
- A row of another day is never shown: the patient's own pages read the row's `page` when it
  is of the patient's today, and otherwise compute their summary afresh in memory
  (`summary_page`, no write); before the portal list is read, up to
  `READ_REFRESH_LIMIT` stale rows are recomputed (a write, like the read's access log) and any
  more are left out of the list and counted as `pending` while the roll task catches up
  (`summaries_refresh_stale`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone

from patients import scores
from patients.models import (
    DiaryEntry,
    DoseLog,
    DoseStatus,
    FrequencyKind,
    Instrument,
    Patient,
    PatientSummary,
    Prescription,
    QuestionnaireResponse,
)

# The history a summary needs: the current and previous week (14 days) and the 28-day window,
# counted back from a week end that may be yesterday.
HISTORY_DAYS = 7 + scores.WINDOW_DAYS
ROLL_BATCH = 200  # each batch holds its patients' write locks while it computes
ALERTS_EVALUATE_TASK = "clinicians.alerts_evaluate"  # by name: patients does not import clinicians
STREAK_DAYS = 366  # the patient's own page shows a diary streak up to a year
STORED_FIELDS = [
    f.name for f in PatientSummary._meta.concrete_fields if f.name not in ("patient", "open_alerts")
]


def thresholds_of(clinic: Any) -> scores.Thresholds:
    """The clinic's alert settings (defaults where the schema has no clinic, e.g. public)."""
    default = scores.Thresholds()
    return scores.Thresholds(
        severe_uas7=int(getattr(clinic, "alert_severe_uas7", default.severe_uas7)),
        mid=float(getattr(clinic, "alert_uas7_rise", default.mid)),
        uct_below=int(getattr(clinic, "alert_uct_below", default.uct_below)),
        diary_gap_days=int(getattr(clinic, "alert_diary_gap_days", default.diary_gap_days)),
        pdc_below=float(getattr(clinic, "alert_pdc_below", default.pdc_below)),
    )


def current_thresholds() -> scores.Thresholds:
    return thresholds_of(getattr(connection, "tenant", None))


def next_midnight(patient: Patient, today: date) -> datetime:
    """The instant the patient's local `today` ends (a day starting in a DST gap starts at the
    transition)."""
    return datetime.combine(today + timedelta(days=1), time(0), tzinfo=patient.tz)


def first_day(patient: Patient) -> date:
    """The patient's first local day: no completion or adherence window starts before it."""
    return patient.local_today(patient.enrolled_at)


def regimen_of(rx: Prescription) -> scores.Regimen:
    return scores.Regimen(
        key=str(rx.pk),
        frequency_kind=rx.frequency_kind,  # type: ignore[arg-type]
        frequency_value=rx.frequency_value,
        start=rx.start,
        end=rx.end,
        # A step up or down (cetirizine 10 mg → 4 × 10 mg) is the same medication: the drug.
        medication=rx.medication.drug,
    )


def diary_start(today: dict[uuid.UUID, date], diary_days: int) -> date:
    """The first day of diary `histories_load` reads for patients whose dates are `today`."""
    return min(today.values()) - timedelta(days=max(diary_days, HISTORY_DAYS))


def histories_load(
    patients: Sequence[Patient], today: dict[uuid.UUID, date], *, diary_days: int = HISTORY_DAYS
) -> dict[uuid.UUID, scores.History]:
    """The history of each patient up to their `today`, in six queries whatever their number
    (`diary_days` of diary: more only for a streak longer than the summary needs)."""
    if not patients:
        return {}
    ids = [p.pk for p in patients]
    latest = max(today.values())
    earliest = min(today.values()) - timedelta(days=HISTORY_DAYS)
    diary_from = diary_start(today, diary_days)
    by_day: dict[uuid.UUID, dict[date, list[scores.HalfDay]]] = defaultdict(lambda: defaultdict(list))
    for pid, day, slot, wheals, itch in DiaryEntry.objects.filter(
        patient_id__in=ids, deleted_at__isnull=True, day__gte=diary_from, day__lte=latest
    ).values_list("patient_id", "day", "slot", "wheals", "itch"):
        if day <= today[pid]:
            by_day[pid][day].append(scores.HalfDay(slot, wheals, itch))  # type: ignore[arg-type]
    last_entry = dict(
        DiaryEntry.objects.filter(patient_id__in=ids, deleted_at__isnull=True)
        .values("patient_id")
        .annotate(last=Max("day"))
        .values_list("patient_id", "last")
    )
    uct: dict[uuid.UUID, dict[uuid.UUID, tuple[date, datetime, scores.UctResult]]] = defaultdict(dict)
    instruments = [Instrument.UCT, Instrument.UCT7]
    recent = QuestionnaireResponse.objects.filter(
        patient_id__in=ids, instrument__in=instruments, deleted_at__isnull=True, period_end__gte=earliest
    )
    newest = (
        QuestionnaireResponse.objects.filter(
            patient_id__in=ids, instrument__in=instruments, deleted_at__isnull=True, period_end__lte=latest
        )
        .order_by("patient_id", "-period_end", "-recorded_at")
        .distinct("patient_id")
    )
    for response in [*recent, *newest]:
        if response.period_end <= today[response.patient_id]:
            uct[response.patient_id][response.pk] = (
                response.period_end,
                response.recorded_at,
                scores.UctResult(response.instrument, response.score, response.period_end),
            )
    prescriptions: dict[uuid.UUID, list[Prescription]] = defaultdict(list)
    # Every prescription: few per patient, and an earlier one of the same drug may still carry
    # injection supply into the window.
    for rx in Prescription.objects.select_related("medication").filter(patient_id__in=ids, start__lte=latest):
        prescriptions[rx.patient_id].append(rx)
    rx_ids = [rx.pk for group in prescriptions.values() for rx in group]
    taken: dict[str, list[date]] = defaultdict(list)
    if rx_ids:
        # Injections count from the prescription's start (DESIGN §5); daily drugs need the window.
        for rx_id, day in (
            DoseLog.objects.filter(prescription_id__in=rx_ids, status=DoseStatus.TAKEN)
            .filter(
                Q(prescription__frequency_kind=FrequencyKind.EVERY_N_DAYS) | Q(scheduled_date__gte=earliest)
            )
            .values_list("prescription_id", "scheduled_date")
        ):
            taken[str(rx_id)].append(day)
    histories = {}
    for patient in patients:
        days = by_day.get(patient.pk, {})
        results = sorted(uct.get(patient.pk, {}).values(), key=lambda item: (item[0], item[1]))
        histories[patient.pk] = scores.History(
            first_day=first_day(patient),
            day_scores={day: s for day, records in days.items() if (s := scores.daily_uas(records))},
            last_entry=last_entry.get(patient.pk),
            uct=[result for _, _, result in results],
            regimens=[regimen_of(rx) for rx in prescriptions.get(patient.pk, [])],
            taken={str(rx.pk): taken.get(str(rx.pk), []) for rx in prescriptions.get(patient.pk, [])},
            has_account=patient.user_id is not None,
        )
    return histories


def _decimal(value: float | int | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# Bumped whenever the page's shape or rules change: rows stored by an earlier release are then
# computed afresh until their next write or roll, never served in the old shape.
PAGE_VERSION = 1
_PAGE_META = ("streak_capped", "page_version")


def page_of(summary: scores.PatientSummary, *, streak_capped: bool) -> dict[str, Any]:
    """The summary as the patient's page shows it (patients.api.serializers.summary_body), in
    JSON, without the open-alert count (kept apart by the alerts): stored with the row so that
    the page reads it back instead of recomputing it (issue 19). `streak_capped`: the streak ran
    into the first day of the history loaded, so it may be longer than counted."""
    from patients.api.serializers import SummarySerializer, summary_body

    page = dict(SummarySerializer(summary_body(summary, 0)).data)
    page.pop("open_alerts", None)
    page["streak_capped"] = streak_capped
    page["page_version"] = PAGE_VERSION
    return page


def row_from(
    patient: Patient, summary: scores.PatientSummary, now: datetime, *, streak_capped: bool = True
) -> PatientSummary:
    """The model row for a computed summary (unsaved)."""
    return PatientSummary(
        page=page_of(summary, streak_capped=streak_capped),
        patient=patient,
        valid_for=summary.valid_for,
        stale_after=next_midnight(patient, summary.valid_for),
        computed_at=now,
        week_end=summary.week_end,
        uas7=_decimal(summary.current.uas7),
        uas7_method=summary.current.method,
        uas7_days=summary.current.days_observed,
        band=summary.current.band,
        previous_uas7=_decimal(summary.previous.uas7),
        previous_method=summary.previous.method,
        previous_days=summary.previous.days_observed,
        uas7_change=_decimal(summary.change.delta),
        exceeds_mid=summary.change.exceeds_mid,
        uct=summary.uct.score if summary.uct else None,
        uct_instrument=summary.uct.instrument if summary.uct else "",
        uct_date=summary.uct.period_end if summary.uct else None,
        last_uct=summary.last_uct.score if summary.last_uct else None,
        last_uct_instrument=summary.last_uct.instrument if summary.last_uct else "",
        last_uct_date=summary.last_uct.period_end if summary.last_uct else None,
        days_recorded=summary.days_recorded,
        days_eligible=summary.days_eligible,
        diary_completion=_decimal(summary.diary_completion),
        adherence=[adherence_json(a) for a in summary.adherence],
        lowest_pdc=_decimal(summary.lowest_pdc),
        last_entry=summary.last_entry,
        diary_gap=summary.diary_gap,
    )


def uct_json(result: scores.UctResult | None) -> dict[str, Any] | None:
    """A UCT result as the summary's readers show it (score, instrument, category, date)."""
    if result is None:
        return None
    return {
        "score": result.score,
        "instrument": result.instrument,
        "category": scores.uct_category(result.score),
        "period_end": result.period_end.isoformat(),
    }


def adherence_json(a: scores.MedicationAdherence) -> dict[str, Any]:
    return {
        "medication": a.medication,
        "frequency_kind": a.frequency_kind,
        "status": a.status,
        "eligible_days": a.eligible_days,
        "covered_days": a.covered_days,
        "pdc": a.pdc,
        "adherent": a.adherent,
        "dose_ratio": a.dose_ratio,
        "doses_due": a.doses_due,
        "doses_on_time": a.doses_on_time,
        "on_time_rate": a.on_time_rate,
    }


def summaries_compute(
    patients: Sequence[Patient],
    *,
    now: datetime | None = None,
    thresholds: scores.Thresholds | None = None,
    diary_days: int = HISTORY_DAYS,
) -> dict[uuid.UUID, tuple[scores.PatientSummary, PatientSummary]]:
    """The summaries of these patients as of `now`, computed and not stored: the pure result
    and its row."""
    now = now or timezone.now()
    thresholds = thresholds or current_thresholds()
    today = {p.pk: p.local_today(now) for p in patients}
    histories = histories_load(patients, today, diary_days=diary_days)
    diary_from = diary_start(today, diary_days)
    computed = {}
    for patient in patients:
        summary = scores.patient_summary(histories[patient.pk], today[patient.pk], thresholds)
        capped = summary.streak > 0 and summary.week_end - timedelta(days=summary.streak - 1) <= diary_from
        computed[patient.pk] = (summary, row_from(patient, summary, now, streak_capped=capped))
    return computed


def _lock(patient_ids: Iterable[uuid.UUID]) -> None:
    """The patients' write locks (services.patient_write_lock), in one order: a refresh waits for
    a write in flight and then sees it, so two refreshes never store an older view last."""
    keys = sorted(f"patient-write:{pid}" for pid in patient_ids)
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) AS k ORDER BY k",
                [keys],
            )


def summaries_refresh(
    patient_ids: Iterable[uuid.UUID], *, now: datetime | None = None
) -> dict[uuid.UUID, scores.PatientSummary]:
    """Recompute and store the rows of these patients (in the caller's transaction); returns
    what was stored. The open-alert count is the alerts' to keep (`summary_open_alerts_set`)."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    _lock(ids)
    patients = list(Patient.objects.filter(pk__in=ids))
    computed = summaries_compute(patients, now=now)
    PatientSummary.objects.bulk_create(
        [row for _, row in computed.values()],
        update_conflicts=True,
        unique_fields=["patient"],
        update_fields=STORED_FIELDS,
    )
    return {pid: summary for pid, (summary, _) in computed.items()}


def summary_page(patient: Patient, *, now: datetime | None = None) -> dict[str, Any]:
    """What the patient's page (and the portal's patient page) shows: the stored row's page
    when the row is of the patient's today and its streak was counted whole (one query),
    otherwise computed afresh in memory (`summary_get`; a read writes nothing).

    The row is the single truth the portal list, the alerts and the reports already read, kept
    current by every write in its own transaction and rolled at the patient's midnight, so the
    page and the list can never disagree."""
    now = now or timezone.now()
    row = PatientSummary.objects.filter(patient=patient).only("valid_for", "page", "open_alerts").first()
    if (
        row is not None
        and row.valid_for == patient.local_today(now)
        and row.page.get("page_version") == PAGE_VERSION
        and not row.page.get("streak_capped", True)
    ):
        page = {key: value for key, value in row.page.items() if key not in _PAGE_META}
        return {**page, "open_alerts": row.open_alerts}
    from patients.api.serializers import SummarySerializer, summary_body

    summary, live = summary_get(patient, now=now, open_alerts=row.open_alerts if row is not None else 0)
    return dict(SummarySerializer(summary_body(summary, live.open_alerts)).data)


def summary_get(
    patient: Patient, *, now: datetime | None = None, open_alerts: int | None = None
) -> tuple[scores.PatientSummary, PatientSummary]:
    """A patient's summary for their today, with its row: computed afresh in memory (a read
    writes nothing); the open-alert count is the stored one."""
    summary, row = summaries_compute([patient], now=now, diary_days=STREAK_DAYS)[patient.pk]
    if open_alerts is None:
        open_alerts = (
            PatientSummary.objects.filter(patient=patient).values_list("open_alerts", flat=True).first() or 0
        )
    row.open_alerts = open_alerts
    return summary, row


def summaries_roll(*, now: datetime | None = None, batch: int = ROLL_BATCH) -> int:
    """Recompute the rows whose local date has ended (and rows never computed), in batches of
    `batch` patients, each batch in its own transaction, and queue the alert evaluation of each
    patient rolled (a new day alone can open or clear an alert: a diary gap, a UCT past its
    recall). Rows another roll is computing are skipped, not waited for. Returns how many were
    refreshed."""
    from django.db import transaction

    from core.outbox import outbox_enqueue_many

    now = now or timezone.now()
    refreshed = 0
    while True:
        with transaction.atomic():
            ids = list(
                PatientSummary.objects.select_for_update(skip_locked=True)
                .filter(stale_after__lte=now)
                .order_by("stale_after")
                .values_list("patient_id", flat=True)[:batch]
            )
            if not ids:
                return refreshed
            rolled = summaries_refresh(ids, now=now)
            outbox_enqueue_many(ALERTS_EVALUATE_TASK, [{"patient_id": str(pid)} for pid in sorted(rolled)])
            refreshed += len(rolled)


READ_REFRESH_LIMIT = 100
ROLL_TASK = "patients.summaries_roll"


def summaries_refresh_stale(*, limit: int | None = None) -> int:
    """Before the portal list is read: recompute up to `limit` rows whose local date has ended
    (a patient created outside the services, a roll not run yet), so a handful never waits for
    the roll task. More than that — a whole time zone just past midnight — is the roll task's
    job: it is queued, and the list leaves those rows out and says how many (returned here)."""
    limit = READ_REFRESH_LIMIT if limit is None else limit
    now = timezone.now()
    ids = list(
        PatientSummary.objects.filter(stale_after__lte=now)
        .order_by("stale_after")
        .values_list("patient_id", flat=True)[: limit + 1]
    )
    if not ids:
        return 0
    summaries_refresh(ids[:limit], now=now)
    if len(ids) <= limit:
        return 0
    from core.outbox import outbox_enqueue

    outbox_enqueue(ROLL_TASK)
    return PatientSummary.objects.filter(stale_after__lte=now).count()


def summary_open_alerts_set(*, patient_id: uuid.UUID, open_alerts: int) -> None:
    """The alerts' count of open (not yet acknowledged) alerts, kept on the row."""
    PatientSummary.objects.filter(patient_id=patient_id).update(open_alerts=open_alerts)
