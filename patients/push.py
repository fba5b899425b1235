"""Reminder channels: Web Push (VAPID, pywebpush) and email. Payloads carry no PHI: a push
says only that a reminder is waiting (the app fetches the rest over its authenticated API)."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone
from pywebpush import WebPushException, webpush
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from core.errors import ApplicationError, ErrorCode
from patients.models import PushSubscription

logger = logging.getLogger(__name__)

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
GONE_STATUS = {404, 410}


class TransientDeliveryError(Exception):
    """The push service or mail server may accept the message later: retry with backoff."""


def _refuse_endpoint() -> ApplicationError:
    return ApplicationError(
        code=ErrorCode.PUSH_ENDPOINT_NOT_ALLOWED,
        field="endpoint",
        detail="This is not the endpoint of a supported push service.",
    )


def endpoint_check(endpoint: str) -> str:
    """Only push services on the allow-list: the server POSTs to this URL (no SSRF).

    Parsed with urllib3, the parser `requests` itself uses, so the host checked is the host
    contacted; no credentials, backslashes or non-default ports (parsers disagree on those).
    """
    if "\\" in endpoint or any(ord(ch) < 33 for ch in endpoint):
        raise _refuse_endpoint()
    try:
        parts = parse_url(endpoint)
    except LocationParseError as exc:
        raise _refuse_endpoint() from exc
    host = (parts.host or "").lower().rstrip(".")
    if parts.scheme == "https":
        allowed_scheme = parts.port in (None, 443)
    else:
        allowed_scheme = parts.scheme == "http" and settings.WEB_PUSH_ALLOW_HTTP  # tests' loopback only
    allowed_host = any(
        host == suffix or host.endswith("." + suffix) for suffix in settings.WEB_PUSH_ALLOWED_HOSTS
    )
    if parts.auth or not (allowed_scheme and allowed_host):
        raise _refuse_endpoint()
    return endpoint


def keys_check(p256dh: str, auth: str) -> None:
    """The browser's key must be a P-256 point and the auth secret 16 bytes (RFC 8291)."""
    try:
        point = base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError) as exc:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="keys.p256dh", detail="Not a P-256 public key."
        ) from exc
    try:
        secret = base64.urlsafe_b64decode(auth + "=" * (-len(auth) % 4))
    except (ValueError, TypeError) as exc:
        raise ApplicationError(code=ErrorCode.VALIDATION_ERROR, field="keys.auth", detail="Not base64url.") from exc
    if len(secret) != 16:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="keys.auth", detail="The auth secret is 16 bytes."
        )


def _session() -> requests.Session:
    session = requests.Session()
    session.max_redirects = 0  # a push service answers; it never redirects us elsewhere
    return session


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
    session = _session()
    for subscription in subscriptions:
        try:
            endpoint_check(subscription.endpoint)
            webpush(
                requests_session=session,
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
            elif status in TRANSIENT_STATUS:
                transient += 1
            else:  # other 4xx, or no response at all (a bad key, an encryption error)
                failed += 1
            logger.info("Web push answered %s", status)
        except requests.TooManyRedirects:
            failed += 1
            logger.info("Web push endpoint redirected; not followed")
        except requests.RequestException as exc:
            transient += 1
            logger.info("Web push network error: %s", type(exc).__name__)
        except ApplicationError:
            failed += 1
        except Exception as exc:  # one broken subscription must not stop the others or the email
            failed += 1
            logger.warning("Web push failed locally: %s", type(exc).__name__)
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
