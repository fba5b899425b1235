"""The request hot path (issue 19): what an authenticated request costs in queries and cache
round trips, that reads write nothing, and the throttles' sliding-window counter.

Counts, not timings: performance is measured in bench/http_load.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import Membership, User
from accounts.services import membership_set_active
from core.api import throttling
from patients.models import Patient, PatientSummary
from patients.summary import summaries_refresh
from tenants.models import Clinic
from tests.conftest import authed_client

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")
# The request's transaction (ATOMIC_REQUESTS): savepoints inside the test's own transaction.
_TRANSACTION = ("SET search_path", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement run on the connection (survives the test client's request_started
    reset of `connection.queries`)."""
    seen: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql.strip())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def _work(seen: list[str]) -> list[str]:
    return [sql for sql in seen if not sql.startswith(_TRANSACTION)]


@pytest.fixture
def fresh_summary(alice_patient: Patient, clinic_a: Clinic) -> Patient:
    with tenant_context(clinic_a):
        summaries_refresh([alice_patient.pk])
    return alice_patient


@pytest.mark.parametrize(
    ("path", "most"),
    [
        ("/api/v1/auth/me/", 1),  # the user with their membership
        ("/api/v1/me/profile/", 2),  # + the patient
        ("/api/v1/me/summary/", 3),  # + the summary row's page
        ("/api/v1/me/diary/", 3),  # + the entries
    ],
)
def test_a_patient_read_costs_one_query_to_authenticate_and_writes_nothing(
    alice_client: APIClient, fresh_summary: Patient, path: str, most: int
) -> None:
    assert alice_client.get(path).status_code == 200  # warm: host cache, throttle keys
    with statements() as seen:
        response = alice_client.get(path)
    assert response.status_code == 200
    work = _work(seen)
    assert len(work) <= most, work
    assert [sql for sql in work if sql.upper().startswith(WRITES)] == []
    assert "accounts_membership" in work[0] and "accounts_user" in work[0]  # one query for both


def test_the_summary_is_read_from_the_row_and_recomputed_when_the_row_is_of_another_day(
    alice_client: APIClient, fresh_summary: Patient, clinic_a: Clinic
) -> None:
    from_row = alice_client.get("/api/v1/me/summary/").json()
    with tenant_context(clinic_a):
        yesterday = fresh_summary.local_today() - timedelta(days=1)
        PatientSummary.objects.filter(patient=fresh_summary).update(valid_for=yesterday)
    with statements() as seen:
        live = alice_client.get("/api/v1/me/summary/").json()
    assert len(_work(seen)) > 3  # computed afresh from the records
    assert [sql for sql in _work(seen) if sql.upper().startswith(WRITES)] == []  # still no write
    assert live == from_row


def test_a_revoked_membership_is_refused_on_the_next_request(
    alice: User, alice_client: APIClient, clinic_a: Clinic
) -> None:
    assert alice_client.get("/api/v1/auth/me/").status_code == 200
    membership_set_active(membership=Membership.objects.get(user=alice, clinic=clinic_a), is_active=False)
    refused = alice_client.get("/api/v1/auth/me/")
    assert (refused.status_code, refused.json()["code"]) == (401, "membership_inactive")


def test_a_token_of_a_deleted_or_deactivated_user_is_refused(
    alice: User, alice_patient: Patient, clinic_a: Clinic
) -> None:
    client = authed_client(alice, clinic_a)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    refused = client.get("/api/v1/auth/me/")
    assert (refused.status_code, refused.json()["code"]) == (401, "user_inactive")


# --- the sliding-window counter ---------------------------------------------------------------


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    caches["default"].clear()
    clock = _Clock(1_000_040.0)  # 20 s into a minute (1_000_020 is a whole one)
    monkeypatch.setattr(throttling.UserRateThrottle, "timer", clock)
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "3/min"}
    )
    return clock


