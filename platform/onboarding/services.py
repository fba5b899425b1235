"""Clinic administration that spans tenancy and accounts."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.services import AMR_MFA, clinic_staff_credentials_revoke, mfa_enabled
from core.errors import ApplicationError, ErrorCode
from tenants.lifecycle import clinic_settings_apply
from tenants.models import Clinic


@transaction.atomic
def clinic_settings_update(
    *, clinic: Clinic, actor: User | None = None, actor_amr: str | None = None, **changes: Any
) -> Clinic:
    """Clinic settings. Switching `mfa_required` on revokes the staff's earlier tokens and
    sessions (issued without a second factor); the acting admin keeps theirs when they signed
    in with one. An admin without MFA of their own cannot switch it on: the next request would
    lock them out of their own portal (issue 22, part 7), so the answer says how to set it up."""
    if changes.get("mfa_required") is True and not clinic.mfa_required and actor is not None:
        if not mfa_enabled(user=actor):
            raise ApplicationError(
                code=ErrorCode.MFA_SETUP_FIRST,
                status_code=422,
                field="mfa_required",
                detail=(
                    "Set up two-factor sign-in for your own account first, or this change would "
                    "lock you out: open /account/mfa on this clinic's address (or POST "
                    "/api/v1/auth/mfa/setup/ and /api/v1/auth/mfa/confirm/), then switch this on."
                ),
            )
    if clinic_settings_apply(clinic=clinic, **changes):
        keep = actor if actor is not None and actor_amr == AMR_MFA else None
        clinic_staff_credentials_revoke(clinic=clinic, keep_user=keep)
    return clinic
