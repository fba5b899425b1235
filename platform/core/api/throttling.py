"""DRF throttles that count clients by `core.net.client_key`: the address the trusted proxy
reports (never a forged X-Forwarded-For), an IPv6 client by its /64, and so exactly the key the
lockout counts. Use these instead of `rest_framework.throttling`'s classes, whose `get_ident`
reads X-Forwarded-For itself and counts every IPv6 address on its own."""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.request import Request

from core.net import client_key


class _ClientKeyIdent:
    def get_ident(self, request: Request) -> str:
        return client_key(request) or ""


class AnonRateThrottle(_ClientKeyIdent, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_ClientKeyIdent, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(_ClientKeyIdent, throttling.ScopedRateThrottle):
    pass
