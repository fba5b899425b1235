"""Portal list benchmark: one clinic, N patients (default 2,000) × 12 weeks of diary and dose
data. Times `GET /api/v1/portal/patients/?limit=50` (default sort and sorted by UAS7) through
the full middleware stack (Django test client), beside a bare authenticated endpoint
(`GET /api/v1/auth/me/`) in the same run; prints p50/p95 ms and SQL query counts.

Usage: `make bench-portal` or `python bench/portal.py [-n 2000] [--repeat 30]`. Throwaway database.
"""

from __future__ import annotations

import argparse
import time

import _setup  # noqa: F401  (Django bootstrap)
from _setup import summary
from django.db import connection
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
from accounts.services import tokens_issue
from tenants.services import clinic_create

FILL_SQL = """
INSERT INTO patients_patient (id, created_at, updated_at, display_name, timezone, locale, diary_mode, status, enrolled_at)
SELECT gen_random_uuid(), now(), now(), 'Patient ' || lpad(i::text, 5, '0'), 'Europe/Berlin', 'en', 'once', 'active', now()
FROM generate_series(1, %(n)s) i;

INSERT INTO patients_diaryentry (id, patient_id, day, slot, wheals, itch, angioedema, note_encrypted, recorded_at, created_at, updated_at)
SELECT gen_random_uuid(), p.id, current_date - d, 'day', (random() * 3)::int, (random() * 3)::int, false, '', now(), now(), now()
FROM patients_patient p CROSS JOIN generate_series(0, 83) d
WHERE random() < 0.85;

INSERT INTO patients_prescription (id, created_at, updated_at, patient_id, medication_id, dose, frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), p.id, 'cetirizine-10-x2', '10 mg', 'n_per_day', 2, 2, current_date - 120 FROM patients_patient p;
INSERT INTO patients_prescription (id, created_at, updated_at, patient_id, medication_id, dose, frequency_kind, frequency_value, guideline_step, start)
SELECT gen_random_uuid(), now(), now(), p.id, 'omalizumab-300-q4w', '300 mg', 'every_n_days', 28, 3, current_date - 120 FROM patients_patient p;

INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now()
FROM patients_prescription r CROSS JOIN generate_series(0, 83) d CROSS JOIN generate_series(1, 2) k
WHERE r.frequency_kind = 'n_per_day' AND random() < 0.85;
INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at)
SELECT gen_random_uuid(), r.patient_id, r.id, current_date - d, 'taken', now(), now()
FROM patients_prescription r CROSS JOIN generate_series(0, 83, 28) d
WHERE r.frequency_kind = 'every_n_days';

INSERT INTO patients_questionnaireresponse (id, patient_id, instrument, answers, score, period_end, recorded_at, created_at)
SELECT gen_random_uuid(), p.id, 'uct', '{"items": [2, 3, 2, 3]}', (random() * 16)::int, current_date - (random() * 20)::int, now(), now()
FROM patients_patient p;
ANALYZE;
"""


def measure(client: APIClient, path: str, repeat: int) -> tuple[list[float], int]:
    client.get(path)  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content[:300]
    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    return samples, len(captured)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", "--patients", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        clinic = clinic_create(slug="bench-portal", name="Bench Portal")
        admin = User.objects.create_user("admin@bench.example", "bench admin passphrase")
        Membership.objects.create(user=admin, clinic=clinic, role="clinic_admin")
        start = time.perf_counter()
        with tenant_context(clinic), connection.cursor() as cursor:
            cursor.execute(FILL_SQL, {"n": args.patients})
            cursor.execute(
                "SELECT (SELECT count(*) FROM patients_diaryentry), (SELECT count(*) FROM patients_doselog)"
            )
            diary, doses = cursor.fetchone()
        connection.set_schema_to_public()
        print(
            f"{args.patients} patients, {diary} diary entries, {doses} dose logs (filled in {time.perf_counter() - start:.1f} s)\n"
        )
        client = APIClient(HTTP_HOST="bench-portal.localhost")
        client.credentials(
            HTTP_AUTHORIZATION="Bearer "
            + tokens_issue(user=admin, clinic=clinic, role="clinic_admin")["access"]
        )
        print(f"{'request':<52} {'ms':>60}  queries")
        for label, path in [
            ("floor: GET /api/v1/auth/me/ (bare authenticated)", "/api/v1/auth/me/"),
            ("GET /api/v1/portal/patients/?limit=50", "/api/v1/portal/patients/?limit=50"),
            (
                "GET /api/v1/portal/patients/?limit=50&sort=-uas7",
                "/api/v1/portal/patients/?limit=50&sort=-uas7",
            ),
            (
                "GET /api/v1/portal/patients/?limit=50&pdc_below=0.8",
                "/api/v1/portal/patients/?limit=50&sort=pdc&pdc_below=0.8",
            ),
        ]:
            samples, queries = measure(client, path, args.repeat)
            print(f"{label:<52} {summary(samples)}  {queries}")
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
