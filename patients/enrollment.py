"""Enrollment codes: the single-use code (and QR) a clinician gives a patient so that they can
create their account in the PWA (DESIGN.md §4).

The code belongs with the patient record, in the clinic's schema. Issuing a code for an
existing record is only possible with a `Patient` the caller obtained through the staff access
function (audited there); a record that already has an account gets no code. Redeeming a code
that creates a new record takes a plan seat. Accounts and memberships are created through
`accounts.services`, which knows nothing about patients.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Membership, Role, User
from accounts.web.base import page_language
from billing.services import seat_check
from core import crypto
from core.cache import cache_add_or_none
from core.errors import ApplicationError, ErrorCode
from core.outbox import outbox_enqueue
from patients.audit import access_log_write
from patients.consent import consent_accept, privacy_notice_version_check
from patients.models import Enrollment, EnrollmentFailure, Patient
from patients.services import patient_changed, patient_write_lock
from tenants.models import Clinic
from tenants.selectors import clinic_url

logger = logging.getLogger("patients.enrollment")

ENROLLMENT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 8


def enrollment_code_normalize(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def enrollment_code_display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


@transaction.atomic
def enrollment_issue(
    *, clinic: Clinic, patient: Patient | None, created_by: User, created_by_role: str
) -> tuple[Enrollment, str]:
    """A single-use 8-character code, valid ENROLLMENT_VALID_DAYS.

    With `patient` (which the caller got from the staff access function), the code links that
    record: refused (409 `patient_already_enrolled`) when the record already has an account,
    and any earlier open code of the record is revoked, so one code is open per patient.
    Without, redeeming the code creates a new record (and takes a plan seat then); that issue
    is audited here (with a patient, the access function audited it).
    """
    account_services.clinic_refuse_new_members(clinic)
    if patient is not None:
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        if patient.user_id is not None:
            raise ApplicationError(
                code=ErrorCode.PATIENT_ALREADY_ENROLLED,
                status_code=409,
                field="patient_id",
                detail="This patient already has an account; they sign in with it.",
            )
        Enrollment.objects.filter(patient=patient, redeemed_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    code = "".join(secrets.choice(ENROLLMENT_ALPHABET) for _ in range(CODE_LENGTH))
    enrollment = Enrollment.objects.create(
        patient=patient,
        code_hash=crypto.keyed_hash(code, purpose="enrollment"),
        code_encrypted=crypto.encrypt(code),
        created_by_id=created_by.pk,
        expires_at=timezone.now() + timedelta(days=settings.ENROLLMENT_VALID_DAYS),
    )
    if patient is None:
        access_log_write(
            actor_id=created_by.pk,
            actor_role=created_by_role,
            action="enrollment.issue",
            patient_id=None,
            obj=enrollment,
        )
    return enrollment, code


def enrollment_code(enrollment: Enrollment) -> str:
    return crypto.decrypt(enrollment.code_encrypted)


def enrollment_url(*, clinic: Clinic, enrollment: Enrollment) -> str:
    """The link in the QR code: the clinic's PWA, with the code in the fragment (never sent to
    a server, never in an access log)."""
    return clinic_url(clinic, f"/enroll#code={enrollment_code_display(enrollment_code(enrollment))}")


def enrollment_open_get(*, enrollment_id: uuid.UUID | str) -> Enrollment | None:
    return Enrollment.objects.filter(
        pk=enrollment_id, redeemed_at__isnull=True, revoked_at__isnull=True
    ).first()


def _enrollment_open(*, code: str, lock: bool = False) -> Enrollment:
    queryset = Enrollment.objects.select_for_update() if lock else Enrollment.objects
    code_hashes = crypto.keyed_hashes(enrollment_code_normalize(code), purpose="enrollment")
    enrollment = queryset.filter(code_hash__in=code_hashes).first()
    account_services.single_use_check(
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


# --- The clinic's guessing budget ---------------------------------------------------------------


def _guessing_window_start() -> datetime:
    return timezone.now() - timedelta(seconds=settings.ENROLLMENT_FAILURE_WINDOW_SECONDS)


def _guessing_budget_check(clinic: Clinic) -> None:
    """Refuse every redemption while the clinic's failures in the window reach the budget.

    Per-IP throttles do not stop guessing from many addresses; this budget caps the guesses a
    clinic's codes can receive whatever their origin (31^8 codes, so a budget of 100 an hour
    keeps the odds of a hit negligible), at the price of pausing enrollment for the rest of
    the window while an attack runs. The clinic's admins are told (once per window).
    """
    failures = EnrollmentFailure.objects.filter(created_at__gte=_guessing_window_start()).count()
    if failures >= settings.ENROLLMENT_FAILURE_BUDGET:
        raise ApplicationError(
            code=ErrorCode.ENROLLMENT_PAUSED,
            status_code=429,
            detail="Too many wrong enrollment codes were tried at this clinic. Try again later "
            "or ask your clinic for help.",
            headers={"Retry-After": str(settings.ENROLLMENT_FAILURE_WINDOW_SECONDS)},
        )


def _guessing_failure_record(clinic: Clinic) -> None:
    """One failed guess (committed even though the request fails). Reaching the budget alerts
    the clinic's admins, once per window (a cache flag; a lost flag means one more email)."""
    EnrollmentFailure.objects.create()
    failures = EnrollmentFailure.objects.filter(created_at__gte=_guessing_window_start()).count()
    if failures < settings.ENROLLMENT_FAILURE_BUDGET:
        return
    logger.warning("enrollment guessing budget reached clinic=%s failures=%d", clinic.slug, failures)
    first = cache_add_or_none(
        f"enrollment-guessing-alerted:{clinic.pk}", 1, settings.ENROLLMENT_FAILURE_WINDOW_SECONDS
    )
    # None: the cache could not say whether the admins were told. A cache outage must not
    # hide the alert (fail towards one more email); the budget itself is counted in the
    # database and keeps pausing enrollment.
    if first is not False:
        # Through the outbox (this runs in autocommit, so it publishes at once): a broker outage
        # delays the admins' alert instead of losing it.
        outbox_enqueue(
            "accounts.clinic_admins_alert_send", clinic_id=str(clinic.pk), kind="enrollment_guessing", count=failures
        )


