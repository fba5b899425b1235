"""Weekly adherence reports: per patient (UAS7 over 12 weeks, diary completion, UCT, PDC per
prescription, open alerts) and per clinic (patients by UAS7 band, adherence distribution).

The JSON is the report; the PNG chart and the CSV are renderings of it, so the three always
agree (the CSV parses back to the JSON's numbers).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from clinicians.models import Alert, Report, ReportKind, ReportStatus
from core.errors import ApplicationError
from core.outbox import outbox_enqueue, outbox_enqueue_many
from patients import scores, selectors
from patients.models import Patient, PatientStatus

GENERATE_TASK = "clinicians.report_generate"
WEEKS = 12
CHART_SIZE = (720, 360)
BAND_COLOURS = {
    "urticaria_free": (46, 125, 50),
    "well_controlled": (124, 179, 66),
    "mild": (253, 216, 53),
    "moderate": (251, 140, 0),
    "severe": (211, 47, 47),
    None: (189, 189, 189),
}
BAND_THRESHOLDS = (7, 16, 28)  # lower bounds of mild, moderate, severe (Stull et al. 2017)
UAS7_MAX = 42


def week_start_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def last_complete_week(today: date) -> date:
    """Monday of the most recent Monday–Sunday week that has ended before `today`."""
    return week_start_of(today) - timedelta(days=7)


def check_week(week_start: date, today: date) -> None:
    if week_start.weekday() != 0:
        raise ApplicationError(
            code="validation_error", field="week_start", detail="A week starts on a Monday."
        )
    if week_start + timedelta(days=6) >= today:
        raise ApplicationError(
            code="report_week_incomplete", field="week_start", detail="Reports cover weeks that have ended."
        )


# --- Requesting ----------------------------------------------------------------------------------


def report_request(
    *, patient: Patient | None, week_start: date, requested_by: uuid.UUID | None = None
) -> tuple[Report, bool]:
    """The report for (kind, patient, week), created pending and queued through the outbox when
    new (idempotent: a second request returns the first report)."""
    kind = ReportKind.PATIENT_WEEKLY if patient is not None else ReportKind.CLINIC_WEEKLY
    existing = Report.objects.filter(kind=kind, patient=patient, week_start=week_start).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            report = Report.objects.create(
                kind=kind,
                patient=patient,
                week_start=week_start,
                requested_by=requested_by,
                enqueued_at=timezone.now(),
            )
            outbox_enqueue(GENERATE_TASK, report_id=str(report.pk))
    except IntegrityError:  # a concurrent request created it first
        return Report.objects.get(kind=kind, patient=patient, week_start=week_start), False
    return report, True


REQUEUE_AFTER = timedelta(minutes=30)


def reports_request_weekly(*, week_start: date, now: datetime | None = None) -> int:
    """This clinic's weekly reports: one per active patient and the clinic summary. Safe to run
    every hour: existing reports are kept, pending ones not picked up for 30 minutes requeued."""
    now = now or timezone.now()
    with transaction.atomic():
        patient_ids = list(Patient.objects.filter(status=PatientStatus.ACTIVE).values_list("pk", flat=True))
        Report.objects.bulk_create(
            [
                Report(kind=ReportKind.PATIENT_WEEKLY, patient_id=pid, week_start=week_start)
                for pid in patient_ids
            ]
            + [Report(kind=ReportKind.CLINIC_WEEKLY, patient=None, week_start=week_start)],
            ignore_conflicts=True,
        )
        stale = list(
            Report.objects.select_for_update(skip_locked=True)
            .filter(week_start=week_start, status=ReportStatus.PENDING)
            .exclude(enqueued_at__gt=now - REQUEUE_AFTER)
            .values_list("pk", flat=True)
        )
        Report.objects.filter(pk__in=stale).update(enqueued_at=now)
        outbox_enqueue_many(GENERATE_TASK, [{"report_id": str(pk)} for pk in stale])
    return len(stale)


WEEKLY_REPORT_HOUR = 6  # Monday 06:00 in the clinic's timezone


def clinics_due_weekly_reports(*, now: datetime | None = None) -> list[tuple[Any, date]]:
    """(clinic, week_start) for every active clinic where it is now Monday, 06:00 or later."""
    import zoneinfo

    from tenants.models import Clinic, ClinicStatus

    now = now or timezone.now()
    due = []
    for clinic in Clinic.objects.filter(status=ClinicStatus.ACTIVE).only("schema_name", "timezone", "slug"):
        local = now.astimezone(zoneinfo.ZoneInfo(clinic.timezone))
        if local.isoweekday() == 1 and local.hour >= WEEKLY_REPORT_HOUR:
            due.append((clinic, last_complete_week(local.date())))
    return due


# --- Generating ----------------------------------------------------------------------------------


def report_generate(*, report_id: uuid.UUID | str) -> str:
    """Build the report's JSON, chart and CSV. The row lock serialises concurrent runs (a task
    redelivered after its worker died); a ready report is left as is."""
    with transaction.atomic():
        report = (
            Report.objects.select_for_update(of=("self",))
            .select_related("patient")
            .filter(pk=report_id)
            .first()
        )
        if report is None:
            return "missing"
        if report.status == ReportStatus.READY:
            return "already_ready"
        if report.kind == ReportKind.PATIENT_WEEKLY:
            assert report.patient is not None
            report.data = patient_report_data(patient=report.patient, week_start=report.week_start)
        else:
            report.data = clinic_report_data(week_start=report.week_start)
        report.chart_png = chart_png(report.data) if report.kind == ReportKind.PATIENT_WEEKLY else None
        report.csv = report_csv(report.data)
        report.status = ReportStatus.READY
        report.generated_at = timezone.now()
        report.error = ""
        report.save()
    return ReportStatus.READY


def patient_report_data(*, patient: Patient, week_start: date) -> dict[str, Any]:
    end = week_start + timedelta(days=6)
    entries = list(
        selectors.diary_entries(patient=patient, start=end - timedelta(days=7 * WEEKS - 1), end=end).only(
            "day", "slot", "wheals", "itch"
        )
    )
    day_scores = selectors.day_scores_from(entries)
    weeks = scores.uas7_weeks(day_scores, end, WEEKS)
    recorded_7 = sum(1 for d in day_scores if week_start <= d <= end)
    recorded_28 = sum(1 for d in day_scores if end - timedelta(days=27) <= d <= end)
    uct = (
        patient.questionnaires.filter(instrument="uct", deleted_at__isnull=True, period_end__lte=end)
        .order_by("-period_end", "-recorded_at")
        .first()
    )
    adherence = selectors.adherence_for(patient=patient, start=end - timedelta(days=27), end=end)
    alerts = Alert.objects.filter(patient=patient, resolved_at__isnull=True).order_by("opened_at")
    return {
        "kind": ReportKind.PATIENT_WEEKLY,
        "patient": str(patient.pk),
        "week_start": week_start.isoformat(),
        "week_end": end.isoformat(),
        "uas7_weeks": [
            {
                "week_start": w.start.isoformat(),
                "week_end": w.end.isoformat(),
                "uas7": w.uas7,
                "band": w.band,
                "method": w.method,
                "days_observed": w.days_observed,
            }
            for w in weeks
        ],
        "diary_completion": {
            "days_recorded_7d": recorded_7,
            "completion_7d": round(recorded_7 / 7, 4),
            "days_recorded_28d": recorded_28,
            "completion_28d": round(recorded_28 / 28, 4),
        },
        "uct": None
        if uct is None
        else {
            "score": uct.score,
            "category": scores.uct_category(uct.score),
            "period_end": uct.period_end.isoformat(),
        },
        "adherence": [
            {
                "prescription": str(rx.pk),
                "medication": rx.medication.name,
                "frequency_kind": rx.frequency_kind,
                "eligible_days": a.eligible_days,
                "covered_days": a.covered_days,
                "pdc_28d": a.pdc,
                "dose_ratio": a.dose_ratio,
                "adherent": a.adherent,
            }
            for rx, a in adherence
        ],
        "open_alerts": [
            {"id": str(alert.pk), "kind": alert.kind, "opened_at": alert.opened_at.isoformat()}
            for alert in alerts
        ],
    }


def _adherence_bucket(pdc: float | None) -> str:
    if pdc is None:
        return "no_scheduled_medication"
    if pdc < 0.5:
        return "pdc_below_50"
    if pdc < scores.ADHERENT_PDC:
        return "pdc_50_to_79"
    return "pdc_80_plus"


def clinic_report_data(*, week_start: date) -> dict[str, Any]:
    """Patients by UAS7 band for the week and by 28-day PDC (lowest regimen), active patients."""
    end = week_start + timedelta(days=6)
    bands: Counter[str] = Counter()
    adherence: Counter[str] = Counter()
    completion: Counter[str] = Counter()
    patients = list(Patient.objects.filter(status=PatientStatus.ACTIVE).only("id"))
    for patient in patients:
        entries = list(
            selectors.diary_entries(patient=patient, start=end - timedelta(days=27), end=end).only(
                "day", "slot", "wheals", "itch"
            )
        )
        day_scores = selectors.day_scores_from(entries)
        week = scores.uas7_for_week(day_scores, end)
        bands[week.band or "no_data"] += 1
        pdcs = [
            a.pdc
            for _, a in selectors.adherence_for(patient=patient, start=end - timedelta(days=27), end=end)
        ]
        scheduled = [p for p in pdcs if p is not None]
        adherence[_adherence_bucket(min(scheduled) if scheduled else None)] += 1
        recorded = sum(1 for d in day_scores if week_start <= d <= end)
        completion[
            "complete_7_of_7" if recorded == 7 else "partial_4_to_6" if recorded >= 4 else "low_0_to_3"
        ] += 1
    return {
        "kind": ReportKind.CLINIC_WEEKLY,
        "week_start": week_start.isoformat(),
        "week_end": end.isoformat(),
        "patients": len(patients),
        "patients_by_band": {
            band: bands.get(band, 0)
            for band in ("urticaria_free", "well_controlled", "mild", "moderate", "severe", "no_data")
        },
        "adherence_distribution": {
            bucket: adherence.get(bucket, 0)
            for bucket in ("pdc_80_plus", "pdc_50_to_79", "pdc_below_50", "no_scheduled_medication")
        },
        "diary_completion_distribution": {
            bucket: completion.get(bucket, 0)
            for bucket in ("complete_7_of_7", "partial_4_to_6", "low_0_to_3")
        },
    }


# --- Renderings ----------------------------------------------------------------------------------


def chart_png(data: dict[str, Any]) -> bytes:
    """UAS7 per week as bars coloured by activity band, band thresholds as lines (no names)."""
    width, height = CHART_SIZE
    left, right, top, bottom = 48, 16, 16, 40
    image = Image.new("RGB", CHART_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    plot_h = height - top - bottom

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / UAS7_MAX)

    draw.line(
        [(left, top), (left, height - bottom), (width - right, height - bottom)], fill=(0, 0, 0), width=1
    )
    for value in (0, *BAND_THRESHOLDS, UAS7_MAX):
        draw.text((6, y_of(value) - 6), f"{value:>2}", fill=(0, 0, 0))
    for threshold in BAND_THRESHOLDS:
        y = y_of(threshold)
        for x in range(left, width - right, 8):  # dashed
            draw.line([(x, y), (min(x + 4, width - right), y)], fill=(120, 120, 120), width=1)
    weeks = data["uas7_weeks"]
    slot = (width - left - right) / max(1, len(weeks))
    for i, week in enumerate(weeks):
        x0 = left + i * slot + slot * 0.15
        x1 = left + (i + 1) * slot - slot * 0.15
        value = week["uas7"]
        if value is None:
            draw.rectangle([x0, height - bottom - 3, x1, height - bottom], fill=BAND_COLOURS[None])
        else:
            draw.rectangle([x0, y_of(float(value)), x1, height - bottom], fill=BAND_COLOURS[week["band"]])
        draw.text((x0, height - bottom + 6), week["week_start"][5:], fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def report_csv(data: dict[str, Any]) -> str:
    """Long format, one number per row: section, key, field, value."""
    rows: list[tuple[str, str, str, Any]] = []
    if data["kind"] == ReportKind.PATIENT_WEEKLY:
        for week in data["uas7_weeks"]:
            for name in ("uas7", "band", "method", "days_observed"):
                rows.append(("uas7", week["week_start"], name, week[name]))
        for name, value in data["diary_completion"].items():
            rows.append(("diary_completion", "", name, value))
        if data["uct"] is not None:
            for name, value in data["uct"].items():
                rows.append(("uct", "", name, value))
        for item in data["adherence"]:
            for name in (
                "medication",
                "frequency_kind",
                "eligible_days",
                "covered_days",
                "pdc_28d",
                "dose_ratio",
            ):
                rows.append(("adherence", item["prescription"], name, item[name]))
        for alert in data["open_alerts"]:
            rows.append(("open_alert", alert["id"], "kind", alert["kind"]))
    else:
        rows.append(("clinic", "", "patients", data["patients"]))
        for section in ("patients_by_band", "adherence_distribution", "diary_completion_distribution"):
            for name, value in data[section].items():
                rows.append((section, "", name, value))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "field", "value"))
    for section, key, name, value in rows:
        writer.writerow((section, key, name, "" if value is None else value))
    return out.getvalue()
