"""Invoice numbers under concurrency (real commits, threads): no gap, no duplicate."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from billing.models import Invoice, InvoiceCounter, Subscription, UsageRecord
from billing.services import invoice_generate
from tenants.models import Clinic
from tests.billing.test_billing import NOVEMBER, subscribe


@pytest.mark.slow
def test_concurrent_invoice_runs_never_leave_a_gap_or_a_duplicate_number(committed_db: None) -> None:
    from tenants.services import clinic_create, clinic_delete

    suffix = uuid.uuid4().hex[:6]
    clinics = [clinic_create(slug=f"bill-{suffix}-{i}", name=f"Bill {i}") for i in range(5)]
    for clinic in clinics:
        subscribe(clinic)
    year = datetime.now(UTC).year
    before = InvoiceCounter.objects.filter(year=year).values_list("last", flat=True).first() or 0
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []
    results: list[object] = []

    def run(clinic: Clinic) -> None:
        try:
            barrier.wait()
            results.append(invoice_generate(clinic=clinic, period=NOVEMBER))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(clinic,)) for clinic in clinics for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert len(results) == 10 and None not in results, results
        assert Invoice.objects.filter(clinic__in=clinics).count() == 5
        numbers = sorted(
            int(n.rsplit("-", 1)[1])
            for n in Invoice.objects.filter(clinic__in=clinics).values_list("number", flat=True)
        )
        assert numbers == list(range(before + 1, before + 6))
        assert InvoiceCounter.objects.get(year=year).last == before + 5
    finally:
        Invoice.objects.filter(clinic__in=clinics).delete()
        InvoiceCounter.objects.filter(year=year).update(last=before)
        Subscription.objects.filter(clinic__in=clinics).delete()
        UsageRecord.objects.filter(clinic__in=clinics).delete()
        for clinic in clinics:
            clinic_delete(clinic=clinic)
