"""Portal list, diary-write and midnight-roll benchmark for the per-patient summary rows
(`patients.summary`). Every figure is printed beside a floor measured in the same run; nothing
asserts wall-clock time.

1. List: for each size in `-n` (default 2,000 and 20,000), a fresh clinic schema is bulk-filled
   with raw SQL (12 weeks of diary at 85 %, two prescriptions with their doses, one UCT each),
   then `summaries_roll()` makes every summary row fresh (its time is printed) and the summary
   table is analyzed (as autovacuum would after a roll). Times
   `GET /api/v1/portal/patients/?limit=50` (default sort, `sort=-uas7`, a `pdc_below` filter)
   through the full middleware stack (Django test client) beside `GET /api/v1/auth/me/`
   (bare authenticated, the floor): p50/p95 ms, SQL queries per request, `pending` of the last
   response and the list/floor p50 ratio (goal ≤ 2×). `--explain` also prints
   `EXPLAIN (ANALYZE, BUFFERS)` of the list's SQL statement.
2. Diary write: in the same clinic, `patients.services.diary_entry_record` for one filled
   patient's today, each call in a transaction that is rolled back: with the real
   `patient_changed` (summary refresh + alerts outbox row) and with it replaced by a no-op (the
   floor), interleaved; and `summaries_refresh([pk])` alone. Prints p50/p95 ms and the difference.
3. Midnight roll (`--roll`, default 100,000; 0 skips it): a fresh clinic with that many patients
   (35 days of diary at 85 %, one once-daily prescription with doses over 28 days at 85 %, one
   UCT), every summary row stale as the insert trigger leaves it; times one `summaries_roll()`
   (progress printed every 10,000 rows) — total seconds and patients/s — beside two floors on
   the same rows: a raw `UPDATE patients_patientsummary SET computed_at = now()` of every row,
   and a SELECT reading every diary and dose row the roll reads.

Usage: `make bench-portal` or
`python bench/portal.py [-n 2000 20000] [--repeat 30] [--roll 100000] [--explain]`.
Throwaway database (Django's test database on the configured server).
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import _setup  # noqa: F401  (Django bootstrap)
from _setup import percentile, summary
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
from accounts.services import tokens_issue
from patients import services as patient_services
from patients import summary as patient_summary
from patients.models import Patient
from tenants.models import Clinic
from tenants.services import clinic_create

# Bulk fills run with `session_replication_role = replica`: the per-row sync-stamp triggers
# (migration 0012) would otherwise make a fill of 100,000 patients take the better part of an
# hour. So the rows carry a version of their own and the summary rows are inserted here, stale,
# as the patient insert trigger (and migration 0013's backfill) would insert them.
SUMMARY_ROWS = """
INSERT INTO patients_patientsummary (patient_id, stale_after, uas7_method, uas7_days, previous_method,
    previous_days, exceeds_mid, uct_instrument, last_uct_instrument, days_recorded, days_eligible,
    adherence, diary_gap, open_alerts)
SELECT p.id, '1970-01-01 00:00+00', 'missing', 0, 'missing', 0, false, '', '', 0, 0, '[]', 0, 0
FROM patients_patient p ON CONFLICT DO NOTHING;
"""

# Enrolled 120 days ago, so the 28-day windows are full (windows start at enrollment).
FILL_SQL = """
SET session_replication_role = replica;
INSERT INTO patients_patient (id, created_at, updated_at, display_name, timezone, locale, diary_mode, status, enrolled_at,
                              server_version, field_versions)
SELECT gen_random_uuid(), now(), now(), 'Patient ' || lpad(i::text, 6, '0'), 'Europe/Berlin', 'en', 'once', 'active',
       now() - interval '120 days', 1, '{}'
FROM generate_series(1, %(n)s) i;
{SUMMARY_ROWS}

INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at, created_at, updated_at,
                                 server_version, field_versions)
SELECT gen_random_uuid(), p.id, current_date - d, 'day', (random() * 3)::int, (random() * 3)::int, false, '', now(), now(), now(), 1, '{}'
FROM patients_patient p CROSS JOIN generate_series(0, 83) d
WHERE random() < 0.85;

