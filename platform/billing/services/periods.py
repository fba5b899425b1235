"""Billing months in the clinic's timezone."""

from __future__ import annotations

import calendar
import zoneinfo
from datetime import date, datetime, timedelta

from django.utils import timezone

from tenants.models import Clinic


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(period: date) -> date:
    return period.replace(day=calendar.monthrange(period.year, period.month)[1])


def next_month(period: date) -> date:
    return month_end(period) + timedelta(days=1)


def previous_month(period: date) -> date:
    return month_start(month_start(period) - timedelta(days=1))


def clinic_today(clinic: Clinic, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def clinic_month_bounds(clinic: Clinic, period: date) -> tuple[datetime, datetime]:
    """The UTC instants where the clinic's local month starts and the next one starts."""
    zone = zoneinfo.ZoneInfo(clinic.timezone)
    start = datetime.combine(period, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(next_month(period), datetime.min.time(), tzinfo=zone)
    return start, end
