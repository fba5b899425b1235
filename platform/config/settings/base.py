"""Settings shared by every environment. Everything is read from the environment here, once.

Environment-specific modules (local, test, production) only change defaults or add guards.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parents[3]
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production"  # noqa: S105 (refused by production)

SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
# Previous SECRET_KEYs, still accepted for signatures (sessions, password-reset links, email
# verification, sync and page cursors) while a rotation settles; `rotate_keys --plan`.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=False)
PLATFORM_DOMAIN = env("PLATFORM_DOMAIN", default="localhost").lower()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[PLATFORM_DOMAIN, f".{PLATFORM_DOMAIN}"])
# Clinic hosts are <slug>.<PLATFORM_DOMAIN>; PLATFORM_DOMAIN itself is the public site.
PLATFORM_HOSTS = env.list("PLATFORM_HOSTS", default=[PLATFORM_DOMAIN])

# --- Services --------------------------------------------------------------------------------
# Settings only read the URLs; they never start a server (mypy, IDEs and `manage.py check`
# import them). The embedded PostgreSQL/Redis (DESIGN.md §2, config.embedded) are started by
# `make run`, by the pytest plugin and by `python -m config.embedded`, which set these URLs in
# the environment of everything they run.
SERVICES_MISSING = """{names} not set, and settings start no servers. Either
  - `make run`: starts the embedded PostgreSQL and Redis (data in .data/) and runs the platform
    (migrations, demo data, web, worker, beat) with them;
  - one command on the embedded servers:
    `.venv/bin/python -m config.embedded .venv/bin/python manage.py <command>`;
  - `make services`: starts them and prints `export DATABASE_URL=... REDIS_URL=...` lines for
    your shell;
  - or set DATABASE_URL and REDIS_URL (environment or .env) to your own PostgreSQL and Redis,
    e.g. postgres://user:password@localhost:5432/csu and redis://localhost:6379/0."""
DATABASE_URL = env("DATABASE_URL", default="")
REDIS_URL = env("REDIS_URL", default="")
# The cache and the broker may live on separate Redis servers (an operator splits them so a
# broker backlog cannot evict cache entries, or the reverse); each defaults to REDIS_URL, which
# may then be left unset.
CACHE_URL = env("CACHE_URL", default="") or REDIS_URL
_BROKER_URL = env("CELERY_BROKER_URL", default="") or REDIS_URL
if not DATABASE_URL or not CACHE_URL or not _BROKER_URL:
    from django.core.exceptions import ImproperlyConfigured

    urls = (("DATABASE_URL", DATABASE_URL), ("REDIS_URL", CACHE_URL and _BROKER_URL))
    missing = [name for name, url in urls if not url]
    raise ImproperlyConfigured(
        SERVICES_MISSING.format(names=" and ".join(missing) + (" are" if len(missing) > 1 else " is"))
    )

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"].update(
    ENGINE="django_tenants.postgresql_backend",
    ATOMIC_REQUESTS=True,
    CONN_MAX_AGE=env.int("DB_CONN_MAX_AGE", default=60),
    # A persistent connection is checked before a request reuses it, so one that died in a
    # PostgreSQL outage is replaced on the next request after it (no restart).
    CONN_HEALTH_CHECKS=True,
)
# A PostgreSQL that stopped answering (not refusing) costs a request this much, not forever:
# a connection attempt gives up after DB_CONNECT_TIMEOUT; on an open connection, TCP keepalives
# and TCP_USER_TIMEOUT (unacknowledged data) drop a peer gone silent on the network within
# about DB_TCP_TIMEOUT seconds, and the request answers 503. (A server whose host still answers
# TCP but whose process hangs is bounded only by gunicorn's timeout.)
_DB_TCP_TIMEOUT = env.int("DB_TCP_TIMEOUT", default=10)
for _option, _value in {
    "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=5),
    "keepalives": 1,
    "keepalives_idle": max(1, _DB_TCP_TIMEOUT // 2),
    "keepalives_interval": max(1, _DB_TCP_TIMEOUT // 6),
    "keepalives_count": 3,
    "tcp_user_timeout": _DB_TCP_TIMEOUT * 1000,
}.items():
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(_option, _value)
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        # Django's RedisCache that degrades to a miss while Redis is down (core/cache.py).
        "BACKEND": "core.cache.ResilientRedisCache",
        # redis-py spells a Unix-socket Redis `unix://`, kombu `redis+socket://`: either works here.
        "LOCATION": (
            "unix://" + CACHE_URL.removeprefix("redis+socket://").replace("?virtual_host=", "?db=")
            if CACHE_URL.startswith("redis+socket://")
            else CACHE_URL
        ),
        "OPTIONS": {
            "socket_connect_timeout": env.float("CACHE_CONNECT_TIMEOUT", default=0.25),
            "socket_timeout": env.float("CACHE_TIMEOUT", default=0.5),
            "breaker_seconds": env.float("CACHE_BREAKER_SECONDS", default=5.0),
        },
        # Keys carry the current schema: clinic A can never read clinic B's cache entries.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="csu"),
        "TIMEOUT": 300,
    }
}