def enrollment_failures_purge(*, older_than: timedelta = timedelta(days=7)) -> int:
    deleted, _ = EnrollmentFailure.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted


# --- Redemption ---------------------------------------------------------------------------------


def _patient_link(*, enrollment: Enrollment, user: User, clinic: Clinic, locale: str | None = None) -> Patient:
    """Link the account to the enrollment's record, or create the record (one more seat). The
    patient's language (emails, notifications, the app on another device) is the one they
    joined in, when the request says (Accept-Language, en or de)."""
    if enrollment.patient_id is not None:
        patient = Patient.objects.get(pk=enrollment.patient_id)
        patient_write_lock(patient)  # the documented lock order: the patient's lock, then the row
        patient = Patient.objects.select_for_update().get(pk=enrollment.patient_id)
        if patient.user_id is not None and patient.user_id != user.pk:
            raise ApplicationError(
                code=ErrorCode.ENROLLMENT_INVALID, field="code", detail="This enrollment code is not valid."
            )
    else:
        seat_check(clinic=clinic, adding="patient")
        patient = Patient(
            display_name=user.full_name or user.email.split("@")[0],
            timezone=clinic.timezone,
            diary_mode=clinic.default_diary_mode,
        )
    if patient.user_id is None:
        # Enrolled is when the patient joins: no diary or adherence window starts earlier, so the
        # days between the clinic creating the record and the patient redeeming the code are
        # never counted as missed.
        patient.enrolled_at = timezone.now()
        if locale:
            patient.locale = locale
    patient.user_id = user.pk
    patient.save()
    patient_changed(patient)
    return patient


def enrollment_redeem(
    *,
    clinic: Clinic,
    code: str,
    email: str,
    password: str,
    privacy_notice_version: int,
    otp: str | None = None,
    request: HttpRequest | None = None,
) -> Enrollee:
    """Create (or link) the patient's account and patient membership from a code, with the
    patient's acceptance of the clinic's privacy notice (`privacy_notice_version`, the version
    they were shown): health data is stored only with it (patients.consent).

    Order matters: a stale notice is refused first (400 `privacy_notice_outdated`, nothing
    spent: the patient reads the new one and sends again), then the clinic's guessing budget,
    then the code (a wrong code is counted and
    no password is checked without a valid code), then an existing account proves password and
    TOTP outside the transaction (failures count toward the lockout), then the code is spent
    under a lock together with every write. Must run outside a transaction (the failure rows
    and lockout attempts must survive the error).
    """
    account_services.clinic_refuse_new_members(clinic)
    privacy_notice_version_check(version=privacy_notice_version)
    _guessing_budget_check(clinic)
    try:
        _enrollment_open(code=code)
    except ApplicationError:
        _guessing_failure_record(clinic)
        raise
    # The password is judged before anything depends on whether the address has an account,
    # and a failed proof of an existing account spends the clinic's budget like a wrong code:
    # probing which addresses have accounts is as limited as guessing codes.
    account_services.password_validate(
        password, user=User(email=account_services.email_normalize(email)), field="password"
    )
    try:
        existing = account_services.account_verify_for_linking(
            request=request, email=email, password=password, otp=otp
        )
    except ApplicationError as exc:
        if exc.status_code == 401:
            _guessing_failure_record(clinic)
        raise
    with transaction.atomic():
        enrollment = _enrollment_open(code=code, lock=True)
        user = existing.user if existing else None
        user = user or account_services.user_create(email=email, password=password, verified=False)
        membership = account_services.membership_grant(user=user, clinic=clinic, role=Role.PATIENT)
        patient = _patient_link(
            enrollment=enrollment,
            user=user,
            clinic=clinic,
            locale=page_language(request) if request is not None and "HTTP_ACCEPT_LANGUAGE" in request.META else None,
        )
        consent_accept(patient=patient, version=privacy_notice_version, actor_id=user.pk)
        enrollment.redeemed_at = timezone.now()
        enrollment.redeemed_by_id = user.pk
        enrollment.save(update_fields=["redeemed_at", "redeemed_by_id"])
        access_log_write(
            actor_id=user.pk,
            actor_role=Role.PATIENT,
            action="enrollment.redeem",
            patient_id=patient.pk,
            obj=enrollment,
        )
        if existing is None:
            account_services.email_verification_send_later(user=user, clinic=clinic)
    amr = existing.amr if existing else account_services.AMR_PASSWORD
    return Enrollee(user=user, membership=membership, patient=patient, amr=amr)


@dataclass(frozen=True)
class Enrollee:
    user: User
    membership: Membership
    patient: Patient
    amr: str
