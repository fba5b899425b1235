#!/usr/bin/env bash
# A production-like run on loopback: gunicorn + a Celery worker + beat with production settings,
# against the configured DATABASE_URL and REDIS_URL (or CACHE_URL + CELERY_BROKER_URL). Used by the end-to-end test and by hand:
#   DATABASE_URL=... REDIS_URL=... SECRET_KEY=... FIELD_ENCRYPTION_KEYS=... deploy/run-local-prod.sh
# Stops every process on SIGTERM/SIGINT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

export DJANGO_SETTINGS_MODULE=config.settings.production
export PLATFORM_DOMAIN="${PLATFORM_DOMAIN:-localhost}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-localhost,.localhost}"
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-false}"  # plain HTTP on loopback only
export PORT="${PORT:-8765}"
# The caller on loopback plays the TLS-terminating proxy (X-Forwarded-Proto, X-Forwarded-For,
# X-Request-ID), as Caddy does in compose: gunicorn and Django trust it alone.
export TRUSTED_PROXY_IPS="${TRUSTED_PROXY_IPS:-127.0.0.1,::1}"
export TRUSTED_PROXY_COUNT="${TRUSTED_PROXY_COUNT:-1}"
: "${DATABASE_URL:?set DATABASE_URL}"
# One Redis for cache and broker (REDIS_URL), or each its own (CACHE_URL, CELERY_BROKER_URL).
if [ -z "${REDIS_URL:-}" ] && { [ -z "${CACHE_URL:-}" ] || [ -z "${CELERY_BROKER_URL:-}" ]; }; then
  echo "set REDIS_URL (or both CACHE_URL and CELERY_BROKER_URL)" >&2
  exit 2
fi
: "${SECRET_KEY:?set SECRET_KEY}" "${FIELD_ENCRYPTION_KEYS:?set FIELD_ENCRYPTION_KEYS}"

SCHEDULE="$(mktemp -d)/celerybeat-schedule"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap cleanup EXIT INT TERM

GUNICORN_BIND="127.0.0.1:${PORT}" WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}" \
  "$PY" -m gunicorn -c deploy/gunicorn.conf.py config.wsgi & pids+=($!)
"$PY" -m celery -A config worker -l "${CELERY_LOG_LEVEL:-WARNING}" -c "${WORKER_CONCURRENCY:-2}" \
  --without-gossip --without-mingle & pids+=($!)
"$PY" -m celery -A config beat -l "${CELERY_LOG_LEVEL:-WARNING}" --schedule "$SCHEDULE" & pids+=($!)
wait -n
