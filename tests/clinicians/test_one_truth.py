"""One clinical truth (issue 17): the summary row is computed by `scores.patient_summary` in the
transaction of every write, read by the portal list, the patient's page, the alerts and the
reports, rolled over at local midnight, and never served for another day."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from clinicians.models import Alert, CareTeam
from clinicians.reports import patient_report_data
from clinicians.services import alert_acknowledge, alerts_evaluate
from core.models import OutboxMessage
from patients import scores, summary
from patients.models import Patient, PatientSummary
from tenants.models import Clinic
from tests.clinicians.conftest import client_for
from tests.factories import (
    DiaryEntryFactory,
    DoseLogFactory,
    PatientFactory,
    PrescriptionFactory,
    QuestionnaireResponseFactory,
)
from tests.sync.test_sync import diary, push

pytestmark = pytest.mark.django_db


def since(patient: Patient, days: int) -> None:
    """The patient joined `days` ago."""
    Patient.objects.filter(pk=patient.pk).update(enrolled_at=timezone.now() - timedelta(days=days))
    patient.refresh_from_db()


def listed(client: APIClient, query: str = "") -> dict[str, dict]:
    body = client.get(f"/api/v1/portal/patients/?limit=200{query}").json()
    return {row["id"]: row for row in body["results"]}


def test_a_clinician_sees_a_diary_entry_the_moment_it_is_saved(
    request: pytest.FixtureRequest,
    alice_client: APIClient,
    alice_patient: Patient,
    clinic_a: Clinic,
    team: CareTeam,
) -> None:
    with tenant_context(clinic_a):
        since(alice_patient, 30)
        today = alice_patient.local_today()
        for ago in range(1, 7):
            DiaryEntryFactory(patient=alice_patient, day=today - timedelta(days=ago), wheals=1, itch=1)
    bob = client_for(request, "dr_bob")
    before = listed(bob)[str(alice_patient.pk)]  # the ORM rows: computed on this read
    assert (before["uas7"], before["uas7_method"], before["uas7_days_observed"]) == (14.0, "prorated", 6)
    response = alice_client.put(
        f"/api/v1/me/diary/{today.isoformat()}/", {"wheals": 3, "itch": 3}, format="json"
    )
    assert response.status_code == 201, response.content  # today had no entry yet
    after = listed(bob)[str(alice_patient.pk)]
    assert (after["uas7"], after["uas7_method"], after["week_end"]) == (18.0, "complete", today.isoformat())
    detail = bob.get(f"/api/v1/portal/patients/{alice_patient.pk}/").json()["summary"]
    assert (detail["uas7"]["uas7"], detail["diary_completion_28d"]) == (18.0, after["diary_completion_28d"])
    mine = alice_client.get("/api/v1/me/summary/").json()
    assert (mine["uas7"]["uas7"], mine["uas7"]["method"]) == (18.0, "complete")


def test_a_sync_push_refreshes_the_row_once(
    alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        since(alice_patient, 30)
        today = alice_patient.local_today()
    batch = [diary(i + 1, uuid.uuid4(), today - timedelta(days=i), wheals=2, itch=2) for i in range(5)]
    with CaptureQueriesContext(connection) as queries:
        assert push(alice_client, uuid.uuid4(), batch).status_code == 200
    upserts = [q for q in queries if q["sql"].startswith('INSERT INTO "patients_patientsummary"')]
    assert len(upserts) == 1
    with tenant_context(clinic_a):
        row = PatientSummary.objects.get(patient=alice_patient)
        assert (row.uas7, row.uas7_days, row.valid_for) == (28, 5, today)
        assert OutboxMessage.objects.filter(task_name="clinicians.alerts_evaluate").count() == 1


def test_doses_count_from_the_prescription_start_in_the_row_and_the_alert(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    """Defect 1: five early omalizumab doses from day −150 carry supply to day −11."""
    with tenant_context(clinic_a):
        since(alice_patient, 300)
        today = alice_patient.local_today()
        rx = PrescriptionFactory(
            patient=alice_patient, medication_id="omalizumab-300-q4w", start=today - timedelta(days=200)
        )
        for i in range(5):
            DoseLogFactory(
                prescription=rx, scheduled_date=today - timedelta(days=150 - 10 * i), status="taken"
            )
        alerts_evaluate(patient=alice_patient, clinic=clinic_a)
        row = PatientSummary.objects.get(patient=alice_patient)
        assert float(row.lowest_pdc) == round(17 / 27, 4)
        (medication,) = row.adherence
        assert medication["medication"] == "omalizumab"
        low = Alert.objects.get(patient=alice_patient, kind="low_adherence")
        assert low.evidence["medications"][0]["pdc"] == round(17 / 27, 4)


def test_the_mid_and_the_severe_threshold_are_the_clinics(
    request: pytest.FixtureRequest, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """Defects 5 and 6: the portal's "exceeds MID" uses the clinic's setting, like the alert."""
    Clinic.objects.filter(pk=clinic_a.pk).update(alert_uas7_rise=5)
    clinic = Clinic.objects.get(pk=clinic_a.pk)
    with tenant_context(clinic):
        since(alice_patient, 60)
        today = alice_patient.local_today()
        for ago in range(1, 15):
            DiaryEntryFactory(
                patient=alice_patient, day=today - timedelta(days=ago), wheals=1 if ago > 7 else 2, itch=1
            )
        opened = {a.kind for a in alerts_evaluate(patient=alice_patient, clinic=clinic)}
    row = listed(client_for(request, "carol"))[str(alice_patient.pk)]
    assert (row["uas7"], row["previous_uas7"], row["uas7_change"], row["uas7_change_exceeds_mid"]) == (
        21.0,
        14.0,
        7.0,
        True,
    )
    assert row["previous_uas7_method"] == "complete"
    assert opened == {"uas7_rise"}


def test_open_means_not_yet_acknowledged_in_the_count_and_the_list(
    request: pytest.FixtureRequest, alice_patient: Patient, clinic_a: Clinic, team: CareTeam
) -> None:
    """Defect 11."""
    with tenant_context(clinic_a):
        since(alice_patient, 30)
        QuestionnaireResponseFactory(
            patient=alice_patient,
            instrument="uct",
            answers={"items": [1, 1, 1, 1]},
            score=4,
            period_end=alice_patient.local_today(),
        )
        (uct_alert,) = [
            a for a in alerts_evaluate(patient=alice_patient, clinic=clinic_a) if a.kind == "uct_uncontrolled"
        ]
    carol = client_for(request, "carol")
    count = listed(carol)[str(alice_patient.pk)]["open_alerts"]
    open_list = carol.get(f"/api/v1/portal/alerts/?patient={alice_patient.pk}").json()
    assert count == len(open_list) >= 1
    with tenant_context(clinic_a):
        alert_acknowledge(alert=uct_alert, actor=request.getfixturevalue("dr_bob"))
    after = listed(carol)[str(alice_patient.pk)]["open_alerts"]
    assert after == count - 1
    still_open = carol.get(f"/api/v1/portal/alerts/?patient={alice_patient.pk}").json()
    assert after == len(still_open)


def test_alerts_whose_condition_has_cleared_resolve_themselves(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    """Defect 13: a severe week followed by a mild one; a diary gap followed by entries."""
    with tenant_context(clinic_a):
        since(alice_patient, 60)
        today = alice_patient.local_today()
        for ago in range(1, 8):
            DiaryEntryFactory(patient=alice_patient, day=today - timedelta(days=ago + 5), wheals=3, itch=3)
        kinds = {a.kind for a in alerts_evaluate(patient=alice_patient, clinic=clinic_a)}
        assert "diary_gap" in kinds  # last entry 6 days ago: 5 missed days
        for ago in range(1, 6):
            DiaryEntryFactory(patient=alice_patient, day=today - timedelta(days=ago), wheals=0, itch=1)
        alerts_evaluate(patient=alice_patient, clinic=clinic_a)
        gap = Alert.objects.get(patient=alice_patient, kind="diary_gap")
        assert (gap.resolved_reason, gap.resolved_at is not None) == ("condition_cleared", True)
        assert (
            PatientSummary.objects.get(patient=alice_patient).open_alerts
            == Alert.objects.filter(patient=alice_patient, resolved_at=None, acknowledged_at=None).count()
        )


def test_a_back_dated_prescription_before_the_patient_joins_opens_nothing(clinic_a: Clinic) -> None:
    """Defect 13: no account yet, nothing to judge; defect 14: the windows start when they join."""
    with tenant_context(clinic_a):
        patient = PatientFactory(display_name="Not joined yet", timezone="Europe/Berlin")
        PrescriptionFactory(
            patient=patient, medication_id="bilastine-20", start=patient.local_today() - timedelta(days=40)
        )
        assert alerts_evaluate(patient=patient, clinic=clinic_a) == []
        row = PatientSummary.objects.get(patient=patient)
        assert row.lowest_pdc is None and row.adherence[0]["status"] == "new"


def test_a_patient_enrolled_today_is_not_18_percent_complete(
    request: pytest.FixtureRequest, alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    """Defect 14."""
    with tenant_context(clinic_a):
        today = alice_patient.local_today()
        DiaryEntryFactory(
            patient=alice_patient, day=today - timedelta(days=3), wheals=1, itch=1
        )  # back-filled
    alice_client.put(f"/api/v1/me/diary/{today.isoformat()}/", {"wheals": 1, "itch": 1}, format="json")
    row = listed(client_for(request, "carol"))[str(alice_patient.pk)]
    assert (row["days_recorded"], row["days_eligible"], row["diary_completion_28d"]) == (1, 1, 1.0)
    assert row["diary_gap_days"] == 0


def test_the_report_shows_the_summary_of_its_last_day(alice_patient: Patient, clinic_a: Clinic) -> None:
    """Defect 12: the report's numbers are the summary's, as of the week's Sunday."""
    week = date(2026, 11, 16)
    end = week + timedelta(days=6)
    with tenant_context(clinic_a):
        Patient.objects.filter(pk=alice_patient.pk).update(enrolled_at=datetime(2026, 9, 1, tzinfo=UTC))
        alice_patient.refresh_from_db()
        for ago in range(10):
            DiaryEntryFactory(patient=alice_patient, day=end - timedelta(days=ago), wheals=2, itch=2)
        QuestionnaireResponseFactory(
            patient=alice_patient,
            instrument="uct7",
            answers={"items": [3, 3, 3, 3]},
            score=12,
            period_end=end,
        )
        data = patient_report_data(patient=alice_patient, week_start=week)
        history = summary.histories_load([alice_patient], {alice_patient.pk: end}, diary_days=84)[
            alice_patient.pk
        ]
    expected = scores.patient_summary(history, end, summary.current_thresholds(), today_over=True)
    assert data["uas7_weeks"][-1]["uas7"] == expected.current.uas7 == 28
    assert data["uas7_weeks"][-1]["band"] == "severe"
    assert data["uct"] == {
        "score": 12,
        "instrument": "uct7",
        "category": "well_controlled",
        "period_end": "2026-11-22",
    }
    assert data["diary_completion"]["completion_28d"] == expected.diary_completion
    assert data["period"]["end"] == end.isoformat()


