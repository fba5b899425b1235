"""JWT pairs bound to a clinic: issue, rotate (with a grace for lost answers), revoke."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token

from accounts.models import TokenFamily, User
from accounts.selectors import membership_active_for
from accounts.services.users import STAFF_ROLES
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic

logger = logging.getLogger("accounts.auth")

TOKEN_INVALID = "Token is invalid or expired."  # noqa: S105 (a message, not a secret)


# How the user authenticated (the `amr` claim, RFC 8176 values joined): password alone, or
# password and a TOTP / recovery code.
AMR_PASSWORD = "pwd"  # noqa: S105 (a claim value, not a secret)


AMR_MFA = "pwd+otp"


def unauthorized(code: str, detail: str) -> ApplicationError:
    return ApplicationError(code=ErrorCode(code), detail=detail, status_code=401)


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
        raise unauthorized("token_not_valid", TOKEN_INVALID) from exc
    if token.get("tid") != clinic.schema_name:
        raise unauthorized("token_not_valid", TOKEN_INVALID)
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
        raise unauthorized("token_not_valid", TOKEN_INVALID)
    with transaction.atomic():
        user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
        membership = user and membership_active_for(user_id=user.pk, clinic_id=clinic.pk)
        if (
            not user
            or not membership
            or not token_issued_after_revocation(user=user, issued_at_ms=token_issued_at_ms(token))
        ):
            raise unauthorized("token_not_valid", TOKEN_INVALID)
        family = TokenFamily.objects.select_for_update().get(pk=family.pk)
        if family.revoked_at is not None:  # revoked while this refresh waited for the row
            raise unauthorized("token_not_valid", TOKEN_INVALID)
        if grace:
            if family.rotated_jti != token["jti"] or family.revoked_at is not None:
                raise unauthorized("token_not_valid", TOKEN_INVALID)  # raced another retry
            lost = OutstandingToken.objects.filter(jti=family.current_jti).first()
            if lost is not None:
                BlacklistedToken.objects.get_or_create(token=lost)
            logger.info("refresh answer lost: reissued within the reuse interval user=%s", user.pk)
        else:
            _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
            if not created:  # rotated concurrently by another request with the same token
                raise unauthorized("token_not_valid", TOKEN_INVALID)
            family.rotated_jti, family.rotated_at = token["jti"], timezone.now()
        pair = tokens_issue(
            user=user,
            clinic=clinic,
            role=membership.role,
            amr=str(token.get("amr", AMR_PASSWORD)),
            family=family.pk,
        )
        # The stubs take a Token; simplejwt decodes the encoded string it is given.
        family.current_jti = RefreshToken(pair["refresh"], verify=False)["jti"]  # type: ignore[arg-type]
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
    confirmed, a clinic started requiring MFA, a password changed). The caller issues fresh
    credentials.

    The families first: their UPDATE waits for any refresh of this user that is issuing tokens
    (it holds its family's row until it commits), so the revocation time set after it is later
    than every token those refreshes issued. Set first, a refresh that had read the user just
    before minted an access token dated after the revocation, valid for its whole lifetime
    (found by a browser test that raced the app's start-up refresh)."""
    TokenFamily.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    refresh_tokens_revoke_all(user=user)
    User.objects.filter(pk=user.pk).update(credentials_revoked_at=timezone.now())
    user.refresh_from_db(fields=["credentials_revoked_at"])


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
