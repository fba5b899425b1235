"""Counts of a clinic's patient records for other apps (billing's seats and monthly usage,
tenancy's new schemas), registered in `PatientsConfig.ready`: the only code outside the ORM that
reads these tables by a schema name, and it is this app's own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection

_ACTIVE_PATIENTS_SQL = """
SELECT count(*) FROM (
    SELECT patient_id FROM "{schema}".patients_diaryentry WHERE recorded_at >= %(start)s AND recorded_at < %(end)s
    UNION
    SELECT patient_id FROM "{schema}".patients_doselog WHERE created_at >= %(start)s AND created_at < %(end)s
) active
"""


def patient_seats(clinic: Any) -> int:
    """Patients with status active in the clinic's schema (the seat count for `max_patients`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT count(*) FROM "{clinic.schema_name}".patients_patient WHERE status = %s',  # noqa: S608 (schema name is ours)
            ["active"],
        )
        return int(cursor.fetchone()[0])


def active_patients_between(clinic: Any, start: datetime, end: datetime) -> int:
    """Patients who recorded a diary entry or a dose in [start, end)."""
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_PATIENTS_SQL.format(schema=clinic.schema_name), {"start": start, "end": end})
        return int(cursor.fetchone()[0])


def sync_epoch_reset(schema_name: str) -> None:
    """A new clinic's own sync epoch: the template snapshot carries the template's, and a pull
    cursor must never be taken for another clinic's history."""
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{schema_name}".patients_syncstate SET epoch = gen_random_uuid()')  # noqa: S608
