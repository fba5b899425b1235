from __future__ import annotations

from celery import shared_task
from tenant_schemas_celery.task import TenantTask


@shared_task(base=TenantTask, name="accounts.password_reset_email_send", acks_late=True)
def password_reset_email_send(*, user_id: str, clinic_id: str | None) -> None:
    from accounts.services import password_reset_email_send as send

    send(user_id=user_id, clinic_id=clinic_id)
