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
# Recycle workers: bounded memory growth (django-tenants' per-schema caches). At a production
# rate this is a worker every few minutes; a load test of thousands of requests a second would
# recycle them every few seconds and measure that instead (bench/http_load.py raises it).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 4
# The application is imported once, in the master, and each worker is forked from it: recycling
# a worker then costs a fork, not a fresh import of Django and the apps (1.5-2 s of CPU on two
# cores, during which that worker's share of the requests waited: issue 19's benchmark saw it as
# seconds-long p95s). Nothing opens a database or Redis connection at import time.
preload_app = True
# Only the proxies we run may set X-Forwarded-Proto: the same TRUSTED_PROXY_IPS (addresses or
# CIDR networks, comma-separated) Django trusts X-Forwarded-For from (core.net), so the two
# agree by construction. Empty: nobody (gunicorn's own FORWARDED_ALLOW_IPS is not read).
forwarded_allow_ips = os.environ.get("TRUSTED_PROXY_IPS", "")
accesslog = "-"
errorlog = "-"
# Paths carry UUIDs only (no PHI); the query string is left out of the access log all the same.
# The request id is the one Django answered with (the proxy's, or made when it sent none).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%({x-request-id}o)s"'
