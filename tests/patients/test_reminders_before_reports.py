"""Reminders are never held up by reports (issue 14, finding 10): with a real worker on the real
broker, a burst of report tasks queued in a clinic before a reminder delivery does not delay
the reminder (report tasks carry a lower priority; config.celery.TASK_PRIORITIES)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django_tenants.utils import tenant_context

from accounts.models import Membership, User
from clinicians.models import Report, ReportKind
from clinicians.tasks import report_generate as report_task
from config.celery import app as celery_app
from config.celery import tenant_queue
from patients.models import DeliveryStatus, Patient, ReminderDelivery
from patients.reminders import reminder_save
from patients.tasks import reminder_deliver
from tenants.models import Clinic
from tests.conftest import make_member
from tests.factories import PatientFactory
from tests.workers import purge_queues, running_worker, wait_until


@pytest.mark.slow
def test_a_burst_of_reports_does_not_delay_a_reminder_of_the_same_clinic(committed_db: None) -> None:
    """A real worker: 30 reports requested before a reminder falls due in the same clinic; the
    reminder is sent before the first report is generated."""
    alpha = Clinic.objects.get(slug="alpha")
    purge_queues(tenant_queue(alpha.schema_name))
    user = make_member(f"burst-{uuid.uuid4().hex[:8]}@example.com", alpha, "patient")
    try:
        with tenant_context(alpha):
            patient = PatientFactory(user_id=user.pk, display_name="Burst patient", timezone="Europe/Berlin")
            first = date(2020, 1, 6)
            reports = Report.objects.bulk_create(
                [
                    Report(
                        kind=ReportKind.PATIENT_WEEKLY, patient=patient, week_start=first + timedelta(weeks=i)
                    )
                    for i in range(30)
                ]
            )
            now = datetime.now(UTC)
            reminder, _ = reminder_save(
                patient=patient, kind="diary", local_time=now.astimezone(patient.tz).time()
            )
            delivery = ReminderDelivery.objects.create(
                reminder=reminder, patient=patient, local_date=patient.local_today(), scheduled_for=now
            )
            celery_app.conf.task_always_eager = False
            try:
                for report in reports:  # the burst first ...
                    report_task.delay(report_id=str(report.pk))
                reminder_deliver.delay(delivery_id=str(delivery.pk))  # ... then the reminder
            finally:
                celery_app.conf.task_always_eager = True
        with running_worker():
            with tenant_context(alpha):
                assert wait_until(
                    lambda: ReminderDelivery.objects.filter(
                        pk=delivery.pk, status=DeliveryStatus.SENT
                    ).exists(),
                    120,
                )
                assert wait_until(
                    lambda: Report.objects.filter(patient=patient, status="ready").exists(), 120
                )
                sent_at = ReminderDelivery.objects.get(pk=delivery.pk).sent_at
                first_report = (
                    Report.objects.filter(patient=patient, generated_at__isnull=False)
                    .order_by("generated_at")
                    .values_list("generated_at", flat=True)
                    .first()
                )
        assert sent_at < first_report, "the reminder waited behind the clinic's report backlog"
    finally:
        with tenant_context(alpha):
            Patient.objects.filter(pk__in=Patient.objects.filter(user_id=user.pk).values("pk")).delete()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()
        purge_queues(tenant_queue("clinic_alpha"))