INSERT INTO patients_prescription (id, created_at, updated_at, server_version, patient_id, medication_id, dose, frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), 1, p.id, 'cetirizine-10-x2', '10 mg', 'n_per_day', 2, 2, current_date - 120 FROM patients_patient p;
INSERT INTO patients_prescription (id, created_at, updated_at, server_version, patient_id, medication_id, dose, frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), 1, p.id, 'omalizumab-300-q4w', '300 mg', 'every_n_days', 28, 3, current_date - 120 FROM patients_patient p;

INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, server_version)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now(), 1
FROM patients_prescription r CROSS JOIN generate_series(0, 83) d CROSS JOIN generate_series(1, 2) k
WHERE r.frequency_kind = 'n_per_day' AND random() < 0.85;
INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, server_version)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now(), 1
FROM patients_prescription r CROSS JOIN generate_series(0, 83, 28) d
WHERE r.frequency_kind = 'every_n_days';

INSERT INTO patients_questionnaireresponse (id, patient_id, instrument, answers, score, period_end, recorded_at, created_at, server_version)
SELECT gen_random_uuid(), p.id, 'uct', '{"items": [2, 3, 2, 3]}', (random() * 16)::int, current_date - (random() * 20)::int, now(), now(), 1
FROM patients_patient p;
SET session_replication_role = DEFAULT;
ANALYZE patients_patient, patients_patientsummary, patients_diaryentry, patients_prescription,
        patients_doselog, patients_questionnaireresponse;
""".replace("{SUMMARY_ROWS}", SUMMARY_ROWS)

# The roll's clinic: lighter history (what one summary reads, and a little more).
ROLL_FILL_SQL = """
SET session_replication_role = replica;
INSERT INTO patients_patient (id, created_at, updated_at, display_name, timezone, locale, diary_mode, status, enrolled_at,
                              server_version, field_versions)
SELECT gen_random_uuid(), now(), now(), 'Patient ' || lpad(i::text, 6, '0'), 'Europe/Berlin', 'en', 'once', 'active',
       now() - interval '60 days', 1, '{}'
FROM generate_series(1, %(n)s) i;
{SUMMARY_ROWS}

INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at, created_at, updated_at,
                                 server_version, field_versions)
SELECT gen_random_uuid(), p.id, current_date - d, 'day', (random() * 3)::int, (random() * 3)::int, false, '', now(), now(), now(), 1, '{}'
FROM patients_patient p CROSS JOIN generate_series(0, 34) d
WHERE random() < 0.85;

INSERT INTO patients_prescription (id, created_at, updated_at, server_version, patient_id, medication_id, dose, frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), 1, p.id, 'cetirizine-10', '10 mg', 'n_per_day', 1, 1, current_date - 60 FROM patients_patient p;

INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, server_version)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now(), 1
FROM patients_prescription r CROSS JOIN generate_series(0, 27) d
WHERE random() < 0.85;

INSERT INTO patients_questionnaireresponse (id, patient_id, instrument, answers, score, period_end, recorded_at, created_at, server_version)
SELECT gen_random_uuid(), p.id, 'uct', '{"items": [2, 3, 2, 3]}', (random() * 16)::int, current_date - (random() * 20)::int, now(), now(), 1
FROM patients_patient p;
SET session_replication_role = DEFAULT;
ANALYZE patients_patient, patients_patientsummary, patients_diaryentry, patients_prescription,
        patients_doselog, patients_questionnaireresponse;
""".replace("{SUMMARY_ROWS}", SUMMARY_ROWS)

# Floor of the roll: everything the roll reads of the records, in one pass per table.
ROLL_READ_SQL = f"""
SELECT (SELECT count(*) + coalesce(sum(wheals + itch), 0) FROM patients_diaryentry
        WHERE deleted_at IS NULL AND day >= current_date - {patient_summary.HISTORY_DAYS + 1}),
       (SELECT count(*) FROM patients_doselog WHERE status = 'taken'
        AND scheduled_date >= current_date - {patient_summary.HISTORY_DAYS + 1}),
       (SELECT count(*) + coalesce(sum(score), 0) FROM patients_questionnaireresponse WHERE deleted_at IS NULL),
       (SELECT count(*) FROM patients_prescription)
