"""Reads for identity: the active membership behind every authenticated clinic request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django_tenants.utils import schema_context

from accounts.models import Membership

MEMBERSHIP_CACHE_SECONDS = 300
_MISSING = "none"


@dataclass(frozen=True)
class ActiveMembership:
    id: uuid.UUID
    user_id: uuid.UUID
    clinic_id: uuid.UUID
    role: str


def _cache_key(user_id: uuid.UUID | str) -> str:
    # The cache key function prefixes the current schema: one entry per clinic and user.
    return f"membership:{user_id}"


def membership_active_for(*, user_id: uuid.UUID | str, clinic_id: uuid.UUID | str) -> ActiveMembership | None:
    """The user's active membership in the clinic whose schema is active, cached.

    Every service that changes a membership or a user's `is_active` clears this entry
    (`membership_cache_clear`), so a deactivation takes effect on the very next request.
    """
    key = _cache_key(user_id)
    cached = cache.get(key)
    if cached == _MISSING:
        return None
    if isinstance(cached, ActiveMembership) and str(cached.clinic_id) == str(clinic_id):
        return cached
    row = (
        Membership.objects.filter(user_id=user_id, clinic_id=clinic_id, is_active=True, user__is_active=True)
        .values_list("id", "user_id", "clinic_id", "role")
        .first()
    )
    membership = ActiveMembership(*row) if row else None
    cache.set(key, membership or _MISSING, MEMBERSHIP_CACHE_SECONDS)
    return membership


def membership_cache_clear(*, user_id: uuid.UUID | str, schema_names: list[str]) -> None:
    for schema_name in schema_names:
        with schema_context(schema_name):
            cache.delete(_cache_key(user_id))
