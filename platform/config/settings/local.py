"""Developer machine: DEBUG on by default, console email, embedded services unless configured."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ALLOWED_HOSTS + ["127.0.0.1", "testserver"]  # noqa: F405
