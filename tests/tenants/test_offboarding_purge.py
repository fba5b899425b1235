"""The offboarding purge (issue 21, part 3): invoices outlive the clinic, one clinic's failure
never stops the others, and a schema is dropped only while it still equals its verified
archive."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context

from accounts.models import Membership, Role, User
from billing.models import Invoice, InvoiceStatus, Subscription
from billing.services import invoice_generate, subscription_start, webhook_signature
from core.models import OutboxMessage
from patients.models import AccessLog
from tenants import lifecycle
from tenants.models import Clinic, ClinicStatus
from tenants.services import clinic_create
from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db


def offboarded(slug: str, name: str = "Leaving Clinic") -> Clinic:
    clinic = clinic_create(slug=slug, name=name)
    with tenant_context(clinic):
        AccessLog.objects.create(action="read", object_type="diary")
    connection.set_schema_to_public()
    lifecycle.clinic_offboard_request(clinic=clinic)
    exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert exported is not None and exported.offboarding_archive
    return exported


def after_grace() -> datetime:
    return timezone.now() + timedelta(days=31)


def purge_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "tenants.lifecycle" and r.levelno == logging.ERROR
    ]


def billed(clinic: Clinic) -> Invoice:
    subscription_start(clinic=clinic, plan_code="starter", now=datetime(2026, 1, 1, tzinfo=UTC))
    Subscription.objects.filter(clinic=clinic).update(trial_ends_at=datetime(2026, 1, 31, tzinfo=UTC))
    invoice = invoice_generate(
        clinic=clinic, period=date(2026, 10, 1), now=datetime(2026, 11, 1, 6, tzinfo=UTC)
    )
    assert invoice is not None and invoice.status == InvoiceStatus.OPEN
    return invoice


def test_a_billed_clinic_is_purged_and_its_invoices_keep_whom_they_billed(archives: Path) -> None:
    clinic = clinic_create(slug="billed", name="Billed Clinic")
    invoice = billed(clinic)
    member = User.objects.create_user("dora@example.com", PASSWORD)
    Membership.objects.create(user=member, clinic=clinic, role=Role.CLINIC_ADMIN)
    lifecycle.clinic_offboard_request(clinic=clinic)
    lifecycle.clinic_offboard(clinic_id=str(clinic.pk))

    assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["billed"]

    assert not schema_exists("clinic_billed") and not Clinic.objects.filter(slug="billed").exists()
    invoice.refresh_from_db()
    assert invoice.clinic_id is None
    assert (
        invoice.billed_clinic_id,
        invoice.billed_clinic_slug,
        invoice.billed_clinic_name,
        invoice.billed_clinic_country,
        invoice.number,
        invoice.status,
    ) == (clinic.pk, "billed", "Billed Clinic", "DE", invoice.number, InvoiceStatus.OPEN)
    assert invoice.lines.count() >= 1
    assert not Subscription.objects.filter(pk__isnull=False, clinic_id=clinic.pk).exists()
    assert not Membership.objects.filter(clinic_id=clinic.pk).exists()
    assert User.objects.filter(pk=member.pk).exists()  # the person stays; only the membership goes


@override_settings(BILLING_WEBHOOK_SECRET="whsec_test_only")
def test_a_purged_clinics_retained_invoice_can_still_be_paid(archives: Path) -> None:
    clinic = clinic_create(slug="billed", name="Billed Clinic")
    invoice = billed(clinic)
    lifecycle.clinic_offboard_request(clinic=clinic)
    lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["billed"]

    body = json.dumps({"id": "evt_late", "type": "invoice.paid", "data": {"invoice": invoice.number}}).encode()
    stamp = int(time.time())
    signature = webhook_signature(secret="whsec_test_only", timestamp=stamp, body=body)
    response = host_client("localhost").post(
        "/api/v1/billing/webhooks/payments/",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=f"t={stamp},v1={signature}",
    )
    assert (response.status_code, response.json()) == (200, {"received": True, "result": "handled"})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.clinic_id, invoice.billed_clinic_slug) == (InvoiceStatus.PAID, None, "billed")


def test_one_clinic_failing_to_purge_never_stops_the_others(
    archives: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = offboarded("first-out"), offboarded("second-out")
    real_delete = lifecycle.clinic_delete

    def delete_fails_for_the_first(*, clinic: Clinic) -> None:
        if clinic.slug == "first-out":
            raise RuntimeError("patient Alice's note would be here")  # never logged
        real_delete(clinic=clinic)

    with (
        mock.patch("tenants.lifecycle.clinic_delete", delete_fails_for_the_first),
        caplog.at_level(logging.ERROR, logger="tenants.lifecycle"),
    ):
        assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["second-out"]
    assert purge_errors(caplog) == [
        "clinic first-out not purged: purge_failed (RuntimeError); it stays offboarding until an operator "
        "re-exports it"
    ]
    assert "Alice" not in caplog.text
    assert schema_exists(first.schema_name) and not schema_exists(second.schema_name)
    first.refresh_from_db()
    assert first.status == ClinicStatus.OFFBOARDING
    # The next run purges it once the failure is gone.
    assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["first-out"]
    assert not schema_exists(first.schema_name)


def test_a_storage_outage_for_one_clinic_leaves_the_others_purged(
    archives: Path, caplog: pytest.LogCaptureFixture
) -> None:
    offboarded("first-out"), offboarded("second-out")
    real_verify = lifecycle._archive_verify

    def storage_down_for_the_first(*, clinic: Clinic, plaintext: object) -> str | None:
        if clinic.slug == "first-out":
            raise ConnectionError("bucket unreachable")
        return real_verify(clinic=clinic, plaintext=plaintext)  # type: ignore[arg-type]

    with (
        mock.patch("tenants.lifecycle._archive_verify", storage_down_for_the_first),
        caplog.at_level(logging.ERROR, logger="tenants.lifecycle"),
    ):
        assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["second-out"]
    assert purge_errors(caplog) == [
        "clinic first-out not purged: archive_unavailable (ConnectionError); it stays offboarding until an "
        "operator re-exports it"
    ]


def test_a_write_after_the_export_stops_the_purge_and_a_new_export_is_purged_next_run(
    archives: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = offboarded("late-write")
    first_archive = clinic.offboarding_archive
    with tenant_context(clinic):
        AccessLog.objects.create(action="export", object_type="patient")  # e.g. a patient's own export
    connection.set_schema_to_public()
    OutboxMessage.objects.filter(task_name="tenants.clinic_offboard").delete()

    with caplog.at_level(logging.ERROR, logger="tenants.lifecycle"):
        assert lifecycle.clinics_purge_offboarded(now=after_grace()) == []
    assert purge_errors(caplog) == [
        "clinic late-write not purged: changed_since_export; it stays offboarding until its new export is "
        "verified"
    ]
    assert schema_exists("clinic_late_write")
    assert list(
        OutboxMessage.objects.filter(task_name="tenants.clinic_offboard").values_list("kwargs", flat=True)
    ) == [{"clinic_id": str(clinic.pk)}]

    # The re-export (the enqueued task) holds the late row; then the purge goes through.
    exported = lifecycle.clinic_offboard(clinic_id=str(clinic.pk))
    assert exported is not None and exported.offboarding_archive != first_archive
    assert lifecycle.clinics_purge_offboarded(now=after_grace()) == ["late-write"]
    assert not schema_exists("clinic_late_write")


def test_an_archive_of_another_clinic_with_a_matching_checksum_is_refused(archives: Path) -> None:
    mine, theirs = offboarded("mine-out"), offboarded("theirs-out")
    # An operator (or an attacker with database access) records the other clinic's archive.
    Clinic.objects.filter(pk=mine.pk).update(
        offboarding_archive=theirs.offboarding_archive,
        offboarding_archive_sha256=theirs.offboarding_archive_sha256,
    )
    mine.refresh_from_db()
    assert lifecycle.clinic_archive_problem(clinic=mine) is None  # the bytes alone look fine
    assert lifecycle.clinic_purge(clinic=mine) == "archive_clinic_mismatch"
    assert schema_exists(mine.schema_name)


def test_the_purge_locks_writers_out_while_it_compares(archives: Path) -> None:
    clinic = offboarded("locked-out")
    statements: list[str] = []

    def record(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert lifecycle.clinic_purge(clinic=clinic) is None
    locks = [s for s in statements if s.startswith("LOCK TABLE")]
    assert len(locks) == 1 and locks[0].endswith("IN SHARE MODE")
    assert '"clinic_locked_out"."patients_accesslog"' in locks[0]
    assert statements.index(locks[0]) < next(i for i, s in enumerate(statements) if "DROP SCHEMA" in s)
