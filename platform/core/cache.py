"""The cache backend (Redis) that a Redis outage cannot take the API down with.

Every request reads the cache (host → clinic, membership, throttles), so a dead Redis must
cost a request nothing but a miss: every Redis failure falls through (`get` answers the
default, `get_many` nothing, `set`/`add`/`delete`/`touch` do nothing and answer False), and a
per-process circuit breaker stops asking a Redis that just failed, so requests do not each wait
for a timeout. After `breaker_seconds` one call tries again (half-open): its success closes the
breaker, its failure opens it for another period. Each transition is logged once, without keys.

What a miss means is each caller's decision (they say why next to the call):
- caches of database rows (host, membership) fall through to the database;
- DRF throttles read an empty history, so they fail open (the issue's rule for rate limits);
  lockout (django-axes) lives in the database and keeps counting;
- a caller that must tell "no" from "unknown" uses `cache_add_or_none`.

Configured in CACHES["default"]["OPTIONS"]: `socket_connect_timeout` (default 0.25 s) and
`socket_timeout` (0.5 s) go to redis-py; `breaker_seconds` (5 s) is how long the breaker
stays open.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 0.25
DEFAULT_READ_TIMEOUT = 0.5
DEFAULT_BREAKER_SECONDS = 5.0

# Redis is unreachable (refused, reset, timed out, DNS, loading): open the breaker. Other
# RedisErrors (a WRONGTYPE answer, a read-only replica) also fall through, but Redis answered,
# so they do not stop the next caller from trying.
_OUTAGES: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


class CacheUnavailable(ValueError):  # noqa: N818 (reads as a state, like Django's ValueError for incr)
    """Raised by `incr`/`decr` when the cache could not answer. A ValueError, as for a missing
    key: callers that restart a counter on ValueError fail open."""


class CircuitBreaker:
    """Per process and per Redis location, shared by every thread's cache connection."""

    def __init__(self, name: str, open_seconds: float) -> None:
        self.name = name
        self.open_seconds = open_seconds
        self._lock = threading.Lock()
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """May this call talk to Redis? Closed: yes. Open: no, except one trial per period."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_running or time.monotonic() - self._opened_at < self.open_seconds:
                return False
            self._trial_running = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at = None
            self._trial_running = False
        if was_open:
            logger.warning("cache %s reachable again: circuit closed", self.name)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            was_closed = self._opened_at is None
            self._opened_at = time.monotonic()
            self._trial_running = False
        if was_closed:
            logger.warning(
                "cache %s unavailable (%s): circuit open, requests skip the cache, retrying every %.1f s",
                self.name,
                type(exc).__name__,
                self.open_seconds,
            )

    def reset(self) -> None:
        with self._lock:
            self._opened_at = None
            self._trial_running = False


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(name: str, open_seconds: float) -> CircuitBreaker:
    with _breakers_lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = CircuitBreaker(name, open_seconds)
        breaker.open_seconds = open_seconds
        return breaker


def breakers_reset() -> None:
    """Close every breaker of this process (tests)."""
    with _breakers_lock:
        for breaker in _breakers.values():
            breaker.reset()


_RAISE: Any = object()


class ResilientRedisCacheClient(RedisCacheClient):
    """Django's Redis client with every operation guarded by the breaker."""

    def __init__(self, servers: list[str], *, breaker: CircuitBreaker, **options: Any) -> None:
        super().__init__(servers, **options)
        self.breaker = breaker

    def guarded(self, operation: Callable[[], T], fallback: T) -> T:
        """`operation()`, or `fallback` when Redis fails or the breaker is open (`_RAISE`:
        raise CacheUnavailable instead)."""
        if not self.breaker.allow():
            return _fallback(fallback)
        try:
            result = operation()
        except _OUTAGES as exc:
            self.breaker.failed(exc)
            return _fallback(fallback)
        except RedisError as exc:
            self.breaker.succeeded()
            logger.warning("cache %s error (%s): treated as a miss", self.breaker.name, type(exc).__name__)
            return _fallback(fallback)
        except BaseException:
            self.breaker.succeeded()  # Redis answered (a missing key for incr, a pickling error)
            raise
        self.breaker.succeeded()
        return result

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self.guarded(functools.partial(super().add, key, value, timeout), False)

    def get(self, key: Any, default: Any) -> Any:
        return self.guarded(functools.partial(super().get, key, default), default)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self.guarded(functools.partial(super().set, key, value, timeout), None)

    def touch(self, key: Any, timeout: Any) -> bool:
        return self.guarded(functools.partial(super().touch, key, timeout), False)

    def delete(self, key: Any) -> bool:
        return self.guarded(functools.partial(super().delete, key), False)

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        return self.guarded(functools.partial(super().get_many, keys), {})

    def has_key(self, key: Any) -> bool:
        return self.guarded(functools.partial(super().has_key, key), False)

    def incr(self, key: Any, delta: int) -> Any:
        return self.guarded(functools.partial(super().incr, key, delta), _RAISE)

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        self.guarded(functools.partial(super().set_many, data, timeout), None)

    def delete_many(self, keys: Iterable[Any]) -> None:
        self.guarded(functools.partial(super().delete_many, keys), None)

    def clear(self) -> bool:
        return self.guarded(super().clear, False)


