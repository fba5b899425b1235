"""gunicorn settings (`gunicorn -c deploy/gunicorn.conf.py config.wsgi`), read from the
environment so the same file serves the container, compose and the local production run."""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers: bounded memory growth (django-tenants' per-schema caches)
max_requests_jitter = 200
# Only the proxies we run may set X-Forwarded-Proto: the same TRUSTED_PROXY_IPS (addresses or
# CIDR networks, comma-separated) Django trusts X-Forwarded-For from (core.net), so the two
# agree by construction. Empty: nobody (gunicorn's own FORWARDED_ALLOW_IPS is not read).
forwarded_allow_ips = os.environ.get("TRUSTED_PROXY_IPS", "")
accesslog = "-"
errorlog = "-"
# Paths carry UUIDs only (no PHI); the query string is left out of the access log all the same.
# The request id is the one Django answered with (the proxy's, or made when it sent none).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%({x-request-id}o)s"'
