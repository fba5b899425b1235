"""A new confirmation link on request (`POST /api/v1/auth/verify-email/resend/`): a patient who
joined through the app and did not confirm within the first link's 24 hours is otherwise locked
out once signed out. Only an unconfirmed member of this clinic gets a link; the answer is the
same for every address."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Membership, Role, User
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client

pytestmark = pytest.mark.django_db

RESEND = "/api/v1/auth/verify-email/resend/"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cache.clear()  # the per-recipient mail cap and the throttles count in Redis


def unconfirmed_member(email: str, clinic: Clinic, *, active: bool = True) -> User:
    """An account as enrollment leaves it: a patient of the clinic, address not yet confirmed."""
    user = User.objects.create_user(email, PASSWORD, email_verified_at=None)
    Membership.objects.create(user=user, clinic=clinic, role=Role.PATIENT, is_active=active)
    return user


def resend(email: str, host: str = "alpha.localhost", **extra: str):  # noqa: ANN201
    return host_client(host).post(RESEND, {"email": email}, format="json", **extra)


def sign_in(email: str):  # noqa: ANN201
    return host_client("alpha.localhost").post(
        "/api/v1/auth/token/", {"email": email, "password": PASSWORD}, format="json"
    )


def test_an_unconfirmed_patient_gets_a_new_link_that_lets_her_sign_in(
    clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    unconfirmed_member("uma@example.com", clinic_a)
    refused = sign_in("uma@example.com")
    assert (refused.status_code, refused.json()["code"]) == (401, "email_unverified")
    assert refused.json()["detail"] == (
        "Confirm your email address first: open the link we sent you, or ask for a new one."
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = resend("Uma@Example.com ")
    assert (response.status_code, response.content) == (202, b"")
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["uma@example.com"], "Confirm your email address for CSU Tracker")
    ]
    body = mail.outbox[0].body
    assert body.startswith(
        "Confirm your email address within 24 hours: http://alpha.localhost/verify-email#token="
    )
    token = re.search(r"token=([\w:.-]+)", body).group(1)  # type: ignore[union-attr]
    verified = host_client("alpha.localhost").post(
        "/api/v1/auth/verify-email/", {"token": token}, format="json"
    )
    assert (verified.status_code, verified.json()["email_verified"]) == (200, True)
    assert sign_in("uma@example.com").status_code == 200


def test_nobody_but_an_unconfirmed_member_of_this_clinic_gets_a_link_and_every_answer_is_the_same(
    alice: User, clinic_a: Clinic, clinic_b: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    unconfirmed_member("uma@example.com", clinic_a)
    unconfirmed_member("bea@example.com", clinic_b)  # beta's patient, asked for on alpha's host
    unconfirmed_member("left@example.com", clinic_a, active=False)  # no longer a member of alpha
    gone = unconfirmed_member("gone@example.com", clinic_a)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    answers = {}
    with django_capture_on_commit_callbacks(execute=True):
        for email in (
            alice.email,  # confirmed
            "nobody@example.com",  # no account
            "bea@example.com",
            "left@example.com",
            "gone@example.com",
            "uma@example.com",
        ):
            response = resend(email)
            answers[email] = (response.status_code, response.content, response.get("Content-Type"))
    assert set(answers.values()) == {(202, b"", None)}
    assert [m.to for m in mail.outbox] == [["uma@example.com"]]


def test_a_confirmed_address_stays_confirmed_and_gets_nothing(
    alice: User, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    confirmed_at = User.objects.get(pk=alice.pk).email_verified_at
    with django_capture_on_commit_callbacks(execute=True):
        assert resend(alice.email).status_code == 202
    assert mail.outbox == []
    assert User.objects.get(pk=alice.pk).email_verified_at == confirmed_at


def test_the_request_does_the_same_work_for_every_address(alice: User, clinic_a: Clinic) -> None:
    unconfirmed_member("uma@example.com", clinic_a)
    with mock.patch("core.outbox.outbox_enqueue") as enqueue:
        for email in ("uma@example.com", alice.email, "nobody@example.com"):
            assert resend(email).status_code == 202
    assert [call.args[0] for call in enqueue.call_args_list] == ["accounts.email_verification_resend"] * 3
    assert {call.kwargs["clinic_id"] for call in enqueue.call_args_list} == {str(clinic_a.pk)}
    for call in enqueue.call_args_list:
        assert "@" not in str(call)  # the address travels encrypted


def test_new_links_to_one_address_are_capped_per_hour(
    clinic_a: Clinic, django_capture_on_commit_callbacks, settings
) -> None:  # noqa: ANN001
    settings.PASSWORD_RESETS_PER_HOUR = 2
    unconfirmed_member("uma@example.com", clinic_a)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(4):
            assert resend("uma@example.com", REMOTE_ADDR=f"10.9.9.{i}").status_code == 202
    assert [m.to for m in mail.outbox] == [["uma@example.com"]] * 2


def test_requests_for_new_links_are_throttled_per_client(
    clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates into a class attribute at import time.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "verify_resend": "3/min"}
    )
    statuses = [resend(f"x{i}@example.com", REMOTE_ADDR="10.5.5.5").status_code for i in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    throttled = resend("x@example.com", REMOTE_ADDR="10.5.5.5")
    assert throttled["Retry-After"] and throttled.json()["code"] == "throttled"
    assert resend("x@example.com", REMOTE_ADDR="10.5.5.6").status_code == 202  # another client


def test_the_platform_host_has_no_resend(db) -> None:  # noqa: ANN001
    assert resend("uma@example.com", host="localhost").status_code == 404


def test_me_says_whether_the_address_is_confirmed(alice: User, clinic_a: Clinic) -> None:
    uma = unconfirmed_member("uma@example.com", clinic_a)
    assert authed_client(alice, clinic_a).get("/api/v1/auth/me/").json()["email_verified"] is True
    assert authed_client(uma, clinic_a).get("/api/v1/auth/me/").json()["email_verified"] is False
    User.objects.filter(pk=uma.pk).update(email_verified_at=timezone.now())
    assert authed_client(uma, clinic_a).get("/api/v1/auth/me/").json()["email_verified"] is True
