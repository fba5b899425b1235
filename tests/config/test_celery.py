"""Celery: tenant routing, and a real worker that runs each task in its clinic's schema."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.db import connection
from django_tenants.utils import tenant_context

from config.celery import app as celery_app
from config.celery import route_by_tenant
from tenants.models import Clinic
from tests.celery_probe import record_schema

ROOT = Path(__file__).resolve().parents[2]


def test_tasks_are_routed_to_their_clinic_queue_or_platform() -> None:
    assert route_by_tenant("t", (), {}, {"headers": {"_schema_name": "clinic_alpha"}}) == {
        "queue": "tenant.clinic_alpha"
    }
    assert route_by_tenant("t", (), {}, {"headers": {"_schema_name": "public"}}) == {"queue": "platform"}
    assert route_by_tenant("t", (), {}, {}) == {"queue": "platform"}
    assert route_by_tenant("t", (), {}, {"queue": "explicit", "headers": {}}) == {"queue": "explicit"}


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"]) + (f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(host, safe='')}%2F{db['NAME']}"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@contextlib.contextmanager
def running_worker() -> Iterator[subprocess.Popen[str]]:
    """A real Celery worker on the test database and Redis, with tasks really sent to it (the
    test settings otherwise run tasks in-process)."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
    }
    worker = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-I",
            "tests.celery_probe",
            "-P",
            "solo",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    celery_app.conf.task_always_eager = False
    try:
        yield worker
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        worker.communicate(timeout=30)
        connection.set_schema_to_public()


def probe_result(clinic: Clinic, key: str, deadline: float) -> object:
    """Wait for tests.record_schema to have written `key` in the clinic's cache namespace."""
    while time.monotonic() < deadline:
        with tenant_context(clinic):
            value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.2)
    return None


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
            deadline = time.monotonic() + 60
            ready = False
            while time.monotonic() < deadline and not ready:  # the worker is up before the clinic exists
                ready = bool(celery_app.control.ping(timeout=1))
            assert ready, "worker did not start"
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
