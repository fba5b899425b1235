"""Self-service clinic signup on the platform host."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connections
from django_tenants.utils import schema_exists
from rest_framework.test import APIClient

from accounts.models import Membership, User
from core.errors import ApplicationError
from tenants import lifecycle
from tenants.models import Clinic, Domain
from tenants.services import clinic_delete
from tests.conftest import PASSWORD, host_client

ADMIN_PASSWORD = "a long clinic admin passphrase"


def signup_body(slug: str = "derm-north", **overrides: object) -> dict:
    body = {
        "name": "Derm North",
        "slug": slug,
        "timezone": "Europe/Vienna",
        "country": "AT",
        "admin": {"email": "owner@newclinic.example", "full_name": "Ada Admin", "password": ADMIN_PASSWORD},
    }
    body.update(overrides)
    return body


@pytest.mark.django_db
def test_signup_creates_a_clinic_whose_admin_can_sign_in_at_once(public_client: APIClient) -> None:
    response = public_client.post("/api/v1/clinics/", signup_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    clinic = Clinic.objects.get(slug="derm-north")
    assert body == {
        "id": str(clinic.pk),
        "slug": "derm-north",
        "name": "Derm North",
        "url": "http://derm-north.localhost/",
        "status": "active",
    }
    assert (clinic.country, clinic.timezone, clinic.schema_name) == (
        "AT",
        "Europe/Vienna",
        "clinic_derm_north",
    )
    assert schema_exists("clinic_derm_north")
    assert Membership.objects.get(clinic=clinic).role == "clinic_admin"
    token = host_client("derm-north.localhost").post(
        "/api/v1/auth/token/", {"email": "owner@newclinic.example", "password": ADMIN_PASSWORD}, format="json"
    )
    assert token.status_code == 200
    me = host_client("derm-north.localhost").get(
        "/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}"
    )
    assert (me.json()["role"], me.json()["clinic"]["slug"]) == ("clinic_admin", "derm-north")


@pytest.mark.django_db
def test_an_existing_user_is_linked_only_with_their_password(public_client: APIClient, alice: User) -> None:
    body = signup_body(admin={"email": alice.email, "full_name": "Alice", "password": "not her password"})
    refused = public_client.post("/api/v1/clinics/", body, format="json")
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
    assert not Clinic.objects.filter(slug="derm-north").exists()
    body["admin"]["password"] = PASSWORD
    assert public_client.post("/api/v1/clinics/", body, format="json").status_code == 201
    assert Membership.objects.filter(user=alice, clinic__slug="derm-north", role="clinic_admin").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "status", "code", "field"),
    [
        ({"slug": "Bad_Slug"}, 400, "invalid_slug", "slug"),
        ({"slug": "ab"}, 400, "invalid_slug", "slug"),
        ({"slug": "admin"}, 400, "reserved_slug", "slug"),
        ({"slug": "www"}, 400, "reserved_slug", "slug"),
        ({"slug": "alpha"}, 409, "slug_taken", "slug"),
        ({"timezone": "Atlantis/Capital"}, 400, "validation_error", "timezone"),
        ({"country": "Austria"}, 400, "validation_error", "country"),
        ({"name": ""}, 400, "validation_error", "name"),
        ({"plan": "gold"}, 400, "validation_error", "plan"),
        (
            {"admin": {"email": "x@example.com", "full_name": "X", "password": "short"}},
            400,
            "weak_password",
            "admin.password",
        ),
        (
            {"admin": {"email": "x@example.com", "full_name": "X", "password": "1234567890"}},
            400,
            "weak_password",
            "admin.password",
        ),
        (
            {"admin": {"email": "not-an-email", "full_name": "X", "password": ADMIN_PASSWORD}},
            400,
            "validation_error",
            "admin.email",
        ),
        (
            {
                "admin": {
                    "email": "x@example.com",
                    "full_name": "X",
                    "password": ADMIN_PASSWORD,
                    "is_staff": True,
                }
            },
            400,
            "validation_error",
            "admin.is_staff",
        ),
    ],
)
def test_signup_errors_name_the_field_and_create_nothing(
    public_client: APIClient, clinic_a: Clinic, overrides: dict, status: int, code: str, field: str
) -> None:
    clinics, users = Clinic.objects.count(), User.objects.count()
    response = public_client.post("/api/v1/clinics/", signup_body(**overrides), format="json")
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert field in response.json()["errors"]
    assert (Clinic.objects.count(), User.objects.count()) == (clinics, users)


@pytest.mark.django_db
def test_signup_is_only_on_the_platform_host(client_a: APIClient) -> None:
    assert client_a.post("/api/v1/clinics/", signup_body(), format="json").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "available", "reason"),
    [
        ("fresh-clinic", True, None),
        ("alpha", False, "slug_taken"),
        ("api", False, "reserved_slug"),
        ("A!", False, "invalid_slug"),
    ],
)
def test_slug_availability_answers_without_creating_anything(
    public_client: APIClient, clinic_a: Clinic, slug: str, available: bool, reason: str | None
) -> None:
    count = Clinic.objects.count()
    response = public_client.get("/api/v1/clinics/slug-availability/", {"slug": slug})
    assert response.status_code == 200
    assert response.json() == {"slug": slug, "available": available, "reason": reason}
    assert Clinic.objects.count() == count


@pytest.mark.django_db
def test_slug_availability_needs_the_slug(public_client: APIClient) -> None:
    response = public_client.get("/api/v1/clinics/slug-availability/")
    assert response.status_code == 400 and "slug" in response.json()["errors"]


def _cleanup(slug: str) -> None:
    for clinic in Clinic.objects.filter(slug=slug):
        clinic_delete(clinic=clinic)
    User.objects.filter(email=f"admin@{slug}.example").delete()


def test_a_failure_after_the_schema_exists_leaves_nothing_behind(committed_db: None) -> None:
    def fail(**kwargs: object) -> None:
        assert schema_exists("clinic_derm_fail")
        raise RuntimeError("injected failure after schema creation")

    with mock.patch.object(lifecycle, "membership_grant", side_effect=fail), pytest.raises(RuntimeError):
        lifecycle.clinic_signup(
            name="Fail",
            slug="derm-fail",
            timezone_name="UTC",
            country="DE",
            admin_email="admin@derm-fail.example",
            admin_full_name="F",
            admin_password=ADMIN_PASSWORD,
        )
    assert not Clinic.objects.filter(slug="derm-fail").exists()
    assert not Domain.objects.filter(domain="derm-fail.localhost").exists()
    assert not schema_exists("clinic_derm_fail")
    assert not User.objects.filter(email="admin@derm-fail.example").exists()
    assert not Membership.objects.filter(user__email="admin@derm-fail.example").exists()


def test_two_simultaneous_signups_for_one_slug_make_one_clinic(committed_db: None) -> None:
    barrier, outcomes = threading.Barrier(2), []

    def signup(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            lifecycle.clinic_signup(
                name=f"Race {index}",
                slug="derm-race",
                timezone_name="UTC",
                country="DE",
                admin_email=f"admin{index}@derm-race.example",
                admin_full_name="R",
                admin_password=ADMIN_PASSWORD,
            )
            outcomes.append(201)
        except ApplicationError as exc:
            outcomes.append((exc.status_code, exc.code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=signup, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert sorted(outcomes, key=str) == [(409, "slug_taken"), 201]
        assert Clinic.objects.filter(slug="derm-race").count() == 1
        assert Membership.objects.filter(clinic__slug="derm-race").count() == 1
        assert User.objects.filter(email__endswith="@derm-race.example").count() == 1
    finally:
        _cleanup("derm-race")
        User.objects.filter(email__endswith="@derm-race.example").delete()
    assert not schema_exists("clinic_derm_race")