# --- Tenancy (django-tenants) ----------------------------------------------------------------
SHARED_APPS = [
    "tenants",  # before django_tenants: our migrate_schemas also keeps the template in step
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",  # auth and sessions at the same level (django-tenants docs/security.rst)
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    # Global lockout table (public): one person, one counter on every clinic host.
    "axes",
    "core",
    "accounts",
    "billing",
    "onboarding",  # no models: signup and the platform host's API, above tenants/accounts/billing
]
TENANT_APPS = [
    "core",  # also tenant: each clinic schema has its own transactional outbox
    "patients",
    "clinicians",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Clinic"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
TENANT_LIMIT_SET_CALLS = True
# The migrated template whose DDL snapshot new clinic schemas are created from (DESIGN.md §3).
TENANT_TEMPLATE_SCHEMA = "tenant_template"
TENANT_MULTIPROCESSING_MAX_PROCESSES = env.int("TENANT_MIGRATION_PROCESSES", default=2)
# pg_dump used to capture the template snapshot; empty = the first that can talk to the server.
PG_DUMP_PATH = env("PG_DUMP_PATH", default="")
# The embedded PostgreSQL's client programs (pg_dump), located without importing pgserver.
from config.embedded import pg_bin_dir  # noqa: E402

_BUNDLED_BIN = pg_bin_dir()
PG_BUNDLED_BIN_DIR = str(_BUNDLED_BIN) if _BUNDLED_BIN else ""

MIDDLEWARE = [
    # First: drops forwarding headers no trusted proxy sent, binds the request id and client IP.
    "core.request_context.RequestContextMiddleware",
    "core.middleware.PermissionsPolicyMiddleware",
    "core.middleware.HealthzMiddleware",
    "tenants.middleware.TlsAskMiddleware",
    "tenants.middleware.ClinicHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.NoStoreMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Identity ----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out credentials
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout (django-axes): username + client address (an IPv6 client's /64), so a shared clinic
# Wi-Fi is not locked out as a whole, and per account over every address at a higher limit
# (accounts/lockout.py explains both counters).
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "accounts.lockout.AccountLockoutHandler"
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=20)
# The account lock spares addresses the owner signed in from within this many days.
LOGIN_KNOWN_ADDRESS_DAYS = 30
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "email"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "email", "password", "otp"]
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "core.net.client_key"
# Browser sessions: 30 minutes idle (sliding), 12 hours at most after login.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_SECONDS = env.int("SESSION_ABSOLUTE_SECONDS", default=12 * 60 * 60)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_SECONDS", default=60 * 60)
INVITATION_VALID_DAYS = 7
ENROLLMENT_VALID_DAYS = 14
# Wrong enrollment codes a clinic accepts per window, from all addresses together; reaching it
# pauses enrollment for the window and emails the clinic's admins.
ENROLLMENT_FAILURE_BUDGET = env.int("ENROLLMENT_FAILURE_BUDGET", default=100)
ENROLLMENT_FAILURE_WINDOW_SECONDS = 3600
# Signup: the emailed confirmation link's lifetime; a clinic left pending that long is purged.
EMAIL_VERIFICATION_SECONDS = env.int("EMAIL_VERIFICATION_SECONDS", default=24 * 60 * 60)
# Pending signups the whole platform accepts per hour (besides the per-IP throttle).
SIGNUP_HOURLY_BUDGET = env.int("SIGNUP_HOURLY_BUDGET", default=100)
# Reset emails one account receives per hour, however many times a reset is asked for.
PASSWORD_RESETS_PER_HOUR = env.int("PASSWORD_RESETS_PER_HOUR", default=3)
# Links in emails and QR codes (tenants.selectors.public_url): PUBLIC_URL_SCHEME://<host>[:PUBLIC_PORT]
# on the clinic's own host (or PLATFORM_DOMAIN). PUBLIC_PORT is the port people reach the site
# on (behind a proxy on 443: leave it unset); `make run` sets it to the port it serves.
PUBLIC_URL_SCHEME = env("PUBLIC_URL_SCHEME", default="http")
PUBLIC_PORT = env.int("PUBLIC_PORT", default=None)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# Keys of the keyed hashes (enrollment codes, invitations, MFA recovery codes), newest first,
# separate from SECRET_KEY; unset, SECRET_KEY (and its fallbacks) as before (core.crypto).
HASH_KEYS = env.list("HASH_KEYS", default=[])

# --- Email -------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default=f"CSU Tracker <no-reply@{PLATFORM_DOMAIN}>")

# --- Internationalisation ----------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Served by WhiteNoise from the app finders too, so the API docs' local Swagger UI assets work
# even before `collectstatic` (production images run it at build time).
WHITENOISE_USE_FINDERS = True
# The patient PWA's build output (pwa/ → `make pwa`), served under /app/ by patients/app.py.
PWA_DIST_DIR = Path(env("PWA_DIST_DIR", default=str(BASE_DIR / "pwa" / "dist")))
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API ---------------------------------------------------------------------------------------
# Client addresses (core.net): X-Forwarded-For counts only when the peer is one of
# TRUSTED_PROXY_IPS (addresses or CIDR networks; gunicorn's forwarded_allow_ips reads the same
# variable), and then the entry TRUSTED_PROXY_COUNT from the right. Empty / 0: REMOTE_ADDR.
TRUSTED_PROXY_IPS = env.list("TRUSTED_PROXY_IPS", default=[])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ClinicJWTAuthentication",
        "accounts.authentication.ClinicSessionAuthentication",
    ],
    # Keyed on core.net.client_key, as the lockout: trusted proxy only, IPv6 per /64.
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttling.AnonRateThrottle",
        "core.api.throttling.UserRateThrottle",
    ],
    # For any rest_framework.throttling class still in use: X-Forwarded-For from an untrusted
    # peer never reaches it (core.request_context drops it), from the proxy it agrees with core.net.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="120/min"),
        "user": env("THROTTLE_USER", default="600/min"),
        "auth": env("THROTTLE_AUTH", default="30/min"),
        # Signing out and asking for a new confirmation link have budgets of their own: a few
        # failed sign-ins or resend clicks on a clinic's shared network must never keep a
        # patient from signing out (the refresh token stayed valid; found by review).
        "logout": env("THROTTLE_LOGOUT", default="120/min"),
        "verify_resend": env("THROTTLE_VERIFY_RESEND", default="10/min"),
        "enroll": env("THROTTLE_ENROLL", default="10/min"),
        "signup": env("THROTTLE_SIGNUP", default="10/hour"),
        "sync": env("THROTTLE_SYNC", default="120/min"),  # per user (per IP when anonymous)
        "export": env("THROTTLE_EXPORT", default="10/hour"),
        "reports": env("THROTTLE_REPORTS", default="60/hour"),  # per user: portal report requests
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CSU Tracker API",
    "DESCRIPTION": "Multi-tenant clinic platform for chronic spontaneous urticaria care.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Tags, summaries, descriptions, examples and error answers: the registry in config.openapi.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.postprocess_schema",
    ],
    "TAGS": [
        {
            "name": "Patient app",
            "description": "The patient's own diary, doses, questionnaires, "
            "reminders, scores and data (clinic host, signed in as a patient).",
        },
        {
            "name": "Sync",
            "description": "Offline-first replication for the patient app: push the "
            "device's changes, pull the server's since a cursor.",
        },
        {
            "name": "Portal",
            "description": "Clinicians: patients in their care teams, "
            "prescriptions, notes, alerts, reports and enrollment codes.",
        },
        {
            "name": "Clinic admin",
            "description": "Clinic admins: members, invitations, care teams, "
            "clinic settings, privacy notices and the access log; signing up a new clinic.",
        },
        {
            "name": "Auth",
            "description": "Signing in and out, tokens, passwords, two-factor "
            "authentication, invitations and enrollment.",
        },
        {
            "name": "Platform operator",
            "description": "The platform's operators (platform host "
            "only): clinics' lifecycle, subscriptions and invoices.",
        },
        {
            "name": "Billing",
            "description": "The clinic's plan, usage and invoices (clinic admins, "
            "clinic host) and the payment provider's webhooks (platform host).",
        },
    ],
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.models.Role.choices",
        "StaffRoleEnum": "accounts.models.STAFF_ROLE_CHOICES",
        "DiaryModeEnum": "tenants.models.DiaryMode.choices",
        "CareRoleEnum": "clinicians.models.CareRole.choices",
        "PatientStatusEnum": "patients.models.PatientStatus.choices",
        "ClinicStatusEnum": "tenants.models.ClinicStatus.choices",
        "DoseStatusEnum": "patients.models.DoseStatus.choices",
        "ReminderKindEnum": "patients.models.ReminderKind.choices",
        "ReportKindEnum": "clinicians.models.ReportKind.choices",
        "ConsentStatusEnum": "clinicians.api.views.patients.CONSENT_STATUSES",
    },
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=10)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # A key of its own (derived, so one secret to manage): not Django's SECRET_KEY itself.
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default="") or f"jwt:{SECRET_KEY}",
    "AUDIENCE": "csu-tracker-api",
    "ISSUER": "csu-tracker",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
