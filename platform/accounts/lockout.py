"""Sign-in lockout (django-axes): two counters, and a 429 problem+json saying when to retry.

Counted over the same `AccessAttempt` rows (one per username + client key + user agent; the
client key is `core.net.client_key`, an IPv6 client's /64), within the cool-off window:

1. **Username + address**: AXES_FAILURE_LIMIT (5) failures lock that username from that
   address. Cheap to trip, so it only ever locks the address that guessed: a shared clinic
   Wi-Fi, or a patient's own phone, is not locked out by someone else.
2. **Account**: LOGIN_ACCOUNT_FAILURE_LIMIT (20) failures from any addresses together lock the
   account, so spreading guesses over many addresses (a botnet, a rotated /64) buys no more than
   that per window. A lock on the username alone at the first limit would let anyone lock any
   account for good by sending 5 wrong passwords every 15 minutes; hence a higher limit, and the
   account lock spares the addresses the owner signed in from within LOGIN_KNOWN_ADDRESS_DAYS
   (axes' AccessLog of successful sign-ins), where only the first counter applies. An attacker
   who keeps the account locked then locks out only its owner's new addresses.

A success resets only its own username + address counter (AXES_RESET_ON_SUCCESS): the failures
other addresses sent are the attack the account counter is there to see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.errors import PROBLEM_CONTENT_TYPE, ApplicationError, ErrorCode, problem_response


def _address_known(*, username: str, ip_address: str | None, now: datetime) -> bool:
    """The account signed in successfully from this client key recently."""
    if ip_address is None:
        return False
    since = now - timedelta(days=settings.LOGIN_KNOWN_ADDRESS_DAYS)
    known: bool = AccessLog.objects.filter(
        username=username, ip_address=ip_address, attempt_time__gte=since
    ).exists()
    return known


def account_locked(*, username: str | None, ip_address: str | None, since: datetime, now: datetime) -> bool:
    """The account counter has reached its limit, and this client key is not one of the
    owner's known addresses."""
    if not username:
        return False
    failures: int = (
        AccessAttempt.objects.filter(username=username, attempt_time__gte=since).aggregate(
            total=Sum("failures_since_start")
        )["total"]
        or 0
    )
    if failures < settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
        return False
    return not _address_known(username=username, ip_address=ip_address, now=now)


class AccountLockoutHandler(AxesDatabaseHandler):
    """AXES_HANDLER: axes' database handler (username + address, AXES_LOCKOUT_PARAMETERS) plus
    the account counter. axes compares `get_failures` with AXES_FAILURE_LIMIT before a password
    is checked and after a failure is recorded; an account lock reports the limit reached."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        failures: int = super().get_failures(request, credentials)
        limit: int = get_failure_limit(request, credentials)
        if failures >= limit:
            return failures
        if account_locked(
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,
            since=get_cool_off_threshold(request),
            now=request.axes_attempt_time or timezone.now(),
        ):
            return limit
        return failures


def _lifts_at(attempts: Iterable[tuple[int, datetime]], limit: int, cool_off: timedelta) -> datetime | None:
    """When a counter over these (failures, last attempt) rows drops below `limit`: each row
    leaves the window a cool-off after its last attempt, oldest first. None if not reached."""
    rows = sorted(attempts, key=lambda row: row[1])
    remaining = sum(failures for failures, _ in rows)
    if remaining < limit:
        return None
    for failures, last in rows:
        remaining -= failures
        if remaining < limit:
            return last + cool_off
    return None  # unreachable: the loop ends with remaining == 0 < limit


def lockout_retry_after(*, username: str | None, ip_address: str | None) -> int:
    """Seconds until this username may sign in from this client key again: when every lock
    that holds (username + address, account) has lifted."""
    cool_off = get_cool_off() or timedelta(minutes=15)
    now = timezone.now()
    recent = AccessAttempt.objects.filter(username=username, attempt_time__gte=now - cool_off)
    lifts = [
        _lifts_at(
            recent.filter(ip_address=ip_address).values_list("failures_since_start", "attempt_time"),
            settings.AXES_FAILURE_LIMIT,
            cool_off,
        )
    ]
    if username and not _address_known(username=username, ip_address=ip_address, now=now):
        lifts.append(
            _lifts_at(
                recent.values_list("failures_since_start", "attempt_time"),
                settings.LOGIN_ACCOUNT_FAILURE_LIMIT,
                cool_off,
            )
        )
    lifted = [moment for moment in lifts if moment is not None]
    if not lifted:
        return int(cool_off.total_seconds())
    return max(1, math.ceil((max(lifted) - now).total_seconds()))


def _locked_out_error(username: str | None, ip_address: str | None) -> ApplicationError:
    retry_after = lockout_retry_after(username=username, ip_address=ip_address)
    retry_at = timezone.now() + timedelta(seconds=retry_after)
    return ApplicationError(
        code=ErrorCode.LOCKED_OUT,
        status_code=429,
        detail=f"Too many failed sign-in attempts. Try again after {retry_at:%H:%M} UTC.",
        extra={"retry_after": retry_after, "retry_at": retry_at.isoformat(timespec="seconds")},
        headers={"Retry-After": str(retry_after)},
    )


def raise_locked_out(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    """`user_locked_out` receiver: abort the login with a 429, even if the password is right."""
    raise _locked_out_error(username, ip_address)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE, used by AxesMiddleware for a locked-out request. Our API views
    have already answered with the problem above; any other path gets the same body."""
    if (
        original_response is not None
        and original_response.status_code == 429
        and (
            original_response.get("Content-Type") == PROBLEM_CONTENT_TYPE
            # An account page (accounts.web) that already says so in the person's language.
            or getattr(original_response, "csu_page", False)
        )
    ):
        return original_response
    username = get_client_username(request, credentials)
    error = _locked_out_error(username, getattr(request, "axes_ip_address", None))
    return problem_response(
        status_code=429, code=error.code, detail=error.detail, headers=error.headers, extra=error.extra
    )
