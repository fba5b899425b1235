"""Scale benchmark (issue 20): the platform at 1,000 clinics and, opt-in, 10,000 empty ones.

Per size it prints:
- the per-minute reminder dispatch in worker time: before (one scan task per clinic) and after
  (the public `next_due_at` query, the outbox probe, and a scan only for the clinics with
  something due), beside floors (the raw due SELECT in every schema; the raw public query);
- BRPOP keys per worker and Redis CPU per delivered message, measured on a private
  redis-server with a kombu consumer: before (4 priority lists × every clinic) and after
  (2 lists × the clinics of one shard of N = ceil(clinics / 150));
- the daily dispatchers' per-clinic cost beside their "anything to do?" probe;
- `/readyz` p50 on a clinic host and on the platform host (Django test client, in process);
- clinic creation p50 (`clinic_create`, real path) and the no-op `migrate_clinics` time.

Clinics beyond the measured sample are created fast: the template snapshot replayed for 4
schemas per transaction, with their Clinic and Domain rows (what `clinic_create` does, minus
its per-clinic checks). `--due 10` gives that many clinics one reminder due this minute.

Usage: `make bench-scale` or `python bench/scale.py [--sizes 1000] [--due 10]`, e.g.
`--sizes 1000,10000` (10,000 takes about 20 minutes here). Throwaway database; a private
redis-server on a free port for the Redis figures; queues purged afterwards.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import shutil
import socket
import subprocess
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import _setup  # noqa: F401  (Django bootstrap)
from _setup import percentile
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import setup_databases, teardown_databases
from django_tenants.utils import schema_context, tenant_context

from config.celery import app as celery_app
from core.outbox import outbox_relay
from patients.due import (
    clinic_next_due_recompute,
    clinics_needing_reminder_dispatch,
    clinics_with_active_patients,
    dispatchable_clinics,
)
from patients.models import Patient, Reminder
from patients.reminders import reminder_deliveries_sweep, reminder_save, reminders_dispatch_due
from patients.tasks import reminders_dispatch
from tenants.hooks import clinic_schema_created
from tenants.models import Clinic, ClinicStatus, Domain
from tenants.queues import tenant_queue
from tenants.services import clinic_create
from tenants.snapshot import SCHEMA_PLACEHOLDER, snapshot_current, snapshot_refresh

FAST_BATCH = 4  # schemas per transaction: each holds locks on ~150 new relations
MEASURED_CREATIONS = 30
CLINICS_PER_SHARD = 150


# --- Clinics ------------------------------------------------------------------------------------


def create_fast(start: int, count: int) -> None:
    """Empty clinics from the snapshot, FAST_BATCH per transaction."""
    snapshot = snapshot_current() or snapshot_refresh()
    for first in range(start, start + count, FAST_BATCH):
        numbers = range(first, min(first + FAST_BATCH, start + count))
        with transaction.atomic():
            clinics = Clinic.objects.bulk_create(
                [
                    Clinic(
                        slug=f"s{i:05d}",
                        name=f"Scale {i}",
                        schema_name=f"clinic_s{i:05d}",
                        status=ClinicStatus.ACTIVE,
                    )
                    for i in numbers
                ]
            )
            Domain.objects.bulk_create(
                [
                    Domain(domain=f"{c.slug}.{settings.PLATFORM_DOMAIN}", tenant=c, is_primary=True)
                    for c in clinics
                ]
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "\n".join(snapshot.sql.replace(SCHEMA_PLACEHOLDER, c.schema_name) for c in clinics)
                )
            for c in clinics:
                clinic_schema_created(c.schema_name)
        connection.set_schema_to_public()


def create_measured(start: int, count: int) -> list[float]:
    samples = []
    for i in range(start, start + count):
        began = time.perf_counter()
        clinic_create(slug=f"s{i:05d}", name=f"Scale {i}")
        samples.append((time.perf_counter() - began) * 1000)
    connection.set_schema_to_public()
    return samples


def make_due(clinics: list[Clinic], now: datetime) -> None:
    """One patient with a diary reminder due a minute ago in each of these clinics."""
    for clinic in clinics:
        with tenant_context(clinic):
            patient = Patient.objects.create(display_name="Scale patient", timezone="UTC")
            reminder, _ = reminder_save(
                patient=patient, kind="diary", local_time=(now - timedelta(minutes=1)).time()
            )
            Reminder.objects.filter(pk=reminder.pk).update(
                next_fire_at=now - timedelta(minutes=1), next_local_date=now.date()
            )
    connection.set_schema_to_public()


# --- The per-minute dispatch --------------------------------------------------------------------


def _old_scan() -> None:
    """The per-clinic task body before issue 20 (no recompute)."""
    outbox_relay()
    reminder_deliveries_sweep()
    reminders_dispatch_due()


def dispatch_before(clinics: list[Clinic]) -> tuple[float, float]:
    """(enqueue ms, scans ms): one task per clinic, each scanned."""
    began = time.perf_counter()
    for clinic in clinics:
        with tenant_context(clinic):
            reminders_dispatch.apply_async(expires=120)
    enqueue = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    for clinic in clinics:
        with tenant_context(clinic):
            _old_scan()
    connection.set_schema_to_public()
    return enqueue, (time.perf_counter() - began) * 1000


def dispatch_after() -> tuple[float, float, int]:
    """(dispatcher ms: due query + outbox probe + enqueue, scans ms, clinics scanned)."""
    began = time.perf_counter()
    with schema_context("public"):
        due = clinics_needing_reminder_dispatch()
        for clinic in due:
            with tenant_context(clinic):
                reminders_dispatch.apply_async(expires=120)
    dispatcher = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    for clinic in due:
        with tenant_context(clinic):
            _old_scan()
            clinic_next_due_recompute()
    connection.set_schema_to_public()
    return dispatcher, (time.perf_counter() - began) * 1000, len(due)


def floor_schemas(schemas: list[str], now: datetime) -> float:
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(
                f'SELECT id FROM "{schema}".patients_reminder WHERE next_fire_at <= %s '  # noqa: S608
                "ORDER BY next_fire_at LIMIT 5000",
                [now],
            )
            cursor.fetchall()
    return (time.perf_counter() - began) * 1000


def floor_public(now: datetime) -> float:
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.schema_name FROM tenants_clinicdue d JOIN tenants_clinic c ON c.id = d.clinic_id "
            "WHERE d.next_due_at <= %s AND c.status IN ('active', 'suspended')",
            [now],
        )
        cursor.fetchall()
    return (time.perf_counter() - began) * 1000


def outbox_probe_ms(clinics: list[Clinic]) -> float:
    from patients.due import clinics_with_unsent_outbox

    began = time.perf_counter()
    clinics_with_unsent_outbox(clinics)
    return (time.perf_counter() - began) * 1000


def daily_costs(clinics: list[Clinic], sample: int = 100) -> dict[str, float]:
    """ms per clinic of the daily tasks' bodies on empty clinics, and of the probe."""
    from clinicians.tasks import alerts_evaluate_clinic
    from patients.tasks import tombstones_purge

    picked = clinics[:sample]
    out: dict[str, float] = {}
    for label, task in (
        ("alerts_evaluate_clinic", alerts_evaluate_clinic),
        ("tombstones_purge", tombstones_purge),
    ):
        began = time.perf_counter()
        for clinic in picked:
            with tenant_context(clinic):
                task.apply()
        out[label] = (time.perf_counter() - began) * 1000 / len(picked)
    connection.set_schema_to_public()
    began = time.perf_counter()
    clinics_with_active_patients(clinics)
    out["probe (active patients), all clinics"] = (time.perf_counter() - began) * 1000
    return out


