"""HTTP load benchmark (issue 19; not `bench/http.py`: a module of that name in this folder would
shadow the standard library's `http` for every benchmark here): the platform as a browser or a phone meets it.

One run, on loopback:
- a throwaway database seeded with one clinic of P patients (default 100), each with W weeks
  (default 12) of once-daily diary entries, a twice-daily antihistamine with its dose logs, an
  every-4-weeks injection, a UCT every four weeks, a fresh summary row, and one clinician whose
  care team holds every patient;
- gunicorn with the production settings (deploy/run-local-prod.sh: gunicorn, a Celery worker
  and beat; WEB_CONCURRENCY sync workers, default 4) against it;
- wrk (Debian: `apt-get install wrk`), driven by a generated Lua script that rotates through
  every patient's access token, so per-user throttles see realistic users.

Phase 1, each endpoint alone for D seconds (default 8) with T threads and C connections
(defaults 2 and 8), beside `GET /healthz` (the floor: the same server, no database, no auth):
req/s, p50/p95/p99 and errors, and the ratio to /healthz's req/s.
Phase 2, the evening mix at once: patients pulling, reading their summary and diary, saving
entries (PUT) and pushing mutations; clinicians listing and opening patients. Each kind runs
in its own wrk process, so each gets its own figures; the total is their sum.

Errors (connection errors, timeouts, non-2xx answers) must be 0: the run exits non-zero
otherwise. Per-user throttles are raised for the run (THROTTLE_USER / THROTTLE_SYNC) so that a
hundred simulated users at machine speed are not refused as abuse; the throttle cache round
trips still happen on every request.

From the mix, the run estimates how many patients one such web host serves at the 20:00 peak,
on assumptions it prints.

Before phase 1 the server settles (`--settle`, 10 s) and each endpoint runs unmeasured for
`--warmup` seconds (2), so worker start-up is not measured.

Usage: `make bench-http` or `python bench/http_load.py [--patients 100] [--weeks 12] [--duration 8]
[--threads 2] [--connections 8] [--web-workers 4] [--settle 10] [--warmup 2]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

# The server runs with the production settings and this process mints the access tokens it
# checks: both must hold the same keys, set before Django reads its settings.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ["SECRET_KEY"] = "bench-http-" + uuid.uuid4().hex * 2
os.environ.pop("JWT_SIGNING_KEY", None)

import _setup  # noqa: E402, F401  (Django bootstrap)
import requests  # noqa: E402
from _server import free_port, start_server, stop_server  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.models import Membership, User  # noqa: E402
from accounts.services import tokens_issue  # noqa: E402
from clinicians.models import CareTeam  # noqa: E402
from clinicians.services import clinician_for_user  # noqa: E402
from patients.models import Consent, Patient  # noqa: E402
from patients.summary import summaries_refresh  # noqa: E402
from tenants.services import clinic_create  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SLUG = "bench-http"
HOST = f"{SLUG}.localhost"
PASSWORD = "bench http correct horse battery staple"  # noqa: S105

FILL_SQL = """
SET session_replication_role = replica;
INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at,
                                 created_at, updated_at, server_version, field_versions)
SELECT gen_random_uuid(), p.id, current_date - d, 'day', (random() * 3)::int, (random() * 3)::int, false, '',
       now() - d * interval '1 day', now(), now(), 1, '{}'
FROM patients_patient p CROSS JOIN generate_series(1, %(days)s) d
WHERE random() < 0.9;
INSERT INTO patients_prescription (id, created_at, updated_at, server_version, patient_id, medication_id, dose,
                                   frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), 1, p.id, 'cetirizine-10-x2', '10 mg', 'n_per_day', 2, 2,
       current_date - %(days)s FROM patients_patient p;
INSERT INTO patients_prescription (id, created_at, updated_at, server_version, patient_id, medication_id, dose,
                                   frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), 1, p.id, 'omalizumab-300-q4w', '300 mg', 'every_n_days', 28, 3,
       current_date - %(days)s FROM patients_patient p;
INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, server_version)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now(), 1
FROM patients_prescription r CROSS JOIN generate_series(1, %(days)s) d CROSS JOIN generate_series(1, 2) k
WHERE r.frequency_kind = 'n_per_day' AND random() < 0.85;
INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, server_version)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now(), 1
FROM patients_prescription r CROSS JOIN generate_series(1, %(days)s, 28) d
WHERE r.frequency_kind = 'every_n_days';
INSERT INTO patients_questionnaireresponse (id, patient_id, instrument, answers, score, period_end, recorded_at,
                                            created_at, server_version)
SELECT gen_random_uuid(), p.id, 'uct', '{"items": [2, 3, 2, 3]}', 10, current_date - d, now(), now(), 1
FROM patients_patient p CROSS JOIN generate_series(1, %(days)s, 28) d;
SET session_replication_role = DEFAULT;
ANALYZE patients_patient, patients_diaryentry, patients_prescription, patients_doselog,
        patients_questionnaireresponse;
