"""pytest plugin (pyproject addopts `-p config.pytest_embedded`): a test session with no
DATABASE_URL / REDIS_URL runs on the embedded PostgreSQL and Redis (config.embedded).

The servers are started before pytest-django loads the settings (which only read the URLs) and
stopped when the session ends. The URLs go into os.environ, so the servers, workers and
xdist processes that tests start inherit them.
"""

from __future__ import annotations

import os
import sys

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return
    from config import embedded

    started = embedded.services_ensure(
        os.environ,
        embedded.data_dir(),
        announce=lambda message: print(message, file=sys.stderr, flush=True),
    )
    early_config.stash[_started] = started


_started = pytest.StashKey[list[str]]()


def pytest_unconfigure(config: pytest.Config) -> None:
    started = config.stash.get(_started, [])
    if not started:
        return
    from django.db import connections

    connections.close_all()
    from config import embedded

    embedded.stop()
    for name in started:
        os.environ.pop(name, None)
