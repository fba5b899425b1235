"""Readiness: database, Redis and migrations. 503 names the failing part."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, JsonResponse
from redis.exceptions import RedisError

from core.errors import ErrorCode, problem_response

logger = logging.getLogger(__name__)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.warning("readyz: database unavailable", exc_info=True)
        return "database"
    return None


def _check_redis() -> str | None:
    try:
        cache.set("readyz", "1", timeout=10)
        if cache.get("readyz") != "1":
            return "redis"
    except (RedisError, OSError):
        logger.warning("readyz: redis unavailable", exc_info=True)
        return "redis"
    return None


def _check_migrations() -> str | None:
    """The current schema (public or the clinic's) has every migration the code has."""
    try:
        loader = MigrationLoader(connection)
    except DatabaseError:
        return "migrations"
    # Every migration the code has must be recorded (not only the leaves: a gap counts too).
    return "migrations" if set(loader.graph.nodes) - set(loader.applied_migrations) else None


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis()}
    if checks["database"] is None:
        checks["migrations"] = _check_migrations()
    else:
        checks["migrations"] = "migrations"
    failing = [name for name, failure in checks.items() if failure]
    if failing:
        return problem_response(
            status_code=503,
            code=ErrorCode.NOT_READY,
            detail=f"Not ready: {', '.join(failing)}.",
            extra={"checks": {name: ("fail" if failure else "ok") for name, failure in checks.items()}},
        )
    return JsonResponse({"status": "ready", "checks": {name: "ok" for name in checks}})
