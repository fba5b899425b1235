"""A Redis outage under the cache (issue 20, fault 1): the clinic API keeps serving patients.

The cache goes through a fault proxy in front of the real Redis (tests/faults.py); cutting it
is the outage. The broker is not involved in-process (tasks run eagerly)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCacheClient
from django.test import override_settings
from django_tenants.utils import schema_context
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import Membership, User
from accounts.selectors import _cache_key
from accounts.services import membership_set_active
from accounts.services.emails import mail_per_recipient_allowed
from core.cache import ResilientRedisCache, breakers_reset, cache_add_or_none
from patients.models import Patient
from tenants.models import Clinic
from tests.accounts.test_session import csrf_client, login
from tests.faults import FaultProxy, fault_proxy

pytestmark = pytest.mark.django_db


@contextmanager
def cache_through_proxy(*, breaker_seconds: float) -> Iterator[FaultProxy]:
    """The default cache goes through a fresh fault proxy (override_settings resets the cache
    handlers, and the proxy's port gives the backend a breaker of its own)."""
    with fault_proxy(settings.CACHES["default"]["LOCATION"]) as proxy:
        cut_cache = {
            "default": {
                **settings.CACHES["default"],
                "LOCATION": proxy.url_for(settings.CACHES["default"]["LOCATION"]),
                "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "breaker_seconds": breaker_seconds},
            }
        }
        try:
            with override_settings(CACHES=cut_cache):
                yield proxy
        finally:
            breakers_reset()


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    with cache_through_proxy(breaker_seconds=0) as proxy:  # every call after a failure tries again
        yield proxy


@pytest.fixture
def tight_user_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF reads the rates into a class attribute at import time.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "2/min"}
    )


def test_a_patient_reads_and_records_her_diary_while_redis_is_down(
    redis_proxy: FaultProxy, alice_client: APIClient, alice_patient: Patient, tight_user_throttle: None
) -> None:
    assert alice_client.get("/api/v1/me/profile/").status_code == 200  # host and membership cached
    redis_proxy.cut()
    day = alice_patient.local_today() - timedelta(days=1)
    answers = [
        alice_client.get("/api/v1/me/summary/"),
        alice_client.put(f"/api/v1/me/diary/{day}/", {"wheals": 2, "itch": 1}, format="json"),
        alice_client.get("/api/v1/me/diary/"),
        alice_client.get("/api/v1/me/profile/"),
    ]
    # Host routing, JWT authentication, the membership check and the throttles all ran on a dead
    # Redis; the user throttle (2/min) failed open for 4 requests.
    assert [a.status_code for a in answers] == [200, 201, 200, 200], [a.content[:300] for a in answers]
    assert [(e["day"], e["wheals"], e["itch"]) for e in answers[2].json()] == [(str(day), 2, 1)]


def test_throttles_count_again_once_redis_is_back(
    redis_proxy: FaultProxy, alice_client: APIClient, tight_user_throttle: None
) -> None:
    redis_proxy.cut()
    assert [alice_client.get("/api/v1/me/profile/").status_code for _ in range(3)] == [200, 200, 200]
    redis_proxy.restore()
    cache.clear()
    assert [alice_client.get("/api/v1/me/profile/").status_code for _ in range(3)] == [200, 200, 429]


