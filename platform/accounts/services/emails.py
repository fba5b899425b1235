"""Emails to an account: address verification links, per-recipient caps, security alerts to a
clinic's admins."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.models import RecoveryCode, Role, TotpDevice, User
from accounts.services.tokens import credentials_revoke
from accounts.services.users import email_normalize, membership_cache_clear_now_and_on_commit, user_clinics
from core import crypto
from core.cache import CacheUnavailable
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic
from tenants.selectors import clinic_url, platform_url

logger = logging.getLogger("accounts.auth")


def mail_per_recipient_allowed(*, purpose: str, user_id: uuid.UUID, per_hour: int) -> bool:
    """At most `per_hour` emails of one kind to one account per hour (counted in the cache).

    While the cache cannot count, the email waits: this raises redis' ConnectionError, which
    the sending task (core.tasks.ResilientTask) retries with backoff. It must not fail open:
    the request throttles in front of it fail open in the same outage, and together they would
    let anyone mail-bomb an address (found by review). A counter that merely expired between
    `add` and `incr` (a ValueError) counts as the first email of a new hour."""
    key = f"mail-cap:{purpose}:{user_id}"
    cache.add(key, 0, 3600)
    try:
        return int(cache.incr(key)) <= per_hour
    except CacheUnavailable as exc:
        logger.warning("mail cap unavailable purpose=%s: the email waits for the cache", purpose)
        raise RedisConnectionError("the per-recipient mail cap cannot be counted") from exc
    except ValueError:
        return 1 <= per_hour


def clinic_link(clinic_id: str | None, path: str) -> str:
    """An absolute link on the clinic's host, or on the platform host without a clinic
    (tenants.selectors.public_url: scheme, host and port from the settings)."""
    clinic = Clinic.objects.filter(pk=clinic_id).first() if clinic_id else None
    if clinic is not None:
        return clinic_url(clinic, path)
    return platform_url(path)


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
    built there). Through the outbox: a Redis outage loses no confirmation email."""
    from core.outbox import outbox_enqueue

    outbox_enqueue(
        "accounts.email_verification_send",
        user_id=str(user.pk),
        clinic_id=str(clinic.pk) if clinic else None,
        pending_clinic_id=pending_clinic_id,
        plan_code=plan_code,
        password_hash_encrypted=crypto.encrypt(password_hash) if password_hash else None,
    )


def email_verification_resend_request(*, email: str, clinic: Clinic) -> None:
    """Someone asks for a new confirmation link for `email` at `clinic` (a patient who did not
    confirm within the link's 24 hours, or lost the email). Like a password reset request, the
    request always queues the same task, whether or not the address has an account, is
    confirmed or belongs to this clinic: neither the answer nor its timing tells (ASVS 6.3.8).
    The task decides and sends (`email_verification_resend`). The address travels encrypted."""
    from core.outbox import outbox_enqueue

    outbox_enqueue(
        "accounts.email_verification_resend",
        email_encrypted=crypto.encrypt(email_normalize(email)),
        clinic_id=str(clinic.pk),
    )


def email_verification_resend(*, email_encrypted: str, clinic_id: str) -> None:
    """Send a new confirmation link, as enrollment sent the first one, only to an active,
    still unconfirmed account with an active membership of the clinic asked at. Anyone else
    gets nothing; the per-recipient cap of `email_verification_send` limits how many links an
    address receives."""
    user = (
        User.objects.filter(
            email=crypto.decrypt(email_encrypted),
            is_active=True,
            email_verified_at__isnull=True,
            memberships__clinic_id=clinic_id,
            memberships__is_active=True,
        )
        .only("pk")
        .first()
    )
    if user is None:
        return
    # The link an enrollment sends (email_verification_send_later's task): no pending clinic,
    # no plan, no password of a signup. Already in a task: sent from here, not queued again.
    email_verification_send(user_id=str(user.pk), clinic_id=clinic_id, pending_clinic_id=None, plan_code=None)
    logger.info("verification email resent user=%s", user.pk)


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
    if not mail_per_recipient_allowed(
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
    link = clinic_link(clinic_id, f"/verify-email#token={token}")
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
        code=ErrorCode.VERIFICATION_TOKEN_INVALID,
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
    user_id = payload.get("u")
    if not isinstance(user_id, str):
        raise invalid
    user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
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
    membership_cache_clear_now_and_on_commit(user.pk, user_clinics(user))
    logger.info("email verified user=%s", user.pk)


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
