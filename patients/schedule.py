"""When a reminder is due: pure functions of local wall-clock time and an IANA zone.

One occurrence per local date. `datetime.combine(day, time, tzinfo=zone)` has `fold=0`, which
for zoneinfo means (PEP 495):
- a time skipped by spring-forward (02:30 in Europe/Berlin on the last Sunday of March) is read
  with the offset in force *before* the gap, i.e. it fires once, at 03:30 local;
- a time repeated by fall-back (02:30 on the last Sunday of October) is its *first* occurrence,
  so it fires once, not twice.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def occurrence_at(day: date, local_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `local_time` on local date `day`."""
    return datetime.combine(day, local_time.replace(tzinfo=None), tzinfo=zone).astimezone(UTC)


def next_occurrence(
    *, local_time: time, days_of_week: Collection[int], zone: ZoneInfo, after: datetime
) -> tuple[datetime, date]:
    """The first occurrence strictly after `after`: (UTC instant, local date it belongs to)."""
    if not days_of_week:
        raise ValueError("a reminder needs at least one weekday")
    # Start a day early: near midnight the UTC instant and the local date straddle days.
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(9):
        if day.isoweekday() in days_of_week:
            at = occurrence_at(day, local_time, zone)
            if at > after:
                return at, day
        day += timedelta(days=1)
    raise AssertionError("unreachable: every week has each weekday")  # pragma: no cover


def in_quiet_hours(moment: time, start: time | None, end: time | None) -> bool:
    """Whether a local time falls in [start, end); the window may wrap midnight (22:00–07:00)."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end
