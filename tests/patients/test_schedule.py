"""Reminder times: pure rules of local wall-clock time, weekdays, DST and quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from patients.schedule import in_quiet_hours, next_occurrence, occurrence_at

BERLIN = ZoneInfo("Europe/Berlin")
EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]


def test_a_time_skipped_by_spring_forward_fires_once_an_hour_later_in_wall_clock() -> None:
    # 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist on that date.
    at = occurrence_at(date(2026, 3, 29), time(2, 30), BERLIN)
    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert at.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_a_time_repeated_by_fall_back_fires_at_its_first_occurrence_only() -> None:
    # 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice; the first one is 00:30 UTC.
    at = occurrence_at(date(2026, 10, 25), time(2, 30), BERLIN)
    assert at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    after_it, day = next_occurrence(local_time=time(2, 30), days_of_week=EVERY_DAY, zone=BERLIN, after=at)
    assert (day, after_it) == (date(2026, 10, 26), datetime(2026, 10, 26, 1, 30, tzinfo=UTC))


def test_occurrences_across_both_dst_days_are_one_per_local_date() -> None:
    for start in (datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC)):
        after, days = start, []
        for _ in range(5):
            after, day = next_occurrence(
                local_time=time(2, 30), days_of_week=EVERY_DAY, zone=BERLIN, after=after
            )
            days.append(day)
        assert days == [start.date() + timedelta(days=i) for i in range(5)]


def test_only_the_chosen_weekdays_are_used() -> None:
    monday = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday, after 08:00 Berlin
    at, day = next_occurrence(local_time=time(8, 0), days_of_week=[1, 4], zone=BERLIN, after=monday)
    assert (day, day.isoweekday()) == (date(2026, 11, 26), 4)
    assert at == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


def test_the_local_date_is_the_patients_not_utcs() -> None:
    # 23:30 in Auckland (UTC+13 in November) is 10:30 UTC the same day; 00:30 is the day before in UTC.
    auckland = ZoneInfo("Pacific/Auckland")
    after = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # 01:00 on the 23rd in Auckland
    at, day = next_occurrence(local_time=time(0, 30), days_of_week=EVERY_DAY, zone=auckland, after=after)
    assert day == date(2026, 11, 24)
    assert at == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)


def test_quiet_hours_wrap_midnight_and_end_is_exclusive() -> None:
    assert in_quiet_hours(time(23, 0), time(22, 0), time(7, 0))
    assert in_quiet_hours(time(6, 59), time(22, 0), time(7, 0))
    assert not in_quiet_hours(time(7, 0), time(22, 0), time(7, 0))
    assert in_quiet_hours(time(13, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(14, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(3, 0), None, time(7, 0))
    assert not in_quiet_hours(time(3, 0), time(7, 0), time(7, 0))


# hypothesis takes naive bounds and attaches the zone itself.
NAIVE_MIN = datetime(2024, 1, 1)  # noqa: DTZ001
NAIVE_MAX = datetime(2030, 1, 1)  # noqa: DTZ001
ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])


@given(
    zone=ZONES,
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    days=st.sets(st.integers(1, 7), min_size=1),
    after=st.datetimes(
        min_value=NAIVE_MIN,
        max_value=NAIVE_MAX,
        timezones=st.just(UTC),
    ),
)
def test_next_occurrence_is_the_first_allowed_local_date_after_the_instant(
    zone: str, hour: int, minute: int, days: set[int], after: datetime
) -> None:
    tz = ZoneInfo(zone)
    at, day = next_occurrence(local_time=time(hour, minute), days_of_week=days, zone=tz, after=after)
    assert at > after
    assert day.isoweekday() in days
    assert at == occurrence_at(day, time(hour, minute), tz)
    assert at - after <= timedelta(days=8)
    # No allowed date in between has an occurrence after `after` (none skipped).
    probe = day - timedelta(days=1)
    while probe >= after.astimezone(tz).date() - timedelta(days=1):
        if probe.isoweekday() in days:
            assert occurrence_at(probe, time(hour, minute), tz) <= after
        probe -= timedelta(days=1)
