"""Writes for identity and access: sign-in, tokens, invitations, enrollment codes, MFA,
passwords. Every function is keyword-only; business-rule failures raise ApplicationError."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import Enrollment, Invitation, Membership, RecoveryCode, Role, TotpDevice, User
from accounts.selectors import ActiveMembership, membership_active_for, membership_cache_clear
from core import crypto
from core.errors import ApplicationError
from tenants.models import Clinic

logger = logging.getLogger("accounts.auth")

# One message for a wrong password, an unknown email and a user without access to this clinic:
# the answer must not tell which accounts exist (ASVS 6.3.8).
INVALID_CREDENTIALS = "No active account found with the given credentials."
TOKEN_INVALID = "Token is invalid or expired."  # noqa: S105 (a message, not a secret)
STAFF_ROLES = (Role.CLINIC_ADMIN, Role.CLINICIAN)
ENROLLMENT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
RECOVERY_CODE_COUNT = 10


def _unauthorized(code: str, detail: str) -> ApplicationError:
    return ApplicationError(code=code, detail=detail, status_code=401)


def email_normalize(email: str) -> str:
    return (email or "").strip().lower()


def password_validate(password: str, *, user: User | None = None, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError(code="weak_password", field=field, detail=" ".join(exc.messages)) from exc


def user_create(*, email: str, password: str, full_name: str = "") -> User:
    email = email_normalize(email)
    if User.objects.filter(email=email).exists():
        raise ApplicationError(
            code="email_taken", field="email", status_code=409, detail="This email is registered."
        )
    user = User(email=email, full_name=full_name.strip())
    password_validate(password, user=user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # created concurrently by another request
        raise ApplicationError(
            code="email_taken", field="email", status_code=409, detail="This email is registered."
        ) from exc
    return user


def account_verify_for_linking(
    *, request: HttpRequest | None, email: str, password: str, otp: str | None
) -> User | None:
    """For flows that attach a new membership to an account (invitation, enrollment, signup).

    None when no account has this email (the flow creates one). Otherwise the account, once
    its password — through django-axes, so failures count toward the lockout — and its second
    factor (when enabled) check out; else the generic 401. Must run outside a transaction, so
    the failed-attempt records survive the error.
    """
    email = email_normalize(email)
    if not User.objects.filter(email=email).exists():
        return None
    user = authenticate(request=request, email=email, password=password)
    if user is None or not user.is_active:
        raise _unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    if mfa_enabled(user=user):
        if not otp:
            raise _unauthorized("mfa_required", "Enter the code from your authenticator app.")
        if not mfa_verify(user=user, otp=otp):
            user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
            raise _unauthorized("invalid_otp", "The authenticator code is not valid.")
    return user


# --- Memberships -----------------------------------------------------------------------------


def membership_set_active(*, membership: Membership, is_active: bool) -> Membership:
    """Deactivate or reactivate a member; their tokens and sessions follow on the next request."""
    Membership.objects.filter(pk=membership.pk).update(is_active=is_active)
    membership.is_active = is_active
    _membership_cache_clear_now_and_on_commit(
        membership.user_id, [(membership.clinic.schema_name, str(membership.clinic_id))]
    )
    return membership


def user_set_active(*, user: User, is_active: bool) -> User:
    User.objects.filter(pk=user.pk).update(is_active=is_active)
    user.is_active = is_active
    clinics = [
        (schema, str(pk))
        for schema, pk in Clinic.objects.filter(memberships__user=user).values_list("schema_name", "pk")
    ]
    _membership_cache_clear_now_and_on_commit(user.pk, clinics)
    return user


def _membership_cache_clear_now_and_on_commit(user_id: uuid.UUID, clinics: list[tuple[str, str]]) -> None:
    # Cleared before and after commit: a request between the two cannot re-cache old state.
    membership_cache_clear(user_id=user_id, clinics=clinics)
    transaction.on_commit(lambda: membership_cache_clear(user_id=user_id, clinics=clinics))


def membership_grant(*, user: User, clinic: Clinic, role: str) -> Membership:
    membership, created = Membership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
    if not created:
        raise ApplicationError(
            code="already_member", status_code=409, detail="This account already belongs to this clinic."
        )
    _membership_cache_clear_now_and_on_commit(user.pk, [(clinic.schema_name, str(clinic.pk))])
    return membership


# --- Sign-in and tokens ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    user: User
    membership: ActiveMembership


def credentials_check(
    *, request: HttpRequest, clinic: Clinic, email: str, password: str, otp: str | None
) -> SignIn:
    """Check email + password (through django-axes), clinic membership and MFA.

    A locked-out username + IP raises a 429 from the axes receiver, even with the right
    password. Wrong password, unknown email and no membership in this clinic all give the same
    401. A second factor is required when the user has confirmed TOTP.
    """
    email = email_normalize(email)
    user = authenticate(request=request, email=email, password=password)
    if user is None or not user.is_active:
        logger.info("sign-in failed clinic=%s ip=%s", clinic.slug, _ip(request))
        raise _unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    membership = membership_active_for(user_id=user.pk, clinic_id=clinic.pk)
    if membership is None:
        logger.info("sign-in refused (no membership) clinic=%s ip=%s", clinic.slug, _ip(request))
        raise _unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    if mfa_enabled(user=user):
        if not otp:
            raise _unauthorized("mfa_required", "Enter the code from your authenticator app.")
        if not mfa_verify(user=user, otp=otp):
            # Counts towards the lockout like a wrong password.
            user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
            logger.info("sign-in failed (second factor) user=%s clinic=%s", user.pk, clinic.slug)
            raise _unauthorized("invalid_otp", "The authenticator code is not valid.")
    logger.info("sign-in succeeded user=%s clinic=%s role=%s", user.pk, clinic.slug, membership.role)
    return SignIn(user=user, membership=membership)


def _ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def tokens_issue(*, user: User, clinic: Clinic, role: str) -> dict[str, str]:
    """A refresh/access pair bound to this clinic (`tid`) with the member's role."""
    refresh = RefreshToken.for_user(user)
    refresh["tid"] = clinic.schema_name
    refresh["role"] = role
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def operator_sign_in(*, request: HttpRequest, email: str, password: str, otp: str | None) -> dict[str, str]:
    """Platform operators (`is_staff`) sign in on the platform host, always with TOTP.

    Only an access token is issued (no refresh): operator sessions last ACCESS_TOKEN_LIFETIME.
    """
    email = email_normalize(email)
    user = authenticate(request=request, email=email, password=password)
    if user is None or not user.is_active or not user.is_staff or not mfa_enabled(user=user):
        logger.info("operator sign-in failed ip=%s", _ip(request))
        raise _unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    if not otp or not mfa_verify(user=user, otp=otp):
        user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
        raise _unauthorized("invalid_otp", "The authenticator code is not valid.")
    user_logged_in.send(sender=User, request=request, user=user)
    access = AccessToken.for_user(user)
    access["tid"] = "public"
    access["role"] = "operator"
    access["mfa"] = True
    logger.info("operator sign-in succeeded user=%s", user.pk)
    return {"access": str(access)}


