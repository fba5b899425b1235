"""Clinic creation: validated slug → schema name → schema from the template snapshot."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import schema_exists

from core.errors import ApplicationError, ErrorCode
from core.text import single_line_validate
from tenants.hooks import clinic_schema_created
from tenants.models import Clinic, ClinicStatus, Domain, timezone_validate
from tenants.queues import clinic_queue_subscribe, clinic_queue_unsubscribe
from tenants.selectors import clinic_host_cache_clear
from tenants.snapshot import (
    SCHEMA_LOCK_KEY,
    SnapshotUnavailable,
    schema_migrate,
    snapshot_current,
    snapshot_refresh,
    snapshot_replay,
)

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
RESERVED_SLUGS = frozenset(
    {
        "www",
        "api",
        "admin",
        "static",
        "media",
        "public",
        "platform",
        "app",
        "apps",
        "mail",
        "email",
        "smtp",
        "ftp",
        "status",
        "help",
        "support",
        "docs",
        "assets",
        "cdn",
        "auth",
        "login",
        "signup",
        "billing",
        "dashboard",
        "portal",
        "template",
        "tenant",
        "default",
        "root",
        "system",
        "test",
        "localhost",
        "health",
        "metrics",
        "internal",
    }
)
SCHEMA_PREFIX = "clinic_"


def clinic_slug_validate(slug: str) -> str:
    """Return the slug if it can name a clinic; raise ApplicationError(field="slug") otherwise."""
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise ApplicationError(
            code=ErrorCode.INVALID_SLUG,
            field="slug",
            detail="Use 3–40 characters: lowercase letters, digits and hyphens, starting with a letter.",
        )
    if slug in RESERVED_SLUGS or slug.endswith("-") or "--" in slug:
        raise ApplicationError(code=ErrorCode.RESERVED_SLUG, field="slug", detail="This address is not available.")
    return slug


def schema_name_for_slug(slug: str) -> str:
    """Schema names are derived from a validated slug, never taken from input."""
    return SCHEMA_PREFIX + clinic_slug_validate(slug).replace("-", "_")


def clinic_create(
    *, slug: str, name: str, timezone: str = "UTC", status: str = ClinicStatus.ACTIVE
) -> Clinic:
    """Create a clinic, its domain `<slug>.<PLATFORM_DOMAIN>` and its schema, atomically.

    The schema comes from the template's DDL snapshot, replayed in the same transaction as the
    clinic row, under an advisory lock: a failure leaves no row, no domain and no schema, and
    two concurrent calls for one slug end with exactly one clinic (the other gets `slug_taken`).
    Without a matching snapshot it captures one first when it can (outside a transaction),
    otherwise it migrates the new schema inside the same transaction.
    """
    schema_name = schema_name_for_slug(slug)
    name = single_line_validate((name or "").strip(), field="name")
    if not name or len(name) > 200:
        raise ApplicationError(code=ErrorCode.INVALID_NAME, field="name", detail="Give the clinic a name (1–200).")
    timezone_validate(timezone)

    snapshot = snapshot_current()
    if snapshot is None and not connection.in_atomic_block:
        try:
            snapshot = snapshot_refresh()
        except SnapshotUnavailable:
            logger.warning("No schema snapshot available; new clinic schema will be migrated", exc_info=True)

    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
            if Clinic.objects.filter(slug=slug).exists() or schema_exists(schema_name):
                raise ApplicationError(
                    code=ErrorCode.SLUG_TAKEN, field="slug", status_code=409, detail="This address is already taken."
                )
            clinic = Clinic(
                slug=slug,
                name=name,
                timezone=timezone,
                schema_name=schema_name,
                status=ClinicStatus.PROVISIONING,
            )
            clinic.full_clean(validate_unique=False)
            clinic.save()
            Domain.objects.create(domain=f"{slug}.{settings.PLATFORM_DOMAIN}", tenant=clinic, is_primary=True)
            if snapshot is not None:
                snapshot_replay(snapshot=snapshot, schema_name=schema_name)
            else:
                schema_migrate(schema_name)
            clinic_schema_created(schema_name)  # e.g. the clinic's own sync epoch (patients)
            clinic.status = status
            clinic.save(update_fields=["status"])
    except IntegrityError as exc:
        # The unique constraints back the advisory lock (e.g. a writer that skipped it).
        raise ApplicationError(
            code=ErrorCode.SLUG_TAKEN, field="slug", status_code=409, detail="This address is already taken."
        ) from exc
    transaction.on_commit(lambda: clinic_host_cache_clear(clinic=clinic))
    transaction.on_commit(lambda: clinic_queue_subscribe(schema_name))
    logger.info("Created clinic schema %s (%s)", schema_name, "snapshot" if snapshot else "migrations")
    return clinic


def clinic_delete(*, clinic: Clinic) -> None:
    """Drop a clinic's schema and rows. Used by offboarding after its grace period and by tests.

    The host cache is cleared before and after commit, for the hosts the clinic had."""
    hosts = list(clinic.domains.values_list("domain", flat=True))
    clinic_host_cache_clear(clinic=clinic, hosts=hosts)
    schema_name = clinic.schema_name
    transaction.on_commit(lambda: clinic_queue_unsubscribe(schema_name))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
        clinic.delete(force_drop=True)
        transaction.on_commit(lambda: clinic_host_cache_clear(clinic=clinic, hosts=hosts))
