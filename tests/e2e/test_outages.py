"""Outages under a production-like web server (issue 20, faults 1 and 2): gunicorn with production
settings whose PostgreSQL and Redis (cache and broker) go through fault proxies (tests/faults.py).

- Redis cut: a patient records a diary entry and reads it back, with no 5xx; the outbox row of
  the entry's follow-up task waits for the relay.
- PostgreSQL cut: the API answers 503 problem+json with Retry-After and `service_unavailable`,
  `/readyz` on the clinic host names the database; restored, everything answers 200 again within
  seconds, with no restart.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import Membership, Role, User
from core.models import OutboxMessage
from patients.models import DiaryEntry, Patient
from tenants.models import Clinic
from tests.conftest import PASSWORD, make_member
from tests.e2e.test_production_run import Site
from tests.factories import PatientFactory
from tests.faults import FaultProxy, fault_proxy
from tests.workers import ROOT, database_url, free_port, stop_process_group, wait_until

HOST = "alpha.localhost"


class OutageSite(Site):
    def __init__(self, port: int, database: FaultProxy, redis: FaultProxy) -> None:
        super().__init__(port)
        self.database = database
        self.redis = redis


@pytest.fixture
def outage_site(committed_db: None) -> Iterator[OutageSite]:
    with fault_proxy(database_url()) as database, fault_proxy(settings.REDIS_URL) as redis:
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": database.url_for(database_url()),
            # The cache and the broker both go through the Redis proxy.
            "REDIS_URL": redis.url_for(settings.REDIS_URL),
            "SECRET_KEY": "outage-" + uuid.uuid4().hex * 2,
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PLATFORM_DOMAIN": "localhost",
            "ALLOWED_HOSTS": "localhost,.localhost",
            "SECURE_SSL_REDIRECT": "false",
            "TRUSTED_PROXY_IPS": "127.0.0.1,::1",
            "TRUSTED_PROXY_COUNT": "1",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "2",
            "EMAIL_URL": "consolemail://",
        }
        env.pop("CACHE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
        log = tempfile.NamedTemporaryFile("w+", prefix="csu-outage-", suffix=".log", delete=False)  # noqa: SIM115
        python = os.environ.get("PYTHON", str(ROOT / ".venv/bin/python"))
        process = subprocess.Popen(  # noqa: S603
            [python, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        site = OutageSite(port, database, redis)
        site.log = Path(log.name)
        try:
            ready = wait_until(lambda: _status(site, "GET", "/readyz", HOST) == 200, 60, 0.5)
            assert ready, "gunicorn did not become ready:\n" + site.log_tail()
            yield site
        finally:
            stop_process_group(process)


def _status(site: Site, method: str, path: str, host: str, token: str | None = None) -> int | None:
    try:
        return site.call(method, path, host, token).status_code
    except requests.RequestException:
        return None


@pytest.fixture
def patient_erin() -> Iterator[tuple[User, Patient]]:
    """A patient of alpha, committed (the server reads her from its own connections)."""
    alpha = Clinic.objects.get(slug="alpha")
    user = make_member(f"erin-{uuid.uuid4().hex[:8]}@example.com", alpha, Role.PATIENT, "Erin Patient")
    # Production settings verify with Argon2 or PBKDF2, not the test settings' fast hasher.
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save(update_fields=["password"])
    with tenant_context(alpha):
        patient = PatientFactory(user_id=user.pk, display_name="Erin P.", timezone="Europe/Berlin")
    connection.set_schema_to_public()
    try:
        yield user, patient
    finally:
        with tenant_context(alpha):
            DiaryEntry.objects.filter(patient=patient).delete()
            Patient.objects.filter(pk=patient.pk).delete()
            OutboxMessage.objects.filter(kwargs__patient_id=str(patient.pk)).delete()
        connection.set_schema_to_public()
        Membership.objects.filter(user=user).delete()
        User.objects.filter(pk=user.pk).delete()


def _sign_in(site: Site, user: User) -> str:
    answer = site.call("POST", "/api/v1/auth/token/", HOST, json={"email": user.email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access"])


@pytest.mark.slow
def test_a_patient_records_and_reads_her_diary_through_a_redis_outage(
    outage_site: OutageSite, patient_erin: tuple[User, Patient]
) -> None:
    site = outage_site
    user, patient = patient_erin
    token = _sign_in(site, user)
    day = patient.local_today() - timedelta(days=1)
    site.redis.cut()
    try:
        statuses = []
        for wheals in (1, 2, 3):  # each gunicorn worker meets the dead Redis, then its open breaker
            put = site.call(
                "PUT", f"/api/v1/me/diary/{day}/", HOST, token, json={"wheals": wheals, "itch": 1}
            )
            statuses.append(put.status_code)
            statuses.append(site.call("GET", "/api/v1/me/diary/", HOST, token).status_code)
            statuses.append(site.call("GET", "/api/v1/me/summary/", HOST, token).status_code)
        assert statuses == [201, 200, 200, 200, 200, 200, 200, 200, 200], site.log_tail()
        diary = site.call("GET", "/api/v1/me/diary/", HOST, token).json()
        assert [(e["day"], e["wheals"], e["itch"]) for e in diary] == [(str(day), 3, 1)]
        ready = site.call("GET", "/readyz", HOST)
        assert (ready.status_code, ready.json()["checks"]) == (
            503,
            {"database": "ok", "migrations": "ok", "keys": "ok", "cache": "fail", "broker": "fail"},
        )
        # The follow-up task could not be published: its outbox row waits for the relay.
        with tenant_context(Clinic.objects.get(slug="alpha")):
            waiting = OutboxMessage.objects.filter(kwargs__patient_id=str(patient.pk), sent_at__isnull=True)
            assert waiting.exists()
        connection.set_schema_to_public()
    finally:
        site.redis.restore()
    assert wait_until(lambda: _status(site, "GET", "/readyz", HOST) == 200, 30, 0.5), site.log_tail()


@pytest.mark.slow
def test_a_database_outage_answers_503_and_recovers_without_a_restart(
    outage_site: OutageSite, patient_erin: tuple[User, Patient]
) -> None:
    site = outage_site
    user, _ = patient_erin
    token = _sign_in(site, user)
    assert site.call("GET", "/api/v1/me/profile/", HOST, token).status_code == 200
    site.database.cut()
    try:
        for _ in range(4):  # both gunicorn workers, their persistent connections now dead
            refused = site.call("GET", "/api/v1/me/profile/", HOST, token)
            assert refused.status_code == 503, refused.text
            assert refused.headers["Content-Type"] == "application/problem+json"
            assert refused.headers["Retry-After"] == "5"
            assert refused.json()["code"] == "service_unavailable"
        # An uncached host: its clinic cannot be looked up, and readiness still says why.
        for host in (HOST, "beta.localhost", "localhost"):
            ready = site.call("GET", "/readyz", host)
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["database"] == "fail"
            assert ready.json()["checks"]["cache"] == "ok"
    finally:
        site.database.restore()
    restored_at = time.monotonic()
    assert wait_until(
        lambda: all(
            site.call("GET", "/api/v1/me/profile/", HOST, token).status_code == 200 for _ in range(4)
        ),
        30,
        0.2,
    ), site.log_tail()
    assert all(_status(site, "GET", "/readyz", host) == 200 for host in (HOST, "beta.localhost", "localhost"))
    assert time.monotonic() - restored_at < 10  # the issue: recovery without a hand, within seconds
