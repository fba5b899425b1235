"""Reminder dispatch benchmark: C clinics (default 100) × P patients (default 1,000), one diary
reminder each, 80 % spread evenly over the day and 20 % at 20:00 local (the busy minute).

Times, with real PostgreSQL and Redis:
- the busy minute: every clinic's `reminders_dispatch_due` (claim due reminders, insert the
  deliveries, advance the schedule, write the outbox, publish the deliver tasks to Redis: one
  message per chunk of up to 100 deliveries, `patients.reminder_deliver_chunk`), with the
  number of messages it published, counted in the clinic queues;
- a quiet minute (the common case: a handful due per clinic);
- the full day, minute by minute (1,440 × C scans);
beside floors measured in the same run: the bare due-reminder SELECT in every schema (raw SQL),
LPUSHing one message per delivery to Redis (the floor of the old one-message-per-delivery
design, 127 ms on an idle machine when issue 19 was filed) and LPUSHing as many messages as were
published. Prints EXPLAIN for the due query.

Usage: `make bench-reminders` or `python bench/reminders.py [--clinics 100] [--patients 1000]
[--day-step 1]`. Throwaway database; queues purged afterwards.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import _setup  # noqa: F401  (Django bootstrap)
from django.db import connection
from django.test.utils import setup_databases, teardown_databases
from django_tenants.utils import tenant_context

from config.celery import app as celery_app
from patients.models import Reminder
from patients.reminders import reminders_dispatch_due
from patients.schedule import next_occurrence
from tenants.queues import tenant_queue
from tenants.services import clinic_create

BERLIN = ZoneInfo("Europe/Berlin")

FILL_SQL = """
INSERT INTO patients_patient (id, created_at, updated_at, display_name, timezone, locale, diary_mode, status, enrolled_at,
                              server_version, field_versions)
SELECT gen_random_uuid(), now(), now(), 'Patient ' || i, 'Europe/Berlin', 'en', 'once', 'active', now(), 0, '{}'
FROM generate_series(1, %(n)s) i;
INSERT INTO patients_reminder (id, patient_id, kind, local_time, days_of_week, enabled, created_at, updated_at, server_version)
SELECT gen_random_uuid(), p.id, 'diary',
       CASE WHEN row_number() OVER () %% 5 = 0 THEN time '20:00'
            ELSE time '00:00' + ((row_number() OVER ()) * 1440 / %(n)s) * interval '1 minute' END,
       '{1,2,3,4,5,6,7}', true, now(), now(), 0