"""


@dataclass
class Seeded:
    patient_tokens: list[str]
    patient_ids: list[str]
    clinician_token: str
    today: str


def seed(patients: int, weeks: int) -> Seeded:
    clinic = clinic_create(slug=SLUG, name="Bench HTTP clinic")
    clinician = User.objects.create_user(f"clinician@{SLUG}.example", PASSWORD, full_name="Dr Bench")
    Membership.objects.create(user=clinician, clinic=clinic, role="clinician")
    users = [
        User.objects.create_user(f"patient{i:04d}@{SLUG}.example", PASSWORD, full_name=f"Patient {i}")
        for i in range(patients)
    ]
    Membership.objects.bulk_create([Membership(user=u, clinic=clinic, role="patient") for u in users])
    days = weeks * 7
    with tenant_context(clinic):
        rows = []
        for i, user in enumerate(users):
            patient = Patient.objects.create(
                user_id=user.pk, display_name=f"Patient {i:04d}", timezone="Europe/Berlin"
            )
            # Enrolled patients have accepted the privacy notice (no write is stored without).
            Consent.objects.create(patient=patient, kind="privacy_notice", version="1")
            Patient.objects.filter(pk=patient.pk).update(
                enrolled_at=patient.enrolled_at - timedelta(days=days + 1)
            )
            rows.append(patient)
        profile = clinician_for_user(user_id=clinician.pk)
        CareTeam.objects.bulk_create(
            [CareTeam(clinician=profile, patient=p, role="primary", since=p.local_today() - timedelta(days=days + 1)) for p in rows]
        )
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL, {"days": days})
        summaries_refresh([p.pk for p in rows])
        today = rows[0].local_today().isoformat()
        ids = [str(p.pk) for p in rows]
    connection.set_schema_to_public()
    return Seeded(
        patient_tokens=[tokens_issue(user=u, clinic=clinic, role="patient")["access"] for u in users],
        patient_ids=ids,
        clinician_token=tokens_issue(user=clinician, clinic=clinic, role="clinician")["access"],
        today=today,
    )


# --- the server ------------------------------------------------------------------------------


# --- wrk -------------------------------------------------------------------------------------

# Every request goes to the clinic's host as the TLS-terminating proxy sends it. `tokens` rotate
# per request; `{patient}` in a path takes a patient id in turn; `body` is a Lua expression.
LUA_TEMPLATE = r"""
local tokens = {%(tokens)s}
local patients = {%(patients)s}
local method, template, body_kind = "%(method)s", "%(path)s", "%(body)s"
local today = "%(today)s"
local counter = 0
local next_tag = 0

function setup(thread)
  next_tag = next_tag + 1
  thread:set("thread_tag", next_tag)
end

local function uuid4()
  local hex = "0123456789abcdef"
  local parts = {}
  for i = 1, 32 do
    local r = math.random(1, 16)
    parts[i] = hex:sub(r, r)
  end
  local s = table.concat(parts)
  return s:sub(1, 8) .. "-" .. s:sub(9, 12) .. "-4" .. s:sub(14, 16) .. "-a" .. s:sub(18, 20) .. "-" .. s:sub(21, 32)
end

