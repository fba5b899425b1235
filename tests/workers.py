"""A real Celery worker process for tests whose behaviour depends on one (queues, redelivery)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The test database as a URL, for processes the tests start (workers, servers)."""
    db = connection.settings_dict
    auth = quote(db["USER"]) + (f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(host, safe='')}%2F{db['NAME']}"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


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
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-I",
            "tests.celery_probe",
            "-P",
            "solo",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.25) -> object:
    """Poll `check` until it returns something truthy (returned) or the timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None
