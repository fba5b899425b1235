"""DRF throttles that count clients by `core.net.client_key` and cost one cache round trip.

Clients are counted by the address the trusted proxy reports (never a forged X-Forwarded-For),
an IPv6 client by its /64, and so exactly the key the lockout counts. Use these instead of
`rest_framework.throttling`'s classes, whose `get_ident` reads X-Forwarded-For itself and
counts every IPv6 address on its own.

Counting (issue 19): DRF's throttles keep each client's history as a pickled list of every
request time, read and written back on every request: two Redis round trips and a list of up to
600 floats (the `user` rate) pickled each way, on every authenticated request. These count with
a sliding-window counter instead: two integer buckets per client, the current window's and the
previous one's, and the estimate `previous × (share of the previous window still inside the
sliding window) + current`. One pipelined round trip (INCR and EXPIRE the current bucket, GET
the previous one) answers it. The estimate assumes the previous window's requests were spread
evenly; it never lets through more than the rate in any window-aligned span, and refused
requests count too, so a client hammering past its limit stays refused until it slows down.

A cache outage fails open, as before (core.cache): the request is let through uncounted.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.cache import caches
from rest_framework import throttling
from rest_framework.request import Request

from core.cache import ResilientRedisCache
from core.net import client_key


class _ClientKeyIdent:
    def get_ident(self, request: Request) -> str:
        return client_key(request) or ""


def window_hit(key: str, *, bucket: int, duration: int) -> tuple[int, int] | None:
    """Count one request in `key`'s bucket `bucket`; answer (this bucket's count, the previous
    bucket's count), or None when the cache could not answer."""
    current_key, previous_key = f"{key}:{bucket}", f"{key}:{bucket - 1}"
    cache = caches["default"]
    if isinstance(cache, ResilientRedisCache):
        return _redis_window_hit(cache, current_key, previous_key, duration)
    # Other backends (tests with LocMem): the same counts, without the single round trip.
    try:
        if not cache.add(current_key, 1, 2 * duration):
            cache.incr(current_key)
        return int(cache.get(current_key, 0)), int(cache.get(previous_key, 0))
    except ValueError:
        return None


def _redis_window_hit(
    backend: ResilientRedisCache, current_key: str, previous_key: str, duration: int
) -> tuple[int, int] | None:
    client: Any = backend._cache  # core.cache.ResilientRedisCacheClient
    current, previous = backend.make_and_validate_key(current_key), backend.make_and_validate_key(previous_key)

    def hit() -> tuple[int, int]:
        pipe = client.get_client(current, write=True).pipeline(transaction=False)
        pipe.incr(current)
        pipe.expire(current, 2 * duration)
        pipe.get(previous)
        count, _, before = pipe.execute()
        return int(count), int(before or 0)

    return client.guarded(hit, None)  # type: ignore[no-any-return]


class _WindowCounter(_ClientKeyIdent):
    """`allow_request` and `wait` of SimpleRateThrottle, counted as the module says."""

    rate: str | None
    num_requests: int
    duration: int
    key: str | None
    timer: Any
    scope: str | None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if self.key is None:
            return True
        now = self.timer()
        bucket, into = divmod(now, self.duration)
        counts = window_hit(self.key, bucket=int(bucket), duration=self.duration)
        if counts is None:
            return True  # the cache is down: fail open (module docstring)
        current, previous = counts
        remaining_share = 1 - into / self.duration
        self._wait = self._wait_for(current, previous, into)
        return bool(previous * remaining_share + current <= self.num_requests)

    def _wait_for(self, current: int, previous: int, into: float) -> float:
        """Seconds until the estimate falls back to the rate, were no more requests made."""
        if current > self.num_requests:
            return self.duration - into  # only the next window resets this one's count
        if previous <= 0:
            return 0.0
        # previous × (1 − t / duration) + current ≤ num_requests, solved for t
        share_allowed = (self.num_requests - current) / previous
        return max(0.0, (1 - share_allowed) * self.duration - into)

    def wait(self) -> float | None:
        return max(1.0, math.ceil(getattr(self, "_wait", float(self.duration))))


class AnonRateThrottle(_WindowCounter, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_WindowCounter, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(_WindowCounter, throttling.ScopedRateThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        # DRF's ScopedRateThrottle.allow_request: the rate comes from the view's scope.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)  # type: ignore[assignment]
        return super().allow_request(request, view)
