"""Serializer fields shared by the APIs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import ErrorCode
from core.text import CONTROL_MESSAGE, has_control_characters


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$",
        "example": "20:30",
    }
)
class LocalTimeField(serializers.TimeField):
    """A local wall-clock time, `HH:MM` (seconds accepted on input). Not OpenAPI's `format: time`,
    which is RFC 3339 full-time and requires a UTC offset: these times have none on purpose."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("format", "%H:%M")
        super().__init__(**kwargs)  # type: ignore[arg-type]


def no_control_characters(value: str) -> None:
    """Single-line values (a time zone, a name): no control characters at all."""
    if has_control_characters(value):
        raise serializers.ValidationError(CONTROL_MESSAGE, code=ErrorCode.INVALID_CHARACTERS)


def no_control_characters_in_text(value: str) -> None:
    """Free text (a note): line breaks and tabs, but no other control characters."""
    if has_control_characters(value, allow_line_breaks=True):
        raise serializers.ValidationError(CONTROL_MESSAGE, code=ErrorCode.INVALID_CHARACTERS)


class SingleLineCharField(serializers.CharField):
    """A name or label: one line, no control characters (core.text)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validators", []).append(no_control_characters)
        super().__init__(**kwargs)


# Nothing this product records is older. Much older dates are typos or probes, and near year 1
# the date arithmetic behind ranges and weekly scores overflows.
EARLIEST_DATE = date(2000, 1, 1)
EARLIEST_DATETIME = datetime(2000, 1, 1, tzinfo=UTC)
TOO_EARLY = "Dates before {} are not accepted."


class BoundedDateField(serializers.DateField):
    """A date no earlier than `min_value` (default 2000-01-01). Every date parameter of the
    patient and portal APIs is one of these."""

    def __init__(self, *, min_value: date = EARLIEST_DATE, **kwargs: Any) -> None:
        self.min_value = min_value
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        if day < self.min_value:
            raise serializers.ValidationError(
                TOO_EARLY.format(self.min_value.isoformat()), code=ErrorCode.MIN_VALUE
            )
        return day


class BoundedDateTimeField(serializers.DateTimeField):
    """An instant no earlier than 2000-01-01T00:00Z (converting year 1 to a western time zone
    overflows)."""

    def to_internal_value(self, value: Any) -> datetime:
        instant = super().to_internal_value(value)
        if instant < EARLIEST_DATETIME:
            raise serializers.ValidationError(
                TOO_EARLY.format(EARLIEST_DATE.isoformat()), code=ErrorCode.MIN_VALUE
            )
        return instant
