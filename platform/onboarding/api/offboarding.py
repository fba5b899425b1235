"""Operator: cancel a clinic's offboarding during its grace period (issue 21, part 3)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from onboarding.api.views import OperatorClinicSerializer, _OperatorClinicActionApi
from tenants import lifecycle
from tenants import selectors as tenant_selectors
from tenants.models import ClinicStatus


class OperatorClinicOffboardCancelApi(_OperatorClinicActionApi):
    """POST `{"to": "active" | "suspended"}` (default active): the clinic leaves offboarding,
    its portal and patients write again, and its export archive is deleted. 409
    `invalid_status` for a clinic that is not offboarding (a purged one is gone: 404)."""

    class InputSerializer(StrictSerializer):
        to = serializers.ChoiceField(
            choices=[ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED], default=ClinicStatus.ACTIVE
        )

    @extend_schema(request=InputSerializer, responses={200: OperatorClinicSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data: dict[str, Any] = self.validated(self.InputSerializer, request.data)
        clinic = tenant_selectors.clinic_get_by_slug(slug=slug)
        return self.respond(lifecycle.clinic_offboard_cancel(clinic=clinic, to=data["to"]))
