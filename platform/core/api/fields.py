"""Serializer fields shared by the APIs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


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


class SingleLineCharField(serializers.CharField):
    """A name or label: one line, no control characters (core.text)."""

    def to_internal_value(self, data: object) -> str:
        from core.text import CONTROL_MESSAGE, has_control_characters

        value = super().to_internal_value(data)
        if has_control_characters(value):
            raise serializers.ValidationError(CONTROL_MESSAGE, code="invalid_characters")
        return value
