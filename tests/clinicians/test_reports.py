"""Adherence reports: the numbers, the PNG chart and CSV renderings, on-demand generation
through the portal (202, idempotent per patient and week), weekly requests, and who may read."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django_tenants.utils import tenant_context
from PIL import Image

from accounts.models import User
from clinicians.models import Alert, CareTeam, Report, ReportStatus
from clinicians.reports import (
    clinics_due_weekly_reports,
    last_complete_week,
    report_generate,
    report_request,
    reports_request_weekly,
)
from core.models import OutboxMessage
from patients.models import Patient
from tenants.models import Clinic
from tests.clinicians.conftest import client_for
from tests.conftest import authed_client
from tests.factories import (
    DiaryEntryFactory,
    DoseLogFactory,
    PrescriptionFactory,
    QuestionnaireResponseFactory,
)

pytestmark = pytest.mark.django_db

WEEK = date(2026, 11, 16)  # Monday; the week ends Sunday 2026-11-22


@pytest.fixture
def alice_record(alice_patient: Patient, clinic_a: Clinic) -> Patient:
    """Two full weeks of diary (UAS7 21 then 35), a UCT, a daily antihistamine taken 21 of 28
    days; Alice has been a patient since the summer."""
    with tenant_context(clinic_a):
        alice_patient.enrolled_at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
        alice_patient.save(update_fields=["enrolled_at"])
        end = WEEK + timedelta(days=6)
        for offset in range(14):
            day = end - timedelta(days=offset)
            score = (2, 3) if offset < 7 else (1, 2)  # this week 5/day = 35; the week before 3/day = 21
            DiaryEntryFactory(patient=alice_patient, day=day, wheals=score[0], itch=score[1])
        QuestionnaireResponseFactory(
            patient=alice_patient, instrument="uct", answers={"items": [2, 2, 2, 2]}, score=8, period_end=end
        )
        rx = PrescriptionFactory(
            patient=alice_patient, medication_id="cetirizine-10", start=end - timedelta(days=27)
        )
        for offset in range(21):
            DoseLogFactory(prescription=rx, scheduled_date=end - timedelta(days=offset), status="taken")
        Alert.objects.create(patient=alice_patient, kind="severe_uas7", evidence={"uas7": 35})
    return alice_patient


def test_a_weekly_report_holds_twelve_weeks_of_uas7_completion_uct_pdc_and_open_alerts(
    alice_record: Patient, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        report, created = report_request(patient=alice_record, week_start=WEEK)
        assert created
        assert report_generate(report_id=report.pk) == "ready"
        report.refresh_from_db()
    data = report.data
    assert (data["week_start"], data["week_end"]) == ("2026-11-16", "2026-11-22")
    assert data["period"]["start"] == "2026-08-31" and data["period"]["end"] == "2026-11-22"
    assert data["patient_name"] == "Alice P."
    assert len(data["uas7_weeks"]) == 12
    assert [(w["week_start"], w["uas7"], w["band"]) for w in data["uas7_weeks"][-2:]] == [
        ("2026-11-09", 21, "moderate"),
        ("2026-11-16", 35, "severe"),
    ]
    assert {w["uas7"] for w in data["uas7_weeks"][:-2]} == {None}
    assert data["diary_completion"] == {
        "days_recorded_7d": 7,
        "completion_7d": 1.0,
        "days_recorded_28d": 14,
        "days_eligible_28d": 28,
        "completion_28d": 0.5,
    }
    assert data["uct"] == {
        "score": 8,
        "instrument": "uct",
        "category": "poorly_controlled",
        "period_end": "2026-11-22",
    }
    assert [
        (a["medication"], a["covered_days"], a["eligible_days"], a["pdc_28d"]) for a in data["adherence"]
    ] == [("cetirizine", 21, 28, 0.75)]
    assert [a["kind"] for a in data["open_alerts"]] == ["severe_uas7"]
    assert report.status == ReportStatus.READY


def test_the_chart_is_a_png_of_the_documented_size(alice_record: Patient, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a):
        report, _ = report_request(patient=alice_record, week_start=WEEK)
        report_generate(report_id=report.pk)
        report.refresh_from_db()
    png = bytes(report.chart_png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (900, 450))  # what the chart's own tests draw


def test_the_csv_parses_back_to_the_json_numbers(alice_record: Patient, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a):
        report, _ = report_request(patient=alice_record, week_start=WEEK)
        report_generate(report_id=report.pk)
        report.refresh_from_db()
    rows = list(csv.DictReader(io.StringIO(report.csv)))
    uas7 = {r["key"]: r["value"] for r in rows if r["section"] == "uas7" and r["field"] == "uas7"}
    assert {k: (float(v) if v else None) for k, v in uas7.items()} == {
        w["week_start"]: w["uas7"] for w in report.data["uas7_weeks"]
    }
    completion = {r["field"]: float(r["value"]) for r in rows if r["section"] == "diary_completion"}
    assert completion == {k: float(v) for k, v in report.data["diary_completion"].items()}
    pdc = {
        r["key"]: float(r["value"]) for r in rows if r["section"] == "adherence" and r["field"] == "pdc_28d"
    }
    assert pdc == {a["medication"]: a["pdc_28d"] for a in report.data["adherence"]}
    header = {r["field"]: r["value"] for r in rows if r["section"] == "report"}
    assert header["patient"] == "Alice P."
    assert (header["period_start"], header["period_end"]) == ("2026-08-31", "2026-11-22")
    assert header["generated_at"] == report.data["generated_at"]
    assert [r["value"] for r in rows if r["section"] == "uct" and r["field"] == "score"] == ["8"]


def test_the_clinic_summary_counts_patients_by_band_and_adherence(
    alice_record: Patient, dave: User, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        report, _ = report_request(patient=None, week_start=WEEK)
        report_generate(report_id=report.pk)
        report.refresh_from_db()
    assert report.data["patients"] == 2
    assert report.data["patients_by_band"] == {
        "urticaria_free": 0,
        "well_controlled": 0,
        "mild": 0,
        "moderate": 0,
        "severe": 1,
        "no_data": 1,
    }
    assert report.data["adherence_distribution"] == {
        "pdc_80_plus": 0,
        "pdc_50_to_79": 1,
        "pdc_below_50": 0,
        "new": 0,
        "no_scheduled_medication": 1,
    }
    assert report.chart_png is None
    rows = list(csv.DictReader(io.StringIO(report.csv)))
    assert {r["field"]: int(r["value"]) for r in rows if r["section"] == "patients_by_band"}["severe"] == 1


def test_weekly_requests_are_idempotent_and_requeue_only_what_is_stuck(
    alice_record: Patient, clinic_a: Clinic
) -> None:
    now = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    with tenant_context(clinic_a):
        assert reports_request_weekly(week_start=WEEK, now=now) == 2  # alice + the clinic summary
        assert reports_request_weekly(week_start=WEEK, now=now + timedelta(minutes=10)) == 0  # queued already
        assert Report.objects.filter(week_start=WEEK).count() == 2
        assert (
            reports_request_weekly(week_start=WEEK, now=now + timedelta(minutes=31)) == 2
        )  # stuck: requeued
        report_generate(report_id=Report.objects.get(week_start=WEEK, patient=alice_record).pk)
        assert reports_request_weekly(week_start=WEEK, now=now + timedelta(hours=2)) == 1  # only the summary
        assert OutboxMessage.objects.filter(task_name="clinicians.report_generate").count() == 5


def test_last_complete_week_is_the_monday_to_sunday_before_today() -> None:
    assert last_complete_week(date(2026, 11, 23)) == WEEK  # a Monday
    assert last_complete_week(date(2026, 11, 29)) == WEEK  # the Sunday after
    assert last_complete_week(date(2026, 11, 30)) == date(2026, 11, 23)


# --- Portal API -----------------------------------------------------------------------------------


def test_a_clinician_requests_a_report_polls_it_and_downloads_chart_and_csv(
    team: CareTeam, alice_record: Patient, dr_bob: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:
    bob = authed_client(dr_bob, clinic_a)
    with django_capture_on_commit_callbacks(execute=True):  # the outbox publishes; tasks run eagerly
        accepted = bob.post(
            f"/api/v1/portal/patients/{alice_record.pk}/reports/", {"week_start": "2026-11-16"}, format="json"
        )
    assert accepted.status_code == 202, accepted.json()
    report_id = accepted.json()["id"]
    assert accepted["Location"] == f"/api/v1/portal/reports/{report_id}/"
    again = bob.post(
        f"/api/v1/portal/patients/{alice_record.pk}/reports/", {"week_start": "2026-11-16"}, format="json"
    )
    assert (again.status_code, again.json()["id"]) == (200, report_id)  # one report per patient and week

    detail = bob.get(f"/api/v1/portal/reports/{report_id}/").json()
    assert (detail["status"], detail["data"]["uas7_weeks"][-1]["uas7"]) == ("ready", 35)
    chart = bob.get(detail["chart_url"])
    assert (chart.status_code, chart["Content-Type"], chart.content[:4]) == (200, "image/png", b"\x89PNG")
    csv_response = bob.get(detail["csv_url"])
    assert csv_response["Content-Type"].startswith("text/csv")
    assert csv_response.content.decode().startswith("section,key,field,value\n")
    listed = bob.get("/api/v1/portal/reports/", {"patient": str(alice_record.pk)}).json()
    assert [r["id"] for r in listed] == [report_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"week_start": "2026-11-17"}, "week_start"),
        ({"week_start": "2099-01-05"}, "week_start"),
        ({"weeks": 3}, "weeks"),
    ],
)
def test_bad_report_requests_name_the_field(
    team: CareTeam,
    alice_patient: Patient,
    dr_bob: User,
    clinic_a: Clinic,
    body: dict[str, object],
    field: str,
) -> None:
    response = authed_client(dr_bob, clinic_a).post(
        f"/api/v1/portal/patients/{alice_patient.pk}/reports/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]
    with tenant_context(clinic_a):
        assert not Report.objects.exists()


def test_a_report_still_generating_answers_409_for_its_renderings(
    team: CareTeam, alice_patient: Patient, dr_bob: User, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        report, _ = report_request(patient=alice_patient, week_start=WEEK)
    response = authed_client(dr_bob, clinic_a).get(f"/api/v1/portal/reports/{report.pk}/chart.png")
    assert (response.status_code, response.json()["code"]) == (409, "report_not_ready")


EXPECTED = {"anonymous": 401, "alice": 403, "dr_bob": 200, "erin": 404, "carol": 200, "mallory": 401}


@pytest.mark.parametrize("persona", list(EXPECTED))
@pytest.mark.parametrize("suffix", ["", "chart.png", "report.csv"])
def test_report_reads_persona_matrix(
    request: pytest.FixtureRequest,
    persona: str,
    suffix: str,
    team: CareTeam,
    alice_record: Patient,
    erin: User,
    carol: User,
    mallory: User,
    clinic_a: Clinic,
) -> None:
    with tenant_context(clinic_a):
        report, _ = report_request(patient=alice_record, week_start=WEEK)
        report_generate(report_id=report.pk)
    response = client_for(request, persona).get(f"/api/v1/portal/reports/{report.pk}/{suffix}")
    assert response.status_code == EXPECTED[persona]
    if EXPECTED[persona] == 200:
        assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("persona", list(EXPECTED))
def test_report_request_persona_matrix(
    request: pytest.FixtureRequest,
    persona: str,
    team: CareTeam,
    alice_patient: Patient,
    erin: User,
    carol: User,
    mallory: User,
    clinic_a: Clinic,
) -> None:
    response = client_for(request, persona).post(
        f"/api/v1/portal/patients/{alice_patient.pk}/reports/", {}, format="json"
    )
    assert response.status_code == {200: 202}.get(EXPECTED[persona], EXPECTED[persona])
    with tenant_context(clinic_a):
        assert Report.objects.count() == (1 if EXPECTED[persona] == 200 else 0)


def test_a_clinician_outside_the_care_team_cannot_list_a_patients_reports_and_is_audited(
    team: CareTeam, alice_patient: Patient, erin: User, clinic_a: Clinic
) -> None:
    from patients.models import AccessLog

    response = authed_client(erin, clinic_a).get(
        "/api/v1/portal/reports/", {"patient": str(alice_patient.pk)}
    )
    assert response.status_code == 404
    with tenant_context(clinic_a):
        assert AccessLog.objects.filter(actor_id=erin.pk, action="portal.reports", allowed=False).count() == 1


def test_weekly_reports_start_at_monday_0600_in_each_clinics_timezone(
    clinic_a: Clinic, clinic_b: Clinic
) -> None:
    # alpha is Europe/Berlin (UTC+1 in November), beta America/New_York (UTC-5).
    def due_at(moment: datetime) -> list[tuple[str, date]]:
        return sorted((c.slug, week) for c, week in clinics_due_weekly_reports(now=moment))

    assert due_at(datetime(2026, 11, 23, 4, 59, tzinfo=UTC)) == []  # 05:59 in Berlin
    assert due_at(datetime(2026, 11, 23, 5, 0, tzinfo=UTC)) == [("alpha", WEEK)]
    assert due_at(datetime(2026, 11, 23, 11, 0, tzinfo=UTC)) == [("alpha", WEEK), ("beta", WEEK)]
    assert due_at(datetime(2026, 11, 24, 3, 0, tzinfo=UTC)) == [("beta", WEEK)]  # 22:00 Monday in New York
    assert due_at(datetime(2026, 11, 24, 5, 0, tzinfo=UTC)) == []  # Tuesday everywhere


def test_a_failed_report_is_marked_failed_and_a_new_request_retries_it(
    team: CareTeam, alice_record: Patient, dr_bob: User, clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinicians import reports

    def broken(**kwargs: object) -> dict:
        raise ZeroDivisionError("boom")

    with tenant_context(clinic_a):
        report, _ = report_request(patient=alice_record, week_start=WEEK)
        monkeypatch.setattr(reports, "patient_report_data", broken)
        assert report_generate(report_id=report.pk) == "failed"
        report.refresh_from_db()
        assert (report.status, report.error) == ("failed", "ZeroDivisionError")
        monkeypatch.undo()
        again, created = report_request(patient=alice_record, week_start=WEEK)
        assert (again.pk, created, again.status) == (report.pk, False, "pending")
        assert report_generate(report_id=report.pk) == "ready"


def test_a_week_too_far_back_is_refused(
    team: CareTeam, alice_patient: Patient, dr_bob: User, clinic_a: Clinic
) -> None:
    response = authed_client(dr_bob, clinic_a).post(
        f"/api/v1/portal/patients/{alice_patient.pk}/reports/", {"week_start": "0001-01-01"}, format="json"
    )
    assert (response.status_code, list(response.json()["errors"])) == (400, ["week_start"])


# --- Limits: the patient's own weeks, a per-user quota, and reminders first -----------------------


def _enrolled(patient: Patient, clinic: Clinic, at: datetime) -> Patient:
    with tenant_context(clinic):
        patient.enrolled_at = at
        patient.save(update_fields=["enrolled_at"])
    return patient


def test_a_week_before_the_patients_first_week_is_refused_and_makes_no_report(
    team: CareTeam, alice_patient: Patient, dr_bob: User, clinic_a: Clinic
) -> None:
    # Enrolled on Wednesday 2026-06-10; diary days may be added 7 days back, so her first week
    # is the one starting Monday 2026-06-01.
    _enrolled(alice_patient, clinic_a, datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
    bob = authed_client(dr_bob, clinic_a)
    path = f"/api/v1/portal/patients/{alice_patient.pk}/reports/"

    refused = [bob.post(path, {"week_start": week}, format="json") for week in ("2000-01-03", "2026-05-25")]
    first = bob.post(path, {"week_start": "2026-06-01"}, format="json")

    assert [(r.status_code, r.json()["code"], list(r.json()["errors"])) for r in refused] == [
        (400, "report_week_before_enrolment", ["week_start"])
    ] * 2
    assert refused[0]["Content-Type"].startswith("application/problem+json")
    assert first.status_code == 202, first.json()
    with tenant_context(clinic_a):
        assert list(Report.objects.values_list("week_start", flat=True)) == [date(2026, 6, 1)]


def test_the_last_full_week_is_reportable_for_a_patient_enrolled_today(
    team: CareTeam, alice_patient: Patient, dr_bob: User, clinic_a: Clinic
) -> None:
    response = authed_client(dr_bob, clinic_a).post(
        f"/api/v1/portal/patients/{alice_patient.pk}/reports/", {}, format="json"
    )
    assert (response.status_code, response.json()["week_start"]) == (
        202,
        str(last_complete_week(alice_patient.local_today())),
    )


def test_report_requests_have_a_per_user_quota(
    team: CareTeam,
    alice_patient: Patient,
    dr_bob: User,
    carol: User,
    clinic_a: Clinic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "reports": "3/hour"}
    )
    cache.clear()
    _enrolled(alice_patient, clinic_a, datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    path = f"/api/v1/portal/patients/{alice_patient.pk}/reports/"
    bob = authed_client(dr_bob, clinic_a)
    weeks = ["2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22", "2026-06-29"]

    responses = [bob.post(path, {"week_start": week}, format="json") for week in weeks]

    assert [r.status_code for r in responses] == [202, 202, 202, 429, 429]
    assert responses[3]["Content-Type"].startswith("application/problem+json")
    assert (responses[3].json()["code"], int(responses[3]["Retry-After"]) > 0) == ("throttled", True)
    with tenant_context(clinic_a):
        assert Report.objects.count() == 3
    # The quota is the user's: the clinic admin still gets hers.
    assert (
        authed_client(carol, clinic_a).post(path, {"week_start": weeks[3]}, format="json").status_code == 202
    )


def _broker_order(queue: str) -> list[str]:
    """The task names in the order a worker takes them from the queue (draining it)."""
    from config.celery import app as celery_app

    names = []
    with celery_app.connection_for_read() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            names.append(message.headers["task"])
    return names


def test_report_tasks_wait_behind_reminder_deliveries_in_the_clinics_queue(clinic_a: Clinic) -> None:
    """On the real Redis broker: three reports queued before a reminder delivery still come
    out after it (priority 9 against the default 0)."""
    from clinicians.tasks import report_generate as report_task
    from config.celery import app as celery_app
    from config.celery import tenant_queue
    from patients.tasks import reminder_deliver
    from tests.workers import purge_queues

    queue = tenant_queue(clinic_a.schema_name)
    purge_queues(queue)
    celery_app.conf.task_always_eager = False
    try:
        with tenant_context(clinic_a):
            for _ in range(3):
                report_task.delay(report_id=str(uuid.uuid4()))
            reminder_deliver.delay(delivery_id=str(uuid.uuid4()))
            report_task.delay(report_id=str(uuid.uuid4()))
    finally:
        celery_app.conf.task_always_eager = True
        order = _broker_order(queue)
        purge_queues(queue)
    assert order == ["patients.reminder_deliver"] + ["clinicians.report_generate"] * 4