# The refresh token a rotation replaced is accepted once more for this long, from the device
# whose answer was lost (accounts.services.token_refresh); later it revokes its family. Only
# while its successor is unused (a used successor makes the old token a copy at once). Long
# enough for a train's tunnel: the PWA refreshes on every start, and a lost answer followed by
# minutes without signal signed the patient out at 30 s (found by review).
REFRESH_REUSE_GRACE_SECONDS = env.int("REFRESH_REUSE_GRACE_SECONDS", default=900)

# --- Celery ------------------------------------------------------------------------------------
# kombu spells a Unix-socket Redis (the embedded one) `redis+socket://`.
CELERY_BROKER_URL = (
    "redis+socket://" + _BROKER_URL.removeprefix("unix://").replace("?db=", "?virtual_host=")
    if _BROKER_URL.startswith("unix://")
    else _BROKER_URL
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "platform"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
# kombu's backstop for unacknowledged messages: one older than this (counted from when a worker
# received it, not from its ETA) is put back in its queue even if a live worker still holds it.
# It must exceed the longest countdown (reminder retries: 10 minutes) plus the longest task, or
# that task runs twice. A dead worker's messages come back much sooner, through
# core.tasks.UnackedRecovery (within about a minute), so this stays long.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # A broker that stops answering without closing the connection (failover, a blackholed
    # network) must not hold a request's after-commit publish forever: the publish fails after
    # these and the outbox row waits for the relay. (kombu's default is to wait forever.)
    "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=2.0),
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
}
# Two priority lists per queue instead of kombu's four (0, 3, 6, 9): tasks use only 0 and 9
# (config.celery.TASK_PRIORITIES), and each step is one more key in every BRPOP per queue.
CELERY_BROKER_TRANSPORT_OPTIONS["priority_steps"] = [0, 9]
# Workers consume the clinic queues in shards (config.celery): a worker of group SHARD (0-based)
# of SHARDS takes the clinics whose crc32(schema name) % SHARDS == SHARD, plus `platform`. One
# BRPOP carries 2 keys per consumed queue: keep each group at most ~150 clinics (300 keys), i.e.
# SHARDS = ceil(clinics / 150). Every group needs at least one worker running.
CLINIC_QUEUE_SHARDS = env.int("CLINIC_QUEUE_SHARDS", default=1)
CLINIC_QUEUE_SHARD = env.int("CLINIC_QUEUE_SHARD", default=0)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-reminders": {
        "task": "patients.dispatch_due_reminders",
        "schedule": crontab(),  # every minute
        "options": {"queue": "platform", "expires": 55},
    },
    "billing-hourly": {
        # Trials ending, downgrades from the 1st, past-due suspension, then last month's usage
        # and invoice for each clinic whose local month has turned (idempotent).
        "task": "billing.dispatch_billing",
        "schedule": crontab(minute=15),
        "options": {"queue": "platform", "expires": 3000},
    },
    "dispatch-weekly-reports": {
        # Hourly: a clinic's reports start at Monday 06:00 in its own timezone.
        "task": "clinicians.dispatch_weekly_reports",
        "schedule": crontab(minute=5),
        "options": {"queue": "platform", "expires": 3000},
    },
    "reconcile-reminder-due": {
        # The safety net under each clinic's next_due_at (patients.due): recomputed hourly.
        "task": "patients.reconcile_reminder_due",
        "schedule": crontab(minute=40),
        "options": {"queue": "platform", "expires": 3000},
    },
    "dispatch-summaries-roll": {
        # A patient's summary row is valid for their local date (patients.summary).
        "task": "patients.dispatch_summaries_roll",
        "schedule": crontab(minute="*/15"),
        "options": {"queue": "platform", "expires": 600},
    },
    "dispatch-daily-alerts": {
        "task": "clinicians.dispatch_daily_alerts",
        "schedule": crontab(hour=5, minute=0),
        "options": {"queue": "platform"},
    },
    "dispatch-tombstone-purge": {
        "task": "patients.dispatch_tombstone_purge",
        "schedule": crontab(hour=4, minute=15),
        "options": {"queue": "platform"},
    },
    "purge-pending-signups": {
        "task": "tenants.pending_signups_purge",
        "schedule": crontab(minute=45),
        "options": {"queue": "platform", "expires": 3000},
    },
    "purge-offboarded-clinics": {
        "task": "tenants.clinics_purge_offboarded",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "platform"},
    },
}

