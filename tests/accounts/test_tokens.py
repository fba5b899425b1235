"""JWT sign-in on clinic hosts: clinic-bound tokens, rotation, blacklist, membership checks."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Membership, User
from accounts.services import membership_set_active, user_set_active
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client, make_member, tokens_for

pytestmark = pytest.mark.django_db

INVALID = {
    "type": "http://localhost/problems/invalid_credentials",
    "title": "Authentication required",
    "status": 401,
    "detail": "No active account found with the given credentials.",
    "code": "invalid_credentials",
}


def obtain(client: APIClient, email: str, password: str = PASSWORD, **extra: str):  # noqa: ANN201
    return client.post("/api/v1/auth/token/", {"email": email, "password": password, **extra}, format="json")


def test_member_obtains_a_token_pair_bound_to_the_clinic(client_a: APIClient, alice: User) -> None:
    response = obtain(client_a, "Alice@Example.com")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    me = client_a.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert me.status_code == 200
    body = me.json()
    assert body["user"] == {"id": str(alice.pk), "email": "alice@example.com", "full_name": "Alice Patient"}
    assert body["clinic"]["slug"] == "alpha"
    assert (body["role"], body["auth_method"], body["mfa_enabled"]) == ("patient", "jwt", False)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("alice@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("mallory@example.com", PASSWORD),
    ],
)
def test_wrong_password_unknown_email_and_other_clinics_user_get_the_same_401(
    client_a: APIClient, alice: User, mallory: User, email: str, password: str
) -> None:
    response = obtain(client_a, email, password)
    assert response.status_code == 401
    assert response.json() == INVALID


def test_token_obtain_refuses_unknown_fields_and_missing_ones(client_a: APIClient, alice: User) -> None:
    response = obtain(client_a, "alice@example.com", role="clinic_admin")
    assert response.status_code == 400
    assert response.json()["errors"] == {"role": ["Unknown field."]}
    response = client_a.post("/api/v1/auth/token/", {"email": "alice@example.com"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"password": ["This field is required."]}


def test_token_obtain_is_refused_on_the_platform_host(public_client: APIClient, alice: User) -> None:
    assert obtain(public_client, "alice@example.com").status_code == 404


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_a_clinic_token_is_refused_on_the_other_clinic_in_both_directions(
    alice: User, mallory: User, clinic_a: Clinic, clinic_b: Clinic, kind: str
) -> None:
    for user, own, other in ((alice, clinic_a, clinic_b), (mallory, clinic_b, clinic_a)):
        # Even a member of both clinics cannot carry a token across.
        Membership.objects.get_or_create(user=user, clinic=other, defaults={"role": "patient"})
        token = tokens_for(user, own)[kind]
        client = host_client(f"{other.slug}.localhost")
        if kind == "access":
            response = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
        else:
            response = client.post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")
        assert response.status_code == 401, (user.email, kind)
        assert response.json()["code"] == "token_not_valid"
        connection.set_schema_to_public()


def test_anonymous_me_is_401(client_a: APIClient) -> None:
    response = client_a.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_refresh_rotates_and_reusing_an_old_refresh_token_revokes_its_family(
    client_a: APIClient, alice: User, clinic_a, settings
) -> None:  # noqa: ANN001
    settings.REFRESH_REUSE_GRACE_SECONDS = 0  # the replay comes after the reuse interval
    first = tokens_for(alice, clinic_a)
    rotated = client_a.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    replay = client_a.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_not_valid"
    # The replay shows the first token was copied: its whole family is revoked, so the rotated
    # token (maybe the thief's) is dead too, and the owner signs in again (RFC 9700 §4.14.2).
    again = client_a.post(
        "/api/v1/auth/token/refresh/", {"refresh": rotated.json()["refresh"]}, format="json"
    )
    assert (again.status_code, again.json()["code"]) == (401, "token_not_valid")
    other_sign_in = tokens_for(alice, clinic_a)["refresh"]  # another family (device) is untouched
    assert (
        client_a.post("/api/v1/auth/token/refresh/", {"refresh": other_sign_in}, format="json").status_code
        == 200
    )


def test_a_device_whose_refresh_answer_was_lost_gets_a_new_pair_within_the_reuse_interval(
    client_a: APIClient, alice: User, clinic_a
) -> None:  # noqa: ANN001
    """A page reloading mid-refresh (or a dropped connection) presents the token it still has,
    which the server has just rotated: within REFRESH_REUSE_GRACE_SECONDS that is the same
    device, not a thief. It gets a new pair; the pair it never received is dead; the family
    lives on. Only the token the last rotation replaced gets this, and only once the family has
    moved on does an old token count as a copy again."""

    def refresh(token: str):  # noqa: ANN202
        return client_a.post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")

    first = tokens_for(alice, clinic_a)["refresh"]
    lost = refresh(first)
    assert lost.status_code == 200
    retried = refresh(first)  # the answer above never reached the device
    assert retried.status_code == 200
    assert retried.json()["refresh"] not in (first, lost.json()["refresh"])
    following = refresh(retried.json()["refresh"])
    assert following.status_code == 200  # the family is alive

    # The pair the device never received cannot be used (it only exists for whoever copied it),
    # and presenting it is a copy: the family is revoked.
    assert refresh(lost.json()["refresh"]).status_code == 401
    assert refresh(following.json()["refresh"]).status_code == 401


def test_a_lost_refresh_answer_survives_minutes_without_signal(
    client_a: APIClient, alice: User, clinic_a
) -> None:  # noqa: ANN001
    """The PWA refreshes on every start. Its answer lost, then ten minutes in a tunnel: the
    token it still holds gets a new pair (with 30 s the patient was signed out, found by review)."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import TokenFamily

    first = tokens_for(alice, clinic_a)["refresh"]
    assert client_a.post("/api/v1/auth/token/refresh/", {"refresh": first}, format="json").status_code == 200
    TokenFamily.objects.filter(user=alice).update(rotated_at=timezone.now() - timedelta(minutes=10))
    retried = client_a.post("/api/v1/auth/token/refresh/", {"refresh": first}, format="json")
    assert retried.status_code == 200
    TokenFamily.objects.filter(user=alice).update(rotated_at=timezone.now() - timedelta(minutes=16))
    late = client_a.post("/api/v1/auth/token/refresh/", {"refresh": first}, format="json")
    assert (late.status_code, late.json()["code"]) == (401, "token_not_valid")


