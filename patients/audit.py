"""The access log writer: called inside the transaction of the access it records."""

from __future__ import annotations

import uuid
from typing import Any

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
    """Record who touched which patient's data (DESIGN.md §9). Never include PHI here."""
    return AccessLog.objects.create(
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        patient_id=patient_id,
        object_type=object_type or (type(obj).__name__ if obj is not None else ""),
        object_id=str(getattr(obj, "pk", "") or ""),
        allowed=allowed,
        ip=ip or None,
        request_id=request_id[:64],
    )