# --- Reminders and Web Push ---------------------------------------------------------------------
REMINDER_MAX_LATENESS_MINUTES = env.int("REMINDER_MAX_LATENESS_MINUTES", default=60)
REMINDERS_PER_PATIENT_MAX = 20
PUSH_SUBSCRIPTIONS_PER_PATIENT_MAX = 10
# VAPID key pair (`manage.py generate_vapid_keys`); without a private key reminders go by email.
WEB_PUSH_VAPID_PRIVATE_KEY = env("WEB_PUSH_VAPID_PRIVATE_KEY", default="")
WEB_PUSH_VAPID_PUBLIC_KEY = env("WEB_PUSH_VAPID_PUBLIC_KEY", default="")
WEB_PUSH_VAPID_SUBJECT = env("WEB_PUSH_VAPID_SUBJECT", default=f"mailto:ops@{PLATFORM_DOMAIN}")
# The server POSTs to subscription endpoints: only these push services (and subdomains).
WEB_PUSH_ALLOWED_HOSTS = env.list(
    "WEB_PUSH_ALLOWED_HOSTS",
    default=[
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "notify.windows.com",
        "push.apple.com",
    ],
)
WEB_PUSH_ALLOW_HTTP = False
WEB_PUSH_TIMEOUT_SECONDS = 5

