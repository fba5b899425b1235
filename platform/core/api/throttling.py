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
sliding window) + current`. One round trip (a short Lua script: read both buckets, and count the
request in the current one only if it is let through) answers it. The estimate assumes the
previous window's requests were spread evenly; it never lets through more than the rate in any
window-aligned span. Refused requests are not counted, so a client that waits as long as
Retry-After says is let through then. Being an estimate it can refuse a client that sends
steadily at the very rate, about once a window; the rates sit well above what people send.

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


# Decide, then count only what is let through, atomically in one round trip: a refused request
# does not count, so a client that waits as long as Retry-After says is let through then.
_HIT_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local previous = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if previous * tonumber(ARGV[1]) + current + 1 <= tonumber(ARGV[2]) then
  current = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {1, current, previous}
end
return {0, current, previous}
"""


def window_hit(
    key: str, *, bucket: int, duration: int, previous_share: float, limit: int
) -> tuple[bool, int, int] | None:
    """Let one request of `key` through if the estimate stays within `limit`, counting it in
    bucket `bucket`; answer (let through, this bucket's count, the previous bucket's count), or
    None when the cache could not answer."""
    current_key, previous_key = f"{key}:{bucket}", f"{key}:{bucket - 1}"
    cache = caches["default"]
    if isinstance(cache, ResilientRedisCache):
        client: Any = cache._cache  # core.cache.ResilientRedisCacheClient
        current = cache.make_and_validate_key(current_key)
        previous = cache.make_and_validate_key(previous_key)

        def hit() -> tuple[bool, int, int]:
            redis = client.get_client(current, write=True)
            allowed, count, before = redis.eval(
                _HIT_SCRIPT, 2, current, previous, repr(previous_share), limit, 2 * duration
            )
            return bool(allowed), int(count), int(before)

        return client.guarded(hit, None)  # type: ignore[no-any-return]
    # Other backends (none configured; kept for a LocMem cache): the same rule, not atomic.
    try:
        count, before = int(cache.get(current_key, 0)), int(cache.get(previous_key, 0))
        if before * previous_share + count + 1 > limit:
            return False, count, before
        if not cache.add(current_key, 1, 2 * duration):
            cache.incr(current_key)
        return True, count + 1, before
    except ValueError:
        return None


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
        share = 1 - into / self.duration
        answer = window_hit(
            self.key, bucket=int(bucket), duration=self.duration, previous_share=share, limit=self.num_requests
        )
        if answer is None:
            return True  # the cache is down: fail open (module docstring)
        allowed, current, previous = answer
        if not allowed:
            self._wait = self._wait_for(current, previous, into)
        return allowed

    def _wait_for(self, current: int, previous: int, into: float) -> float:
        """Seconds until one more request fits: previous × (share left) + current + 1 ≤ rate,
        in this window, or else in the next one (where this window's count is the previous)."""
        room = self.num_requests - current - 1
        if room >= 0 and previous > 0:
            # previous × (1 − t / duration) ≤ room, solved for t within this window
            at = (1 - room / previous) * self.duration
            if at < self.duration:
                return max(0.0, at - into)
        # The next window: current × (1 − t / duration) + 1 ≤ rate
        at_next = max(0.0, (1 - (self.num_requests - 1) / current) * self.duration) if current else 0.0
        return (self.duration - into) + at_next

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