def purge_queues(schemas: list[str]) -> None:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for schema in [*schemas, None]:
            channel.queue_purge(tenant_queue(schema) if schema else "platform")


# --- Redis: BRPOP keys and CPU per message ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        self.client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)

    def cpu_ms(self) -> float:
        info = self.client.info("cpu")
        return (float(info["used_cpu_sys"]) + float(info["used_cpu_user"])) * 1000

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def redis_per_message(
    server: PrivateRedis, queues: list[str], steps: list[int], messages: int
) -> dict[str, float]:
    """A kombu consumer of `queues` (as a worker: prefetch 1, ack each), fed one message at a
    time by another connection; Redis CPU per message, less the idle baseline."""
    from kombu import Connection, Consumer, Exchange, Producer, Queue

    server.client.flushall()
    url = f"redis://127.0.0.1:{server.port}/0"
    options = {"priority_steps": steps}
    declared = [Queue(name, Exchange(name), routing_key=name) for name in queues]
    received = 0

    def on_message(body: Any, message: Any) -> None:
        nonlocal received
        message.ack()
        received += 1

    with (
        Connection(url, transport_options=options) as consumer_conn,
        Connection(url, transport_options=options) as producer_conn,
    ):
        channel = consumer_conn.channel()
        consumer = Consumer(channel, queues=declared, callbacks=[on_message], accept=["json"])
        consumer.qos(prefetch_count=1)
        consumer.consume()
        producer = Producer(producer_conn.channel())
        targets = [q for q in declared if q.name != "platform"]
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                try:
                    consumer_conn.drain_events(timeout=1)
                except TimeoutError:
                    continue
                except OSError:
                    return

        idle_began, idle_cpu = time.perf_counter(), server.cpu_ms()
        time.sleep(0.5)
        idle_rate = (server.cpu_ms() - idle_cpu) / (time.perf_counter() - idle_began)
        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        time.sleep(0.3)  # the consumer is blocked in its first BRPOP
        server.client.config_resetstat()
        began, cpu = time.perf_counter(), server.cpu_ms()
        body = {"id": "x" * 36, "kwargs": {"delivery_id": "y" * 36}}
        for i in range(messages):
            queue = targets[i % len(targets)] if i % 2 else random.choice(targets)  # noqa: S311
            producer.publish(body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
            time.sleep(0.001)
            while received < i + 1 - 2:  # keep at most two messages ahead of the consumer
                time.sleep(0.0005)
        while received < messages and time.perf_counter() - began < 120:
            time.sleep(0.005)
        elapsed = time.perf_counter() - began
        used = server.cpu_ms() - cpu - idle_rate * elapsed
        stats = server.client.info("commandstats")
        stop.set()
        thread.join(5)
    brpop = stats.get("cmdstat_brpop", {"calls": 0, "usec": 0})
    keys = len(steps) * len(queues)
    return {
        "keys": keys,
        "bytes": sum(len(name) + 3 for name in queues) * len(steps),
        "cpu_ms_per_message": used / max(received, 1),
        "brpop_us_per_call": brpop["usec"] / max(brpop["calls"], 1),
        "received": received,
    }


# --- Requests and deploys ----------------------------------------------------------------------------


def readyz_p50(host: str, n: int = 50) -> float:
    client = Client()
    samples = []
    client.get("/readyz", HTTP_HOST=host)
    for _ in range(n):
        began = time.perf_counter()
        client.get("/readyz", HTTP_HOST=host)
        samples.append((time.perf_counter() - began) * 1000)
    connection.set_schema_to_public()
    return percentile(samples, 50)


def migrate_noop() -> str:
    from django.db import DatabaseError

    began = time.perf_counter()
    try:
        call_command("migrate_clinics", stdout=io.StringIO(), stderr=io.StringIO(), verbosity=0)
    except DatabaseError as exc:  # e.g. one statement over every schema outgrowing max_stack_depth
        return f"FAILED after {time.perf_counter() - began:.2f} s: {str(exc).splitlines()[0]}"
    finally:
        connection.set_schema_to_public()
    return f"{time.perf_counter() - began:.2f} s"


# --- Main ----------------------------------------------------------------------------------------


def run_size(size: int, created: int, due_count: int, server: PrivateRedis | None, messages: int) -> int:
    print(f"\n=== {size} clinics ===")
    began = time.perf_counter()
    fast = max(0, size - created - MEASURED_CREATIONS)
    create_fast(created, fast)
    creation = create_measured(created + fast, size - created - fast) if size > created else []
    print(f"created {size - created} clinics in {time.perf_counter() - began:.1f} s")
    clinics = list(dispatchable_clinics().order_by("slug"))
    schemas = [c.schema_name for c in clinics]
    due_clinics = [c for c in clinics if c.slug.startswith("s")][:due_count]

    rows: list[tuple[str, str]] = []

    class _Rows(list[tuple[str, str]]):
        def append(self, item: tuple[str, str]) -> None:  # printed at once: a long run shows progress
            super().append(item)
            print(f"  {item[0]:<66}  {item[1]}", flush=True)

    rows = _Rows()
    if creation:
        rows.append(("clinic creation p50 (clinic_create)", f"{percentile(creation, 50):.1f} ms"))
    clinic_host = f"{clinics[-1].slug}.{settings.PLATFORM_DOMAIN}"
    rows.append(("/readyz p50, clinic host", f"{readyz_p50(clinic_host):.1f} ms"))
    rows.append(("/readyz p50, platform host", f"{readyz_p50(settings.PLATFORM_DOMAIN):.1f} ms"))

    # Before: every clinic scanned. A cold run first; the warm one, with `due` clinics having
    # a reminder due, is reported.
    dispatch_before(clinics)
    purge_queues(schemas)
    now = datetime.now(UTC)
    make_due(due_clinics, now)
    floor_before = floor_schemas(schemas, now)
    enqueue, scans = dispatch_before(clinics)
    purge_queues(schemas)
    rows.append(("BEFORE dispatch: enqueue one task per clinic", f"{enqueue:.0f} ms"))
    rows.append(("BEFORE dispatch: scan every clinic (task bodies)", f"{scans:.0f} ms"))
    rows.append(("BEFORE total worker time per minute", f"{enqueue + scans:.0f} ms"))
    rows.append(("  floor: raw due SELECT in every schema", f"{floor_before:.0f} ms"))
    # After: the same clinics get another reminder due (the trigger lowers their next_due_at),
    # then a quiet minute (their deliveries are pending: rescanned after a claim timeout).
    now = datetime.now(UTC)
    make_due(due_clinics, now)
    dispatcher, due_scans, scanned = dispatch_after()
    purge_queues(schemas)
    quiet_dispatcher, quiet_scans, quiet_scanned = dispatch_after()
    rows.append(
        (f"AFTER dispatch, {scanned} clinics due: dispatcher (query+probe+enqueue)", f"{dispatcher:.1f} ms")
    )
    rows.append((f"AFTER dispatch, {scanned} clinics due: their scans", f"{due_scans:.1f} ms"))
    rows.append(("AFTER total worker time per minute", f"{dispatcher + due_scans:.1f} ms"))
    rows.append(
        (f"AFTER, a minute with {quiet_scanned} due: total", f"{quiet_dispatcher + quiet_scans:.1f} ms")
    )
    rows.append(("  floor: raw public due query", f"{floor_public(datetime.now(UTC)):.2f} ms"))
    rows.append(("  of which outbox probe (all clinics)", f"{outbox_probe_ms(clinics):.1f} ms"))
    purge_queues(schemas)
    for label, ms in daily_costs(clinics).items():
        unit = "ms per clinic" if "probe" not in label else "ms"
        rows.append((f"daily: {label}", f"{ms:.1f} {unit}"))

    shards = max(1, math.ceil(size / CLINICS_PER_SHARD))
    per_shard = [0] * shards
    for schema in schemas:
        per_shard[zlib.crc32(schema.encode()) % shards] += 1
    rows.append(
        (
            f"shards N = ceil({size}/{CLINICS_PER_SHARD})",
            f"{shards} (clinics per shard {min(per_shard)}–{max(per_shard)})",
        )
    )
    if server is not None:
        before = redis_per_message(
            server, ["platform", *(tenant_queue(s) for s in schemas)], [0, 3, 6, 9], messages
        )
        biggest = max(range(shards), key=lambda i: per_shard[i])
        mine = [tenant_queue(s) for s in schemas if zlib.crc32(s.encode()) % shards == biggest]
        after = redis_per_message(server, ["platform", *mine], [0, 9], messages)
        for label, result in (
            ("BEFORE (4 steps, every clinic)", before),
            (f"AFTER (2 steps, largest shard of {shards})", after),
        ):
            rows.append(
                (
                    f"BRPOP {label}",
                    f"{result['keys']} keys, {result['bytes'] / 1024:.0f} KB; Redis CPU "
                    f"{result['cpu_ms_per_message']:.3f} ms/msg; BRPOP {result['brpop_us_per_call']:.0f} us/call",
                )
            )
    rows.append(("no-op migrate_clinics", migrate_noop()))
    return size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000", help="comma-separated clinic counts, ascending")
    parser.add_argument(
        "--due", type=int, default=10, help="clinics with a reminder due in the measured minute"
    )
    parser.add_argument("--messages", type=int, default=2000, help="messages per Redis measurement")
    parser.add_argument("--no-redis", action="store_true", help="skip the private redis-server figures")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    celery_app.conf.task_always_eager = False
    db_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    server = None if args.no_redis or not shutil.which("redis-server") else PrivateRedis()
    created = 0
    schemas: list[str] = []
    try:
        for size in sizes:
            created = run_size(size, created, args.due, server, args.messages)
            schemas = list(Clinic.objects.values_list("schema_name", flat=True))
    finally:
        connection.set_schema_to_public()
        if server is not None:
            server.close()
        purge_queues(schemas)
        teardown_databases(db_config, verbosity=0)


if __name__ == "__main__":
    main()
