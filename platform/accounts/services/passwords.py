"""Password reset by emailed link, and password change."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.models import User
from accounts.services.emails import clinic_link, mail_per_recipient_allowed
from accounts.services.tokens import credentials_revoke
from accounts.services.users import email_normalize, password_validate
from core import crypto
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic

logger = logging.getLogger("accounts.auth")


def password_reset_request(*, email: str, clinic: Clinic | None) -> None:
    """Always queue the reset task, whether or not the email is registered: the request does
    the same work either way, so neither the answer nor its timing tells (ASVS 6.3.8). The
    task finds the account, applies the per-recipient cap and sends. The address travels
    encrypted (no personal data in the broker). Through the outbox: a Redis outage neither
    fails the request nor loses the email (the relay sends it once Redis is back)."""
    from core.outbox import outbox_enqueue

    outbox_enqueue(
        "accounts.password_reset_email_send",
        email_encrypted=crypto.encrypt(email_normalize(email)),
        clinic_id=str(clinic.pk) if clinic else None,
    )


def password_reset_email_send(*, email_encrypted: str, clinic_id: str | None) -> None:
    """Build the single-use, expiring reset link (Django's token generator) and email it, if
    the account exists and has not had its hourly share of reset emails."""
    user = User.objects.filter(email=crypto.decrypt(email_encrypted), is_active=True).first()
    if user is None:
        return
    if not mail_per_recipient_allowed(
        purpose="reset", user_id=user.pk, per_hour=settings.PASSWORD_RESETS_PER_HOUR
    ):
        logger.info("password reset email capped user=%s", user.pk)
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = clinic_link(clinic_id, f"/password-reset#uid={uid}&token={token}")
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
            code=ErrorCode.RESET_TOKEN_INVALID, field="token", detail="This reset link is invalid or expired."
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
            code=ErrorCode.INVALID_CURRENT_PASSWORD, field="current_password", detail="The current password is wrong."
        )
    password_validate(new_password, user=user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        credentials_revoke(user=user)
    logger.info("password changed user=%s", user.pk)
