"""Role permissions used by every clinic endpoint (deny by default)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.authentication import request_clinic, request_membership, token_claim
from accounts.models import Role
from accounts.services import mfa_setup_pending
from core.errors import ErrorCode
from tenants.models import ClinicStatus
from tenants.selectors import clinic_status_get


class _RolePermission(BasePermission):
    roles: tuple[str, ...] = ()
    message = "Your role in this clinic does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = request_membership(request)
        return bool(request.user and membership and membership.role in self.roles)


class IsClinicMember(_RolePermission):
    roles = (Role.PATIENT, Role.CLINICIAN, Role.CLINIC_ADMIN)


class IsPatient(_RolePermission):
    roles = (Role.PATIENT,)


class IsClinician(_RolePermission):
    """Clinicians and clinic admins (admins can do what clinicians do)."""

    roles = (Role.CLINICIAN, Role.CLINIC_ADMIN)


class IsClinicAdmin(_RolePermission):
    roles = (Role.CLINIC_ADMIN,)


class MfaSatisfied(BasePermission):
    """Staff of a clinic that requires MFA must have confirmed TOTP (403 `mfa_setup_required`)."""

    message = "This clinic requires two-factor authentication: set it up first."
    code = "mfa_setup_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = request_membership(request)
        if membership is None or getattr(view, "allow_without_mfa", False):
            return True
        return not mfa_setup_pending(membership=membership, clinic=request_clinic(request))


def _status_now(request: Request) -> str | None:
    """The host's clinic status as stored now, for a write (one query by primary key). The
    request's clinic comes from the host cache, which a status change made while the cache was
    unreachable (even one process's breaker open) cannot clear: a write must not pass a
    suspension or an offboarding on a stale copy. None on the platform host."""
    clinic = request_clinic(request)
    return None if clinic is None else clinic_status_get(clinic_id=clinic.pk)


class ClinicWritable(BasePermission):
    """A suspended or offboarding clinic's portal is read-only (403 `clinic_suspended` /
    `clinic_offboarding`): what an offboarding clinic wrote after its export started would be
    missing from the archive. Views that must keep working for patient safety set
    `allowed_when_suspended = True`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS") or getattr(view, "allowed_when_suspended", False):
            return True
        status = _status_now(request)
        if status not in (ClinicStatus.SUSPENDED, ClinicStatus.OFFBOARDING):
            return True
        offboarding = status == ClinicStatus.OFFBOARDING
        raise exceptions.PermissionDenied(
            detail="This clinic is leaving CSU Tracker: the portal is read-only."
            if offboarding
            else "This clinic is suspended: the portal is read-only.",
            code=ErrorCode.CLINIC_OFFBOARDING if offboarding else "clinic_suspended",
        )


class PatientWritesOpen(BasePermission):
    """Patients keep recording in a suspended clinic (patient safety), but not in an
    offboarding one: its archive was taken when offboarding started, and anything written
    afterwards would be dropped with the schema without ever being exported. Reads and the
    patient's own export stay open; views a patient must keep (a deletion request) set
    `allowed_when_offboarding = True`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS") or getattr(view, "allowed_when_offboarding", False):
            return True
        if _status_now(request) == ClinicStatus.OFFBOARDING:
            raise exceptions.PermissionDenied(
                detail="Your clinic is leaving CSU Tracker: new entries are not kept. Download your data "
                "from My data.",
                code=ErrorCode.CLINIC_OFFBOARDING,
            )
        return True


class IsPlatformOperator(BasePermission):
    """Platform host only, `is_staff`, with an operator token (issued only after TOTP)."""

    message = "Platform operators only."

    def has_permission(self, request: Request, view: Any) -> bool:
        auth = request.auth
        return bool(
            request.user
            and request.user.is_staff
            and request_clinic(request) is None
            and auth is not None
            and token_claim(auth, "tid") == "public"
            and token_claim(auth, "mfa") is True
        )