function init(args)
  math.randomseed(os.time() + (thread_tag or 0) * 7919)
  counter = math.random(0, #tokens - 1)
end

function request()
  counter = counter + 1
  local k = (counter %% #tokens) + 1
  local path = template:gsub("{patient}", patients[(counter %% #patients) + 1])
  local headers = {
    ["Host"] = "%(host)s",
    ["X-Forwarded-Proto"] = "https",
    ["Authorization"] = "Bearer " .. tokens[k],
    ["X-Schema-Version"] = "1",
  }
  local body = nil
  if body_kind == "diary" then
    headers["Content-Type"] = "application/json"
    body = string.format('{"wheals": %%d, "itch": %%d}', counter %% 4, (counter + 1) %% 4)
  elseif body_kind == "push" then
    headers["Content-Type"] = "application/json"
    body = string.format(
      '{"client_id": "%%s", "mutations": [{"mutation_id": 1, "table": "diary_entry", "id": "%%s", "op": "upsert",'
      .. ' "fields": {"day": "%%s", "wheals": %%d, "itch": %%d}}]}',
      uuid4(), uuid4(), today, counter %% 4, (counter + 2) %% 4)
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write("WRK_JSON ", string.format(
    '{"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d,'
    .. ' "p50": %%d, "p95": %%d, "p99": %%d}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)), "\n")
end
"""


@dataclass
class Endpoint:
    name: str
    method: str
    path: str
    body: str = ""
    who: str = "patient"  # whose access token: patient | clinician | anonymous


@dataclass
class Result:
    name: str
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


def lua_script(endpoint: Endpoint, seeded: Seeded, directory: Path) -> Path:
    tokens = {"patient": seeded.patient_tokens, "clinician": [seeded.clinician_token], "anonymous": [""]}[
        endpoint.who
    ]
    script = LUA_TEMPLATE % {
        "tokens": ", ".join(json.dumps(t) for t in tokens),
        "patients": ", ".join(json.dumps(p) for p in seeded.patient_ids),
        "method": endpoint.method,
        "path": endpoint.path.replace("{today}", seeded.today),
        "body": endpoint.body,
        "today": seeded.today,
        "host": HOST,
    }
    if endpoint.who == "anonymous":
        script = script.replace('["Authorization"] = "Bearer " .. tokens[k],', "")
    path = directory / f"{endpoint.name.replace(' ', '_').replace('/', '_')}.lua"
    path.write_text(script)
    return path


def wrk_start(
    endpoint: Endpoint,
    seeded: Seeded,
    base: str,
    directory: Path,
    *,
    threads: int,
    connections: int,
    duration: int,
) -> subprocess.Popen[str]:
    script = lua_script(endpoint, seeded, directory)
    return subprocess.Popen(  # noqa: S603
        [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base + "/",  # the script's request() sets each request's path
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wrk_result(endpoint: Endpoint, process: subprocess.Popen[str]) -> Result:
    output, _ = process.communicate()
    line = next((ln for ln in output.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result for {endpoint.name}:\n{output}")
    data: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        name=endpoint.name,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50=data["p50"] / 1000,
        p95=data["p95"] / 1000,
        p99=data["p99"] / 1000,
        errors=errors,
    )


def check_once(endpoint: Endpoint, seeded: Seeded, base: str) -> None:
    """One request by hand before the load: a wrong path or body fails here, with its answer."""
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Schema-Version": "1"}
    if endpoint.who != "anonymous":
        token = seeded.patient_tokens[0] if endpoint.who == "patient" else seeded.clinician_token
        headers["Authorization"] = f"Bearer {token}"
    path = endpoint.path.replace("{patient}", seeded.patient_ids[0]).replace("{today}", seeded.today)
    body: Any = None
    if endpoint.body == "diary":
        body = {"wheals": 1, "itch": 1}
    elif endpoint.body == "push":
        body = {
            "client_id": str(uuid.uuid4()),
            "mutations": [
                {
                    "mutation_id": 1,
                    "table": "diary_entry",
                    "id": str(uuid.uuid4()),
                    "op": "upsert",
                    "fields": {"day": seeded.today, "wheals": 1, "itch": 1},
                }
            ],
        }
    response = requests.request(endpoint.method, base + path, headers=headers, json=body, timeout=30)
    if response.status_code >= 300:
        raise SystemExit(f"{endpoint.name}: {response.status_code} {response.text[:400]}")


WRK = shutil.which("wrk") or "wrk"

ALONE = [
    Endpoint("GET /healthz", "GET", "/healthz", who="anonymous"),
    Endpoint("GET /api/v1/auth/me/", "GET", "/api/v1/auth/me/"),
    Endpoint("GET /api/v1/me/summary/", "GET", "/api/v1/me/summary/"),
    Endpoint("GET /api/v1/me/diary/ (28 days)", "GET", "/api/v1/me/diary/"),
    Endpoint("PUT /api/v1/me/diary/<today>/", "PUT", "/api/v1/me/diary/{today}/", body="diary"),
    Endpoint("GET /api/v1/sync/pull/ (up to date)", "GET", "/api/v1/sync/pull/?limit=200"),
    Endpoint("POST /api/v1/sync/push/ (1 mutation)", "POST", "/api/v1/sync/push/", body="push"),
    Endpoint(
        "GET /api/v1/portal/patients/?limit=50", "GET", "/api/v1/portal/patients/?limit=50", who="clinician"
    ),
    Endpoint(
        "GET /api/v1/portal/patients/<id>/", "GET", "/api/v1/portal/patients/{patient}/", who="clinician"
    ),
]

# The evening mix: (endpoint, connections). Patients dominate; a few clinicians work the portal.
MIX = [
    (ALONE[5], 2),  # sync pull: every app open and every push is followed by one
    (ALONE[6], 1),  # sync push: saving an entry or a dose offline-first
    (ALONE[2], 1),  # summary: the History screen
    (ALONE[3], 1),  # diary: the calendar
    (ALONE[4], 1),  # PUT diary: a save straight to the API
    (ALONE[1], 1),  # auth/me: app start
    (ALONE[7], 1),  # portal list
    (ALONE[8], 1),  # portal patient detail
]

# Peak assumptions for the capacity estimate.
SESSION_REQUESTS = 6  # app open: me + pull + summary + diary; save: push + pull
PEAK_SHARE = 0.5  # half of the patients open the app in the evening peak…
PEAK_WINDOW_S = 30 * 60  # …within the half hour after their 20:00 reminder
PEAK_FACTOR = 3  # and the busiest minute of that half hour carries 3× its average


def print_table(rows: list[Result], floor_rps: float | None) -> None:
    print(
        f"  {'request':<44} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs /healthz':>12}"
    )
    for r in rows:
        ratio = f"{r.rps / floor_rps:12.2f}" if floor_rps else f"{'':>12}"
        print(f"  {r.name:<44} {r.rps:9,.0f} {r.p50:8.1f} {r.p95:8.1f} {r.p99:8.1f} {r.errors:7d} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--settle", type=int, default=10, help="seconds to let the server start")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per endpoint")
    args = parser.parse_args()
    if shutil.which(WRK) is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian) or `brew install wrk`")

    db_config = setup_databases(verbosity=0, interactive=False)
    process = None
    try:
        started = time.perf_counter()
        seeded = seed(args.patients, args.weeks)
        print(
            f"seeded {args.patients} patients × {args.weeks} weeks in {time.perf_counter() - started:.1f} s; "
            f"gunicorn: {args.web_workers} sync workers, production settings; wrk: {args.threads} threads, "
            f"{args.connections} connections, {args.duration} s per run"
        )
        port = free_port()
        process, log = start_server(
            port,
            name="bench-http",
            WEB_CONCURRENCY=str(args.web_workers),
            WORKER_CONCURRENCY="1",
            THROTTLE_USER="100000/min",
            THROTTLE_SYNC="100000/min",
            # Worker recycling (a memory guard, every 2,000 requests) would restart each worker
            # every few seconds at /healthz's rate: measured, it is start-up, not the requests.
            GUNICORN_MAX_REQUESTS="1000000",
        )
        base = f"http://127.0.0.1:{port}"
        for endpoint in ALONE:
            check_once(endpoint, seeded, base)
        with tempfile.TemporaryDirectory(prefix="csu-bench-http-") as tmp:
            directory = Path(tmp)
            # Warm-up, not measured: every worker process imports its lazy modules and opens its
            # connections, and the Celery worker and beat finish starting (their first tasks ran
            # into the first runs before, putting seconds into /healthz's p95).
            time.sleep(args.settle)

            def each_alone(duration: int) -> list[Result]:
                return [
                    wrk_result(
                        endpoint,
                        wrk_start(
                            endpoint,
                            seeded,
                            base,
                            directory,
                            threads=args.threads,
                            connections=args.connections,
                            duration=duration,
                        ),
                    )
                    for endpoint in ALONE
                ]

            each_alone(args.warmup)  # warm-up: results not kept
            print("\nPhase 1: each request alone")
            alone = each_alone(args.duration)
            floor = alone[0].rps
            print_table(alone, floor)

            print("\nPhase 2: the evening mix, all at once (one wrk per kind; connections in brackets)")
            runners = [
                (
                    endpoint,
                    wrk_start(
                        endpoint,
                        seeded,
                        base,
                        directory,
                        threads=1,
                        connections=conns,
                        duration=args.duration,
                    ),
                    conns,
                )
                for endpoint, conns in MIX
            ]
            mixed = [wrk_result(endpoint, runner) for endpoint, runner, _ in runners]
            for result, (_, _, conns) in zip(mixed, runners, strict=True):
                result.name = f"{result.name} [{conns}]"
            print_table(mixed, None)
            total = sum(r.rps for r in mixed)
            patient_rps = sum(r.rps for r in mixed if "portal" not in r.name)
            errors = sum(r.errors for r in alone + mixed)
            print(f"  {'total':<44} {total:9,.0f}   (patients' requests {patient_rps:,.0f}/s)")

        peak_rps_per_patient = SESSION_REQUESTS * PEAK_SHARE * PEAK_FACTOR / PEAK_WINDOW_S
        capacity = patient_rps / peak_rps_per_patient
        print(
            f"\nCapacity at the 20:00 peak, on these assumptions: a session is {SESSION_REQUESTS} requests; "
            f"{PEAK_SHARE:.0%} of patients open the app within {PEAK_WINDOW_S // 60} minutes of their reminder; the "
            f"busiest minute carries {PEAK_FACTOR}× the average → {peak_rps_per_patient * 1000:.2f} req/s per 1,000 "
            f"patients. At the mix's patient rate of {patient_rps:,.0f} req/s, one {os.cpu_count()}-core web host "
            f"(PostgreSQL, Redis and the worker on the same cores) serves about {capacity:,.0f} patients."
        )
        print(f"\nerrors: {errors}")
        if errors:
            print(log.read_text()[-3000:])
            raise SystemExit(1)
    finally:
        if process is not None:
            stop_server(process)
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