def test_the_reuse_interval_does_not_revive_a_logged_out_token(
    client_a: APIClient, alice: User, clinic_a
) -> None:  # noqa: ANN001
    first = tokens_for(alice, clinic_a)["refresh"]
    rotated = client_a.post("/api/v1/auth/token/refresh/", {"refresh": first}, format="json").json()[
        "refresh"
    ]
    assert client_a.post("/api/v1/auth/logout/", {"refresh": rotated}, format="json").status_code == 204
    replay = client_a.post("/api/v1/auth/token/refresh/", {"refresh": first}, format="json")
    assert (replay.status_code, replay.json()["code"]) == (401, "token_not_valid")


def test_logout_blacklists_the_refresh_token(client_a: APIClient, alice: User, clinic_a) -> None:  # noqa: ANN001
    pair = tokens_for(alice, clinic_a)
    assert (
        client_a.post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code == 204
    )
    response = client_a.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 401
    garbage = client_a.post("/api/v1/auth/logout/", {"refresh": "not-a-token"}, format="json")
    assert garbage.status_code == 401


def test_logout_asks_the_browser_to_clear_the_clinic_origin(
    client_a: APIClient, alice: User, clinic_a
) -> None:  # noqa: ANN001
    """A device that changes hands keeps nothing of the patient who signed out: the answer asks
    the browser to drop the origin's storage (IndexedDB, Cache Storage, service worker) and its
    HTTP cache. Refusals stay plain problem+json and clear nothing."""
    pair = tokens_for(alice, clinic_a)
    response = client_a.post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 204
    assert response["Clear-Site-Data"] == '"cache", "storage"'
    assert response.content == b""
    refused = client_a.post("/api/v1/auth/logout/", {"refresh": "not-a-token"}, format="json")
    assert refused.status_code == 401
    assert refused["Content-Type"].startswith("application/problem+json")
    assert refused.json()["status"] == 401
    assert "Clear-Site-Data" not in refused


def test_deactivated_membership_stops_working_on_the_next_request(alice: User, clinic_a: Clinic) -> None:
    pair = tokens_for(alice, clinic_a)
    client = authed_client(alice, clinic_a)
    assert client.get("/api/v1/auth/me/").status_code == 200  # membership now cached
    membership_set_active(membership=Membership.objects.get(user=alice, clinic=clinic_a), is_active=False)
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "membership_inactive"
    refresh = host_client("alpha.localhost").post(
        "/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"
    )
    assert refresh.status_code == 401
    assert obtain(host_client("alpha.localhost"), alice.email).json() == INVALID
    membership_set_active(membership=Membership.objects.get(user=alice, clinic=clinic_a), is_active=True)
    assert client.get("/api/v1/auth/me/").status_code == 200


def test_deactivated_user_stops_working_at_once(alice: User, clinic_a: Clinic) -> None:
    client = authed_client(alice, clinic_a)
    assert client.get("/api/v1/auth/me/").status_code == 200
    user_set_active(user=alice, is_active=False)
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_refresh_of_a_deleted_user_is_401_not_500(clinic_a: Clinic) -> None:
    ghost = make_member("ghost@example.com", clinic_a, "patient")
    pair = tokens_for(ghost, clinic_a)
    Membership.objects.filter(user=ghost).delete()
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    OutstandingToken.objects.filter(user=ghost).update(user=None)
    User.objects.filter(pk=ghost.pk).delete()
    response = host_client("alpha.localhost").post(
        "/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"
    )
    assert response.status_code == 401


def test_tampered_or_foreign_tokens_are_401(client_a: APIClient, alice: User, clinic_a: Clinic) -> None:
    access = tokens_for(alice, clinic_a)["access"]
    header, payload, signature = access.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    response = client_a.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert response.status_code == 401


def test_sign_in_logs_never_contain_passwords_or_tokens(
    client_a: APIClient, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    obtain(client_a, alice.email, "a wrong password 123")
    tokens = obtain(client_a, alice.email).json()
    client_a.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "sign-in succeeded" in text and "sign-in failed" in text  # the attempts are logged...
    for secret in (PASSWORD, "a wrong password 123", tokens["access"], tokens["refresh"]):
        assert secret not in text  # ...without secrets
