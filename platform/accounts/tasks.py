"""Thin tasks: ids (or encrypted addresses) in, a service does the work. No PHI in arguments."""

from __future__ import annotations

from celery import shared_task

from core.tasks import ResilientTask


@shared_task(base=ResilientTask, name="accounts.password_reset_email_send", acks_late=True)
def password_reset_email_send(*, email_encrypted: str, clinic_id: str | None) -> None:
    from accounts.services import password_reset_email_send as send

    send(email_encrypted=email_encrypted, clinic_id=clinic_id)


@shared_task(base=ResilientTask, name="accounts.email_verification_send", acks_late=True)
def email_verification_send(
    *,
    user_id: str,
    clinic_id: str | None,
    pending_clinic_id: str | None = None,
    plan_code: str | None = None,
    password_hash_encrypted: str | None = None,
) -> None:
    from accounts.services import email_verification_send as send

    send(
        user_id=user_id,
        clinic_id=clinic_id,
        pending_clinic_id=pending_clinic_id,
        plan_code=plan_code,
        password_hash_encrypted=password_hash_encrypted,
    )


@shared_task(base=ResilientTask, name="accounts.email_verification_resend", acks_late=True)
def email_verification_resend(*, email_encrypted: str, clinic_id: str) -> None:
    from accounts.services import email_verification_resend as resend

    resend(email_encrypted=email_encrypted, clinic_id=clinic_id)


@shared_task(base=ResilientTask, name="accounts.clinic_admins_alert_send", acks_late=True)
def clinic_admins_alert_send(*, clinic_id: str, kind: str, count: int) -> None:
    from accounts.services import clinic_admins_alert_send as send

    send(clinic_id=clinic_id, kind=kind, count=count)
