"""Writes for identity and access: sign-in, tokens, invitations, enrollment codes, MFA,
passwords. Every function is keyword-only; business-rule failures raise ApplicationError."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from accounts.hooks import seat_check
from accounts.models import Invitation, Membership, RecoveryCode, Role, TokenFamily, TotpDevice, User
from accounts.selectors import ActiveMembership, membership_active_for, membership_cache_clear
from core import crypto
from core.errors import ApplicationError
from core.net import client_ip
from core.text import single_line_validate
from tenants.models import Clinic, ClinicStatus
from tenants.selectors import clinic_url

logger = logging.getLogger("accounts.auth")

# One message for a wrong password, an unknown email and a user without access to this clinic:
# the answer must not tell which accounts exist (ASVS 6.3.8).
INVALID_CREDENTIALS = "No active account found with the given credentials."
TOKEN_INVALID = "Token is invalid or expired."  # noqa: S105 (a message, not a secret)
STAFF_ROLES = (Role.CLINIC_ADMIN, Role.CLINICIAN)
# How the user authenticated (the `amr` claim, RFC 8176 values joined): password alone, or
# password and a TOTP / recovery code.
AMR_PASSWORD = "pwd"  # noqa: S105 (a claim value, not a secret)
AMR_MFA = "pwd+otp"
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


def user_create(*, email: str, password: str, full_name: str = "", verified: bool) -> User:
    """A new account. `verified` only when the flow itself proved the address (an invitation
    link opened from that mailbox); otherwise it must be confirmed by the emailed link."""
    email = email_normalize(email)
    if User.objects.filter(email=email).exists():
        raise ApplicationError(
            code="email_taken", field="email", status_code=409, detail="This email is registered."
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
            code="email_taken", field="email", status_code=409, detail="This email is registered."
        ) from exc
    return user


@dataclass(frozen=True)
class LinkedAccount:
    user: User
    amr: str


def account_verify_for_linking(
    *, request: HttpRequest | None, email: str, password: str, otp: str | None
) -> LinkedAccount | None:
    """For flows that attach a new membership to an account (invitation, enrollment).

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
        return LinkedAccount(user=user, amr=AMR_MFA)
    return LinkedAccount(user=user, amr=AMR_PASSWORD)


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
    _membership_cache_clear_now_and_on_commit(user.pk, _clinics_of(user))
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
    amr: str


