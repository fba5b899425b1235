"""Sign-in: email + password (through django-axes) + TOTP for clinic members and operators,
and the same proof for flows that link an existing account (invitation, enrollment)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.selectors import ActiveMembership, membership_active_for
from accounts.services.mfa import OTP_ALREADY_USED_DETAIL, OtpCheck, mfa_check, mfa_enabled
from accounts.services.tokens import AMR_MFA, AMR_PASSWORD, tokens_issue, unauthorized
from accounts.services.users import email_normalize
from core.net import client_ip
from tenants.models import Clinic

logger = logging.getLogger("accounts.auth")

# One message for a wrong password, an unknown email and a user without access to this clinic:
# the answer must not tell which accounts exist (ASVS 6.3.8).
INVALID_CREDENTIALS = "No active account found with the given credentials."


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
        raise unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    if mfa_enabled(user=user):
        if not otp:
            raise unauthorized("mfa_required", "Enter the code from your authenticator app.")
        second_factor_check(request=request, user=user, email=email, otp=otp)
        return LinkedAccount(user=user, amr=AMR_MFA)
    return LinkedAccount(user=user, amr=AMR_PASSWORD)


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
        raise unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    membership = membership_active_for(user_id=user.pk, clinic_id=clinic.pk)
    if membership is None:
        logger.info("sign-in refused (no membership) clinic=%s ip=%s", clinic.slug, _ip(request))
        raise unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    if user.email_verified_at is None:
        raise unauthorized(
            "email_unverified",
            "Confirm your email address first: open the link we sent you, or ask for a new one.",
        )
    amr = AMR_PASSWORD
    if mfa_enabled(user=user):
        if not otp:
            raise unauthorized("mfa_required", "Enter the code from your authenticator app.")
        second_factor_check(request=request, user=user, email=email, otp=otp)
        amr = AMR_MFA
    logger.info("sign-in succeeded user=%s clinic=%s role=%s", user.pk, clinic.slug, membership.role)
    return SignIn(user=user, membership=membership, amr=amr)


def second_factor_check(*, request: HttpRequest | None, user: User, email: str, otp: str) -> None:
    """The second factor of a sign-in whose password checked out. A refused code counts toward
    the lockout like a wrong password; a code already spent (the one that just confirmed MFA)
    gets its own answer, `otp_already_used`, telling the person to wait for the next code."""
    result = mfa_check(user=user, otp=otp)
    if result is OtpCheck.ACCEPTED:
        return
    user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
    logger.info("sign-in failed (second factor, %s) user=%s", result, user.pk)
    if result is OtpCheck.REPLAYED:
        raise unauthorized("otp_already_used", OTP_ALREADY_USED_DETAIL)
    raise unauthorized("invalid_otp", "The authenticator code is not valid.")


def _ip(request: HttpRequest) -> str:
    return client_ip(request) or ""


def operator_sign_in(*, request: HttpRequest, email: str, password: str, otp: str | None) -> dict[str, str]:
    """Platform operators (`is_staff`) sign in on the platform host, always with TOTP.

    Only an access token is issued (no refresh): operator sessions last ACCESS_TOKEN_LIFETIME.
    """
    email = email_normalize(email)
    user = authenticate(request=request, email=email, password=password)
    if user is None or not user.is_active or not user.is_staff or not mfa_enabled(user=user):
        logger.info("operator sign-in failed ip=%s", _ip(request))
        raise unauthorized("invalid_credentials", INVALID_CREDENTIALS)
    second_factor_check(request=request, user=user, email=email, otp=otp or "")
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
