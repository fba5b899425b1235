"""The access log writer: called inside the transaction of the access it records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from core.request_context import current_request_context
from patients.models import AccessLog


def access_log_write(
    *,
    actor_id: uuid.UUID | None,
    actor_role: str,
    action: str,
    patient_id: uuid.UUID | None,
    obj: Any = None,
    object_type: str = "",
    allowed: bool = True,
    ip: str | None = None,
    request_id: str = "",
) -> AccessLog:
    """Record who touched which patient's data (DESIGN.md §9). Never include PHI here.

    Without `ip` / `request_id`, the running request's are used (core.request_context): the
    client's address as the trusted proxy reports it, never the proxy's own."""
    context = current_request_context()
    return AccessLog.objects.create(
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        patient_id=patient_id,
        object_type=object_type or (type(obj).__name__ if obj is not None else ""),
        object_id=str(getattr(obj, "pk", "") or ""),
        allowed=allowed,
        ip=ip or context.client_ip,
        request_id=(request_id or context.request_id)[:64],
    )


def access_log_write_many(
    *,
    actor_id: uuid.UUID,
    actor_role: str,
    action: str,
    patient_ids: list[uuid.UUID],
    object_type: str,
    ip: str | None = None,
    request_id: str = "",
) -> None:
    """One row per patient for a read that showed several patients (a list), in one INSERT.
    `ip` and `request_id` default to the running request's, as in `access_log_write`."""
    context = current_request_context()
    AccessLog.objects.bulk_create(
        [
            AccessLog(
                actor_id=actor_id,
                actor_role=actor_role,
                action=action,
                patient_id=patient_id,
                object_type=object_type,
                ip=ip or context.client_ip,
                request_id=(request_id or context.request_id)[:64],
            )
            for patient_id in dict.fromkeys(patient_ids)
        ]
    )


def access_log_for_patient(
    *, patient_id: uuid.UUID, before: datetime | None = None, limit: int = 100
) -> list[AccessLog]:
    """Who read or changed a patient's data, newest first (keyset on `before`)."""
    rows = AccessLog.objects.filter(patient_id=patient_id).order_by("-created_at")
    if before is not None:
        rows = rows.filter(created_at__lt=before)
    return list(rows[:limit])
