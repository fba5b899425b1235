"""Test settings: real PostgreSQL and Redis (DATABASE_URL/REDIS_URL, or the embedded servers
that the pytest plugin config.pytest_embedded starts when they are unset)."""

from __future__ import annotations

import os

# A test run always has both URLs (the plugin sets them before settings load). mypy's Django
# plugin and IDEs load these settings outside a test run: they get sockets that do not exist,
# so nothing is started and nothing is contacted.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@/%2Fnonexistent%2FDATABASE_URL-not-set%2Fcsu")
os.environ.setdefault("REDIS_URL", "unix:///nonexistent/REDIS_URL-not-set.sock?db=0")

from .base import *  # noqa: E402, F403

DEBUG = False
ALLOWED_HOSTS = ["localhost", ".localhost", "testserver"]
PLATFORM_DOMAIN = "localhost"
PLATFORM_HOSTS = ["localhost", "testserver"]
# Argon2 stays first in base; tests hash many passwords, so use a fast hasher here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # As base configures it without S3 (tests that write archives point it at tmp_path).
    "archives": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": DATA_DIR / "test-archives",  # noqa: F405
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    # Tests that exercise throttling override these; the rest must not trip them.
    "DEFAULT_THROTTLE_RATES": dict.fromkeys(REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "100000/min"),  # noqa: F405
}
# Tasks run in-process unless a test starts a real worker (tests/config/test_celery.py).
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True


# Web Push: a throwaway VAPID key pair, and the loopback fake push service the tests run.
from patients.vapid import vapid_keypair  # noqa: E402

WEB_PUSH_VAPID_PRIVATE_KEY, WEB_PUSH_VAPID_PUBLIC_KEY = vapid_keypair()
WEB_PUSH_ALLOWED_HOSTS = [*WEB_PUSH_ALLOWED_HOSTS, "127.0.0.1"]  # noqa: F405
WEB_PUSH_ALLOW_HTTP = True
