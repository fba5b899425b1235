"""Sync benchmark, in one run: push 10 batches of 500 diary/dose mutations for each of N
patients (default 100) through `POST /api/v1/sync/push/` and report mutations/s (the first
batch creates 25 diary days, later ones edit them, as a device does; `--recreate-days` creates
them again under new ids each time, the natural-key merge path); insert the
same rows with a raw `executemany` (triggers and all) and report rows/s; print the ratio. Then
4 devices of 4 patients push a 500-mutation batch at once, several rounds: the clinic's
throughput and the p95 of one batch (issue 15). Then pull 20,000 changes in pages of 1,000 through `GET /api/v1/sync/pull/` and report changes/s.

Usage: `make bench-sync` or `python bench/sync.py [-n 100] [--batches 10]`. Throwaway database.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from datetime import timedelta

import _setup  # noqa: F401  (Django bootstrap)
from django.db import connection
from django.test.utils import setup_databases, teardown_databases
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import Membership, User
from accounts.services import tokens_issue
from patients.models import Consent, Patient, Prescription
from tenants.services import clinic_create

BATCH = 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", "--patients", type=int, default=100)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 4 concurrent batches")
    parser.add_argument(
        "--recreate-days",
        action="store_true",
        help="every batch creates the 25 diary days under new ids (natural-key merges, the slow path) "
        "instead of editing the device's own entries",
    )
    args = parser.parse_args()
    args.patients = max(args.patients, 24)  # 4 of them push concurrently
    SimpleRateThrottle.THROTTLE_RATES = {key: "1000000/min" for key in SimpleRateThrottle.THROTTLE_RATES}
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        clinic = clinic_create(slug="bench-sync", name="Bench Sync")
        # A wide late-entry window so 500 distinct diary days per batch are all accepted.
        clinic.diary_late_entry_days = 30
        clinic.save(update_fields=["diary_late_entry_days"])
        people = []
        for i in range(args.patients):
            user = User.objects.create_user(f"p{i}@bench.example", "bench patient passphrase")
            Membership.objects.create(user=user, clinic=clinic, role="patient")
            with tenant_context(clinic):
                patient = Patient.objects.create(user_id=user.pk, display_name=f"P{i}", timezone="UTC")
                # Enrolled patients have accepted the privacy notice (no push is stored without).
                Consent.objects.create(patient=patient, kind="privacy_notice", version="1")
                rx = Prescription.objects.create(
                    patient=patient,
                    medication_id="cetirizine-10-x4",
                    dose="10 mg",
                    frequency_kind="n_per_day",
                    frequency_value=4,
                    guideline_step=2,
                    start=patient.local_today() - timedelta(days=400),
                )
            connection.set_schema_to_public()
            client = APIClient(HTTP_HOST="bench-sync.localhost")
            client.credentials(
                HTTP_AUTHORIZATION="Bearer "
                + tokens_issue(user=user, clinic=clinic, role="patient")["access"]
            )
            people.append((patient, rx, client))
        today = people[0][0].local_today()

        def mutations(rx: Prescription, batch: int, diary: dict[str, int | None] | None = None) -> list[dict]:
            """500 mutations: one diary entry per day of the late window, then doses. With `diary`
            (the device's entry ids and the versions it last saw), later batches edit the device's
            own entries, as the PWA does; without, every batch creates the days under new ids
            (natural-key merges with the entries already there, the conflict path)."""
            ids = list(diary) if diary else [str(uuid.uuid4()) for _ in range(25)]
            out = []
            for k in range(BATCH):
                mid = batch * BATCH + k + 1
                if k < 25:
                    out.append(
                        {
                            "mutation_id": mid,
                            "table": "diary_entry",
                            "id": ids[k],
                            "op": "upsert",
                            "base_version": diary[ids[k]] if diary else None,
                            "fields": {
                                "day": str(today - timedelta(days=k)),
                                "wheals": (k + batch) % 4,
                                "itch": (k + 1) % 4,
                            },
                        }
                    )
                else:
                    out.append(
                        {
                            "mutation_id": mid,
                            "table": "dose_log",
                            "id": str(uuid.uuid4()),
                            "op": "upsert",
                            "fields": {
                                "prescription": str(rx.pk),
                                "date": str(today - timedelta(days=k % 25)),
                                "status": "taken",
                            },
                        }
                    )
            return out

        total, start = 0, time.perf_counter()
        statuses: dict[str, int] = {}
        for _patient, rx, client in people[:10]:
            device = str(uuid.uuid4())
            diary: dict[str, int | None] = {}
            for batch in range(args.batches):
                body = mutations(rx, batch, None if args.recreate_days else diary)
                response = client.post(
                    "/api/v1/sync/push/",
                    {"client_id": device, "mutations": body},
                    format="json",
                    HTTP_X_SCHEMA_VERSION="1",
                )
                assert response.status_code == 200, response.content[:300]
                for m, result in zip(body, response.json()["results"], strict=True):
                    statuses[result["status"]] = statuses.get(result["status"], 0) + 1
                    if m["table"] == "diary_entry":
                        diary[m["id"]] = result["server_version"]
                total += BATCH
        push_seconds = time.perf_counter() - start
        push_rate = total / push_seconds

        rows = []
        for patient, rx, _client in people[10:20]:
            for k in range(args.batches * BATCH):
                rows.append((uuid.uuid4(), patient.pk, rx.pk, today - timedelta(days=k % 25)))
        start = time.perf_counter()
        with tenant_context(clinic), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, "
                "server_version) VALUES (%s, %s, %s, %s, 'taken', now(), now(), 0)",
                rows,
            )
        raw_seconds = time.perf_counter() - start
        raw_rate = len(rows) / raw_seconds
        connection.set_schema_to_public()

        print(
            f"push: {total} mutations from 10 patients × {args.batches} batches of {BATCH} in {push_seconds:.1f} s "
            f"= {push_rate:,.0f} mutations/s ({', '.join(f'{n} {k}' for k, n in sorted(statuses.items()))})"
        )
        print(
            f"raw executemany INSERT (same rows, triggers on): {len(rows)} rows in {raw_seconds:.1f} s = {raw_rate:,.0f} rows/s"
        )
        print(f"push / raw = {push_rate / raw_rate:.2f}")

        # One clinic, 4 devices (of 4 patients) pushing a 500-mutation batch at the same moment,
        # `--rounds` times: the clinic's throughput and the p95 wait of one batch. Issue 15's floor
        # was 200–265 mutations/s and a p95 of about 15 s while a push held the clinic's version
        # lock for its whole batch.
        latencies: list[float] = []
        concurrent_total, concurrent_seconds = 0, 0.0
        crowd = people[20:24]
        devices = [str(uuid.uuid4()) for _ in crowd]
        for round_ in range(args.rounds):
            barrier = threading.Barrier(len(crowd))

            def one_device(index: int, round_: int = round_, barrier: threading.Barrier = barrier) -> None:
                _patient, rx, client = crowd[index]
                body = {"client_id": devices[index], "mutations": mutations(rx, round_)}
                try:
                    barrier.wait()
                    began = time.perf_counter()
                    response = client.post(
                        "/api/v1/sync/push/", body, format="json", HTTP_X_SCHEMA_VERSION="1"
                    )
                    latencies.append(time.perf_counter() - began)
                    assert response.status_code == 200, response.content[:300]
                finally:
                    connection.close()

            threads = [threading.Thread(target=one_device, args=(i,)) for i in range(len(crowd))]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            concurrent_seconds += time.perf_counter() - start
            concurrent_total += BATCH * len(crowd)
        p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18]
        print(
            f"4 devices at once: {concurrent_total} mutations in {args.rounds} rounds of 4 × {BATCH} in "
            f"{concurrent_seconds:.1f} s = {concurrent_total / concurrent_seconds:,.0f} mutations/s per clinic "
            f"(floor before issue 15: 200–265/s); batch p95 {p95:.2f} s, max {max(latencies):.2f} s "
            f"(floor: ~15 s at p95)"
        )

        # Pull: one patient with 20,000 changes, pages of 1,000.
        patient, rx, client = people[0]
        with tenant_context(clinic), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO patients_doselog (id, patient_id, prescription_id, scheduled_date, status, taken_at, created_at, server_version) "
                "SELECT gen_random_uuid(), %s, %s, current_date - (g %% 25), 'taken', now(), now(), 0 FROM generate_series(1, %s) g",
                [patient.pk, rx.pk, max(0, 20000 - args.batches * BATCH)],
            )
        connection.set_schema_to_public()
        changes, pages, cursor_token, start = 0, 0, None, time.perf_counter()
        while True:
            params = {"limit": 1000, **({"cursor": cursor_token} if cursor_token else {})}
            body = client.get("/api/v1/sync/pull/", params, HTTP_X_SCHEMA_VERSION="1").json()
            changes += sum(len(c["upserted"]) + len(c["deleted"]) for c in body["changes"].values())
            pages += 1
            cursor_token = body["cursor"]
            if not body["has_more"]:
                break
        pull_seconds = time.perf_counter() - start
        print(
            f"pull: {changes} changes in {pages} pages of ≤1000 in {pull_seconds:.1f} s = {changes / pull_seconds:,.0f} changes/s"
        )
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
