"""The client's IP address, honouring exactly TRUSTED_PROXY_COUNT reverse proxies.

Used by throttling (DRF NUM_PROXIES) and lockout (AXES_CLIENT_IP_CALLABLE) alike, so a client
cannot pick its own address with a forged X-Forwarded-For.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