def test_the_user_throttle_allows_its_rate_then_refuses_with_retry_after(
    alice_client: APIClient, clock: _Clock
) -> None:
    answers = [alice_client.get("/api/v1/me/profile/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == "throttled"
    # The rest of this minute (40 s), then 20 s into the next, where this minute's 3 still count
    # for 2/3 of themselves: 3 × 2/3 + 1 = 3 fits.
    assert int(answers[3]["Retry-After"]) == 60


def test_a_client_that_waits_as_long_as_retry_after_says_is_let_through(
    alice_client: APIClient, clock: _Clock
) -> None:
    for _ in range(3):
        assert alice_client.get("/api/v1/me/profile/").status_code == 200
    for _ in range(5):  # refused requests are not counted: they do not push the wait further
        refused = alice_client.get("/api/v1/me/profile/")
        assert (refused.status_code, int(refused["Retry-After"])) == (429, 60)
    clock.now += int(refused["Retry-After"])
    assert alice_client.get("/api/v1/me/profile/").status_code == 200


def test_the_previous_window_counts_by_the_share_of_it_still_inside_the_sliding_window(
    alice_client: APIClient, clock: _Clock
) -> None:
    assert [alice_client.get("/api/v1/me/profile/").status_code for _ in range(3)] == [200, 200, 200]
    clock.now += 60  # the next minute, 20 s in: 3 × 40/60 = 2 of the last minute's still count
    assert [alice_client.get("/api/v1/me/profile/").status_code for _ in range(2)] == [200, 429]
    clock.now += 120  # two minutes later: the slate is clean
    assert [alice_client.get("/api/v1/me/profile/").status_code for _ in range(3)] == [200, 200, 200]


def test_throttles_are_per_user(
    alice_client: APIClient, clock: _Clock, dave: User, clinic_a: Clinic
) -> None:
    assert [alice_client.get("/api/v1/me/profile/").status_code for _ in range(4)][-1] == 429
    assert authed_client(dave, clinic_a).get("/api/v1/me/profile/").status_code == 200


def test_the_counter_costs_one_cache_round_trip(alice_client: APIClient, clock: _Clock) -> None:
    from django.core.cache.backends.redis import RedisCacheClient

    calls: list[bool] = []
    original = RedisCacheClient.get_client

    def counted(self: RedisCacheClient, key: Any = None, *, write: bool = False) -> Any:
        calls.append(write)
        return original(self, key, write=write)

    alice_client.get("/api/v1/me/profile/")  # warm the host cache
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RedisCacheClient, "get_client", counted)
        assert alice_client.get("/api/v1/me/profile/").status_code == 200
    assert len(calls) <= 2, calls  # the host lookup and the throttle's one pipeline


def test_an_operators_tokens_are_revoked_with_their_credentials(
    operator: tuple[User, Any], ops_client: APIClient
) -> None:
    from accounts.services import credentials_revoke

    assert ops_client.get("/api/v1/platform/clinics/").status_code == 200
    credentials_revoke(user=operator[0])  # a password reset or change does this
    refused = ops_client.get("/api/v1/platform/clinics/")
    assert (refused.status_code, refused.json()["code"]) == (401, "token_not_valid")


def test_a_token_whose_user_id_is_not_a_uuid_is_refused_not_a_500(operator: tuple[User, Any]) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    for host, tid in (("localhost", "public"), ("alpha.localhost", "clinic_alpha")):
        token = AccessToken()
        token["user_id"], token["tid"] = "not-a-uuid", tid
        client = APIClient(HTTP_HOST=host)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        path = "/api/v1/platform/clinics/" if host == "localhost" else "/api/v1/auth/me/"
        refused = client.get(path)
        assert refused.status_code == 401, (host, refused.content)


def test_the_renderer_writes_what_orjson_cannot_the_way_drf_does() -> None:
    from core.api.renderers import ORJSONRenderer

    assert ORJSONRenderer().render({"n": 2**70}) == b'{"n":1180591620717411303424}'
