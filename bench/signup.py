"""Signup throughput: N clinics through `POST /api/v1/clinics/` (full middleware stack,
in-process WSGI), p50/p95 ms per signup, beside floors measured in the same run: the bare
`CREATE SCHEMA` + one empty table, and one Argon2 password hash (each signup hashes one).

Usage: `make bench-signup` or `python bench/signup.py [-n 100]`. Runs in a throwaway database.
"""

from __future__ import annotations

import argparse
import time

import _setup  # noqa: F401  (Django bootstrap)
from _setup import summary
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.test import Client
from django.test.utils import setup_databases, teardown_databases
from rest_framework.throttling import SimpleRateThrottle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", "--clinics", type=int, default=100)
    n = parser.parse_args().clinics
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        floor, hashing, signup = [], [], []
        for i in range(n):
            start = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "floor_{i}"; CREATE TABLE "floor_{i}".t (id uuid PRIMARY KEY)')
            floor.append((time.perf_counter() - start) * 1000)
        for _ in range(min(n, 30)):
            start = time.perf_counter()
            make_password("a long clinic admin passphrase")
            hashing.append((time.perf_counter() - start) * 1000)

        client = Client(HTTP_HOST="localhost")
        # The per-IP signup throttle (10/hour) would stop a benchmark from one address; DRF
        # reads rates into a class attribute, so lift them there for this process only.
        SimpleRateThrottle.THROTTLE_RATES = {key: "1000000/min" for key in SimpleRateThrottle.THROTTLE_RATES}
        settings.SIGNUP_HOURLY_BUDGET = n + 1  # the platform-wide budget likewise (a fresh database)
        for i in range(n + 1):
            body = {
                "name": f"Bench Clinic {i}",
                "slug": f"bench-signup-{i}",
                "timezone": "Europe/Berlin",
                "country": "DE",
                "admin": {
                    "email": f"admin{i}@bench.example",
                    "full_name": "Bench Admin",
                    "password": "a long clinic admin passphrase",
                },
            }
            start = time.perf_counter()
            response = client.post("/api/v1/clinics/", body, content_type="application/json")
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 202, response.content
            if i:  # the first request pays imports and caches
                signup.append(elapsed)
        print(f"{n} signups through the API (ms per signup)")
        print(f"  signup (POST /api/v1/clinics/)       {summary(signup)}")
        print(f"  floor: CREATE SCHEMA + 1 table       {summary(floor)}")
        print(f"  floor: one Argon2 password hash      {summary(hashing)}")
        print(f"  throughput: {1000 / (sum(signup) / len(signup)):.1f} signups/s on one connection")
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
