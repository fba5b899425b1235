from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.cache import cache

from core.errors import ApplicationError, ErrorCode
from tenants.models import ROUTABLE_STATUSES, Clinic, Domain

# Short: a status change (suspension, offboarding) clears the host's entry at once, but one made
# while the cache is unreachable cannot, and the stale entry is then served until it expires
# after the cache returns. One lookup per host per minute is cheap.
HOST_CACHE_SECONDS = 60


def _host_cache_key(host: str) -> str:
    return f"clinic-host:{host}"


def clinic_for_host(host: str) -> Clinic | None:
    """The routable clinic for a host, cached; None for unknown or non-routable hosts.

    Must be called with the connection on the public schema (the cache key carries the schema).
    A cache outage falls through to the database (core.cache: a miss), so clinic hosts keep
    routing while Redis is down; only a database outage stops them (503, core.errors).
    """
    key = _host_cache_key(host)
    clinic: Clinic | None = cache.get(key)  # fails open: a miss reads the database
    if clinic is not None:
        return clinic
    domain = (
        Domain.objects.select_related("tenant")
        .filter(domain=host, tenant__status__in=ROUTABLE_STATUSES)
        .first()
    )
    if domain is None:
        return None
    tenant: Clinic = domain.tenant
    cache.set(key, tenant, HOST_CACHE_SECONDS)
    return tenant


def clinic_host_cache_clear(*, clinic: Clinic, hosts: list[str] | None = None) -> None:
    """Called by every service that changes a clinic's status or domains (pass the old hosts
    when they change or go away)."""
    from django_tenants.utils import schema_context

    if hosts is None:
        hosts = list(Domain.objects.filter(tenant=clinic).values_list("domain", flat=True))
    with schema_context("public"):
        # While Redis is unreachable from this process this does nothing; an entry that
        # outlives it expires within HOST_CACHE_SECONDS. Writes re-read the status from the
        # database (accounts.permissions: ClinicWritable, PatientWritesOpen), so a suspension
        # or an offboarding holds at once; the host cache only routes.
        cache.delete_many([_host_cache_key(host) for host in hosts])


def public_url(host: str, path: str) -> str:
    """The one builder of absolute links the platform sends (emails, QR codes, signup answers):
    `PUBLIC_URL_SCHEME://host[:PUBLIC_PORT]path`. A link without the port the site is served on
    is dead (`make run` serves :8000), so the port comes from the setting, never from a request
    (a task has none, and a Host header is the sender's to choose)."""
    scheme, port = settings.PUBLIC_URL_SCHEME, settings.PUBLIC_PORT
    default_port = {"http": 80, "https": 443}.get(scheme)
    suffix = f":{port}" if port and port != default_port else ""
    return f"{scheme}://{host}{suffix}{path}"


def clinic_url(clinic: Clinic, path: str) -> str:
    """An absolute link on the clinic's primary host, for emails and QR codes."""
    host = clinic.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    return public_url(str(host), path)


def platform_url(path: str) -> str:
    """An absolute link on the platform host (signup confirmation, password reset there)."""
    return public_url(settings.PLATFORM_DOMAIN, path)


def clinic_get(*, clinic_id: Any) -> Clinic:
    """The clinic as stored now (the request's copy may come from the host cache)."""
    clinic: Clinic = Clinic.objects.get(pk=clinic_id)
    return clinic


def clinic_status_get(*, clinic_id: Any) -> str | None:
    """The clinic's status as stored now (one query by primary key; the host cache may be
    stale by up to HOST_CACHE_SECONDS)."""
    status: str | None = Clinic.objects.filter(pk=clinic_id).values_list("status", flat=True).first()
    return status


def clinic_get_by_slug(*, slug: str) -> Clinic:
    """The clinic with this slug; 404 for an unknown or malformed slug."""
    clinic: Clinic | None = None
    if re.fullmatch(r"[a-z0-9-]{1,64}", slug):
        clinic = Clinic.objects.filter(slug=slug).first()
    if clinic is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such clinic.")
    return clinic
