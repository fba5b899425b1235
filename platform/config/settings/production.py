"""Production: same as base, plus transport security and guards that refuse unsafe config."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, env

JWT_SIGNING_KEY_MIN_BYTES = 32

if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("Production settings refuse to start with DEBUG on. Set DEBUG=false.")
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:  # noqa: F405
    raise ImproperlyConfigured(
        "Production settings refuse to start without a real SECRET_KEY (50+ random characters)."
    )
if not FIELD_ENCRYPTION_KEYS:  # noqa: F405
    raise ImproperlyConfigured("Production settings refuse to start without FIELD_ENCRYPTION_KEYS.")
if not env("ALLOWED_HOSTS", default=""):
    raise ImproperlyConfigured("Production settings refuse to start without ALLOWED_HOSTS.")
# HS256 needs a key of at least its hash size (RFC 7518 §3.2). Unset, it is derived from the
# SECRET_KEY checked above.
if 0 < len(env("JWT_SIGNING_KEY", default="").encode()) < JWT_SIGNING_KEY_MIN_BYTES:
    raise ImproperlyConfigured(
        f"Production settings refuse a JWT_SIGNING_KEY shorter than {JWT_SIGNING_KEY_MIN_BYTES} bytes "
        '(python -c "import secrets; print(secrets.token_urlsafe(48))"), or leave it unset.'
    )
# X-Forwarded-For is honoured only from the proxy's addresses (core.net): a hop count without
# them would trust nobody (every client counted as the proxy), addresses without a count would
# never read the header. gunicorn reads the same TRUSTED_PROXY_IPS (deploy/gunicorn.conf.py).
if bool(TRUSTED_PROXY_COUNT) != bool(TRUSTED_PROXY_IPS):  # noqa: F405
    raise ImproperlyConfigured(
        "Production settings refuse TRUSTED_PROXY_COUNT without TRUSTED_PROXY_IPS or the reverse: "
        "set both (the proxy's addresses and how many proxies append to X-Forwarded-For) or neither."
    )
for _proxy in TRUSTED_PROXY_IPS:  # noqa: F405
    if _proxy.strip() != "*":
        try:
            ipaddress.ip_network(_proxy.strip())
        except ValueError as exc:
            raise ImproperlyConfigured(f"Production settings refuse TRUSTED_PROXY_IPS: {exc}") from exc

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
