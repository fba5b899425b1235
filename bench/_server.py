"""The production-like server the HTTP benchmarks drive: deploy/run-local-prod.sh (gunicorn, a
Celery worker and beat with the production settings) on loopback, against this process's
throwaway database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """This process's (throwaway) database as a URL for the server's processes."""
    db = connection.settings_dict
    auth = quote(db["USER"]) + (f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(host, safe='')}%2F{db['NAME']}"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def start_server(port: int, *, name: str, **env_extra: str) -> tuple[subprocess.Popen[str], Path]:
    """Start it and wait until `/healthz` answers; returns the process group's leader and the
    log file. `env_extra` overrides the environment (keys, throttles, worker counts)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PORT": str(port),
        "EMAIL_URL": "consolemail://",
        "PYTHON": sys.executable,
        "LOG_LEVEL": "WARNING",
        **env_extra,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = Path(tempfile.NamedTemporaryFile(prefix=f"csu-{name}-", suffix=".log", delete=False).name)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        ["bash", str(ROOT / "deploy/run-local-prod.sh")],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return process, log
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            stop_server(process)
            raise SystemExit("the production-like server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.3)


def stop_server(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
