"""Clinic administration that spans tenancy and accounts."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.services import AMR_MFA, clinic_staff_credentials_revoke
from tenants.lifecycle import clinic_settings_apply
from tenants.models import Clinic


@transaction.atomic
def clinic_settings_update(
    *, clinic: Clinic, actor: User | None = None, actor_amr: str | None = None, **changes: Any
) -> Clinic:
    """Clinic settings. Switching `mfa_required` on revokes the staff's earlier tokens and
    sessions (issued without a second factor); the acting admin keeps theirs when they signed
    in with one."""
    if clinic_settings_apply(clinic=clinic, **changes):
        keep = actor if actor is not None and actor_amr == AMR_MFA else None
        clinic_staff_credentials_revoke(clinic=clinic, keep_user=keep)
    return clinic
