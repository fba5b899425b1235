"""django-axes lockout → 429 problem+json saying when to retry (every login path)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.utils import timezone

from core.errors import ApplicationError


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


def raise_locked_out(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    """`user_locked_out` receiver: abort the login with a 429, even if the password is right."""
    retry_after = lockout_retry_after(username=username, ip_address=ip_address)
    retry_at = timezone.now() + timedelta(seconds=retry_after)
    raise ApplicationError(
        code="locked_out",
        status_code=429,
        detail=f"Too many failed sign-in attempts. Try again after {retry_at:%H:%M} UTC.",
        extra={"retry_after": retry_after, "retry_at": retry_at.isoformat(timespec="seconds")},
        headers={"Retry-After": str(retry_after)},
    )
