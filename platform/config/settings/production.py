"""Production: same as base, plus transport security and guards that refuse unsafe config."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, env

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

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
