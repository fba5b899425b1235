"""The DRF exception handler: core's problem+json rendering, plus the audit row of a member's
refused authorization in the clinic's access log (config wires core to the patients app's
audit writer; neither imports the other)."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.response import Response

from accounts.authentication import request_membership
from core.errors import AuditedPermissionDenied, problem_exception_handler
from patients.audit import access_log_write
from patients.models import Patient


def _patient_named(kwargs: dict[str, Any]) -> uuid.UUID | None:
    try:
        patient_id = uuid.UUID(str(kwargs.get("patient_id")))
    except ValueError:
        return None
    return patient_id if Patient.objects.filter(pk=patient_id).exists() else None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = problem_exception_handler(exc, context)
    request = context.get("request")
    if isinstance(exc, AuditedPermissionDenied) and request is not None:
        membership = request_membership(request)
        if membership is not None:
            view = context.get("view")
            access_log_write(
                actor_id=membership.user_id,
                actor_role=membership.role,
                action="access.denied",
                patient_id=_patient_named(context.get("kwargs") or {}),
                object_type=type(view).__name__[:64] if view is not None else "",
                allowed=False,
            )
    return response
