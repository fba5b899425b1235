"""Base classes for clinic-host endpoints: authenticated member of this clinic, MFA satisfied,
plus the role each family of endpoints needs."""

from __future__ import annotations

from typing import Any, NoReturn

from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from accounts.authentication import request_clinic, request_membership
from accounts.permissions import (
    ClinicWritable,
    IsClinicAdmin,
    IsClinician,
    IsClinicMember,
    IsPatient,
    IsPlatformOperator,
    MfaSatisfied,
    PatientWritesOpen,
)
from core.api.base import BaseApi
from core.errors import AuditedPermissionDenied


class ClinicApi(BaseApi):
    permission_classes = [IsAuthenticated, IsClinicMember, MfaSatisfied]

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        """As DRF's (401 for the anonymous), but a signed-in member's refusal is audited."""
        try:
            super().permission_denied(request, message=message, code=code)
        except exceptions.PermissionDenied as exc:
            raise AuditedPermissionDenied(detail=exc.detail, code=code) from exc

    @staticmethod
    def clinic(request: Request) -> Any:
        return request_clinic(request)

    @staticmethod
    def membership(request: Request) -> Any:
        return request_membership(request)


class PatientApi(ClinicApi):
    permission_classes = [IsAuthenticated, IsPatient, MfaSatisfied, PatientWritesOpen]


class ClinicianApi(ClinicApi):
    permission_classes = [IsAuthenticated, IsClinician, MfaSatisfied, ClinicWritable]


class ClinicAdminApi(ClinicApi):
    permission_classes = [IsAuthenticated, IsClinicAdmin, MfaSatisfied, ClinicWritable]


class PlatformOperatorApi(BaseApi):
    """Platform host endpoints for operators (`/api/v1/platform/…`)."""

    permission_classes = [IsAuthenticated, IsPlatformOperator]