def sign_in_tokens(*, request: HttpRequest, clinic: Clinic, sign_in: SignIn) -> dict[str, str]:
    """Finish a token sign-in: `user_logged_in` (resets the lockout counter, records
    last_login) as Django's session `login()` does, then a token pair."""
    user_logged_in.send(sender=User, request=request, user=sign_in.user)
    return tokens_issue(user=sign_in.user, clinic=clinic, role=sign_in.membership.role)


def _refresh_token_for_clinic(raw: str, clinic: Clinic) -> RefreshToken:
    try:
        token = RefreshToken(raw)
    except TokenError as exc:
        raise _unauthorized("token_not_valid", TOKEN_INVALID) from exc
    if token.get("tid") != clinic.schema_name:
        raise _unauthorized("token_not_valid", TOKEN_INVALID)
    return token


@transaction.atomic
def token_refresh(*, raw: str, clinic: Clinic) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted, a new pair is issued.

    The outstanding row is locked, so two concurrent refreshes with one token cannot both
    succeed. The role claim is re-read from the membership, never copied from the old token.
    """
    token = _refresh_token_for_clinic(raw, clinic)
    outstanding = OutstandingToken.objects.select_for_update().filter(jti=token["jti"]).first()
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise _unauthorized("token_not_valid", TOKEN_INVALID)
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    membership = user and membership_active_for(user_id=user.pk, clinic_id=clinic.pk)
    if not user or not membership:
        raise _unauthorized("token_not_valid", TOKEN_INVALID)
    BlacklistedToken.objects.create(token=outstanding)
    return tokens_issue(user=user, clinic=clinic, role=membership.role)


def token_revoke(*, raw: str, clinic: Clinic) -> None:
    """Logout: the refresh token can never be used again."""
    token = _refresh_token_for_clinic(raw, clinic)
    token.blacklist()


def refresh_tokens_revoke_all(*, user: User) -> int:
    """Blacklist every outstanding refresh token of the user (all devices, all clinics)."""
    live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
        blacklistedtoken__isnull=False
    )
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in live], ignore_conflicts=True
    )
    return len(created)


# --- MFA (TOTP, RFC 6238) --------------------------------------------------------------------


def mfa_enabled(*, user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def mfa_setup(*, user: User) -> tuple[str, str]:
    """Start (or restart) TOTP enrolment. Refused while a confirmed device exists."""
    if mfa_enabled(user=user):
        raise ApplicationError(code="mfa_already_enabled", status_code=409, detail="MFA is already enabled.")
    secret = pyotp.random_base32()
    TotpDevice.objects.update_or_create(
        user=user,
        defaults={"secret_encrypted": crypto.encrypt(secret), "confirmed_at": None, "last_used_step": 0},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="CSU Tracker")
    return secret, uri


@transaction.atomic
def mfa_confirm(*, user: User, otp: str) -> list[str]:
    """Confirm TOTP with a first valid code; returns 10 single-use recovery codes (shown once)."""
    device = TotpDevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        raise ApplicationError(code="mfa_not_started", detail="Start MFA setup first.")
    if device.confirmed_at is not None:
        raise ApplicationError(code="mfa_already_enabled", status_code=409, detail="MFA is already enabled.")
    if not _totp_accept(device, otp):
        raise ApplicationError(code="invalid_otp", field="otp", detail="The authenticator code is not valid.")
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at", "last_used_step"])
    codes = ["-".join(secrets.token_hex(3) for _ in range(2)) for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=crypto.keyed_hash(code, purpose="recovery")) for code in codes]
    )
    logger.info("mfa enabled user=%s", user.pk)
    return codes


def _totp_accept(device: TotpDevice, otp: str) -> bool:
    """Accept a code for the current step ±1 (clock drift), never a step already used."""
    otp = (otp or "").strip().replace(" ", "")
    if not otp.isdigit() or len(otp) != 6:
        return False
    totp = pyotp.TOTP(crypto.decrypt(device.secret_encrypted))
    now_step = int(timezone.now().timestamp()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if step > device.last_used_step and secrets.compare_digest(totp.generate_otp(step), otp):
            device.last_used_step = step
            return True
    return False


@transaction.atomic
def mfa_verify(*, user: User, otp: str) -> bool:
    """A TOTP code (not replayed) or an unused recovery code (then spent)."""
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return False
    if _totp_accept(device, otp):
        device.save(update_fields=["last_used_step"])
        return True
    spent = RecoveryCode.objects.filter(
        user=user,
        used_at__isnull=True,
        code_hash=crypto.keyed_hash((otp or "").strip().lower(), purpose="recovery"),
    ).update(used_at=timezone.now())
    if spent:
        logger.info("recovery code used user=%s", user.pk)
    return bool(spent)


def mfa_setup_pending(*, user: User, clinic: Clinic, role: str) -> bool:
    """Staff of a clinic that requires MFA must enrol before using anything else."""
    return clinic.mfa_required and role in STAFF_ROLES and not mfa_enabled(user=user)


# --- Invitations -----------------------------------------------------------------------------


def _clinic_url(clinic: Clinic, path: str) -> str:
    host = clinic.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    return f"{settings.PUBLIC_URL_SCHEME}://{host}{path}"


@transaction.atomic
def invitation_create(*, clinic: Clinic, email: str, role: str, invited_by: User) -> Invitation:
    """Invite a clinician or clinic admin; emails a single-use link valid 7 days."""
    if role not in STAFF_ROLES:
        raise ApplicationError(
            code="invalid_role", field="role", detail="Invite clinicians or clinic admins."
        )
    email = email_normalize(email)
    if Membership.objects.filter(clinic=clinic, user__email=email).exists():
        raise ApplicationError(
            code="already_member", status_code=409, field="email", detail="This person is already a member."
        )
    if role == Role.CLINICIAN:
        from billing.services import seat_check

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
    link = _clinic_url(clinic, f"/invitation#token={token}")
    transaction.on_commit(
        lambda: send_mail(
            subject=f"You are invited to {clinic.name} on CSU Tracker",
            message=(
                f"{invited_by.full_name or 'A clinic admin'} invited you to join {clinic.name}.\n\n"
                f"Accept within {settings.INVITATION_VALID_DAYS} days: {link}\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    )
    return invitation


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def _refuse_when_suspended(clinic: Clinic) -> None:
    if clinic.status == "suspended":
        raise ApplicationError(
            code="clinic_suspended",
            status_code=403,
            detail="This clinic is suspended: no new members for now.",
        )


def _single_use_check(
    *, kind: str, noun: str, field: str, revoked_at: Any, used_at: Any, expires_at: Any, found: bool = True
) -> None:
    """The states of a single-use secret (invitation token, enrollment code), each with its code."""
    if not found:
        raise ApplicationError(code=f"{kind}_invalid", field=field, detail=f"This {noun} is not valid.")
    if revoked_at is not None:
        raise ApplicationError(code=f"{kind}_revoked", field=field, detail=f"This {noun} was revoked.")
    if used_at is not None:
        raise ApplicationError(code=f"{kind}_used", field=field, detail=f"This {noun} was already used.")
    if expires_at <= timezone.now():
        raise ApplicationError(code=f"{kind}_expired", field=field, detail=f"This {noun} has expired.")


def _invitation_open(*, clinic: Clinic, token: str, lock: bool = False) -> Invitation:
    queryset = Invitation.objects.select_for_update() if lock else Invitation.objects
    token_hash = crypto.keyed_hash(token or "", purpose="invitation")
    invitation = queryset.filter(clinic=clinic, token_hash=token_hash).first()
    _single_use_check(
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


def invitation_accept(
    *,
    clinic: Clinic,
    token: str,
    full_name: str,
    password: str,
    otp: str | None = None,
    request: HttpRequest | None = None,
) -> tuple[User, Membership]:
    """Accept an invitation: a new account, or an existing one proven by password (+ TOTP).
    The token is checked before any password, and again under a lock when it is spent."""
    _refuse_when_suspended(clinic)
    invitation = _invitation_open(clinic=clinic, token=token)
    existing = account_verify_for_linking(request=request, email=invitation.email, password=password, otp=otp)
    with transaction.atomic():
        invitation = _invitation_open(clinic=clinic, token=token, lock=True)
        if invitation.role == Role.CLINICIAN:
            from billing.services import seat_check

            seat_check(clinic=clinic, adding="clinician")
        user = existing or user_create(email=invitation.email, password=password, full_name=full_name)
        membership = membership_grant(user=user, clinic=clinic, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return user, membership


# --- Patient enrollment codes ----------------------------------------------------------------


def enrollment_code_normalize(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def enrollment_create(
    *, clinic: Clinic, created_by: User, patient_id: uuid.UUID | None = None
) -> tuple[Enrollment, str]:
    """A single-use 8-character code (valid 14 days) for a patient to create their account."""
    code = "".join(secrets.choice(ENROLLMENT_ALPHABET) for _ in range(8))
    enrollment = Enrollment.objects.create(
        clinic=clinic,
        patient_id=patient_id,
        code_hash=crypto.keyed_hash(code, purpose="enrollment"),
        code_encrypted=crypto.encrypt(code),
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=settings.ENROLLMENT_VALID_DAYS),
    )
    return enrollment, code


def enrollment_code(enrollment: Enrollment) -> str:
    return crypto.decrypt(enrollment.code_encrypted)


def enrollment_url(enrollment: Enrollment) -> str:
    code = enrollment_code(enrollment)
    return _clinic_url(enrollment.clinic, f"/enroll#code={code[:4]}-{code[4:]}")


def _enrollment_open(*, clinic: Clinic, code: str, lock: bool = False) -> Enrollment:
    queryset = Enrollment.objects.select_for_update() if lock else Enrollment.objects
    code_hash = crypto.keyed_hash(enrollment_code_normalize(code), purpose="enrollment")
    enrollment = queryset.filter(clinic=clinic, code_hash=code_hash).first()
    _single_use_check(
        kind="enrollment",
        noun="enrollment code",
        field="code",
        found=enrollment is not None,
        revoked_at=getattr(enrollment, "revoked_at", None),
        used_at=getattr(enrollment, "redeemed_at", None),
        expires_at=getattr(enrollment, "expires_at", None),
    )
    assert enrollment is not None
    return enrollment


def enrollment_redeem(
    *,
    clinic: Clinic,
    code: str,
    email: str,
    password: str,
    otp: str | None = None,
    request: HttpRequest | None = None,
) -> tuple[User, Membership]:
    """Create (or link) the patient's account and patient membership from a code.

    The code is checked first (no password oracle without a valid code), then an existing
    account must prove password and TOTP outside the transaction (failures count toward the
    lockout), then the code is spent under a lock together with the writes.
    """
    _refuse_when_suspended(clinic)
    _enrollment_open(clinic=clinic, code=code)
    existing = account_verify_for_linking(request=request, email=email, password=password, otp=otp)
    with transaction.atomic():
        enrollment = _enrollment_open(clinic=clinic, code=code, lock=True)
        user = existing or user_create(email=email, password=password)
        membership = membership_grant(user=user, clinic=clinic, role=Role.PATIENT)
        # The clinic's patient record (tenant schema, active on this clinic's host).
        from patients.services import patient_attach_user

        patient_attach_user(
            user_id=user.pk,
            patient_id=enrollment.patient_id,
            clinic=clinic,
            display_name=user.full_name or user.email,
        )
        enrollment.redeemed_at = timezone.now()
        enrollment.redeemed_by = user
        enrollment.save(update_fields=["redeemed_at", "redeemed_by"])
    return user, membership


# --- Passwords -------------------------------------------------------------------------------


def password_reset_request(*, email: str, clinic: Clinic | None) -> None:
    """Queue a reset email if the account exists. The caller answers the same either way, and
    the email is built and sent by a task after commit, so neither the answer nor its timing
    tells whether an email is registered."""
    from accounts.tasks import password_reset_email_send as password_reset_email_send_task

    user_id = (
        User.objects.filter(email=email_normalize(email), is_active=True).values_list("pk", flat=True).first()
    )
    if user_id is not None:
        password_reset_email_send_task.delay_on_commit(
            user_id=str(user_id), clinic_id=str(clinic.pk) if clinic else None
        )


def password_reset_email_send(*, user_id: str, clinic_id: str | None) -> None:
    """Build the single-use, expiring reset link (Django's token generator) and email it."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = f"/password-reset#uid={uid}&token={token}"
    clinic = Clinic.objects.filter(pk=clinic_id).first() if clinic_id else None
    link = (
        _clinic_url(clinic, path)
        if clinic
        else f"{settings.PUBLIC_URL_SCHEME}://{settings.PLATFORM_DOMAIN}{path}"
    )
    send_mail(
        subject="Reset your CSU Tracker password",
        message=f"Reset your password within {settings.PASSWORD_RESET_TIMEOUT // 60} minutes: {link}\n"
        "If you did not ask for this, ignore this email.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, password: str) -> User:
    """Set a new password from a reset link; the link dies with the old password hash."""
    try:
        user = User.objects.select_for_update().get(pk=force_str(urlsafe_base64_decode(uid)), is_active=True)
    except (ValueError, TypeError, OverflowError, User.DoesNotExist, ValidationError):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        raise ApplicationError(
            code="reset_token_invalid", field="token", detail="This reset link is invalid or expired."
        )
    password_validate(password, user=user)
    user.set_password(password)
    user.save(update_fields=["password"])
    refresh_tokens_revoke_all(user=user)
    logger.info("password reset user=%s", user.pk)
    return user


def password_change(
    *, request: HttpRequest | None, user: User, current_password: str, new_password: str
) -> None:
    """Change the password and revoke every refresh token. The current password is checked
    through django-axes (outside a transaction), so guessing it with a stolen session or token
    runs into the lockout."""
    if authenticate(request=request, email=user.email, password=current_password) is None:
        raise ApplicationError(
            code="invalid_current_password", field="current_password", detail="The current password is wrong."
        )
    password_validate(new_password, user=user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        refresh_tokens_revoke_all(user=user)
    logger.info("password changed user=%s", user.pk)