def credentials_check(
    *, request: HttpRequest, clinic: Clinic, email: str, password: str, otp: str | None
) -> SignIn:
    """Check email + password (through django-axes), clinic membership, a verified email and
    MFA.

    A locked-out username + IP raises a 429 from the axes receiver, even with the right
    password. Wrong password, unknown email and no membership in this clinic all give the same
    401. An unconfirmed email address gets its own 401, only after the right password. A second
    factor is required when the user has confirmed TOTP.
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
    if user.email_verified_at is None:
        raise _unauthorized(
            "email_unverified", "Confirm your email address first: open the link we sent you."
        )
    amr = AMR_PASSWORD
    if mfa_enabled(user=user):
        if not otp:
            raise _unauthorized("mfa_required", "Enter the code from your authenticator app.")
        if not mfa_verify(user=user, otp=otp):
            # Counts towards the lockout like a wrong password.
            user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
            logger.info("sign-in failed (second factor) user=%s clinic=%s", user.pk, clinic.slug)
            raise _unauthorized("invalid_otp", "The authenticator code is not valid.")
        amr = AMR_MFA
    logger.info("sign-in succeeded user=%s clinic=%s role=%s", user.pk, clinic.slug, membership.role)
    return SignIn(user=user, membership=membership, amr=amr)


def _ip(request: HttpRequest) -> str:
    return client_ip(request) or ""


def tokens_issue(
    *, user: User, clinic: Clinic, role: str, amr: str = AMR_PASSWORD, family: uuid.UUID | None = None
) -> dict[str, str]:
    """A refresh/access pair bound to this clinic (`tid`), with the member's role, how the
    user authenticated (`amr`: `pwd` or `pwd+otp`) and the rotation family (`fam`; a new
    family for a new sign-in)."""
    if family is None:
        family = TokenFamily.objects.create(user=user).pk
    refresh = RefreshToken.for_user(user)
    refresh["tid"] = clinic.schema_name
    refresh["role"] = role
    refresh["amr"] = amr
    refresh["fam"] = str(family)
    refresh["iat_ms"] = now_ms()  # copied into the access token
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
    return tokens_issue(user=sign_in.user, clinic=clinic, role=sign_in.membership.role, amr=sign_in.amr)


class _RefreshTokenBlacklistUnchecked(RefreshToken):
    """Signature, expiry and type verified as usual, but not the blacklist: `token_refresh`
    checks that itself, because a blacklisted refresh token presented again is evidence of a
    copy (its family is revoked), not merely an invalid token."""

    def verify(self) -> None:
        Token.verify(self)


def _refresh_token_for_clinic(raw: str, clinic: Clinic) -> RefreshToken:
    try:
        token = _RefreshTokenBlacklistUnchecked(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise _unauthorized("token_not_valid", TOKEN_INVALID) from exc
    if token.get("tid") != clinic.schema_name:
        raise _unauthorized("token_not_valid", TOKEN_INVALID)
    return token


def token_refresh(*, raw: str, clinic: Clinic) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted, a new pair of the same family is
    issued.

    The outstanding row is locked, so two concurrent refreshes with one token cannot both
    succeed. A token that was already rotated (or logged out) is a copy in someone else's
    hands: its whole family is revoked (committed, although the answer is a 401). The role
    claim is re-read from the membership, never copied from the old token; `amr` is carried.

    One exception (a reuse interval, as Okta's and Auth0's rotation have): the token the
    family's last rotation replaced, presented again within REFRESH_REUSE_GRACE_SECONDS, is
    the device whose answer never arrived (the page reloaded mid-request, the train entered a
    tunnel). It gets a new pair, and the pair it never received is blacklisted, so the family
    still has one live token. After the interval, the rule above applies.
    """
    token = _refresh_token_for_clinic(raw, clinic)
    family_id = token.get("fam")
    grace = False
    with transaction.atomic():
        outstanding = OutstandingToken.objects.select_for_update().filter(jti=token["jti"]).first()
        family = TokenFamily.objects.select_for_update().filter(pk=family_id).first() if family_id else None
        reused = outstanding is not None and BlacklistedToken.objects.filter(token=outstanding).exists()
        grace = (
            reused
            and family is not None
            and family.revoked_at is None
            and family.rotated_jti == token["jti"]
            and family.rotated_at is not None
            and timezone.now() - family.rotated_at <= timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS)
        )
        if reused and not grace and family is not None and family.revoked_at is None:
            family.revoked_at = timezone.now()
            family.save(update_fields=["revoked_at"])
            logger.warning("refresh token reused: family revoked user=%s", family.user_id)
    if outstanding is None or (reused and not grace) or family is None or family.revoked_at is not None:
        raise _unauthorized("token_not_valid", TOKEN_INVALID)
    with transaction.atomic():
        user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
        membership = user and membership_active_for(user_id=user.pk, clinic_id=clinic.pk)
        if (
            not user
            or not membership
            or not token_issued_after_revocation(user=user, issued_at_ms=token_issued_at_ms(token))
        ):
            raise _unauthorized("token_not_valid", TOKEN_INVALID)
        family = TokenFamily.objects.select_for_update().get(pk=family.pk)
        if grace:
            if family.rotated_jti != token["jti"] or family.revoked_at is not None:
                raise _unauthorized("token_not_valid", TOKEN_INVALID)  # raced another retry
            lost = OutstandingToken.objects.filter(jti=family.current_jti).first()
            if lost is not None:
                BlacklistedToken.objects.get_or_create(token=lost)
            logger.info("refresh answer lost: reissued within the reuse interval user=%s", user.pk)
        else:
            _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
            if not created:  # rotated concurrently by another request with the same token
                raise _unauthorized("token_not_valid", TOKEN_INVALID)
            family.rotated_jti, family.rotated_at = token["jti"], timezone.now()
        pair = tokens_issue(
            user=user,
            clinic=clinic,
            role=membership.role,
            amr=str(token.get("amr", AMR_PASSWORD)),
            family=family.pk,
        )
        family.current_jti = RefreshToken(pair["refresh"], verify=False)["jti"]
        family.save(update_fields=["rotated_jti", "rotated_at", "current_jti"])
        return pair