def test_the_open_breaker_spares_the_next_request_the_wait(
    alice_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[bool] = []
    get_client = RedisCacheClient.get_client

    def counting_get_client(self: RedisCacheClient, key: object = None, *, write: bool = False) -> object:
        attempts.append(write)
        return get_client(self, key, write=write)  # type: ignore[arg-type]

    monkeypatch.setattr(RedisCacheClient, "get_client", counting_get_client)
    with cache_through_proxy(breaker_seconds=60) as proxy:
        proxy.hang()  # a blackholed Redis: the first call waits for its read timeout
        assert alice_client.get("/api/v1/me/profile/").status_code == 200
        assert len(attempts) == 1  # the first cache call timed out and opened the breaker
        backend = caches["default"]
        assert isinstance(backend, ResilientRedisCache) and backend.breaker.is_open
        assert alice_client.get("/api/v1/me/profile/").status_code == 200
        assert alice_client.get("/api/v1/me/summary/").status_code == 200
        assert len(attempts) == 1  # nobody talked to Redis while the breaker was open


def test_a_half_open_breaker_closes_when_redis_answers_again(alice_client: APIClient) -> None:
    with cache_through_proxy(breaker_seconds=0) as proxy:
        proxy.cut()
        assert cache.get("anything", "fallback") == "fallback"
        backend = caches["default"]
        assert isinstance(backend, ResilientRedisCache) and backend.breaker.is_open
        breaker = backend.breaker
        proxy.restore()
        assert cache.set("anything", "value") is None
        assert (cache.get("anything"), breaker.is_open) == ("value", False)


def test_a_membership_revoked_during_the_outage_stays_revoked_after_it(
    redis_proxy: FaultProxy, alice: User, alice_client: APIClient, dr_bob: User, clinic_a: Clinic
) -> None:
    # A portal session's membership is cached (accounts.selectors.membership_active_for); a
    # token's is read with its user in one query (user_with_membership) and never cached.
    session, csrf = csrf_client("alpha.localhost")
    assert login(session, csrf, dr_bob.email).status_code == 204
    assert session.get("/api/v1/auth/me/").status_code == 200  # his membership is cached
    stale_key = _cache_key(dr_bob.pk, clinic_a.pk, User.objects.get(pk=dr_bob.pk).membership_generation)
    with schema_context(clinic_a.schema_name):
        assert cache.get(stale_key) is not None
    redis_proxy.cut()
    for user in (alice, dr_bob):
        membership_set_active(membership=Membership.objects.get(user=user, clinic=clinic_a), is_active=False)
    refused = alice_client.get("/api/v1/me/profile/")  # read from the database
    assert (refused.status_code, refused.json()["code"]) == (401, "membership_inactive")
    redis_proxy.restore()
    # Redis never heard of the revocation: it still holds his active membership...
    with schema_context(clinic_a.schema_name):
        assert cache.get(stale_key) is not None
    # ...which no request asks for again, in this process or any other.
    refused = session.get("/api/v1/auth/me/")
    assert (refused.status_code, refused.json()["code"]) == (401, "membership_inactive")
    refused = alice_client.get("/api/v1/me/profile/")
    assert (refused.status_code, refused.json()["code"]) == (401, "membership_inactive")


def test_a_membership_change_is_seen_at_once_with_redis_up(
    alice: User, alice_client: APIClient, clinic_a: Clinic
) -> None:
    assert alice_client.get("/api/v1/me/profile/").status_code == 200
    assert alice_client.get("/api/v1/me/profile/").status_code == 200  # the membership read with the user, every time
    membership_set_active(membership=Membership.objects.get(user=alice, clinic=clinic_a), is_active=False)
    assert alice_client.get("/api/v1/me/profile/").status_code == 401


def test_cache_add_or_none_tells_an_outage_from_an_existing_key(redis_proxy: FaultProxy) -> None:
    cache.delete("alert-flag")
    assert cache_add_or_none("alert-flag", 1, 60) is True
    assert cache_add_or_none("alert-flag", 1, 60) is False
    redis_proxy.cut()
    assert cache_add_or_none("alert-flag", 1, 60) is None
    assert cache.add("alert-flag", 1, 60) is False  # plain `add` cannot tell


def test_the_per_recipient_mail_cap_makes_the_email_wait_while_redis_is_down(
    redis_proxy: FaultProxy, alice: User
) -> None:
    """Not fail-open (review: with the throttles open too, 20 requests mailed one victim 20
    times): the sending task retries the connection error until the cache counts again."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from core.tasks import CONNECTION_ERRORS

    redis_proxy.cut()
    for _ in range(3):
        with pytest.raises(RedisConnectionError) as raised:
            mail_per_recipient_allowed(purpose="reset", user_id=alice.pk, per_hour=1)
        assert isinstance(raised.value, CONNECTION_ERRORS)  # retried by every task
    redis_proxy.restore()
    breakers_reset()
    assert [mail_per_recipient_allowed(purpose="reset", user_id=alice.pk, per_hour=1) for _ in range(2)] == [
        True,
        False,
    ]


def test_a_suspension_made_while_this_processs_breaker_is_open_holds_for_writes_at_once(
    dr_bob: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    """Found by review: one Redis hiccup in the suspending process skips the host cache's
    clear, and every other process kept serving the clinic as active. Writes re-read the
    status from the database."""
    from tenants import lifecycle
    from tenants.selectors import clinic_host_cache_clear
    from tests.conftest import authed_client

    doctor = authed_client(dr_bob, clinic_a)
    clinic_host_cache_clear(clinic=clinic_a)
    assert doctor.get("/api/v1/auth/me/").status_code == 200  # the host's entry: active
    try:
        caches["default"].breaker.failed(TimeoutError())  # this process skips the cache
        with django_capture_on_commit_callbacks(execute=True):
            assert lifecycle.clinic_suspend(clinic=clinic_a).status == "suspended"
    finally:
        breakers_reset()  # Redis is fine: the stale "active" entry is served again
    try:
        blocked = doctor.post("/api/v1/portal/enrollments/", {}, format="json")
        assert (blocked.status_code, blocked.json()["code"]) == (403, "clinic_suspended")
    finally:
        clinic_host_cache_clear(clinic=clinic_a)
