"""Reads for identity: the active membership behind every authenticated clinic request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from accounts.models import Invitation, Membership, Role, TotpDevice, User
from core.errors import ErrorCode

if TYPE_CHECKING:
    from tenants.models import Clinic

MEMBERSHIP_CACHE_SECONDS = 300
_MISSING = "none"


@dataclass(frozen=True)
class ActiveMembership:
    id: uuid.UUID
    user_id: uuid.UUID
    clinic_id: uuid.UUID
    role: str
    # The user has a confirmed TOTP device: staff credentials without it are refused.
    mfa_enabled: bool = False


def _cache_key(user_id: uuid.UUID | str, clinic_id: uuid.UUID | str, generation: int) -> str:
    # Keyed on the clinic too (not only on the schema prefix the cache adds), so an entry
    # written from any schema context answers for exactly one clinic and user; and on the
    # user's membership generation, so no change is ever answered from an older entry.
    return f"membership:v3:{clinic_id}:{user_id}:{generation}"


def membership_active_for(
    *, user_id: uuid.UUID | str, clinic_id: uuid.UUID | str, generation: int | None = None
) -> ActiveMembership | None:
    """The user's active membership in the clinic whose schema is active.

    Cached when the caller passes the user's `membership_generation`, read from the user row it
    loaded in this request (authentication loads it anyway); without it, read from the database.
    Every service that changes a membership, a user's `is_active` or their MFA bumps the
    generation in its transaction (`accounts.services.membership_cache_clear_now_and_on_commit`),
    so a change takes effect on the very next request. It does not depend on Redis being told:
    a revocation made while Redis is down is not undone by the old entry when Redis comes back,
    in any process, because no request asks for the old key again.

    A cache outage is a miss (core.cache): the membership is read from the database, so
    authentication keeps working, and fails closed only if the database is down too.
    """
    key = _cache_key(user_id, clinic_id, generation) if generation is not None else None
    if key is not None:
        cached = cache.get(key)
        if cached == _MISSING:
            return None
        if isinstance(cached, ActiveMembership):
            return cached
    row = (
        Membership.objects.filter(user_id=user_id, clinic_id=clinic_id, is_active=True, user__is_active=True)
        .annotate(
            mfa=Exists(TotpDevice.objects.filter(user_id=OuterRef("user_id"), confirmed_at__isnull=False))
        )
        .values_list("id", "user_id", "clinic_id", "role", "mfa")
        .first()
    )
    membership = ActiveMembership(*row) if row else None
    if key is not None:
        cache.set(key, membership or _MISSING, MEMBERSHIP_CACHE_SECONDS)
    return membership


def user_with_membership(
    *, user_id: uuid.UUID | str, clinic_id: uuid.UUID | str
) -> tuple[User | None, ActiveMembership | None]:
    """The user and their active membership in the clinic, in one query: what a token request
    on a clinic host needs to authenticate (accounts.authentication.ClinicJWTAuthentication).

    Read from the database on every request rather than through the membership cache: one
    indexed query costs less than the cache round trip it replaces (issue 19's profile), and a
    deactivation, a role change or a revoked membership is seen by the very next request
    without depending on any cache being told. (None, None) when the user does not exist; the
    membership is None when the user, or their membership here, is inactive.
    """
    active = Membership.objects.filter(user_id=OuterRef("pk"), clinic_id=clinic_id, is_active=True).order_by()
    user = (
        User.objects.filter(pk=user_id)
        .annotate(
            _membership_id=Subquery(active.values("id")[:1]),
            _membership_role=Subquery(active.values("role")[:1]),
            _mfa_enabled=Exists(
                TotpDevice.objects.filter(user_id=OuterRef("pk"), confirmed_at__isnull=False)
            ),
        )
        .first()
    )
    if user is None:
        return None, None
    membership_id = getattr(user, "_membership_id", None)
    if membership_id is None or not user.is_active:
        return user, None
    return user, ActiveMembership(
        id=membership_id,
        user_id=user.pk,
        clinic_id=uuid.UUID(str(clinic_id)),
        role=user._membership_role,
        mfa_enabled=bool(user._mfa_enabled),
    )


def invitations_of(*, clinic: Clinic, limit: int = 200) -> QuerySet[Invitation]:
    """The clinic's invitations, newest first."""
    return Invitation.objects.filter(clinic=clinic).order_by("-created_at")[:limit]


def invitation_get(*, clinic: Clinic, invitation_id: uuid.UUID | str) -> Invitation:
    """One of the clinic's invitations; another clinic's id is 404, like a missing one."""
    # Imported here, as is `tenants.models` below: DRF's settings load the authentication
    # classes, which import this module, while `core.errors` and the models still import DRF.
    from core.errors import ApplicationError

    invitation = Invitation.objects.filter(clinic=clinic, pk=invitation_id).first()
    if invitation is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such invitation.")
    return invitation


def clinic_members(
    *, clinic_id: uuid.UUID | str, role: str | None = None, is_active: bool | None = None, limit: int = 1000
) -> QuerySet[Membership]:
    """The clinic's memberships with their users, by role then email."""
    members = Membership.objects.filter(clinic_id=clinic_id).select_related("user")
    if role:
        members = members.filter(role=role)
    if is_active is not None:
        members = members.filter(is_active=is_active)
    return members.order_by("role", "user__email")[:limit]


def clinics_with_member_counts() -> QuerySet[Clinic]:
    """Every clinic, annotated with its active staff (`member_count`) and patients
    (`patient_count`)."""
    from tenants.models import Clinic

    active = Q(memberships__is_active=True)
    clinics: QuerySet[Clinic] = Clinic.objects.annotate(
        member_count=Count("memberships", filter=active & ~Q(memberships__role=Role.PATIENT)),
        patient_count=Count("memberships", filter=active & Q(memberships__role=Role.PATIENT)),
    )
    return clinics
