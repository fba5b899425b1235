"""Readiness: database, migrations, field encryption keys, cache and broker. 503 names the
failing parts.

The view runs outside ATOMIC_REQUESTS: opening the request's transaction is itself a database
call, which would fail before the check could name the database. Its cost does not grow with
the number of clinics: the applied migrations of the host's schema (one small query, which
also proves the database answers) are compared with the migrations on disk, read once per
process, instead of building a MigrationLoader (which scans pg_class, every clinic's tables).
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from kombu.connection import Connection
from redis.exceptions import RedisError

from core.cache import ResilientRedisCache
from core.errors import ErrorCode, database_unavailable, problem_response

logger = logging.getLogger(__name__)

# Each probe of Redis waits at most this long (a blackholed server must not hang the probe).
PROBE_TIMEOUT_SECONDS = 1.0

MigrationKey = tuple[str, str]


@functools.cache
def migrations_on_disk() -> tuple[tuple[MigrationKey, frozenset[MigrationKey]], ...]:
    """Every migration of the installed apps, with the migrations it replaces (a squash counts
    as applied when all of those are). Read from disk once per process, without a database.
    Every schema records all of them: django-tenants migrates each schema with the whole graph
    and its router skips the operations of apps that live elsewhere."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return tuple((key, frozenset(graph.nodes[key].replaces or ())) for key in sorted(graph.nodes))


def _check_database_and_migrations() -> tuple[str | None, str | None]:
    """(database failure, migrations failure) for the schema the connection is on."""
    # On a clinic host both schemas serve the request: the clinic's and the public one (users,
    # memberships, clinics). Each must record every migration; one statement reads both.
    schemas = ["here"] if getattr(connection, "schema_name", "public") == "public" else ["here", "public"]
    sql = "SELECT 'here', app, name FROM django_migrations"
    if "public" in schemas:
        sql += " UNION ALL SELECT 'public', app, name FROM public.django_migrations"
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
    except DatabaseError as exc:
        if database_unavailable(exc):
            logger.warning("readyz: database unavailable (%s)", type(exc).__name__)
            return "database", "migrations"
        logger.warning("readyz: migrations unreadable (%s)", type(exc).__name__)  # no table yet
        return None, "migrations"
    # Every migration the code has must be recorded (not only the leaves: a gap counts too).
    for schema in schemas:
        applied = {(app, name) for where, app, name in rows if where == schema}
        missing = [
            key
            for key, replaces in migrations_on_disk()
            if key not in applied and not (replaces and replaces <= applied)
        ]
        if missing:
            return None, "migrations"
    return None, None


def _redis_py_url(url: str) -> str:
    """kombu's `redis+socket://path?virtual_host=N` as redis-py's `unix://path?db=N`."""
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://").replace("?virtual_host=", "?db=")
    return url


def _check_cache() -> str | None:
    cache = caches["default"]
    if isinstance(cache, ResilientRedisCache):
        # Asks Redis even while the breaker is open, and closes it when Redis answers.
        return None if cache.ping() else "cache"
    try:
        cache.set("readyz", "1", timeout=10)
        return None if cache.get("readyz") == "1" else "cache"
    except (RedisError, OSError) as exc:
        logger.warning("readyz: cache unavailable (%s)", type(exc).__name__)
        return "cache"


@functools.cache
def _broker_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=PROBE_TIMEOUT_SECONDS
    )


def _check_broker() -> str | None:
    url = _redis_py_url(settings.CELERY_BROKER_URL)
    try:
        if url.split("://", 1)[0] in ("redis", "rediss", "unix"):
            _broker_client(url).ping()
        else:  # another kombu transport (e.g. sentinel://): let kombu connect
            with Connection(  # type: ignore[no-untyped-call]
                settings.CELERY_BROKER_URL, connect_timeout=PROBE_TIMEOUT_SECONDS
            ) as broker:
                broker.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 (any failure to reach the broker is the answer)
        logger.warning("readyz: broker unavailable (%s)", type(exc).__name__)
        return "broker"
    return None


def _broker_is_the_cache() -> bool:
    return _redis_py_url(settings.CELERY_BROKER_URL) == str(settings.CACHES["default"]["LOCATION"])


# The keys check samples each encrypted column of the host's schema at most this often per
# process: readiness probes come every few seconds, encrypted rows change rarely.
KEYS_CHECK_SECONDS = 60
KEYS_CHECK_SAMPLE = 20
_keys_checked: dict[str, tuple[float, str | None]] = {}


@receiver(setting_changed)
def _keys_check_reset(*, setting: str, **kwargs: object) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _keys_checked.clear()


def _check_keys() -> str | None:
    """`keys` when a sampled encrypted value of the host's schema opens with no configured key
    (a key dropped too early, a backup restored from under a retired key, or this process
    lacking the key a newer release encrypts with): those reads would answer 500, so the
    process is not ready. Full census: `manage.py check_keys`."""
    from core.keys import unreadable_sample

    schema = getattr(connection, "schema_name", "public")
    checked_at, cached = _keys_checked.get(schema, (float("-inf"), None))
    if time.monotonic() - checked_at < KEYS_CHECK_SECONDS:
        return cached
    try:
        unreadable = unreadable_sample(schema=schema, tenant=schema != "public", sample=KEYS_CHECK_SAMPLE)
    except DatabaseError as exc:
        logger.warning("readyz: keys not checked (%s)", type(exc).__name__)
        return "keys"
    result = "keys" if unreadable else None
    if unreadable:  # table and column names only, never a value
        logger.error("readyz: no configured key opens values in %s", ", ".join(unreadable))
    _keys_checked[schema] = (time.monotonic(), result)
    return result


def readiness(*, schema_resolved: bool = True) -> JsonResponse:
    """The readiness answer for the current schema. `schema_resolved=False`: the host's clinic
    could not be looked up because the database is down (tenants.middleware)."""
    if schema_resolved:
        database, migrations = _check_database_and_migrations()
    else:
        database, migrations = "database", "migrations"
    # Without a database the keys cannot be checked: they count as failing, like migrations.
    keys = "keys" if database else _check_keys()
    cache = _check_cache()
    # One Redis for both (the default): one probe. Split URLs: each its own probe.
    broker = (cache and "broker") if _broker_is_the_cache() else _check_broker()
    checks = {"database": database, "migrations": migrations, "keys": keys, "cache": cache, "broker": broker}
    failing = [name for name, failure in checks.items() if failure]
    if failing:
        return problem_response(
            status_code=503,
            code=ErrorCode.NOT_READY,
            detail=f"Not ready: {', '.join(failing)}.",
            extra={"checks": {name: ("fail" if failure else "ok") for name, failure in checks.items()}},
        )
    return JsonResponse({"status": "ready", "checks": dict.fromkeys(checks, "ok")})


@transaction.non_atomic_requests
def readyz(request: HttpRequest) -> JsonResponse:
    return readiness()