def test_rows_roll_over_at_the_patients_midnight(alice_patient: Patient, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a):
        since(alice_patient, 30)
        summary.summaries_refresh([alice_patient.pk])
        row = PatientSummary.objects.get(patient=alice_patient)
        today = alice_patient.local_today()
        assert row.valid_for == today
        assert row.stale_after == datetime.combine(
            today + timedelta(days=1), time(0), tzinfo=alice_patient.tz
        )
        tomorrow = row.stale_after + timedelta(minutes=1)
        OutboxMessage.objects.all().delete()
        assert summary.summaries_roll(now=tomorrow) == 1
        assert PatientSummary.objects.get(patient=alice_patient).valid_for == today + timedelta(days=1)
        # A new day alone can open or clear an alert (a gap, a UCT past its recall): re-evaluated.
        assert list(OutboxMessage.objects.values_list("task_name", "kwargs")) == [
            ("clinicians.alerts_evaluate", {"patient_id": str(alice_patient.pk)})
        ]
        assert summary.summaries_roll(now=tomorrow) == 0


def test_the_list_never_shows_a_row_of_another_day(
    request: pytest.FixtureRequest, alice_patient: Patient, clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handful of stale rows are recomputed on the read; more are left out, counted, and the
    roll is queued."""
    carol = client_for(request, "carol")
    with tenant_context(clinic_a):
        others = [PatientFactory(display_name=f"P{i}", timezone="Pacific/Kiritimati") for i in range(3)]
    body = carol.get("/api/v1/portal/patients/").json()
    assert body["pending"] == 0 and len(body["results"]) == 4
    with tenant_context(clinic_a):
        PatientSummary.objects.update(stale_after=timezone.now() - timedelta(minutes=1))
    monkeypatch.setattr(summary, "READ_REFRESH_LIMIT", 2)
    body = carol.get("/api/v1/portal/patients/").json()
    assert (body["pending"], len(body["results"])) == (2, 2)
    with tenant_context(clinic_a):
        assert OutboxMessage.objects.filter(task_name="patients.summaries_roll").exists()
        today = {p.pk: p.local_today() for p in [alice_patient, *others]}
        for row in PatientSummary.objects.filter(stale_after__gt=timezone.now()):
            assert row.valid_for == today[row.patient_id]