FROM patients_patient p;
"""

DUE_SQL = (
    "SELECT id FROM {schema}.patients_reminder WHERE next_fire_at <= %s ORDER BY next_fire_at LIMIT 5000"
)


def schedule_all(day_start: datetime) -> int:
    reminders = list(Reminder.objects.all())
    for r in reminders:
        r.next_fire_at, r.next_local_date = next_occurrence(
            local_time=r.local_time, days_of_week=r.days_of_week, zone=BERLIN, after=day_start
        )
    Reminder.objects.bulk_update(reminders, ["next_fire_at", "next_local_date"], batch_size=2000)
    return len(reminders)


def dispatch_minute(clinics: list, now: datetime) -> tuple[float, int]:
    elapsed, queued, _ = dispatch_minute_counted(clinics, now)
    return elapsed, queued


def dispatch_minute_counted(clinics: list, now: datetime) -> tuple[float, int, int]:
    """Milliseconds, deliveries queued and Celery messages published (per the dispatcher)."""
    start = time.perf_counter()
    queued = messages = 0
    for clinic in clinics:
        with tenant_context(clinic):
            result = reminders_dispatch_due(now=now)
            queued += result.queued
            messages += result.messages
    return (time.perf_counter() - start) * 1000, queued, messages


def queued_messages(schemas: list[str]) -> int:
    """Messages waiting in the clinic queues (kombu's Redis transport keeps one list per
    priority step; `queue_purge` returns how many it removed from all of them)."""
    with celery_app.connection_for_write() as conn:
        return sum(conn.default_channel._size(tenant_queue(schema)) for schema in schemas)


def floor_select(schemas: list[str], now: datetime) -> tuple[float, int]:
    start = time.perf_counter()
    rows = 0
    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(DUE_SQL.format(schema=schema), [now])
            rows += len(cursor.fetchall())
    return (time.perf_counter() - start) * 1000, rows


def floor_redis(count: int) -> float:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    payload = b"x" * 900  # about the size of a Celery message with headers
    start = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.lpush("bench.floor", payload)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    elapsed = (time.perf_counter() - start) * 1000
    client.delete("bench.floor")
    return elapsed


def purge(schemas: list[str]) -> None:
    with celery_app.connection_for_write() as conn:
        for schema in schemas:
            conn.default_channel.queue_purge(tenant_queue(schema))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clinics", type=int, default=100)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--day-step", type=int, default=1, help="minutes between scans in the full-day run")
    args = parser.parse_args()
    celery_app.conf.task_always_eager = False
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    schemas: list[str] = []
    try:
        start = time.perf_counter()
        clinics = [
            clinic_create(slug=f"bench-r{i:03d}", name=f"Bench {i}", timezone="Europe/Berlin")
            for i in range(args.clinics)
        ]
        schemas = [c.schema_name for c in clinics]
        day = date.today() + timedelta(days=1)
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=BERLIN).astimezone(UTC)
        for clinic in clinics:
            with tenant_context(clinic), connection.cursor() as cursor:
                cursor.execute(FILL_SQL, {"n": args.patients})
                schedule_all(day_start - timedelta(seconds=1))
                cursor.execute("ANALYZE patients_reminder; ANALYZE patients_patient")
        connection.set_schema_to_public()
        total = args.clinics * args.patients
        print(
            f"{args.clinics} clinics × {args.patients} patients = {total} reminders (set up in {time.perf_counter() - start:.1f} s)\n"
        )

        busy = datetime.combine(day, datetime.min.time().replace(hour=20), tzinfo=BERLIN).astimezone(UTC)
        quiet = datetime.combine(
            day, datetime.min.time().replace(hour=10, minute=1), tzinfo=BERLIN
        ).astimezone(UTC)
        # Everything before the quiet minute, untimed (also moves the schedule past it).
        dispatch_minute(clinics, quiet - timedelta(minutes=1))
        purge(schemas)
        floor_ms, floor_rows = floor_select(schemas, quiet)
        quiet_ms, quiet_queued = dispatch_minute(clinics, quiet)
        print(f"{'':<44} {'ms':>9}  reminders")
        print(f"{'quiet minute: dispatch (scan + enqueue)':<44} {quiet_ms:9.1f}  {quiet_queued}")
        print(f"{'  floor: raw due SELECT in every schema':<44} {floor_ms:9.1f}  {floor_rows}")

        dispatch_minute(clinics, busy - timedelta(minutes=1))
        purge(schemas)
        with tenant_context(clinics[0]), connection.cursor() as cursor:
            cursor.execute("ANALYZE patients_reminder")  # as autovacuum would after the day's updates
            for label, moment in (("the busy minute", busy),):
                cursor.execute(
                    "EXPLAIN SELECT r.id FROM patients_reminder r JOIN patients_patient p ON p.id = r.patient_id "
                    "WHERE r.next_fire_at <= %s ORDER BY r.next_fire_at LIMIT 5000 FOR UPDATE OF r SKIP LOCKED",
                    [moment],
                )
                plan = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
                print(f"EXPLAIN, due query before {label} (one clinic, earlier minutes dispatched):\n{plan}")
                print(f"    index reminder_due used: {'yes' if 'reminder_due' in plan else 'NO'}\n")
        connection.set_schema_to_public()

        floor_ms, floor_rows = floor_select(schemas, busy)
        busy_ms, busy_queued, busy_messages = dispatch_minute_counted(clinics, busy)
        in_queues = queued_messages(schemas)
        redis_ms = floor_redis(busy_queued)
        redis_messages_ms = floor_redis(in_queues)
        print(f"{'busy minute: dispatch (scan + enqueue)':<44} {busy_ms:9.1f}  {busy_queued}")
        print(f"{'  floor: raw due SELECT in every schema':<44} {floor_ms:9.1f}  {floor_rows}")
        print(f"{'  floor: LPUSH one message per delivery':<44} {redis_ms:9.1f}  {busy_queued}")
        print(f"{'  floor: LPUSH as many messages as published':<44} {redis_messages_ms:9.1f}  {in_queues}")
        print(
            f"busy minute: {busy_messages} messages published by the dispatcher, {in_queues} found in the "
            f"clinic queues ({busy_queued / max(in_queues, 1):.0f} deliveries per message); "
            f"{busy_ms / len(clinics):.1f} ms per clinic"
        )
        purge(schemas)

        # The whole next day, minute by minute.
        next_day = day + timedelta(days=1)
        begin = datetime.combine(next_day, datetime.min.time(), tzinfo=BERLIN).astimezone(UTC)
        for clinic in clinics:  # catch up to the start of that day, untimed
            with tenant_context(clinic):
                reminders_dispatch_due(now=begin - timedelta(seconds=1))
        purge(schemas)
        minutes = list(range(0, 1440, args.day_step))
        start = time.perf_counter()
        queued = 0
        worst = 0.0
        for minute in minutes:
            ms, count = dispatch_minute(clinics, begin + timedelta(minutes=minute))
            queued += count
            worst = max(worst, ms)
            if minute % 60 == 59:
                purge(schemas)
        elapsed = time.perf_counter() - start
        print(
            f"\nfull day ({len(minutes)} minutes × {args.clinics} clinics): {elapsed:.1f} s, "
            f"{elapsed * 1000 / len(minutes):.1f} ms per minute on average, worst minute {worst:.1f} ms, "
            f"{queued} deliveries queued"
        )
        purge(schemas)
    finally:
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
