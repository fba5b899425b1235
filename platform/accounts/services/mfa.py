"""TOTP second factor (RFC 6238) and single-use recovery codes."""

from __future__ import annotations

import logging
import secrets
from enum import StrEnum

import pyotp
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import RecoveryCode, TotpDevice, User
from accounts.selectors import ActiveMembership
from accounts.services.tokens import AMR_MFA, credentials_revoke
from accounts.services.users import STAFF_ROLES, membership_cache_clear_now_and_on_commit, user_clinics
from core import crypto
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic

logger = logging.getLogger("accounts.auth")

RECOVERY_CODE_COUNT = 10


def mfa_enabled(*, user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def mfa_setup(*, request: HttpRequest | None, user: User, password: str) -> tuple[str, str]:
    """Start (or restart) TOTP enrolment, with the current password (checked through
    django-axes, so guesses run into the lockout): whoever holds a stolen token or session must
    not bind their own authenticator. Refused while a confirmed device exists. Must run outside
    a transaction (failed attempts persist)."""
    if authenticate(request=request, email=user.email, password=password) is None:
        raise ApplicationError(
            code=ErrorCode.INVALID_CURRENT_PASSWORD, field="password", detail="The current password is wrong."
        )
    if user.email_verified_at is None:
        raise ApplicationError(
            code=ErrorCode.EMAIL_UNVERIFIED,
            status_code=403,
            detail="Confirm your email address first: open the link we sent you.",
        )
    return mfa_secret_issue(user=user)


def mfa_secret_issue(*, user: User) -> tuple[str, str]:
    """A new unconfirmed TOTP secret and its otpauth URI (the password check is the caller's:
    `mfa_setup` for the API, the operator command for a new operator)."""
    if mfa_enabled(user=user):
        raise ApplicationError(code=ErrorCode.MFA_ALREADY_ENABLED, status_code=409, detail="MFA is already enabled.")
    secret = pyotp.random_base32()
    TotpDevice.objects.update_or_create(
        user=user,
        defaults={"secret_encrypted": crypto.encrypt(secret), "confirmed_at": None, "last_used_step": 0},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="CSU Tracker")
    return secret, uri


def mfa_provisioning_uri(*, user: User, secret: str) -> str | None:
    """The otpauth URI of the user's started, unconfirmed enrolment, when `secret` is its
    secret (the setup page shows the QR code again after a mistyped code), else None. The
    caller must already know the secret: whoever holds a stolen session but never passed the
    password check of `mfa_setup` cannot read a pending secret back through this."""
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=True).first()
    if device is None:
        return None
    pending = crypto.decrypt(device.secret_encrypted)
    if not secrets.compare_digest(pending.encode(), (secret or "").strip().upper().encode()):
        return None
    return pyotp.TOTP(pending).provisioning_uri(name=user.email, issuer_name="CSU Tracker")


@transaction.atomic
def mfa_confirm(*, user: User, otp: str) -> list[str]:
    """Confirm TOTP with a first valid code; returns 10 single-use recovery codes (shown once).

    Every earlier token and session of the user is revoked (they were issued on the password
    alone); the caller hands the confirming client a fresh pair with `amr` `pwd+otp`.
    """
    device = TotpDevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        raise ApplicationError(code=ErrorCode.MFA_NOT_STARTED, detail="Start MFA setup first.")
    if device.confirmed_at is not None:
        raise ApplicationError(code=ErrorCode.MFA_ALREADY_ENABLED, status_code=409, detail="MFA is already enabled.")
    if not _totp_accept(device, otp):
        raise ApplicationError(code=ErrorCode.INVALID_OTP, field="otp", detail="The authenticator code is not valid.")
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at", "last_used_step"])
    codes = ["-".join(secrets.token_hex(3) for _ in range(2)) for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=crypto.keyed_hash(code, purpose="recovery")) for code in codes]
    )
    credentials_revoke(user=user)
    membership_cache_clear_now_and_on_commit(user.pk, user_clinics(user))
    logger.info("mfa enabled user=%s", user.pk)
    return codes


class OtpCheck(StrEnum):
    ACCEPTED = "accepted"
    # The code of a time step already spent (typically the one just used to confirm MFA):
    # refused like any other, but the person is told to wait for the next code.
    REPLAYED = "replayed"
    INVALID = "invalid"


OTP_ALREADY_USED_DETAIL = "This code was already used. Wait for the next code in your authenticator app."


def _totp_check(device: TotpDevice, otp: str) -> OtpCheck:
    """Accept a code for the current step ±1 (clock drift), never a step already used."""
    otp = (otp or "").strip().replace(" ", "")
    if not otp.isdigit() or len(otp) != 6:
        return OtpCheck.INVALID
    totp = pyotp.TOTP(crypto.decrypt(device.secret_encrypted))
    now_step = int(timezone.now().timestamp()) // totp.interval
    replayed = False
    for step in (now_step - 1, now_step, now_step + 1):
        if secrets.compare_digest(totp.generate_otp(step), otp):
            if step > device.last_used_step:
                device.last_used_step = step
                return OtpCheck.ACCEPTED
            replayed = True
    return OtpCheck.REPLAYED if replayed else OtpCheck.INVALID


def _totp_accept(device: TotpDevice, otp: str) -> bool:
    return _totp_check(device, otp) is OtpCheck.ACCEPTED


@transaction.atomic
def mfa_check(*, user: User, otp: str) -> OtpCheck:
    """A TOTP code (not replayed) or an unused recovery code (then spent). A replayed TOTP code
    says so (the password was already proven; a guess hits a spent step no more often than a
    live one), and counts toward the lockout like any refused code (the callers)."""
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return OtpCheck.INVALID
    totp_result = _totp_check(device, otp)
    if totp_result is OtpCheck.ACCEPTED:
        device.save(update_fields=["last_used_step"])
        return OtpCheck.ACCEPTED
    spent = RecoveryCode.objects.filter(
        user=user,
        used_at__isnull=True,
        code_hash__in=crypto.keyed_hashes((otp or "").strip().lower(), purpose="recovery"),
    ).update(used_at=timezone.now())
    if spent:
        logger.info("recovery code used user=%s", user.pk)
        return OtpCheck.ACCEPTED
    return totp_result


def mfa_verify(*, user: User, otp: str) -> bool:
    """A TOTP code (not replayed) or an unused recovery code (then spent)."""
    return mfa_check(user=user, otp=otp) is OtpCheck.ACCEPTED


def mfa_setup_pending(*, membership: ActiveMembership, clinic: Clinic) -> bool:
    """Staff of a clinic that requires MFA must enrol before using anything else."""
    return clinic.mfa_required and membership.role in STAFF_ROLES and not membership.mfa_enabled


def mfa_missing_from_credentials(*, membership: ActiveMembership, amr: str) -> bool:
    """Staff credentials issued on the password alone while the user has MFA (e.g. from before
    they enrolled): they must sign in again with their code."""
    return membership.role in STAFF_ROLES and membership.mfa_enabled and amr != AMR_MFA
