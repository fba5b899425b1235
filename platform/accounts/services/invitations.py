"""Staff invitations and the checks every single-use secret goes through."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.hooks import seat_check
from accounts.models import Invitation, Membership, Role, User
from accounts.services.sign_in import account_verify_for_linking
from accounts.services.tokens import AMR_PASSWORD
from accounts.services.users import STAFF_ROLES, email_normalize, membership_grant, user_create
from core import crypto
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic, ClinicStatus
from tenants.selectors import clinic_status_get, clinic_url


@transaction.atomic
def invitation_create(*, clinic: Clinic, email: str, role: str, invited_by: User) -> Invitation:
    """Invite a clinician or clinic admin; emails a single-use link valid 7 days."""
    clinic_refuse_new_members(clinic)
    if role not in STAFF_ROLES:
        raise ApplicationError(
            code=ErrorCode.INVALID_ROLE, field="role", detail="Invite clinicians or clinic admins."
        )
    email = email_normalize(email)
    if Membership.objects.filter(clinic=clinic, user__email=email).exists():
        raise ApplicationError(
            code=ErrorCode.ALREADY_MEMBER, status_code=409, field="email", detail="This person is already a member."
        )
    if role == Role.CLINICIAN:
        seat_check(clinic=clinic, adding="clinician")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        clinic=clinic,
        email=email,
        role=role,
        token_hash=crypto.keyed_hash(token, purpose="invitation"),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    subject, body = invitation_email(
        clinic=clinic, role=role, inviter=invited_by, link=clinic_url(clinic, f"/invitation#token={token}")
    )
    transaction.on_commit(
        lambda: send_mail(
            subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email]
        )
    )
    return invitation


def invitation_email(*, clinic: Clinic, role: str, inviter: User, link: str) -> tuple[str, str]:
    """Subject and text of an invitation. It names the role (a clinician and an admin see very
    different things) and who invited, so the person knows what they are accepting."""
    role_name = Role(role).label.lower()
    article = "an" if role_name[0] in "aeiou" else "a"
    inviter_name = inviter.full_name or inviter.email
    return (
        f"You are invited to {clinic.name} on CSU Tracker as {article} {role_name}",
        f"{inviter_name} invited you to join {clinic.name} on CSU Tracker as {article} {role_name}.\n\n"
        f"Open this link within {settings.INVITATION_VALID_DAYS} days to accept: {link}\n\n"
        "You can create a new account there, or sign in with the CSU Tracker account you "
        "already have. If you did not expect this, ignore this email.\n",
    )


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def clinic_refuse_new_members(clinic: Clinic) -> None:
    """A suspended or offboarding clinic takes no new members, patients or codes: whatever
    joined an offboarding clinic would be missing from its export archive.

    The status is read as stored now: `clinic` may be the request's copy from the host caches,
    which another process's status change reaches only within seconds (tenants.selectors)."""
    status = clinic_status_get(clinic_id=clinic.pk) or clinic.status
    if status == ClinicStatus.SUSPENDED:
        raise ApplicationError(
            code=ErrorCode.CLINIC_SUSPENDED,
            status_code=403,
            detail="This clinic is suspended: no new members for now.",
        )
    if status == ClinicStatus.OFFBOARDING:
        raise ApplicationError(
            code=ErrorCode.CLINIC_OFFBOARDING,
            status_code=403,
            detail="This clinic is leaving CSU Tracker: no new members.",
        )


def single_use_check(
    *, kind: str, noun: str, field: str, revoked_at: Any, used_at: Any, expires_at: Any, found: bool = True
) -> None:
    """The states of a single-use secret (invitation token, enrollment code), each with its code."""
    if not found:
        raise ApplicationError(code=ErrorCode(f"{kind}_invalid"), field=field, detail=f"This {noun} is not valid.")
    if revoked_at is not None:
        raise ApplicationError(code=ErrorCode(f"{kind}_revoked"), field=field, detail=f"This {noun} was revoked.")
    if used_at is not None:
        raise ApplicationError(code=ErrorCode(f"{kind}_used"), field=field, detail=f"This {noun} was already used.")
    if expires_at <= timezone.now():
        raise ApplicationError(code=ErrorCode(f"{kind}_expired"), field=field, detail=f"This {noun} has expired.")


def _invitation_open(*, clinic: Clinic, token: str, lock: bool = False) -> Invitation:
    queryset = Invitation.objects.select_for_update() if lock else Invitation.objects
    token_hashes = crypto.keyed_hashes(token or "", purpose="invitation")
    invitation = queryset.filter(clinic=clinic, token_hash__in=token_hashes).first()
    single_use_check(
        kind="invitation",
        noun="invitation",
        field="token",
        found=invitation is not None,
        revoked_at=getattr(invitation, "revoked_at", None),
        used_at=getattr(invitation, "accepted_at", None),
        expires_at=getattr(invitation, "expires_at", None),
    )
    assert invitation is not None
    return invitation


def invitation_open(*, clinic: Clinic, token: str) -> Invitation:
    """The open invitation a token names at this clinic (the page shows who invited whom to
    what before anything is accepted); the single-use states raise their own codes."""
    return _invitation_open(clinic=clinic, token=token)


def invitation_accept(
    *,
    clinic: Clinic,
    token: str,
    full_name: str,
    password: str,
    otp: str | None = None,
    request: HttpRequest | None = None,
) -> JoinedAccount:
    """Accept an invitation: a new account, or an existing one proven by password (+ TOTP).
    The token is checked before any password, and again under a lock when it is spent."""
    clinic_refuse_new_members(clinic)
    invitation = _invitation_open(clinic=clinic, token=token)
    existing = account_verify_for_linking(request=request, email=invitation.email, password=password, otp=otp)
    with transaction.atomic():
        invitation = _invitation_open(clinic=clinic, token=token, lock=True)
        if invitation.role == Role.CLINICIAN:
            seat_check(clinic=clinic, adding="clinician")
        # The invitation link reached this mailbox: the address is proven.
        user = existing.user if existing else None
        if user is not None and user.email_verified_at is None:
            User.objects.filter(pk=user.pk).update(email_verified_at=timezone.now())
        user = user or user_create(
            email=invitation.email, password=password, full_name=full_name, verified=True
        )
        membership = membership_grant(user=user, clinic=clinic, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return JoinedAccount(user=user, membership=membership, amr=existing.amr if existing else AMR_PASSWORD)


@dataclass(frozen=True)
class JoinedAccount:
    user: User
    membership: Membership
    amr: str
