"""Accounts and memberships: create a user, grant, (de)activate a membership."""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.hooks import seat_check
from accounts.models import Membership, Role, User
from core.errors import ApplicationError, ErrorCode
from core.text import single_line_validate
from tenants.models import Clinic

logger = logging.getLogger("accounts.auth")


STAFF_ROLES = (Role.CLINIC_ADMIN, Role.CLINICIAN)


def email_normalize(email: str) -> str:
    return (email or "").strip().lower()


def password_validate(password: str, *, user: User | None = None, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError(code=ErrorCode.WEAK_PASSWORD, field=field, detail=" ".join(exc.messages)) from exc


def user_create(*, email: str, password: str, full_name: str = "", verified: bool) -> User:
    """A new account. `verified` only when the flow itself proved the address (an invitation
    link opened from that mailbox); otherwise it must be confirmed by the emailed link."""
    email = email_normalize(email)
    if User.objects.filter(email=email).exists():
        raise ApplicationError(
            code=ErrorCode.EMAIL_TAKEN, field="email", status_code=409, detail="This email is registered."
        )
    user = User(email=email, full_name=single_line_validate(full_name.strip(), field="full_name"))
    password_validate(password, user=user)
    user.set_password(password)
    user.email_verified_at = timezone.now() if verified else None
    user.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # created concurrently by another request
        raise ApplicationError(
            code=ErrorCode.EMAIL_TAKEN, field="email", status_code=409, detail="This email is registered."
        ) from exc
    return user


def membership_set_active(*, membership: Membership, is_active: bool) -> Membership:
    """Deactivate or reactivate a member; their tokens and sessions follow on the next request."""
    Membership.objects.filter(pk=membership.pk).update(is_active=is_active)
    membership.is_active = is_active
    membership_cache_clear_now_and_on_commit(
        membership.user_id, [(membership.clinic.schema_name, str(membership.clinic_id))]
    )
    return membership


def user_set_active(*, user: User, is_active: bool) -> User:
    User.objects.filter(pk=user.pk).update(is_active=is_active)
    user.is_active = is_active
    membership_cache_clear_now_and_on_commit(user.pk, user_clinics(user))
    return user


def membership_cache_clear_now_and_on_commit(user_id: uuid.UUID, clinics: list[tuple[str, str]]) -> None:
    """Retire the user's cached memberships (in every clinic): bump the generation the cache is
    keyed by (accounts.selectors.membership_active_for), in the caller's transaction. Nothing
    is deleted from Redis, so nothing depends on Redis being reachable now: requests before
    the commit read the old generation and may re-cache the old state under it, requests after
    it ask for a key no entry has. Old entries expire on their own."""
    User.objects.filter(pk=user_id).update(membership_generation=F("membership_generation") + 1)


def membership_grant(*, user: User, clinic: Clinic, role: str) -> Membership:
    membership, created = Membership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
    if not created:
        raise ApplicationError(
            code=ErrorCode.ALREADY_MEMBER, status_code=409, detail="This account already belongs to this clinic."
        )
    membership_cache_clear_now_and_on_commit(user.pk, [(clinic.schema_name, str(clinic.pk))])
    return membership


def user_clinics(user: User) -> list[tuple[str, str]]:
    return [
        (schema, str(pk))
        for schema, pk in Clinic.objects.filter(memberships__user=user).values_list("schema_name", "pk")
    ]


def clinic_member_set_active(
    *, clinic: Clinic, membership_id: str, is_active: bool, actor: User
) -> Membership:
    membership = Membership.objects.filter(clinic=clinic, pk=membership_id).select_related("clinic").first()
    if membership is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such member.")
    if membership.user_id == actor.pk and not is_active:
        raise ApplicationError(
            code=ErrorCode.CANNOT_DEACTIVATE_SELF, status_code=409, detail="You cannot deactivate yourself."
        )
    with transaction.atomic():
        if is_active and not membership.is_active and membership.role == Role.CLINICIAN:
            # A reactivated clinician takes a seat again, like an invited one.
            seat_check(clinic=clinic, adding="clinician")
        return membership_set_active(membership=membership, is_active=is_active)
