"""Test harness: real PostgreSQL and Redis, two real clinics created once per session.

`alpha` and `beta` are created through `clinic_create` (snapshot replay) after pytest-django
has created and migrated the test database. Tests marked `django_db` run in a transaction
rolled back afterwards; tests that need real commits use the `committed_db` fixture and clean
up what they create.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, Role, TotpDevice, User
from accounts.services import mfa_secret_issue, tokens_issue
from patients.models import Patient
from tenants.models import Clinic
from tenants.services import clinic_create
from tests.factories import PatientFactory


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_modify_db_settings):  # noqa: ANN001
    """Replaces pytest-django's: always creates the test database (its own version skips that
    when no collected test is marked `django_db`, which breaks `committed_db`-only runs)."""
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        db_config = setup_databases(verbosity=verbosity, interactive=False, aliases={"default"})
        cache.clear()
        clinic_create(slug="alpha", name="Alpha Allergy Clinic", timezone="Europe/Berlin")
        clinic_create(slug="beta", name="Beta Dermatology", timezone="America/New_York")
    yield
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        teardown_databases(db_config, verbosity=verbosity)


@pytest.fixture
def clinic_a(db) -> Clinic:  # noqa: ANN001
    return Clinic.objects.get(slug="alpha")


@pytest.fixture
def clinic_b(db) -> Clinic:  # noqa: ANN001
    return Clinic.objects.get(slug="beta")


@pytest.fixture(autouse=True)
def _public_schema_after_test() -> Iterator[None]:
    yield
    connection.set_schema_to_public()


def host_client(host: str) -> APIClient:
    client = APIClient(HTTP_HOST=host)
    return client


@pytest.fixture
def public_client() -> APIClient:
    return host_client("localhost")


@pytest.fixture
def client_a(clinic_a: Clinic) -> APIClient:
    return host_client("alpha.localhost")


@pytest.fixture
def client_b(clinic_b: Clinic) -> APIClient:
    return host_client("beta.localhost")


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker) -> Iterator[None]:  # noqa: ANN001
    """Real commits (autocommit connection). The test removes what it creates."""
    with django_db_blocker.unblock():
        yield
        connection.set_schema_to_public()


# --- Personas -----------------------------------------------------------------------------------
# alice: patient at alpha; dr_bob: clinician at alpha; carol: clinic admin at alpha;
# mallory: clinician at beta (the other clinic). Password for all: PASSWORD.

PASSWORD = "correct horse battery staple"


def make_member(email: str, clinic: Clinic, role: str, full_name: str = "") -> User:
    user = User.objects.create_user(email, PASSWORD, full_name=full_name or email.split("@")[0].title())
    Membership.objects.create(user=user, clinic=clinic, role=role)
    return user


@pytest.fixture
def alice(clinic_a: Clinic) -> User:
    return make_member("alice@example.com", clinic_a, Role.PATIENT, "Alice Patient")


@pytest.fixture
def dr_bob(clinic_a: Clinic) -> User:
    return make_member("bob@example.com", clinic_a, Role.CLINICIAN, "Dr Bob")


@pytest.fixture
def carol(clinic_a: Clinic) -> User:
    return make_member("carol@example.com", clinic_a, Role.CLINIC_ADMIN, "Carol Admin")


@pytest.fixture
def mallory(clinic_b: Clinic) -> User:
    return make_member("mallory@example.com", clinic_b, Role.CLINICIAN, "Mallory")


def tokens_for(user: User, clinic: Clinic) -> dict[str, str]:
    membership = Membership.objects.get(user=user, clinic=clinic)
    return tokens_issue(user=user, clinic=clinic, role=membership.role)


def authed_client(user: User, clinic: Clinic) -> APIClient:
    client = host_client(f"{clinic.slug}.localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user, clinic)['access']}")
    return client


@pytest.fixture
def alice_patient(alice: User, clinic_a: Clinic) -> Patient:
    """Alice's patient record in alpha's schema (Europe/Berlin, once-daily diary)."""
    with tenant_context(clinic_a):
        return PatientFactory(user_id=alice.pk, display_name="Alice P.", timezone="Europe/Berlin")


@pytest.fixture
def alice_client(alice: User, alice_patient: Patient, clinic_a: Clinic) -> APIClient:
    return authed_client(alice, clinic_a)


@pytest.fixture
def dave(clinic_a: Clinic) -> User:
    """Another patient of alpha (twice-daily diary)."""
    user = make_member("dave@example.com", clinic_a, Role.PATIENT, "Dave Patient")
    with tenant_context(clinic_a):
        PatientFactory(
            user_id=user.pk, display_name="Dave P.", timezone="America/Chicago", diary_mode="twice"
        )
    return user


# --- Platform operator -------------------------------------------------------------------------


@pytest.fixture
def operator() -> tuple[User, pyotp.TOTP]:
    user = User.objects.create_user("ops@platform.example", PASSWORD, is_staff=True)
    secret, _ = mfa_secret_issue(user=user)
    TotpDevice.objects.filter(user=user).update(confirmed_at=timezone.now())
    return user, pyotp.TOTP(secret)


@pytest.fixture
def ops_client(operator: tuple[User, pyotp.TOTP]) -> APIClient:
    user, totp = operator
    client = host_client("localhost")
    response = client.post(
        "/api/v1/platform/auth/token/",
        {"email": user.email, "password": PASSWORD, "otp": totp.now()},
        format="json",
    )
    assert response.status_code == 200, response.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client
