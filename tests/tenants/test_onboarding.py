"""Self-service clinic signup on the platform host."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_exists
from onboarding import signup as signup_module
from rest_framework.test import APIClient

from accounts.models import Membership, User
from billing.models import Subscription
from core.errors import ApplicationError
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


def signup(client: APIClient, capture, body: dict) -> tuple[object, str | None]:  # noqa: ANN001
    """Sign up; the answer and the confirmation token from the email (sent after commit)."""
    sent = len(mail.outbox)
    with capture(execute=True):
        response = client.post("/api/v1/clinics/", body, format="json")
    found = [re.search(r"token=([\w:.-]+)", m.body) for m in mail.outbox[sent:]]
    return response, next((match.group(1) for match in found if match), None)


@pytest.mark.django_db
def test_signup_stays_pending_until_the_admin_confirms_the_email(
    public_client: APIClient, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    response, token = signup(public_client, django_capture_on_commit_callbacks, signup_body())
    assert response.status_code == 202, response.json()
    assert response.json() == {
        "slug": "derm-north",
        "status": "pending",
        "detail": "Check the admin's inbox: the clinic opens once its confirmation link is used.",
    }
    clinic = Clinic.objects.get(slug="derm-north")
    assert (clinic.status, clinic.country, clinic.timezone, clinic.schema_name) == (
        "pending",
        "AT",
        "Europe/Vienna",
        "clinic_derm_north",
    )
    assert schema_exists("clinic_derm_north")
    assert mail.outbox[-1].to == ["owner@newclinic.example"]
    assert "http://localhost/verify-email#token=" in mail.outbox[-1].body
    # Nobody signs in before the link is opened: the clinic's host does not answer.
    credentials = {"email": "owner@newclinic.example", "password": ADMIN_PASSWORD}
    early = host_client("derm-north.localhost").post("/api/v1/auth/token/", credentials, format="json")
    assert early.status_code == 404
    confirmed = public_client.post("/api/v1/auth/verify-email/", {"token": token}, format="json")
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json() == {
        "email_verified": True,
        "clinic": {
            "id": str(clinic.pk),
            "slug": "derm-north",
            "name": "Derm North",
            "url": "http://derm-north.localhost/account/",
            "status": "active",
        },
    }
    assert Subscription.objects.get(clinic=clinic).plan.code == "starter"
    assert Membership.objects.get(clinic=clinic).role == "clinic_admin"
    cache.clear()  # the host lookup cached the clinic as unknown
    token_response = host_client("derm-north.localhost").post(
        "/api/v1/auth/token/", credentials, format="json"
    )
    assert token_response.status_code == 200, token_response.json()
    me = host_client("derm-north.localhost").get(
        "/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {token_response.json()['access']}"
    )
    assert (me.json()["role"], me.json()["clinic"]["slug"]) == ("clinic_admin", "derm-north")
    again = public_client.post("/api/v1/auth/verify-email/", {"token": token}, format="json")
    assert again.status_code == 200  # opening the link twice is harmless


@pytest.mark.django_db
def test_signup_answers_the_same_whether_or_not_the_email_has_an_account(
    public_client: APIClient, alice: User, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    """No account enumeration: a known address with a wrong password gets the very answer an
    unknown one gets; only the email to the address's owner differs."""
    unknown, _ = signup(public_client, django_capture_on_commit_callbacks, signup_body(slug="derm-one"))
    known_body = signup_body(
        slug="derm-two", admin={"email": alice.email, "full_name": "X", "password": ADMIN_PASSWORD}
    )
    known, token = signup(public_client, django_capture_on_commit_callbacks, known_body)
    assert (unknown.status_code, known.status_code) == (202, 202)
    assert {**unknown.json(), "slug": "?"} == {**known.json(), "slug": "?"}
    assert mail.outbox[-1].to == [alice.email]
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)  # her own password stays
    assert not Clinic.objects.get(slug="derm-two").status == "active"
    # Only the owner of the address can make the clinic hers.
    public_client.post("/api/v1/auth/verify-email/", {"token": token}, format="json")
    assert Membership.objects.filter(user=alice, clinic__slug="derm-two", role="clinic_admin").exists()
    assert Clinic.objects.get(slug="derm-two").status == "active"


@pytest.mark.django_db
def test_a_forged_or_altered_confirmation_link_is_refused(
    public_client: APIClient, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    _, token = signup(public_client, django_capture_on_commit_callbacks, signup_body())
    for bad in (token[:-2] + "xx", "nonsense"):
        response = public_client.post("/api/v1/auth/verify-email/", {"token": bad}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "verification_token_invalid")
    assert Clinic.objects.get(slug="derm-north").status == "pending"


@pytest.mark.django_db
def test_pending_signups_and_their_unverified_accounts_are_purged_after_a_day(
    public_client: APIClient, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    _, token = signup(public_client, django_capture_on_commit_callbacks, signup_body())
    assert signup_module.pending_signups_purge() == 0  # not yet
    later = timezone.now() + timedelta(hours=24, minutes=1)
    assert signup_module.pending_signups_purge(now=later) == 1
    assert not Clinic.objects.filter(slug="derm-north").exists()
    assert not schema_exists("clinic_derm_north")
    assert not User.objects.filter(email="owner@newclinic.example").exists()
    response = public_client.post("/api/v1/auth/verify-email/", {"token": token}, format="json")
    assert response.status_code == 400  # the account is gone with the signup


@pytest.mark.django_db
def test_the_platform_wide_signup_budget_stands_besides_the_per_ip_throttle(
    public_client: APIClient, settings, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    settings.SIGNUP_HOURLY_BUDGET = 1
    first, _ = signup(public_client, django_capture_on_commit_callbacks, signup_body(slug="derm-one"))
    assert first.status_code == 202
    second, _ = signup(public_client, django_capture_on_commit_callbacks, signup_body(slug="derm-two"))
    assert (second.status_code, second.json()["code"], second["Retry-After"]) == (429, "signup_busy", "3600")
    assert not Clinic.objects.filter(slug="derm-two").exists()


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
        ({"name": "Derm\r\nBcc: x@evil.example"}, 400, "validation_error", "name"),
        ({"name": "Derm\u0000North"}, 400, "validation_error", "name"),
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

    with mock.patch.object(signup_module, "membership_grant", side_effect=fail), pytest.raises(RuntimeError):
        signup_module.clinic_signup(
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
            signup_module.clinic_signup(
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