def token_issued_after_revocation(*, user: User, issued_at_ms: Any) -> bool:
    """False for a token or session issued before the user's credentials were revoked.

    Compared in milliseconds (the `iat_ms` claim; JWT's `iat` has whole seconds, and the pair
    the revoking request itself issues falls in the same second as the revocation)."""
    revoked = user.credentials_revoked_at
    if revoked is None:
        return True
    try:
        return int(issued_at_ms) >= int(revoked.timestamp() * 1000)
    except (TypeError, ValueError):
        return False


def token_issued_at_ms(token: Any) -> Any:
    # Tokens from before the `iat_ms` claim count from the start of their `iat` second.
    return token.get("iat_ms", int(token.get("iat", 0)) * 1000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def credentials_revoke(*, user: User) -> None:
    """Every refresh token, access token and session the user holds stops working (MFA
    confirmed, a clinic started requiring MFA). The caller issues fresh credentials."""
    User.objects.filter(pk=user.pk).update(credentials_revoked_at=timezone.now())
    user.refresh_from_db(fields=["credentials_revoked_at"])
    TokenFamily.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    refresh_tokens_revoke_all(user=user)


def clinic_staff_credentials_revoke(*, clinic: Clinic, keep_user: User | None = None) -> int:
    """A clinic switched `mfa_required` on: its staff's earlier tokens and sessions, issued
    without a second factor, stop working. `keep_user` (the admin who made the change) keeps
    theirs when they signed in with MFA."""
    staff = User.objects.filter(
        memberships__clinic=clinic, memberships__role__in=STAFF_ROLES, memberships__is_active=True
    ).distinct()
    count = 0
    for user in staff:
        if keep_user is not None and user.pk == keep_user.pk:
            continue
        credentials_revoke(user=user)
        count += 1
    return count


def token_revoke(*, raw: str, clinic: Clinic) -> None:
    """Logout: the refresh token and its whole family can never be used again."""
    token = _refresh_token_for_clinic(raw, clinic)
    token.blacklist()
    if token.get("fam"):
        TokenFamily.objects.filter(pk=token["fam"], revoked_at__isnull=True).update(revoked_at=timezone.now())


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


def mfa_setup(*, request: HttpRequest | None, user: User, password: str) -> tuple[str, str]:
    """Start (or restart) TOTP enrolment, with the current password (checked through
    django-axes, so guesses run into the lockout): whoever holds a stolen token or session must
    not bind their own authenticator. Refused while a confirmed device exists. Must run outside
    a transaction (failed attempts persist)."""
    if authenticate(request=request, email=user.email, password=password) is None:
        raise ApplicationError(
            code="invalid_current_password", field="password", detail="The current password is wrong."
        )
    if user.email_verified_at is None:
        raise ApplicationError(
            code="email_unverified",
            status_code=403,
            detail="Confirm your email address first: open the link we sent you.",
        )
    return mfa_secret_issue(user=user)


def mfa_secret_issue(*, user: User) -> tuple[str, str]:
    """A new unconfirmed TOTP secret and its otpauth URI (the password check is the caller's:
    `mfa_setup` for the API, the operator command for a new operator)."""
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
    """Confirm TOTP with a first valid code; returns 10 single-use recovery codes (shown once).

    Every earlier token and session of the user is revoked (they were issued on the password
    alone); the caller hands the confirming client a fresh pair with `amr` `pwd+otp`.
    """
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
    credentials_revoke(user=user)
    _membership_cache_clear_now_and_on_commit(user.pk, _clinics_of(user))
    logger.info("mfa enabled user=%s", user.pk)
    return codes


def _clinics_of(user: User) -> list[tuple[str, str]]:
    return [
        (schema, str(pk))
        for schema, pk in Clinic.objects.filter(memberships__user=user).values_list("schema_name", "pk")
    ]


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


def mfa_setup_pending(*, membership: ActiveMembership, clinic: Clinic) -> bool:
    """Staff of a clinic that requires MFA must enrol before using anything else."""
    return clinic.mfa_required and membership.role in STAFF_ROLES and not membership.mfa_enabled


def mfa_missing_from_credentials(*, membership: ActiveMembership, amr: str) -> bool:
    """Staff credentials issued on the password alone while the user has MFA (e.g. from before
    they enrolled): they must sign in again with their code."""
    return membership.role in STAFF_ROLES and membership.mfa_enabled and amr != AMR_MFA


# --- Invitations -----------------------------------------------------------------------------


@transaction.atomic
def invitation_create(*, clinic: Clinic, email: str, role: str, invited_by: User) -> Invitation:
    """Invite a clinician or clinic admin; emails a single-use link valid 7 days."""
    clinic_refuse_new_members(clinic)
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
    link = clinic_url(clinic, f"/invitation#token={token}")
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


def clinic_refuse_new_members(clinic: Clinic) -> None:
    """A suspended or offboarding clinic takes no new members, patients or codes: whatever
    joined an offboarding clinic would be missing from its export archive."""
    if clinic.status == ClinicStatus.SUSPENDED:
        raise ApplicationError(
            code="clinic_suspended",
            status_code=403,
            detail="This clinic is suspended: no new members for now.",
        )
    if clinic.status == ClinicStatus.OFFBOARDING:
        raise ApplicationError(
            code="clinic_offboarding",
            status_code=403,
            detail="This clinic is leaving CSU Tracker: no new members.",
        )


def single_use_check(
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


# --- Passwords -------------------------------------------------------------------------------


def password_reset_request(*, email: str, clinic: Clinic | None) -> None:
    """Always queue the reset task, whether or not the email is registered: the request does
    the same work either way, so neither the answer nor its timing tells (ASVS 6.3.8). The
    task finds the account, applies the per-recipient cap and sends. The address travels
    encrypted (no personal data in the broker)."""
    from accounts.tasks import password_reset_email_send as password_reset_email_send_task

    password_reset_email_send_task.delay_on_commit(
        email_encrypted=crypto.encrypt(email_normalize(email)), clinic_id=str(clinic.pk) if clinic else None
    )


def _per_recipient_allowed(*, purpose: str, user_id: uuid.UUID, per_hour: int) -> bool:
    """At most `per_hour` emails of one kind to one account per hour (fails open on a cache
    outage: the request throttles still stand in front)."""
    key = f"mail-cap:{purpose}:{user_id}"
    try:
        cache.add(key, 0, 3600)
        return int(cache.incr(key)) <= per_hour
    except Exception:  # noqa: BLE001
        logger.warning("mail cap unavailable purpose=%s", purpose)
        return True


def password_reset_email_send(*, email_encrypted: str, clinic_id: str | None) -> None:
    """Build the single-use, expiring reset link (Django's token generator) and email it, if
    the account exists and has not had its hourly share of reset emails."""
    user = User.objects.filter(email=crypto.decrypt(email_encrypted), is_active=True).first()
    if user is None:
        return
    if not _per_recipient_allowed(
        purpose="reset", user_id=user.pk, per_hour=settings.PASSWORD_RESETS_PER_HOUR
    ):
        logger.info("password reset email capped user=%s", user.pk)
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = _link(clinic_id, f"/password-reset#uid={uid}&token={token}")
    send_mail(
        subject="Reset your CSU Tracker password",
        message=f"Reset your password within {settings.PASSWORD_RESET_TIMEOUT // 60} minutes: {link}\n"
        "If you did not ask for this, ignore this email.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def _link(clinic_id: str | None, path: str) -> str:
    clinic = Clinic.objects.filter(pk=clinic_id).first() if clinic_id else None
    if clinic is not None:
        return clinic_url(clinic, path)
    return f"{settings.PUBLIC_URL_SCHEME}://{settings.PLATFORM_DOMAIN}{path}"


# --- Email verification ------------------------------------------------------------------------

EMAIL_VERIFICATION_SALT = "accounts.email-verification"


@dataclass(frozen=True)
class EmailVerification:
    user: User
    clinic_id: str | None
    plan_code: str | None


def email_verification_token(
    *,
    user: User,
    clinic_id: str | None = None,
    plan_code: str | None = None,
    password_hash_encrypted: str | None = None,
) -> str:
    """A signed, expiring token for the link sent to the address. It names the address it was
    sent to, so it dies if the account's email changes; for a signup it also names the pending
    clinic it confirms, the plan chosen and (encrypted) the hash of the password typed at
    signup, which becomes the account's password if this link is the first to verify it."""
    payload = {
        "u": str(user.pk),
        "e": user.email,
        "c": clinic_id,
        "p": plan_code,
        "h": password_hash_encrypted,
    }
    return signing.dumps(payload, salt=EMAIL_VERIFICATION_SALT, compress=True)


def email_verification_send_later(
    *,
    user: User,
    clinic: Clinic | None,
    pending_clinic_id: str | None = None,
    plan_code: str | None = None,
    password_hash: str | None = None,
) -> None:
    """Email the confirmation link after commit (a task: ids and ciphertext only, the token is
    built there)."""
    from accounts.tasks import email_verification_send as email_verification_send_task

    email_verification_send_task.delay_on_commit(
        user_id=str(user.pk),
        clinic_id=str(clinic.pk) if clinic else None,
        pending_clinic_id=pending_clinic_id,
        plan_code=plan_code,
        password_hash_encrypted=crypto.encrypt(password_hash) if password_hash else None,
    )


def email_verification_send(
    *,
    user_id: str,
    clinic_id: str | None,
    pending_clinic_id: str | None,
    plan_code: str | None,
    password_hash_encrypted: str | None = None,
) -> None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    if not _per_recipient_allowed(
        purpose="verify", user_id=user.pk, per_hour=settings.PASSWORD_RESETS_PER_HOUR
    ):
        logger.info("verification email capped user=%s", user.pk)
        return
    token = email_verification_token(
        user=user,
        clinic_id=pending_clinic_id,
        plan_code=plan_code,
        password_hash_encrypted=password_hash_encrypted,
    )
    link = _link(clinic_id, f"/verify-email#token={token}")
    hours = settings.EMAIL_VERIFICATION_SECONDS // 3600
    if pending_clinic_id:
        subject = "Confirm your new clinic on CSU Tracker"
        body = (
            f"Someone, hopefully you, signed up a clinic on CSU Tracker with this address.\n\n"
            f"Confirm it within {hours} hours: {link}\n"
            "If it was not you, ignore this email: nothing is created without this link."
        )
    else:
        subject = "Confirm your email address for CSU Tracker"
        body = f"Confirm your email address within {hours} hours: {link}\n"
    send_mail(
        subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[user.email]
    )


@transaction.atomic
def email_verify(*, token: str) -> EmailVerification:
    """Confirm the address a link was sent to. Idempotent (opening the link twice is fine)."""
    invalid = ApplicationError(
        code="verification_token_invalid",
        field="token",
        detail="This confirmation link is invalid or expired.",
    )
    try:
        payload = signing.loads(
            token, salt=EMAIL_VERIFICATION_SALT, max_age=settings.EMAIL_VERIFICATION_SECONDS
        )
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise invalid from exc
    if not isinstance(payload, dict):
        raise invalid
    user = User.objects.select_for_update().filter(pk=payload.get("u"), is_active=True).first()
    if user is None or user.email != payload.get("e"):
        raise invalid
    if user.email_verified_at is None:
        _first_verification(user=user, password_hash_encrypted=payload.get("h"))
    return EmailVerification(user=user, clinic_id=payload.get("c"), plan_code=payload.get("p"))


def _first_verification(*, user: User, password_hash_encrypted: str | None) -> None:
    """The mailbox's owner proves the address for the first time. Until now anybody could have
    created this account with this address (an enrollment code, a signup): whatever they set
    up must not survive into the owner's account (pre-hijacking, security review). A signup's
    link carries the password typed at that signup, which replaces the account's; every
    earlier credential is revoked and any authenticator bound before is removed."""
    user.email_verified_at = timezone.now()
    fields = ["email_verified_at"]
    if password_hash_encrypted:
        user.password = crypto.decrypt(password_hash_encrypted)
        fields.append("password")
    user.save(update_fields=fields)
    TotpDevice.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    if password_hash_encrypted:
        credentials_revoke(user=user)
    _membership_cache_clear_now_and_on_commit(user.pk, _clinics_of(user))
    logger.info("email verified user=%s", user.pk)


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
    # The link reached the mailbox: the address is proven.
    user.email_verified_at = user.email_verified_at or timezone.now()
    user.save(update_fields=["password", "email_verified_at"])
    credentials_revoke(user=user)  # refresh and access tokens and sessions, everywhere
    logger.info("password reset user=%s", user.pk)
    return user


def password_change(
    *, request: HttpRequest | None, user: User, current_password: str, new_password: str
) -> None:
    """Change the password and revoke every token and session (the caller hands its own client
    a fresh pair). The current password is checked
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
        credentials_revoke(user=user)
    logger.info("password changed user=%s", user.pk)


# --- Security alerts to a clinic's admins ---------------------------------------------------------

CLINIC_ALERTS = {
    "enrollment_guessing": (
        "Enrollment paused at {clinic}: many wrong codes tried",
        "{count} wrong enrollment codes were tried at {clinic} within the last hour, from any "
        "number of addresses. New patients cannot redeem codes until the hour has passed.\n\n"
        "If your clinic did not hand out many codes just now, someone may be guessing them. "
        "Codes you issued stay valid; you can revoke and reissue them in the portal.",
    ),
}


def clinic_admins_alert_send(*, clinic_id: str, kind: str, count: int) -> None:
    """Email a security alert (no personal data in it) to the clinic's active admins."""
    clinic = Clinic.objects.filter(pk=clinic_id).first()
    if clinic is None or kind not in CLINIC_ALERTS:
        return
    recipients = list(
        User.objects.filter(
            memberships__clinic=clinic,
            memberships__role=Role.CLINIC_ADMIN,
            memberships__is_active=True,
            is_active=True,
        ).values_list("email", flat=True)
    )
    if not recipients:
        return
    subject, body = CLINIC_ALERTS[kind]
    send_mail(
        subject=subject.format(clinic=clinic.name),
        message=body.format(clinic=clinic.name, count=count),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    logger.info("security alert sent clinic=%s kind=%s", clinic.slug, kind)


def clinic_member_set_active(
    *, clinic: Clinic, membership_id: str, is_active: bool, actor: User
) -> Membership:
    membership = Membership.objects.filter(clinic=clinic, pk=membership_id).select_related("clinic").first()
    if membership is None:
        raise ApplicationError(code="not_found", status_code=404, detail="No such member.")
    if membership.user_id == actor.pk and not is_active:
        raise ApplicationError(
            code="cannot_deactivate_self", status_code=409, detail="You cannot deactivate yourself."
        )
    with transaction.atomic():
        if is_active and not membership.is_active and membership.role == Role.CLINICIAN:
            # A reactivated clinician takes a seat again, like an invited one.
            seat_check(clinic=clinic, adding="clinician")
        return membership_set_active(membership=membership, is_active=is_active)
