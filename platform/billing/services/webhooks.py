"""Payment provider webhooks: verify the signature, apply each event once."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Invoice, InvoiceStatus, PaymentEvent, Subscription, SubscriptionStatus
from core.errors import ApplicationError, ErrorCode
from tenants.models import ClinicStatus


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_verify(*, header: str, body: bytes, now: datetime | None = None) -> None:
    """`X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`; 5 minutes' tolerance."""
    secret = settings.BILLING_WEBHOOK_SECRET
    parts = dict(item.split("=", 1) for item in (header or "").split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
        if not re.fullmatch(r"[0-9a-f]{64}", given):
            raise ValueError("not a hex SHA-256 digest")
    except (KeyError, ValueError) as exc:
        raise ApplicationError(
            code=ErrorCode.SIGNATURE_INVALID, status_code=400, detail="Missing or malformed signature."
        ) from exc
    if not secret or not hmac.compare_digest(
        webhook_signature(secret=secret, timestamp=timestamp, body=body), given
    ):
        raise ApplicationError(
            code=ErrorCode.SIGNATURE_INVALID, status_code=400, detail="The signature does not match."
        )
    if abs((now or timezone.now()).timestamp() - timestamp) > settings.BILLING_WEBHOOK_TOLERANCE_SECONDS:
        raise ApplicationError(
            code=ErrorCode.SIGNATURE_EXPIRED, status_code=400, detail="The signature timestamp is too old."
        )


def payment_event_handle(
    *, event_id: str, event_type: str, data: dict[str, Any], now: datetime | None = None
) -> str:
    """Apply one provider event once. Returns `handled`, `duplicate` or `ignored`."""
    from tenants.lifecycle import clinic_reactivate

    now = now or timezone.now()
    try:
        with transaction.atomic():
            PaymentEvent.objects.create(event_id=event_id, type=event_type)
    except IntegrityError:
        return "duplicate"
    if event_type not in ("invoice.paid", "invoice.payment_failed"):
        return "ignored"
    number = str(data.get("invoice") or "")
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .filter(number=number)
            .select_related("clinic")
            .first()
        )
        if invoice is None:
            raise ApplicationError(
                code=ErrorCode.UNKNOWN_INVOICE, status_code=422, field="data.invoice", detail="No such invoice."
            )
        clinic = invoice.clinic
        if clinic is None:  # the clinic was purged; its invoice is retained and can still be paid
            if event_type == "invoice.paid" and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
                invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
                invoice.save(update_fields=["status", "paid_at", "updated_at"])
            PaymentEvent.objects.filter(event_id=event_id).update(handled=True)
            return "handled"
        subscription = Subscription.objects.select_for_update().get(clinic=clinic)
        if event_type == "invoice.paid":
            if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
                invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
                invoice.save(update_fields=["status", "paid_at", "updated_at"])
            unpaid = Invoice.objects.filter(
                clinic=clinic, status=InvoiceStatus.OPEN, due_at__lt=now
            ).exists()
            if (
                subscription.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED)
                and not unpaid
            ):
                was_suspended = subscription.status == SubscriptionStatus.SUSPENDED
                subscription.status, subscription.past_due_since = SubscriptionStatus.ACTIVE, None
                subscription.save(update_fields=["status", "past_due_since", "updated_at"])
                if was_suspended and clinic.status == ClinicStatus.SUSPENDED:
                    clinic_reactivate(clinic=clinic)
        elif invoice.status == InvoiceStatus.OPEN:  # a late failure for a paid invoice changes nothing
            if subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
                subscription.status, subscription.past_due_since = SubscriptionStatus.PAST_DUE, now
                subscription.save(update_fields=["status", "past_due_since", "updated_at"])
        PaymentEvent.objects.filter(event_id=event_id).update(handled=True)
    return "handled"
