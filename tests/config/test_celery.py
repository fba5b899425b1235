"""Celery: tenant routing, and a real worker that runs each task in its clinic's schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
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


@pytest.mark.slow
def test_real_worker_runs_each_task_in_the_schema_of_the_clinic_that_sent_it(committed_db: None) -> None:
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
    keys = {slug: f"probe-{uuid.uuid4()}" for slug in ("alpha", "beta")}
    celery_app.conf.task_always_eager = False  # test settings run tasks in-process; not here
    try:
        for slug, key in keys.items():
            with tenant_context(Clinic.objects.get(slug=slug)):
                record_schema.delay(key)
        seen: dict[str, object] = {}
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline and worker.poll() is None:
            for slug, key in keys.items():
                with tenant_context(Clinic.objects.get(slug=slug)):
                    value = cache.get(key)
                if value is not None:
                    seen[slug] = value
            time.sleep(0.2)
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert seen == {
        "alpha": {"schema": "clinic_alpha", "slug": "alpha"},
        "beta": {"schema": "clinic_beta", "slug": "beta"},
    }, output


@pytest.mark.slow
def test_a_running_worker_picks_up_a_clinic_created_after_it_started(committed_db: None) -> None:
    from django.conf import settings

    from tenants.services import clinic_create, clinic_delete

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
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    clinic = None
    celery_app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and not ready:  # the worker must be up before the clinic exists
            ready = bool(celery_app.control.ping(timeout=1))
        assert ready, "worker did not start"
        clinic = clinic_create(slug="late-joiner", name="Late Joiner")  # broadcasts add_consumer on commit
        key = f"probe-{uuid.uuid4()}"
        with tenant_context(clinic):
            record_schema.delay(key)
        value = None
        while value is None and time.monotonic() < deadline + 30:
            with tenant_context(clinic):
                value = cache.get(key)
            time.sleep(0.2)
        assert value == {"schema": "clinic_late_joiner", "slug": "late-joiner"}
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        worker.communicate(timeout=30)
        connection.set_schema_to_public()
        if clinic is not None:
            clinic_delete(clinic=clinic)
