"""Base classes for clinic-host endpoints: authenticated member of this clinic, MFA satisfied,
plus the role each family of endpoints needs."""

from __future__ import annotations

from typing import Any

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
)
from core.api.base import BaseApi


class ClinicApi(BaseApi):
    permission_classes = [IsAuthenticated, IsClinicMember, MfaSatisfied]

    @staticmethod
    def clinic(request: Request) -> Any:
        return request_clinic(request)

    @staticmethod
    def membership(request: Request) -> Any:
        return request_membership(request)


class PatientApi(ClinicApi):
    permission_classes = [IsAuthenticated, IsPatient, MfaSatisfied]


class ClinicianApi(ClinicApi):
    permission_classes = [IsAuthenticated, IsClinician, MfaSatisfied, ClinicWritable]


class ClinicAdminApi(ClinicApi):
    permission_classes = [IsAuthenticated, IsClinicAdmin, MfaSatisfied, ClinicWritable]


class PlatformOperatorApi(BaseApi):
    """Platform host endpoints for operators (`/api/v1/platform/…`)."""

    permission_classes = [IsAuthenticated, IsPlatformOperator]
