"""django-axes lockout → 429 problem+json saying when to retry (every login path)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.errors import PROBLEM_CONTENT_TYPE, ApplicationError, problem_response


def lockout_retry_after(*, username: str | None, ip_address: str | None) -> int:
    """Seconds until the username + IP lock lifts (the cool-off runs from the last failure)."""
    cool_off = get_cool_off() or timedelta(minutes=15)
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=ip_address)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if last is None:
        return int(cool_off.total_seconds())
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))


def _locked_out_error(username: str | None, ip_address: str | None) -> ApplicationError:
    retry_after = lockout_retry_after(username=username, ip_address=ip_address)
    retry_at = timezone.now() + timedelta(seconds=retry_after)
    return ApplicationError(
        code="locked_out",
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
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE, used by AxesMiddleware for a locked-out request. Our API views
    have already answered with the problem above; any other path gets the same body."""
    if (
        original_response is not None
        and original_response.status_code == 429
        and original_response.get("Content-Type") == PROBLEM_CONTENT_TYPE
    ):
        return original_response
    username = get_client_username(request, credentials)
    error = _locked_out_error(username, getattr(request, "axes_ip_address", None))
    return problem_response(
        status_code=429, code=error.code, detail=error.detail, headers=error.headers, extra=error.extra
    )
