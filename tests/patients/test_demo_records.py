"""The demo seed (patients.demo, run by `make run`) never dates a record after the moment it runs:
seeded before 08:00 local, today's doses are not logged yet (they would have been taken at
08:00, in the future), and today's diary entry is not recorded at 20:30 ahead of time."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django_tenants.utils import tenant_context

from patients.demo import demo_records_seed
from patients.models import DiaryEntry, DoseLog
from tenants.models import Clinic
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("profile", ["improving", "flare", "steady"])
def test_seeded_before_eight_today_has_no_dose_logged_and_nothing_is_dated_after_now(
    clinic_a: Clinic, profile: str
) -> None:
    with tenant_context(clinic_a):
        patient = PatientFactory()
        today = patient.local_today()
        now = datetime.combine(today, time(7, 30), tzinfo=patient.tz)
        assert demo_records_seed(patient=patient, profile=profile, today=today, prescriber_id=None, now=now)
        doses = DoseLog.objects.filter(patient=patient)
        assert doses.filter(scheduled_date__lt=today).exists()
        assert not doses.filter(scheduled_date=today).exists()
        assert max(doses.values_list("taken_at", flat=True)) <= now
        assert max(doses.values_list("created_at", flat=True)) <= now
        recorded = DiaryEntry.objects.filter(patient=patient).values_list("day", "recorded_at")
        assert all(at <= now for _, at in recorded)
        assert dict(recorded).get(today) in (None, now)  # today's entry, if any, recorded now


def test_seeded_after_eight_todays_doses_are_logged_at_eight(clinic_a: Clinic) -> None:
    with tenant_context(clinic_a):
        patient = PatientFactory()
        today = patient.local_today()
        now = datetime.combine(today, time(9, 15), tzinfo=patient.tz)
        # Four doses a day from week 4 on: at least one of today's is logged (each at 88 %).
        demo_records_seed(patient=patient, profile="improving", today=today, prescriber_id=None, now=now)
        todays = DoseLog.objects.filter(patient=patient, scheduled_date=today)
        eight = datetime.combine(today, time(8, 0), tzinfo=patient.tz)
        assert todays.exists()
        assert set(todays.values_list("taken_at", flat=True)) == {eight}
        yesterday = DoseLog.objects.filter(patient=patient, scheduled_date=today - timedelta(days=1)).first()
        assert yesterday is None or yesterday.taken_at == eight - timedelta(days=1)
        recorded = dict(DiaryEntry.objects.filter(patient=patient).values_list("day", "recorded_at"))
        assert recorded.get(today) in (None, now)
