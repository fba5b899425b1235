"""Celery: tenant routing, and a real worker that runs each task in its clinic's schema."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import cache
from django_tenants.utils import tenant_context

from config.celery import app as celery_app
from config.celery import route_by_tenant
from tenants.models import Clinic
from tests.celery_probe import record_schema
from tests.waiting import wait_until
from tests.workers import running_worker


def test_tasks_are_routed_to_their_clinic_queue_or_platform() -> None:
    assert route_by_tenant("t", (), {}, {"headers": {"_schema_name": "clinic_alpha"}}) == {
        "queue": "tenant.clinic_alpha"
    }
    assert route_by_tenant("t", (), {}, {"headers": {"_schema_name": "public"}}) == {"queue": "platform"}
    assert route_by_tenant("t", (), {}, {}) == {"queue": "platform"}
    assert route_by_tenant("t", (), {}, {"queue": "explicit", "headers": {}}) == {"queue": "explicit"}


def probe_result(clinic: Clinic, key: str, deadline: float) -> object:
    """Wait for tests.record_schema to have written `key` in the clinic's cache namespace."""

    def written() -> object:
        with tenant_context(clinic):
            return cache.get(key)

    return wait_until(written, deadline - time.monotonic(), interval=0.2)


@pytest.mark.slow
def test_real_worker_runs_each_task_in_the_schema_of_the_clinic_that_sent_it(committed_db: None) -> None:
    clinics = {slug: Clinic.objects.get(slug=slug) for slug in ("alpha", "beta")}
    keys = {slug: f"probe-{uuid.uuid4()}" for slug in clinics}
    with running_worker():
        for slug, key in keys.items():
            with tenant_context(clinics[slug]):
                record_schema.delay(key)
        deadline = time.monotonic() + 60
        seen = {slug: probe_result(clinics[slug], key, deadline) for slug, key in keys.items()}
    assert seen == {
        "alpha": {"schema": "clinic_alpha", "slug": "alpha"},
        "beta": {"schema": "clinic_beta", "slug": "beta"},
    }


@pytest.mark.slow
def test_a_running_worker_picks_up_a_clinic_created_after_it_started(committed_db: None) -> None:
    from tenants.services import clinic_create, clinic_delete

    clinic = None
    try:
        with running_worker():
            # The worker is up before the clinic exists (ping itself waits up to a second).
            assert wait_until(lambda: celery_app.control.ping(timeout=1), 60, interval=0), (
                "worker did not start"
            )
            clinic = clinic_create(
                slug="late-joiner", name="Late Joiner"
            )  # broadcasts add_consumer on commit
            key = f"probe-{uuid.uuid4()}"
            with tenant_context(clinic):
                record_schema.delay(key)
            value = probe_result(clinic, key, time.monotonic() + 60)
        assert value == {"schema": "clinic_late_joiner", "slug": "late-joiner"}
    finally:
        if clinic is not None:
            clinic_delete(clinic=clinic)


@pytest.mark.django_db
def test_workers_reconcile_their_clinic_queues_every_minute(clinic_a: Clinic, clinic_b: Clinic) -> None:
    """A worker that missed the add_consumer broadcast (it was starting) picks the clinic up at
    the next reconciliation, and drops the queue of a clinic that left."""
    from types import SimpleNamespace

    from config.celery import ClinicQueueReconciler

    added: list[str] = []
    canceled: list[str] = []
    consumer = SimpleNamespace(
        task_consumer=SimpleNamespace(
            queues=[
                SimpleNamespace(name=n) for n in ("platform", "tenant.clinic_alpha", "tenant.clinic_gone")
            ]
        ),
        add_task_queue=added.append,
        cancel_task_queue=canceled.append,
    )
    ClinicQueueReconciler(consumer).reconcile(consumer)
    assert (added, canceled) == (["tenant.clinic_beta"], ["tenant.clinic_gone"])
