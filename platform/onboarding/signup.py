"""Self-service clinic signup on the platform host, confirmed by the admin's email.

Security review findings 3 and 4:
- a signup never signs anyone in: the clinic is created `pending` (its host does not answer)
  and becomes active only when the owner of the admin address opens the emailed link, so
  nobody can sign up with someone else's address and act as them (pre-hijacking);
- the answer is the same whether or not the address has an account: the slug, plan, name and
  password are validated first, the request does the same work either way (a new account's
  password is hashed, an existing account's is hashed and thrown away), and the difference is
  only in the email the owner receives;
- a platform-wide hourly budget of pending signups stands besides the per-IP throttle;
- pending clinics (and their never-verified accounts) are purged after the link's lifetime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import Membership, Role, User
from accounts.services import (
    email_normalize,
    email_verification_send_later,
    email_verify,
    membership_grant,
    password_validate,
    user_create,
)
from billing.models import Plan
from billing.services import subscription_start
from core.errors import ApplicationError, ErrorCode
from core.outbox import outbox_enqueue
from core.text import single_line_validate
from tenants.models import Clinic, ClinicStatus
from tenants.queues import clinic_queue_subscribe
from tenants.selectors import clinic_host_cache_clear, clinic_url
from tenants.services import clinic_create, clinic_delete, clinic_slug_validate

logger = logging.getLogger(__name__)


def _signup_budget_check() -> None:
    since = timezone.now() - timedelta(hours=1)
    recent = Clinic.objects.filter(status=ClinicStatus.PENDING, created_at__gte=since).count()
    if recent >= settings.SIGNUP_HOURLY_BUDGET:
        logger.warning("signup budget reached: %d pending signups in the last hour", recent)
        raise ApplicationError(
            code=ErrorCode.SIGNUP_BUSY,
            status_code=429,
            detail="We are receiving too many signups right now. Try again in an hour.",
            headers={"Retry-After": "3600"},
        )


def clinic_signup(
    *,
    name: str,
    slug: str,
    timezone_name: str,
    country: str,
    admin_email: str,
    admin_full_name: str,
    admin_password: str,
    plan_code: str = "starter",
) -> Clinic:
    """Create a `pending` clinic (schema, domain, the admin's membership) and email the admin a
    confirmation link. A new address gets a new, unverified account with this password; an
    existing account keeps its own password, and its owner confirms the new clinic from the
    email. One transaction: a failure leaves nothing behind."""
    clinic_slug_validate(slug)
    single_line_validate(name, field="name")
    single_line_validate(admin_full_name, field="admin.full_name")
    if not Plan.objects.filter(code=plan_code, public=True).exists():
        raise ApplicationError(code=ErrorCode.VALIDATION_ERROR, field="plan", detail="Unknown plan.")
    email = email_normalize(admin_email)
    password_validate(
        admin_password, user=User(email=email, full_name=admin_full_name), field="admin.password"
    )
    _signup_budget_check()
    with transaction.atomic():
        clinic = clinic_create(slug=slug, name=name, timezone=timezone_name, status=ClinicStatus.PENDING)
        clinic.country = country
        clinic.save(update_fields=["country"])
        admin = User.objects.filter(email=email).first()
        if admin is None:
            admin = user_create(
                email=email, password=admin_password, full_name=admin_full_name, verified=False
            )
            password_hash = admin.password
        else:
            # The same hashing work as a new account (no timing oracle). The hash travels
            # (encrypted) in the link: if this link is the first to verify the address, the
            # password typed here replaces whatever someone else set on the account.
            password_hash = make_password(admin_password)
        membership_grant(user=admin, clinic=clinic, role=Role.CLINIC_ADMIN)
        email_verification_send_later(
            user=admin,
            clinic=None,
            pending_clinic_id=str(clinic.pk),
            plan_code=plan_code,
            password_hash=password_hash,
        )
    logger.info("clinic signed up (pending) slug=%s", clinic.slug)
    return clinic


@dataclass(frozen=True)
class Confirmation:
    user: User
    clinic: Clinic | None


@transaction.atomic
def email_confirm(*, token: str) -> Confirmation:
    """Open an emailed link: the address is verified and, for a signup, the pending clinic
    becomes active with its subscription. Opening the link again changes nothing."""
    verification = email_verify(token=token)
    if verification.clinic_id is None:
        return Confirmation(user=verification.user, clinic=None)
    clinic = Clinic.objects.select_for_update().filter(pk=verification.clinic_id).first()
    is_admin = (
        clinic is not None
        and Membership.objects.filter(clinic=clinic, user=verification.user, role=Role.CLINIC_ADMIN).exists()
    )
    if clinic is None or not is_admin:
        raise ApplicationError(
            code=ErrorCode.SIGNUP_EXPIRED,
            status_code=410,
            field="token",
            detail="This signup has expired and was removed. Sign up again.",
        )
    if clinic.status == ClinicStatus.PENDING:
        clinic.status = ClinicStatus.ACTIVE
        clinic.save(update_fields=["status"])
        subscription_start(clinic=clinic, plan_code=verification.plan_code or "starter")
        schema_name = clinic.schema_name
        transaction.on_commit(lambda: clinic_host_cache_clear(clinic=clinic))
        transaction.on_commit(lambda: clinic_queue_subscribe(schema_name))
        # Through the outbox (ids only): a Redis outage loses no welcome email.
        outbox_enqueue("onboarding.clinic_welcome_send", clinic_id=str(clinic.pk), user_id=str(verification.user.pk))
        logger.info("clinic confirmed slug=%s", clinic.slug)
    return Confirmation(user=verification.user, clinic=clinic)


def clinic_welcome_email(*, clinic: Clinic, user: User) -> tuple[str, str]:
    """Subject and text of the welcome email: where the clinic lives now and the first steps,
    so a new admin never has to guess an address (issue 22, part 7)."""
    return (
        f"Welcome to CSU Tracker: {clinic.name} is ready",
        f"Hello {user.full_name or user.email},\n\n"
        f"{clinic.name} is now active on CSU Tracker. Its address is {clinic_url(clinic, '/')}\n\n"
        "First steps:\n"
        f"- Sign in as the clinic's admin: {clinic_url(clinic, '/account/')}\n"
        f"- Set up two-factor sign-in for your account: {clinic_url(clinic, '/account/mfa')}\n"
        "- Invite your clinicians (POST /api/v1/admin/invitations/); each gets an email with a link.\n"
        f"- The clinic's API and its documentation: {clinic_url(clinic, '/api/docs/')}\n"
        f"- Patients use the app at {clinic_url(clinic, '/app/')} after a clinician enrolls them.\n",
    )


def clinic_welcome_send(*, clinic_id: str, user_id: str) -> None:
    """Email the welcome to the admin who confirmed the signup (a task: ids only)."""
    clinic = Clinic.objects.filter(pk=clinic_id, status=ClinicStatus.ACTIVE).first()
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if clinic is None or user is None:
        return
    subject, body = clinic_welcome_email(clinic=clinic, user=user)
    send_mail(subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[user.email])
    logger.info("welcome email sent slug=%s", clinic.slug)


def pending_signups_purge(*, now: datetime | None = None) -> int:
    """Drop clinics still pending after the confirmation link's lifetime, and the accounts
    that signed them up if those never verified and belong nowhere else."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.EMAIL_VERIFICATION_SECONDS)
    purged = 0
    for candidate in Clinic.objects.filter(status=ClinicStatus.PENDING, created_at__lt=cutoff):
        with transaction.atomic():
            # Locked and re-read: a link opened meanwhile has made the clinic active.
            clinic = (
                Clinic.objects.select_for_update()
                .filter(pk=candidate.pk, status=ClinicStatus.PENDING)
                .first()
            )
            if clinic is None:
                continue
            admin_ids = list(
                Membership.objects.filter(clinic=clinic, role=Role.CLINIC_ADMIN).values_list(
                    "user_id", flat=True
                )
            )
            clinic_delete(clinic=clinic)
        for user in User.objects.filter(
            pk__in=admin_ids, email_verified_at__isnull=True, is_staff=False, memberships__isnull=True
        ):
            try:
                user.delete()
            except ProtectedError:  # referenced somewhere after all: keep it
                logger.info("unverified account kept (referenced) user=%s", user.pk)
        purged += 1
        logger.info("pending signup purged slug=%s", clinic.slug)
    return purged
