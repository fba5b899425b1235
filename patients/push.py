"""Reminder channels: Web Push (VAPID, pywebpush) and email. Payloads carry no PHI: a push
says only that a reminder is waiting (the app fetches the rest over its authenticated API)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone
from pywebpush import WebPushException, webpush

from core.errors import ApplicationError
from patients.models import PushSubscription

logger = logging.getLogger(__name__)

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
GONE_STATUS = {404, 410}


class TransientDeliveryError(Exception):
    """The push service or mail server may accept the message later: retry with backoff."""


def endpoint_check(endpoint: str) -> str:
    """Only push services on the allow-list (the server POSTs to this URL: no SSRF)."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    allowed_scheme = parts.scheme == "https" or (parts.scheme == "http" and settings.WEB_PUSH_ALLOW_HTTP)
    allowed_host = any(
        host == suffix or host.endswith("." + suffix) for suffix in settings.WEB_PUSH_ALLOWED_HOSTS
    )
    if not (allowed_scheme and allowed_host):
        raise ApplicationError(
            code="push_endpoint_not_allowed",
            field="endpoint",
            detail="This is not the endpoint of a supported push service.",
        )
    return endpoint


def push_configured() -> bool:
    return bool(settings.WEB_PUSH_VAPID_PRIVATE_KEY)


@dataclass(frozen=True)
class PushOutcome:
    delivered: int
    removed: int
    transient: int
    failed: int


def push_send(subscriptions: list[PushSubscription], payload: dict[str, str]) -> PushOutcome:
    """Send one payload to each subscription; 404/410 delete the subscription (it expired)."""
    delivered = removed = transient = failed = 0
    body = json.dumps(payload, separators=(",", ":"))
    for subscription in subscriptions:
        try:
            endpoint_check(subscription.endpoint)
            webpush(
                subscription_info={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                data=body,
                vapid_private_key=settings.WEB_PUSH_VAPID_PRIVATE_KEY,
                vapid_claims={"sub": settings.WEB_PUSH_VAPID_SUBJECT},
                timeout=settings.WEB_PUSH_TIMEOUT_SECONDS,
                ttl=3600,
            )
        except WebPushException as exc:
            status = exc.status_code
            if status in GONE_STATUS:
                subscription.delete()
                removed += 1
            elif status in TRANSIENT_STATUS or status is None:
                transient += 1
            else:
                failed += 1
            logger.info("Web push answered %s", status)
        except requests.RequestException as exc:
            transient += 1
            logger.info("Web push network error: %s", type(exc).__name__)
        except ApplicationError:
            failed += 1
        else:
            PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=timezone.now())
            delivered += 1
    return PushOutcome(delivered, removed, transient, failed)


def email_send(address: str) -> None:
    """Generic text: no diagnosis, no medication, no scores (the mailbox may be shared)."""
    try:
        send_mail(
            subject="You have a reminder in CSU Tracker",
            message="You have a reminder waiting in CSU Tracker. Open the app to see it.",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[address],
        )
    except OSError as exc:  # SMTP and socket errors
        raise TransientDeliveryError(type(exc).__name__) from exc
