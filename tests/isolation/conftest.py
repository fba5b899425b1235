"""Personas and the world of the isolation matrix (every test in one rolled-back transaction)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from accounts.models import Role, User
from tenants.models import Clinic
from tests.conftest import make_member
from tests.isolation.world import World


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters, lockouts and cached memberships never carry over between cases."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def erin(clinic_a: Clinic) -> User:
    """A clinician of alpha who is NOT on Alice's care team."""
    return make_member("erin@example.com", clinic_a, Role.CLINICIAN, "Dr Erin")


@pytest.fixture
def beta_admin(clinic_b: Clinic) -> User:
    """The clinic admin of beta, the other clinic."""
    return make_member("boris@beta.example", clinic_b, Role.CLINIC_ADMIN, "Boris Beta-Admin")


@pytest.fixture
def world(request: pytest.FixtureRequest, db: None) -> World:  # noqa: ARG001
    return World(request)