def _fallback(fallback: T) -> T:
    if fallback is _RAISE:
        raise CacheUnavailable("The cache is unavailable.")
    return fallback


class ResilientRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache` that degrades to a miss (module docstring)."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        open_seconds = float(options.pop("breaker_seconds", DEFAULT_BREAKER_SECONDS))
        options.setdefault("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        options.setdefault("socket_timeout", DEFAULT_READ_TIMEOUT)
        super().__init__(server, {**params, "OPTIONS": options})
        servers = re.split("[;,]", server) if isinstance(server, str) else server  # as RedisCache
        self.breaker = breaker_for(_location_name(servers), open_seconds)
        self._class = functools.partial(ResilientRedisCacheClient, breaker=self.breaker)

    def add_or_none(
        self, key: Any, value: Any, timeout: Any = None, version: int | None = None
    ) -> bool | None:
        """`add`, but None (not False) when the cache could not answer."""
        made = self.make_and_validate_key(key, version=version)
        client: ResilientRedisCacheClient = self._cache  # type: ignore[assignment]
        seconds = self.get_backend_timeout(timeout)
        add = functools.partial(
            RedisCacheClient.add, client, made, value, None if seconds is None else int(seconds)
        )
        return client.guarded(add, None)

    def ping(self) -> bool:
        """Whether Redis answers now, asked even while the breaker is open (readiness); a
        success closes the breaker, a failure opens it."""
        client: ResilientRedisCacheClient = self._cache  # type: ignore[assignment]
        try:
            answered = bool(client.get_client(None, write=True).ping())
        except _OUTAGES as exc:
            self.breaker.failed(exc)
            return False
        except RedisError:
            return False
        self.breaker.succeeded()
        return answered


def _location_name(servers: list[str]) -> str:
    """The servers without credentials, for the breaker's name and its log lines."""
    names = []
    for server in servers:
        scheme, _, rest = server.partition("://")
        names.append(f"{scheme}://{rest.rpartition('@')[2]}")
    return ",".join(names)


def cache_add_or_none(key: str, value: Any, timeout: int, *, alias: str = "default") -> bool | None:
    """`cache.add(key, value, timeout)`: True if added, False if the key exists, None when the
    cache could not answer (any backend)."""
    backend = caches[alias]
    if isinstance(backend, ResilientRedisCache):
        return backend.add_or_none(key, value, timeout)
    try:
        return bool(backend.add(key, value, timeout))
    except (RedisError, OSError):
        return None
