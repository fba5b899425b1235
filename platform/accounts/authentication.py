"""DRF authentication for clinic hosts: JWT (PWA, API clients) and session (portal in a browser).

Both bind the caller to the clinic of the host: a token carries `tid` (the clinic schema) and
is refused elsewhere; a session remembers the clinic it was opened on. Both then require an
active membership, looked up (cached) on every request, so deactivation works at once.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from accounts.models import User
from accounts.selectors import ActiveMembership, membership_active_for, user_with_membership
from core.errors import ErrorCode

SESSION_CLINIC_KEY = "csu.tid"
PLATFORM_TID = "public"
SESSION_STARTED_KEY = "csu.started"
# How the session's user authenticated (`pwd` / `pwd+otp`) and when, in milliseconds (for
# credential revocation).
SESSION_AMR_KEY = "csu.amr"
SESSION_AUTH_AT_KEY = "csu.auth_at"


def _credentials_check(*, user: Any, membership: ActiveMembership, amr: str, issued_at_ms: Any) -> None:
    """Refuse credentials issued before the user's revocation, and staff credentials issued on
    the password alone for a user who has MFA (security review finding 2)."""
    from accounts.services import mfa_missing_from_credentials, token_issued_after_revocation

    if not token_issued_after_revocation(user=user, issued_at_ms=issued_at_ms):
        raise exceptions.AuthenticationFailed(
            "These credentials were revoked. Sign in again.", code=ErrorCode.TOKEN_NOT_VALID
        )
    if mfa_missing_from_credentials(membership=membership, amr=amr):
        raise exceptions.AuthenticationFailed(
            "Sign in again with the code from your authenticator app.", code=ErrorCode.MFA_REQUIRED
        )


def request_clinic(request: Request) -> Any:
    """The clinic of the request's host, or None on the platform host."""
    tenant = getattr(request._request, "tenant", None)
    return tenant if getattr(tenant, "schema_name", "public") != "public" else None


def request_user(request: Request) -> User:
    """The request's authenticated user, typed as `accounts.models.User` (DRF types
    `request.user` as `User | AnonymousUser`). For views behind `IsAuthenticated`; anyone else
    gets 401."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


def token_claim(token: Any, name: str, default: Any = None) -> Any:
    """A claim of the request's validated token (simplejwt types `request.auth` loosely)."""
    return token.get(name, default) if hasattr(token, "get") else default


def request_amr(request: Request) -> str:
    """How the caller authenticated: the token's `amr`, or the session's."""
    if request.auth is not None:
        return str(token_claim(request.auth, "amr", "pwd"))
    return str(request._request.session.get(SESSION_AMR_KEY, "pwd"))


def _membership_generation(user: Any) -> int | None:
    """The generation the membership cache is keyed by, from the user row loaded for this
    request (accounts.selectors.membership_active_for)."""
    return user.membership_generation if isinstance(user, User) else None


def _bind_membership(request: Request, membership: ActiveMembership) -> None:
    request._request.membership = membership  # type: ignore[attr-defined]


def request_membership(request: Request) -> ActiveMembership | None:
    return getattr(request._request, "membership", None)


class ClinicJWTAuthentication(JWTAuthentication):
    www_authenticate_realm = "csu-tracker"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        if raw is None:
            return None
        token = self.get_validated_token(raw)
        clinic = request_clinic(request)
        # The host check comes before the user lookup: a token never works on another host.
        # Clinic tokens carry the clinic's schema; operator tokens "public" (platform host).
        expected = clinic.schema_name if clinic is not None else PLATFORM_TID
        if token.get("tid") != expected:
            raise exceptions.AuthenticationFailed(
                "Token is not valid for this host.", code=ErrorCode.TOKEN_NOT_VALID
            )
        if clinic is None:
            try:
                user = self.get_user(token)
            except (ValueError, ValidationError) as exc:  # a user id that is not a UUID
                raise exceptions.AuthenticationFailed("User not found", code="user_not_found") from exc
            if not isinstance(user, User) or not user.is_staff:
                raise exceptions.AuthenticationFailed(
                    "Not a platform operator.", code=ErrorCode.TOKEN_NOT_VALID
                )
            from accounts.services import token_issued_after_revocation, token_issued_at_ms

            # An operator's password reset or change revokes their tokens too (review finding).
            if not token_issued_after_revocation(user=user, issued_at_ms=token_issued_at_ms(token)):
                raise exceptions.AuthenticationFailed(
                    "These credentials were revoked. Sign in again.", code=ErrorCode.TOKEN_NOT_VALID
                )
            return user, token
        # One query for the user and their membership here (issue 19): no cache in the way of
        # a revocation, and no second round trip.
        user, membership = self._user_and_membership(token, clinic_id=clinic.pk)
        if membership is None:
            raise exceptions.AuthenticationFailed(
                "No active membership in this clinic.", code=ErrorCode.MEMBERSHIP_INACTIVE
            )
        from accounts.services import token_issued_at_ms

        _credentials_check(
            user=user,
            membership=membership,
            amr=str(token.get("amr", "pwd")),
            issued_at_ms=token_issued_at_ms(token),
        )
        _bind_membership(request, membership)
        return user, token

    def _user_and_membership(self, token: Any, *, clinic_id: Any) -> tuple[User, ActiveMembership | None]:
        """simplejwt's `get_user` checks (the user exists and is active), with the membership
        read in the same query (accounts.selectors.user_with_membership)."""
        try:
            user_id = token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        try:
            user, membership = user_with_membership(user_id=user_id, clinic_id=clinic_id)
        except (ValueError, ValidationError) as exc:  # not a UUID: no such user
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found") from exc
        if user is None:
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        return user, membership


class ClinicSessionAuthentication(SessionAuthentication):
    """Django session + CSRF on unsafe methods, bound to the clinic it was opened on, with an
    absolute lifetime on top of the sliding idle timeout (SESSION_COOKIE_AGE)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        django_request = request._request
        user = getattr(django_request, "user", None)
        if not user or not user.is_active:
            return None
        session = django_request.session
        clinic = request_clinic(request)
        if clinic is None or session.get(SESSION_CLINIC_KEY) != clinic.schema_name:
            return None
        started = session.get(SESSION_STARTED_KEY, 0)
        if time.time() - started > settings.SESSION_ABSOLUTE_SECONDS:
            logout(django_request)
            raise exceptions.AuthenticationFailed(
                "Your session has expired. Sign in again.", code=ErrorCode.SESSION_EXPIRED
            )
        membership = membership_active_for(
            user_id=user.pk, clinic_id=clinic.pk, generation=_membership_generation(user)
        )
        if membership is None:
            logout(django_request)
            raise exceptions.AuthenticationFailed(
                "No active membership in this clinic.", code=ErrorCode.MEMBERSHIP_INACTIVE
            )
        try:
            _credentials_check(
                user=user,
                membership=membership,
                amr=str(session.get(SESSION_AMR_KEY, "pwd")),
                issued_at_ms=session.get(SESSION_AUTH_AT_KEY, started * 1000),
            )
        except exceptions.AuthenticationFailed:
            logout(django_request)
            raise
        self.enforce_csrf(request)
        _bind_membership(request, membership)
        return user, None

    def authenticate_header(self, request: Request) -> str:
        # 401 (not 403) for anonymous requests, so clients know to sign in.
        return 'Session realm="csu-tracker"'


class ClinicJWTScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.ClinicJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class ClinicSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.ClinicSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
