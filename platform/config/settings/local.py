"""Developer machine: DEBUG on by default, console email. DATABASE_URL/REDIS_URL come from the
environment or .env; `make run` and `python -m config.embedded` set them to the embedded servers."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ALLOWED_HOSTS + ["127.0.0.1", "testserver"]  # noqa: F405
# The dev server runs each request in a thread of its own: a persistent connection would stay
# open after its thread ended (30 concurrent requests left 17 idle connections for minutes).
DATABASES = {
    **DATABASES,  # noqa: F405
    "default": {**DATABASES["default"], "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=0)},  # noqa: F405
}