"""

LIST_MARKER = "JOIN patients_patientsummary s ON"


def measure(client: APIClient, path: str, repeat: int) -> tuple[list[float], int, dict, list[dict]]:
    client.get(path)  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content[:300]
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    return samples, len(captured), response.json(), captured.captured_queries


def clinic_with_admin(slug: str) -> tuple[Clinic, User]:
    clinic = clinic_create(slug=slug, name=f"Bench {slug}")
    admin = User.objects.create_user(f"admin@{slug}.example", "bench admin passphrase")
    Membership.objects.create(user=admin, clinic=clinic, role="clinic_admin")
    return clinic, admin


def fill(clinic: Clinic, sql: str, n: int) -> str:
    start = time.perf_counter()
    with tenant_context(clinic), connection.cursor() as cursor:
        cursor.execute(sql, {"n": n})
        cursor.execute(
            "SELECT (SELECT count(*) FROM patients_patient), (SELECT count(*) FROM patients_diaryentry), "
            "(SELECT count(*) FROM patients_doselog), (SELECT count(*) FROM patients_patientsummary "
            "WHERE stale_after <= now())"
        )
        patients, diary, doses, stale = cursor.fetchone()
    connection.set_schema_to_public()
    return (
        f"{patients} patients, {diary} diary entries, {doses} dose logs, {stale} stale summary rows "
        f"(filled in {time.perf_counter() - start:.1f} s)"
    )


def roll(clinic: Clinic, *, progress: int = 0) -> tuple[int, float]:
    """One `summaries_roll()` in the clinic: (rows refreshed, seconds). With `progress`, a line
    every `progress` rows (counted by wrapping `summaries_refresh`, which the roll calls)."""
    real = patient_summary.summaries_refresh
    done = 0
    start = time.perf_counter()

    def counting(ids, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal done
        result = real(ids, **kwargs)
        before, done = done, done + len(result)
        if progress and done // progress > before // progress:
            elapsed = time.perf_counter() - start
            print(f"  … {done} rows in {elapsed:.1f} s ({done / elapsed:.0f}/s)", flush=True)
        return result

    patient_summary.summaries_refresh = counting
    try:
        with tenant_context(clinic):
            refreshed = patient_summary.summaries_roll()
    finally:
        patient_summary.summaries_refresh = real
        connection.set_schema_to_public()
    return refreshed, time.perf_counter() - start


def explain(clinic: Clinic, sql: str) -> None:
    with tenant_context(clinic), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        for (line,) in cursor.fetchall():
            print("    " + line)
    connection.set_schema_to_public()


def bench_list(n: int, repeat: int, show_plan: bool) -> None:
    slug = f"bench-portal-{n}"
    print(f"== list: {n} patients (clinic {slug}) ==")
    clinic, admin = clinic_with_admin(slug)
    print(fill(clinic, FILL_SQL, n))
    refreshed, seconds = roll(clinic)
    with tenant_context(clinic), connection.cursor() as cursor:
        # The roll rewrote every row: autovacuum would analyze the table soon after; without
        # it the planner still believes every stale_after is in 1970 (rows=1 estimates).
        cursor.execute("ANALYZE patients_patientsummary")
    connection.set_schema_to_public()
    print(
        f"summaries_roll() before timing: {refreshed} rows in {seconds:.1f} s ({refreshed / seconds:.0f}/s)\n"
    )

    client = APIClient(HTTP_HOST=f"{slug}.localhost")
    client.credentials(
        HTTP_AUTHORIZATION="Bearer " + tokens_issue(user=admin, clinic=clinic, role="clinic_admin")["access"]
    )
    print(f"{'request':<58} {'ms':>60}  queries  ratio  pending")
    floor_p50 = None
    for label, path in [
        ("floor: GET /api/v1/auth/me/ (bare authenticated)", "/api/v1/auth/me/"),
        ("GET /api/v1/portal/patients/?limit=50", "/api/v1/portal/patients/?limit=50"),
        ("GET /api/v1/portal/patients/?limit=50&sort=-uas7", "/api/v1/portal/patients/?limit=50&sort=-uas7"),
        (
            "GET /api/v1/portal/patients/?limit=50&sort=pdc&pdc_below=0.8",
            "/api/v1/portal/patients/?limit=50&sort=pdc&pdc_below=0.8",
        ),
    ]:
        samples, queries, body, captured = measure(client, path, repeat)
        p50 = percentile(samples, 50)
        if floor_p50 is None:
            floor_p50 = p50
            print(f"{label:<58} {summary(samples)}  {queries:>7}")
            continue
        print(
            f"{label:<58} {summary(samples)}  {queries:>7}  {p50 / floor_p50:4.1f}×  "
            f"{body.get('pending')} ({len(body['results'])} rows)"
        )
        if show_plan:
            for query in captured:
                print(f"    {float(query['time']) * 1000:6.1f} ms  {' '.join(query['sql'].split())[:110]}")
            statement = next((q["sql"] for q in captured if LIST_MARKER in q["sql"]), None)
            if statement:
                explain(clinic, statement)
    print("goal: list p50 ≤ 2× the /auth/me/ p50\n")
    bench_write(clinic, repeat)


def bench_write(clinic: Clinic, repeat: int) -> None:
    """The diary write with and without its summary refresh, rolled back each time."""
    real = patient_services.patient_changed
    samples: dict[str, list[float]] = {"without": [], "with": [], "refresh": []}
    with tenant_context(clinic):
        patient = Patient.objects.order_by("display_name").first()
        assert patient is not None
        day = patient.local_today()

        def timed(kind: str) -> None:
            start = time.perf_counter()
            with transaction.atomic():
                if kind == "refresh":
                    patient_summary.summaries_refresh([patient.pk])
                else:
                    patient_services.diary_entry_record(
                        patient=patient, day=day, slot="day", wheals=2, itch=1
                    )
                transaction.set_rollback(True)
            samples[kind].append((time.perf_counter() - start) * 1000)

        try:
            for i in range(repeat * 2 + 2):  # two warm rounds, then 2 × repeat interleaved
                for kind in ("without", "with", "refresh"):
                    patient_services.patient_changed = real if kind == "with" else (lambda patient: None)
                    timed(kind)
                    if i < 2:
                        samples[kind].pop()
        finally:
            patient_services.patient_changed = real
    connection.set_schema_to_public()
    floor = percentile(samples["without"], 50)
    print(f"{'diary write (diary_entry_record, rolled back)':<58} {'ms':>60}  Δ p50 vs floor")
    for kind, label in [
        ("without", "floor: write, patient_changed a no-op"),
        ("with", "write with patient_changed (refresh + alerts outbox)"),
        ("refresh", "summaries_refresh([pk]) alone"),
    ]:
        delta = "" if kind != "with" else f"  {percentile(samples[kind], 50) - floor:+.1f} ms"
        print(f"{label:<58} {summary(samples[kind])}{delta}")
    print()


def bench_roll(n: int) -> None:
    slug = "bench-roll"
    print(f"== midnight roll: {n} patients (clinic {slug}) ==")
    clinic, _ = clinic_with_admin(slug)
    print(fill(clinic, ROLL_FILL_SQL, n))
    with tenant_context(clinic), connection.cursor() as cursor:
        start = time.perf_counter()
        cursor.execute(ROLL_READ_SQL)
        cursor.fetchone()
        read_floor = time.perf_counter() - start
    connection.set_schema_to_public()
    print("summaries_roll() …", flush=True)
    refreshed, seconds = roll(clinic, progress=10_000)
    with tenant_context(clinic):
        with transaction.atomic(), connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute("UPDATE patients_patientsummary SET computed_at = now()")
            updated = cursor.rowcount
        update_floor = time.perf_counter() - start
        stale = patient_summary.PatientSummary.objects.filter(stale_after__lte=timezone.now()).count()
        fresh_until = (
            patient_summary.PatientSummary.objects.order_by("stale_after")
            .values_list("stale_after", flat=True)
            .first()
        )
    connection.set_schema_to_public()
    print(
        f"summaries_roll(): {refreshed} rows in {seconds:.1f} s = {refreshed / seconds:.0f} patients/s "
        f"({seconds / max(refreshed, 1) * 1000:.2f} ms each); {stale} still stale; "
        f"next roll due {fresh_until and (fresh_until - timezone.now()) // timedelta(minutes=1)} min from now"
    )
    print(
        f"floor: UPDATE of all {updated} summary rows (one statement, committed) {update_floor:.2f} s "
        f"— the roll is {seconds / update_floor:.0f}× that"
    )
    print(
        f"floor: SELECT reading every diary/dose/UCT/prescription row the roll reads {read_floor:.2f} s "
        f"— the roll is {seconds / read_floor:.0f}× that\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--patients", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--roll", type=int, default=100_000, help="patients of the roll clinic; 0 skips")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the list's SQL")
    args = parser.parse_args()
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        for n in args.patients:
            bench_list(n, args.repeat, args.explain)
        if args.roll:
            bench_roll(args.roll)
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
