"""A deploy with nothing to migrate, over N clinics (default 200): django-tenants' standard
executor, its multiprocessing executor, and our `migrate_clinics` (one query finds the clinics
that are behind; none here). Prints seconds in total and per clinic.

Usage: `make bench-deploy` or `python bench/deploy_migrations.py [-n 200]`. Throwaway database.
"""

from __future__ import annotations

import argparse
import io
import time

import _setup  # noqa: F401  (Django bootstrap)
from django.core.management import call_command
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

from tenants.services import clinic_create


def timed(label: str, n: int, *args: str, **kwargs: object) -> float:
    start = time.perf_counter()
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO(), **kwargs)
    elapsed = time.perf_counter() - start
    connection.set_schema_to_public()
    print(f"  {label:<44} {elapsed:8.2f} s total  {elapsed / n * 1000:8.1f} ms per clinic")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", "--clinics", type=int, default=200)
    n = parser.parse_args().clinics
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        start = time.perf_counter()
        for i in range(n):
            clinic_create(slug=f"bench-deploy-{i}", name=f"Bench {i}")
        print(f"created {n} clinics from the snapshot in {time.perf_counter() - start:.1f} s\n")
        print(f"no-op deploy over {n} clinics")
        standard = timed(
            "migrate_schemas --tenant (standard)",
            n,
            "migrate_schemas",
            tenant=True,
            executor="standard",
            interactive=False,
            verbosity=0,
        )
        multi = timed(
            "migrate_schemas --tenant (multiprocessing)",
            n,
            "migrate_schemas",
            tenant=True,
            executor="multiprocessing",
            interactive=False,
            verbosity=0,
        )
        ours = timed("migrate_clinics (skips clinics up to date)", n, "migrate_clinics", verbosity=0)
        print(
            f"\n  standard / migrate_clinics = {standard / ours:.0f}x; multiprocessing / migrate_clinics = {multi / ours:.0f}x"
        )
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
