"""A real Celery worker process for tests whose behaviour depends on one (queues, redelivery)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.db import connection

from config.celery import app as celery_app
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tenants.models import Clinic

__all__ = ["database_url", "free_port", "purge_queues", "running_worker", "wait_until", "worker_caught_up"]

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The test database as a URL, for processes the tests start (workers, servers)."""
    db = connection.settings_dict
    auth = quote(db["USER"]) + (f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(host, safe='')}%2F{db['NAME']}"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def worker_command(*, pool: str = "solo", concurrency: int = 1, log_level: str = "WARNING") -> list[str]:
    """The command line of a test worker (the probe tasks imported, no gossip or mingle)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-I",
        "tests.celery_probe",
        "-P",
        pool,
        "-c",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "-l",
        log_level,
    ]


@contextlib.contextmanager
def running_worker(**env_extra: str) -> Iterator[subprocess.Popen[str]]:
    """A real Celery worker on the test database and Redis, with tasks really sent to it (the
    test settings otherwise run tasks in-process)."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **env_extra,
    }
    worker = subprocess.Popen(  # noqa: S603
        worker_command(),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    celery_app.conf.task_always_eager = False
    try:
        yield worker
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        worker.communicate(timeout=30)
        connection.set_schema_to_public()


def purge_queues(*names: str) -> None:
    """Drop messages other tests left in these queues (the test Redis is shared)."""
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in names:
            channel.queue_purge(name)


def worker_caught_up(clinic: Clinic | None, timeout: float = 60) -> bool:
    """Queue `tests.record_schema` behind whatever is queued for `clinic` (the platform queue
    when None) and wait until it has run. The test worker is one solo process that takes each
    queue in order, so every task queued there before the probe has then finished."""
    from django.core.cache import cache
    from django_tenants.utils import schema_context, tenant_context

    from tests.celery_probe import record_schema

    key = f"probe-{uuid.uuid4()}"
    # The cache key carries the schema: read it in the schema the probe ran in.
    with tenant_context(clinic) if clinic is not None else schema_context("public"):
        record_schema.delay(key)
        return bool(wait_until(lambda: cache.get(key), timeout, interval=0.05))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_worker(
    *, pool: str = "prefork", concurrency: int = 1, **env_extra: str
) -> tuple[subprocess.Popen[str], Path]:
    """A real worker in its own process group (a test may SIGKILL the whole of it, main process
    and pool children, with `os.killpg`), with its output in a file the test can read. The
    caller stops it; `running_worker` is the simpler context manager. What its tasks send
    (retries, follow-up tasks) goes through the broker, not in-process as the test settings
    would have it. Returns the process and its log file."""
    import tempfile

    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "TEST_WORKER_SENDS_TO_BROKER": "1",
        **env_extra,
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
    worker = subprocess.Popen(  # noqa: S603
        worker_command(pool=pool, concurrency=concurrency),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return worker, Path(log.name)


def wait_until_serving(port: int, server: subprocess.Popen[Any], log: Path, timeout: float = 60) -> None:
    """Wait until the server on `port` answers /healthz; fail with the end of its log if it
    exits or does not answer within `timeout` seconds."""
    import pytest
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # refused while starting
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            pytest.fail("The live server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.3)


def stop_process_group(process: subprocess.Popen[str] | None, sig: int = signal.SIGTERM) -> None:
    """Stop a server or worker started with `start_new_session=True` and everything it spawned:
    `sig` to the group, then SIGKILL if it has not ended within 30 s."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
