"""End to end over HTTP against a production-like run (deploy/run-local-prod.sh: gunicorn, a
Celery worker and beat, production settings, loopback): sign up a clinic, enroll a patient,
record a diary week, sync, see the patient in the portal, receive a reminder delivery from
beat's dispatcher, and generate a report."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from cryptography.fernet import Fernet

from accounts.models import Membership, User
from billing.models import Subscription
from tenants.models import Clinic
from tests.workers import ROOT, database_url, free_port, stop_process_group, wait_until

PASSWORD = "e2e correct horse battery staple"


class Site:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log: Path | None = None

    def log_tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log else ""

    def call(
        self,
        method: str,
        path: str,
        host: str,
        token: str | None = None,
        extra_headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> requests.Response:
        # As the TLS-terminating proxy in front of gunicorn would send it.
        headers = {
            "Host": host,
            "X-Forwarded-Proto": "https",
            **({"Authorization": f"Bearer {token}"} if token else {}),
            **(extra_headers or {}),
        }
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def production_run(committed_db: None) -> Iterator[Site]:
    import redis
    from django.conf import settings

    # Earlier tests' requests (test settings: no practical limits) share the throttle history
    # in Redis with this run, whose production limits would then refuse the signup.
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="*throttle*"):
        client.delete(key)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": "e2e-" + uuid.uuid4().hex * 2,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PORT": str(port),
        "EMAIL_URL": "consolemail://",
        "PYTHON": os.environ.get("PYTHON", str(ROOT / ".venv/bin/python")),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = tempfile.NamedTemporaryFile("w+", prefix="csu-prod-run-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        ["bash", str(ROOT / "deploy/run-local-prod.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    site = Site(port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(site.base + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # refused while starting, or slow on a busy machine
                time.sleep(0.5)
        else:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            pytest.fail("the production run did not start:\n" + Path(log.name).read_text()[-3000:])
        site.log = Path(log.name)
        from config.celery import app as celery_app

        # The worker is listening (so it hears the new clinic's add_consumer broadcast).
        assert wait_until(lambda: celery_app.control.ping(timeout=1), 60, 0.5), site.log_tail()
        yield site
    finally:
        stop_process_group(process)


def _cleanup(slug: str, emails: list[str]) -> None:
    from tenants.services import clinic_delete

    clinic = Clinic.objects.filter(slug=slug).first()
    Membership.objects.filter(user__email__in=emails).delete()
    User.objects.filter(email__in=emails).delete()
    if clinic is not None:
        Subscription.objects.filter(clinic=clinic).delete()
        clinic_delete(clinic=clinic)


@pytest.mark.slow
def test_a_clinic_and_a_patient_through_the_production_run(production_run: Site) -> None:
    site = production_run
    slug = f"e2e-{uuid.uuid4().hex[:8]}"
    host = f"{slug}.localhost"
    admin_email, patient_email = f"admin-{slug}@example.com", f"patient-{slug}@example.com"
    try:
        # Sign up a clinic (platform host).
        signup = site.call(
            "POST",
            "/api/v1/clinics/",
            "localhost",
            json={
                "name": "E2E Clinic",
                "slug": slug,
                "timezone": "Europe/Berlin",
                "country": "DE",
                "admin": {"email": admin_email, "full_name": "E2E Admin", "password": PASSWORD},
            },
        )
        assert signup.status_code == 202, signup.text
        assert signup.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        # The worker emails the confirmation link (the console backend prints it to the log).
        link = wait_until(
            lambda: re.search(r"/verify-email#token=([\w:.-]+)", site.log.read_text()), 60, 0.5
        )
        assert link, "no confirmation email\n" + site.log_tail()
        confirmed = site.call("POST", "/api/v1/auth/verify-email/", "localhost", json={"token": link.group(1)})
        assert (confirmed.status_code, confirmed.json()["clinic"]["status"]) == (200, "active"), confirmed.text
        admin = site.call(
            "POST", "/api/v1/auth/token/", host, json={"email": admin_email, "password": PASSWORD}
        )
        assert admin.status_code == 200, admin.text
        admin_token = admin.json()["access"]

        # Enroll a patient; the patient redeems the code.
        enrolled = site.call(
            "POST", "/api/v1/portal/patients/", host, admin_token, json={"display_name": "E2E Patient"}
        )
        assert enrolled.status_code == 201, enrolled.text
        patient_id = enrolled.json()["id"]
        joined = site.call(
            "POST",
            "/api/v1/auth/enroll/",
            host,
            json={
                "code": enrolled.json()["enrollment_code"],
                "email": patient_email,
                "password": PASSWORD,
                "privacy_notice_version": 1,
            },
        )
        assert joined.status_code == 201, joined.text
        patient_token = joined.json()["access"]

        # A diary week through the API, one more day through sync.
        today = date.fromisoformat(
            site.call("GET", "/api/v1/me/profile/", host, patient_token).json()["today"]
        )
        for offset in range(1, 7):
            day = today - timedelta(days=offset)
            put = site.call(
                "PUT", f"/api/v1/me/diary/{day}/", host, patient_token, json={"wheals": 2, "itch": 2}
            )
            assert put.status_code == 201, put.text
        sync_headers = {"X-Schema-Version": "1"}
        pushed = site.call(
            "POST",
            "/api/v1/sync/push/",
            host,
            patient_token,
            extra_headers=sync_headers,
            json={
                "client_id": str(uuid.uuid4()),
                "mutations": [
                    {
                        "mutation_id": 1,
                        "table": "diary_entry",
                        "op": "upsert",
                        "id": str(uuid.uuid4()),
                        "fields": {"day": str(today), "slot": "day", "wheals": 2, "itch": 2},
                    }
                ],
            },
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["results"][0]["status"] == "applied"
        pulled = site.call("GET", "/api/v1/sync/pull/", host, patient_token, extra_headers=sync_headers)
        assert len(pulled.json()["changes"]["diary_entry"]["upserted"]) == 7

        # The portal sees the patient with a complete UAS7 week (4 × 7 = 28, severe).
        listed = site.call("GET", "/api/v1/portal/patients/", host, admin_token).json()["results"]
        row = next(r for r in listed if r["id"] == patient_id)
        assert (row["uas7"], row["band"]) == (28, "severe")

        # A reminder two minutes from now: beat's per-minute dispatcher, then the worker, send it.
        local_now = datetime.now(ZoneInfo("Europe/Berlin"))
        at = (local_now + timedelta(minutes=2)).strftime("%H:%M")
        created = site.call(
            "POST",
            "/api/v1/me/reminders/",
            host,
            patient_token,
            json={"kind": "medication_free", "local_time": at},
        )
        assert created.status_code == 400  # unknown kind, named
        # Today's diary is recorded, so a diary reminder would be skipped: use a questionnaire one.
        created = site.call(
            "POST",
            "/api/v1/me/reminders/",
            host,
            patient_token,
            json={"kind": "questionnaire", "local_time": at},
        )
        assert created.status_code == 201, created.text
        delivery = wait_until(
            lambda: [
                d
                for d in site.call("GET", "/api/v1/me/reminder-deliveries/", host, patient_token).json()
                if d["status"] == "sent"
            ],
            240,
            2.0,
        )
        assert delivery, "no reminder delivery was sent\n" + site.log_tail()
        assert delivery[0]["channel"] == "email"  # no push subscription registered

        # A report for last week, generated by the worker.
        requested = site.call(
            "POST", f"/api/v1/portal/patients/{patient_id}/reports/", host, admin_token, json={}
        )
        assert requested.status_code == 202, requested.text
        report_url = requested.headers["Location"]
        report = wait_until(
            lambda: (r := site.call("GET", report_url, host, admin_token).json())["status"] == "ready" and r,
            120,
            2.0,
        )
        assert report, "the report was not generated\n" + site.log_tail()
        chart = site.call("GET", report["chart_url"], host, admin_token)
        assert (chart.status_code, chart.headers["Content-Type"], chart.content[:4]) == (
            200,
            "image/png",
            b"\x89PNG",
        )
    finally:
        _cleanup(slug, [admin_email, patient_email])
