"""Waiting for something to happen: poll with a deadline, never sleep a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.25) -> object:
    """Poll `check` until it returns something truthy (returned) or the timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def wait_for_lock_wait(pid: int, timeout: float = 20) -> bool:
    """Wait until PostgreSQL backend `pid` is blocked on a lock (pg_stat_activity says
    wait_event_type 'Lock'). Polls on its own autocommit connection: inside a transaction
    pg_stat_activity is a snapshot taken once and would never change."""
    import psycopg

    from tests.workers import database_url

    with psycopg.connect(database_url(), autocommit=True) as watcher:

        def waiting() -> bool:
            row = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            return row is not None and row[0] == "Lock"

        return bool(wait_until(waiting, timeout, interval=0.02))
