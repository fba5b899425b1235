"""What a device may sync: the tables, the batch and page limits, the schema version it must speak."""

from __future__ import annotations

from typing import Any

from core.errors import ApplicationError, ErrorCode

MIN_SCHEMA_VERSION = 1


MAX_BATCH = 500


MAX_PULL = 1000


TABLES = (
    "diary_entry",
    "questionnaire_response",
    "dose_log",
    "patient_settings",
    "prescription",
    "reminder",
    "sync_conflict",
)


DIARY_FIELDS = {"day", "slot", "wheals", "itch", "angioedema", "aas_items", "note"}


SETTINGS_FIELDS = {"timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"}


REMINDER_FIELDS = {"kind", "local_time", "days_of_week", "prescription", "enabled"}


def schema_version_check(version: Any) -> None:
    """Clients send their local schema version; older than supported → 426 with the minimum."""
    try:
        number = int(version)
    except (TypeError, ValueError):
        number = 0
    if number < MIN_SCHEMA_VERSION:
        raise ApplicationError(
            code=ErrorCode.UPGRADE_REQUIRED,
            status_code=426,
            detail=f"This app version is too old to sync; update to schema version {MIN_SCHEMA_VERSION} or newer.",
            extra={"min_schema_version": MIN_SCHEMA_VERSION},
        )