# --- Billing -----------------------------------------------------------------------------------
# VAT by clinic country, in basis points (1900 = 19 %); others get the default.
BILLING_TAX_RATES_BP = {
    "DE": 1900,
    "AT": 2000,
    "FR": 2000,
    "NL": 2100,
    "IT": 2200,
    "ES": 2100,
    "GB": 2000,
    "CH": 810,
}
BILLING_DEFAULT_TAX_BP = env.int("BILLING_DEFAULT_TAX_BP", default=0)
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=14)
BILLING_INVOICE_DUE_DAYS = 14
BILLING_WEBHOOK_SECRET = env("BILLING_WEBHOOK_SECRET", default="")
BILLING_WEBHOOK_TOLERANCE_SECONDS = 300

# --- Clinic lifecycle --------------------------------------------------------------------------
OFFBOARDING_GRACE_DAYS = env.int("OFFBOARDING_GRACE_DAYS", default=30)
# Offboarding archives (DESIGN.md §9) live in the "archives" storage, which every process (web,
# worker, beat) must share and which must outlive deploys: a directory on a volume mounted into
# each container by default, an S3-compatible bucket when ARCHIVE_S3_BUCKET is set (django-storages,
# installed from requirements/prod.txt). Archives are encrypted before they reach either
# (tenants.lifecycle); on a directory, files are created 0600 and directories 0700.
ARCHIVE_STORAGE_DIR = Path(env("ARCHIVE_STORAGE_DIR", default=str(DATA_DIR / "archives")))
ARCHIVE_S3_BUCKET = env("ARCHIVE_S3_BUCKET", default="")
if ARCHIVE_S3_BUCKET:
    STORAGES["archives"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARCHIVE_S3_BUCKET,
            # Empty: boto3's own chain (AWS_* variables, instance or pod role).
            "endpoint_url": env("ARCHIVE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env("ARCHIVE_S3_REGION", default="") or None,
            "access_key": env("ARCHIVE_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env("ARCHIVE_S3_SECRET_ACCESS_KEY", default="") or None,
            "file_overwrite": False,
        },
    }
else:
    STORAGES["archives"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": ARCHIVE_STORAGE_DIR,
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    }
# Sync tombstones older than this are purged; older cursors must resync in full.
SYNC_TOMBSTONE_RETENTION_DAYS = env.int("SYNC_TOMBSTONE_RETENTION_DAYS", default=90)

# --- Security ----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Permissions-Policy on every response: browser features no page of ours uses, denied to it and
# to anything it frames (feature -> allowed origins; [] = none, ["self"] = our own origin).
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
# CSP (django-csp) for every response: the API returns JSON, the docs page loads only local
# assets (the split Swagger view keeps its script out of the HTML, so no inline script).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],  # Swagger UI's small inline <style> block
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "object-src": [NONE],
    }
}
# CORS: only the PWA's origin(s) may call the API from a browser (JWT in headers, no cookies).
CORS_ALLOWED_ORIGINS = env.list("PWA_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/v1/.*$"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-schema-version", "x-request-id"]

# --- Logging -----------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "tenant_context": {"()": "django_tenants.log.TenantContextFilter"},
        # The request id (X-Request-ID) of the request being served; empty in tasks and commands.
        "request_id": {"()": "core.request_context.RequestIdLogFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s [%(schema_name)s] [%(request_id)s] %(name)s: %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["tenant_context", "request_id"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The embedded PostgreSQL logs every pg_ctl call at INFO, also from atexit handlers.
    "loggers": {"pgserver": {"level": "WARNING"}},
}
