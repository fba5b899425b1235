"""The browser session's sign-in state, written here and read by `accounts.authentication`:
the clinic it belongs to, when it started (for the absolute lifetime), when the password was
last proved (`auth_at`, for re-authentication) and how (`amr`)."""

from __future__ import annotations

import time

from django.contrib.auth import login, update_session_auth_hash
from django.http import HttpRequest

from accounts import services
from accounts.authentication import (
    SESSION_AMR_KEY,
    SESSION_AUTH_AT_KEY,
    SESSION_CLINIC_KEY,
    SESSION_STARTED_KEY,
)
from accounts.models import User
from tenants.models import Clinic


def session_sign_in(*, request: HttpRequest, user: User, clinic: Clinic, amr: str) -> None:
    """Sign the user in to this clinic's session, just after their credentials were checked."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_CLINIC_KEY] = clinic.schema_name
    request.session[SESSION_STARTED_KEY] = int(time.time())
    request.session[SESSION_AUTH_AT_KEY] = services.now_ms()
    request.session[SESSION_AMR_KEY] = amr


def session_password_changed(*, request: HttpRequest, user: User) -> None:
    """Keep this session signed in after its own password change (every other one ends)."""
    update_session_auth_hash(request, user)
    request.session[SESSION_AUTH_AT_KEY] = services.now_ms()


def session_mfa_confirmed(*, request: HttpRequest) -> None:
    """A new session key for the now two-factor sign-in (earlier ones were revoked)."""
    request.session.cycle_key()
    request.session[SESSION_AUTH_AT_KEY] = services.now_ms()
    request.session[SESSION_AMR_KEY] = services.AMR_MFA
