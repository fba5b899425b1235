"""`make run`: it gives working Web Push in local runs (a VAPID key pair is made once, kept
git-ignored under .data/, and handed to web and worker; configured keys are left alone), and it
starts and stops the whole platform both on configured servers and on the embedded default."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from config.launcher import ROOT, VAPID_NAMES, vapid_env
from tests.workers import free_port, purge_queues, wait_until


def _point(public: str) -> ec.EllipticCurvePublicKey:
    raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def test_a_local_run_gets_a_vapid_pair_once_and_keeps_it(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    where = vapid_env(env, data_dir=tmp_path / ".data", dotenv=tmp_path / ".env")
    kept = tmp_path / ".data" / "vapid.env"
    assert where == str(kept)
    private, public = env[VAPID_NAMES[0]], env[VAPID_NAMES[1]]
    # The public key is the browser's applicationServerKey and belongs to the private key.
    key = int.from_bytes(base64.urlsafe_b64decode(private + "=" * (-len(private) % 4)), "big")
    derived = ec.derive_private_key(key, ec.SECP256R1()).public_key().public_numbers()
    assert derived == _point(public).public_numbers()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # a secret: owner only

    again: dict[str, str] = {}
    vapid_env(again, data_dir=tmp_path / ".data", dotenv=tmp_path / ".env")
    assert again == env  # the same pair next time: browsers' subscriptions stay valid


def test_configured_keys_are_left_alone(tmp_path: Path) -> None:
    env = {VAPID_NAMES[0]: "configured-private", VAPID_NAMES[1]: "configured-public"}
    assert vapid_env(env, data_dir=tmp_path, dotenv=tmp_path / ".env") == "configured"
    assert env == {VAPID_NAMES[0]: "configured-private", VAPID_NAMES[1]: "configured-public"}
    assert not (tmp_path / "vapid.env").exists()

    (tmp_path / ".env").write_text(f"# keys\n{VAPID_NAMES[0]}=from-dotenv\n{VAPID_NAMES[1]}=pub\n")
    empty: dict[str, str] = {}
    assert vapid_env(empty, data_dir=tmp_path, dotenv=tmp_path / ".env") == "configured"
    assert empty == {}  # the settings read .env themselves
    assert not (tmp_path / "vapid.env").exists()


def test_the_generated_keys_are_never_committed() -> None:
    answer = subprocess.run(  # noqa: S603
        ["git", "check-ignore", "-q", ".data/vapid.env"],  # noqa: S607
        cwd=ROOT,
        check=False,
    )
    assert answer.returncode == 0, ".data/vapid.env must be git-ignored"


# --- `make run` end to end: configured servers and the embedded default ----------------------

WORKER_READY = re.compile(r"celery@\S+ ready\.")
BEAT_STARTED = "beat: Starting..."


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _run_launcher(env: dict[str, str], log: Path, port: int) -> None:
    """Start `make run`'s launcher, wait until /healthz answers and the worker and beat have
    started, then stop it with SIGINT (as Ctrl-C does) and check every process it started exits."""
    with log.open("w") as out:
        launcher = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "config.launcher"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: nothing outlives the test
        )
    started: list[psutil.Process] = []
    try:

        def healthy() -> bool:
            if launcher.poll() is not None:
                pytest.fail(f"the launcher exited with {launcher.returncode}:\n{log.read_text()[-4000:]}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        assert wait_until(healthy, 300, 0.5), "no /healthz answer:\n" + log.read_text()[-4000:]
        assert wait_until(lambda: WORKER_READY.search(log.read_text()), 120, 0.5), log.read_text()[-4000:]
        assert wait_until(lambda: BEAT_STARTED in log.read_text(), 60, 0.5), log.read_text()[-4000:]
        output = log.read_text()
        assert f"http://demo.localhost:{port}/app/" in output  # the URLs and demo logins are printed
        assert "dr.weber@demo.example" in output
        started = psutil.Process(launcher.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in started if _alive(p)]
        for piece in ("runserver", " worker ", " beat "):
            assert any(piece in command for command in commands), (piece, commands)

        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=60) == 0, log.read_text()[-4000:]
        assert wait_until(lambda: not any(_alive(p) for p in started), 30, 0.2), [
            p.cmdline() for p in started if _alive(p)
        ]
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(timeout=30)
        for process in started:
            if _alive(process):
                process.kill()


def _launcher_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEB_PUSH_VAPID")}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # `make run` runs the local settings, not pytest's
    env.update(PORT=str(port), RUN_BIND="127.0.0.1", CSU_DATA_DIR=str(data_dir), **extra)
    return env


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory the embedded PostgreSQL's own user (pgserver runs as `pgserver` under
    root) can reach, unlike pytest's owner-only tmp_path; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="csu-launcher-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_make_run_on_configured_servers_from_a_fresh_clone(
    data_dir: Path, django_db_setup: None, django_db_blocker: Any
) -> None:
    """DATABASE_URL and REDIS_URL set (the test run's servers, a database of its own) and no
    `.data/` yet: migrations, demo data, web, worker and beat start; SIGINT stops them all."""
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection

    fresh = data_dir / "fresh-clone-data"  # does not exist, as .data/ on a fresh clone
    name = f"csu_launcher_{uuid.uuid4().hex[:8]}"
    prefix = f"launcher-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    try:
        env = _launcher_env(
            fresh,
            port,
            DATABASE_URL=_url_for_database(name),
            REDIS_URL=settings.REDIS_URL,
            CACHE_KEY_PREFIX=prefix,  # its cache entries (demo host → its clinic) stay its own
        )
        _run_launcher(env, data_dir / "launcher.log", port)
        # Either is right: beat's shelve file is named by whichever dbm module this Python has
        # (dbm.sqlite3/gnu/ndbm write the name as given, dbm.dumb adds .dat/.dir/.bak).
        assert (fresh / "celerybeat-schedule").exists() or list(fresh.glob("celerybeat-schedule*"))
        assert not (fresh / "postgres").exists()  # the configured servers were used
    finally:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
        # What beat sent and the worker did not take (the test Redis is shared with the suite).
        purge_queues("platform", "tenant.demo")


@pytest.mark.slow
def test_make_run_on_the_embedded_default(data_dir: Path) -> None:
    """Nothing configured: the launcher starts the embedded PostgreSQL and Redis (here in a data
    directory of its own), runs everything on them, and stops them with its children."""
    port = free_port()
    env = _launcher_env(data_dir, port)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    _run_launcher(env, data_dir / "launcher.log", port)
    output = (data_dir / "launcher.log").read_text()
    assert "Starting embedded PostgreSQL" in output and "Starting embedded Redis" in output
    # The servers stopped with the launcher: no process is left on this data directory.
    left = [
        " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
        if str(data_dir) in " ".join(p.info["cmdline"] or []) and _alive(p)
    ]
    assert not left, left
    settings_file = json.loads((data_dir / "redis.db.settings").read_text())
    assert not Path(settings_file["unixsocket"]).exists()  # the embedded Redis is gone


def _url_for_database(name: str) -> str:
    """The test run's PostgreSQL server, another database on it."""
    from django.db import connection

    db = connection.settings_dict
    auth = quote(db["USER"]) + (f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(host, safe='')}%2F{name}"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{name}"
