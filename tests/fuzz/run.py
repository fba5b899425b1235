"""`make fuzz`: schemathesis against a live server, per host and role.

A throwaway database (test settings) gets one clinic with a patient, a clinician on her care
team, a clinic admin and a platform operator. gunicorn serves it on loopback; schemathesis runs
the platform host's schema anonymously and as the operator, and the clinic host's schema as the
patient, the clinician and the admin, with the checks `not_a_server_error` and
`response_schema_conformance`. Exits non-zero on any finding.

Usage: `make fuzz` or `python tests/fuzz/run.py [--max-examples 10]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (str(ROOT), str(ROOT / "platform")):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"

import django  # noqa: E402

django.setup()

import pyotp  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from tests.waiting import wait_until  # noqa: E402
from tests.workers import database_url, free_port  # noqa: E402

PASSWORD = "fuzzing correct horse battery staple"
SETTINGS_EXCLUDED = ["--exclude-path", "/api/v1/admin/clinic/"]
SETTINGS_ONLY = ["--include-path", "/api/v1/admin/clinic/"]


def _seed() -> dict[str, str]:
    """The clinic and its people; returns bearer tokens per role (operator's via TOTP later)."""
    from accounts.models import Membership, TotpDevice, User
    from accounts.services import mfa_secret_issue, tokens_issue
    from billing.services import subscription_start
    from clinicians.models import CareTeam, Clinician
    from tenants.services import clinic_create
    from tests.factories import DiaryEntryFactory, PatientFactory, PrescriptionFactory

    clinic = clinic_create(slug="alpha", name="Fuzz Clinic", timezone="Europe/Berlin")
    subscription_start(clinic=clinic, plan_code="enterprise")
    people = {}
    for role, email in (
        ("patient", "patient@fuzz.example"),
        ("clinician", "doc@fuzz.example"),
        ("clinic_admin", "admin@fuzz.example"),
    ):
        user = User.objects.create_user(email, PASSWORD, full_name=role.title())
        Membership.objects.create(user=user, clinic=clinic, role=role)
        people[role] = user
    with tenant_context(clinic):
        patient = PatientFactory(
            user_id=people["patient"].pk, display_name="Fuzz Patient", timezone="Europe/Berlin"
        )
        doctor = Clinician.objects.create(user_id=people["clinician"].pk)
        CareTeam.objects.create(clinician=doctor, patient=patient, since=date(2020, 1, 1))
        today = patient.local_today()
        for offset in range(10):
            DiaryEntryFactory(patient=patient, day=today - timedelta(days=offset), wheals=1, itch=2)
        PrescriptionFactory(patient=patient, medication_id="cetirizine-10", start=today - timedelta(days=30))
    operator = User.objects.create_user("ops@fuzz.example", PASSWORD, is_staff=True)
    secret, _ = mfa_secret_issue(user=operator)
    TotpDevice.objects.filter(user=operator).update(confirmed_at=timezone.now())
    tokens = {
        role: tokens_issue(user=user, clinic=clinic, role=role)["access"] for role, user in people.items()
    }
    tokens["operator_totp"] = secret
    connection.set_schema_to_public()
    return tokens


def _operator_token(base: str, secret: str) -> str:
    import json

    body = json.dumps(
        {"email": "ops@fuzz.example", "password": PASSWORD, "otp": pyotp.TOTP(secret).now()}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        base + "/api/v1/platform/auth/token/",
        data=body,
        headers={"Host": "localhost", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())["access"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "8")))
    # One worker: with threads, hypothesis's lambda-source parsing (ast.parse) intermittently
    # raises CPython 3.11's "SystemError: AST constructor recursion depth mismatch" (its AST
    # recursion counter is not thread-safe), and schemathesis reports a runtime error for an
    # operation it never sent.
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    server = None
    failures = 0
    runs: list = []
    try:
        tokens = _seed()
        schemas = Path(tempfile.mkdtemp(prefix="csu-fuzz-"))
        call_command(
            "spectacular", urlconf="config.urls_public", file=str(schemas / "public.yaml"), validate=True
        )
        call_command(
            "spectacular", urlconf="config.urls_tenant", file=str(schemas / "tenant.yaml"), validate=True
        )
        port = free_port()
        server_log = (schemas / "server.log").open("w")
        print(f"server log: {server_log.name}", flush=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "LOG_LEVEL": "ERROR",
        }
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--log-level",
                "warning",
                "config.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)  # noqa: S310
            except OSError:
                return False
            return True

        wait_until(healthy, 60, interval=0.5)
        tokens["operator"] = _operator_token(base, tokens.pop("operator_totp"))
        runs = [
            ("platform host, anonymous", "public.yaml", "localhost", None, []),
            ("platform host, operator", "public.yaml", "localhost", tokens["operator"], []),
            ("clinic host, patient", "tenant.yaml", "alpha.localhost", tokens["patient"], []),
            ("clinic host, clinician", "tenant.yaml", "alpha.localhost", tokens["clinician"], []),
            # Clinic settings last: a fuzzed `mfa_required: true` would lock the admin out of the rest.
            (
                "clinic host, clinic admin",
                "tenant.yaml",
                "alpha.localhost",
                tokens["clinic_admin"],
                SETTINGS_EXCLUDED,
            ),
            (
                "clinic host, clinic admin, settings",
                "tenant.yaml",
                "alpha.localhost",
                tokens["clinic_admin"],
                SETTINGS_ONLY,
            ),
        ]
        for label, schema, host, token, *selection in runs:
            command = [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                str(schemas / schema),
                "--url",
                base,
                "-H",
                f"Host: {host}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                str(args.max_examples),
                "--workers",
                str(args.workers),
                "--seed",
                "20261129",
                "--suppress-health-check",
                "all",
                "--request-timeout",
                "30",
                "--warnings",
                "off",
            ]
            if token:
                command += ["-H", f"Authorization: Bearer {token}"]
            command += selection[0] if selection else []
            print(f"\n=== {label} ===", flush=True)
            result = subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603
            failures += result.returncode != 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)
    print(f"\nfuzzing: {failures} of {len(runs)} runs with findings", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
