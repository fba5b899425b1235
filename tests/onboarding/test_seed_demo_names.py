"""The demo's care team reads "Dr Lena Weber", not "Dr Dr Lena Weber": the title is the clinician
profile's, the account holds the name only, and a demo seeded with the title in the name is
corrected by the next `make run` (seed_demo runs on every one)."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings
from onboarding.management.commands.seed_demo import DEMO_PEOPLE

from accounts.models import User
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

PASSWORDS = {email: password for email, _, _, password in DEMO_PEOPLE}


@pytest.fixture(autouse=True)
def _no_cached_demo_clinic() -> Iterator[None]:
    """The demo clinic is rolled back after each test, its host and membership cache entries
    are not: clear them before and after, for this test and the next one."""
    cache.clear()
    yield
    cache.clear()


def _seed() -> None:
    with override_settings(ALLOW_DEMO_SEED=True):
        call_command("seed_demo", stdout=StringIO())


def _care_team_of(email: str) -> list[str]:
    client = host_client("demo.localhost")
    token = client.post(
        "/api/v1/auth/token/", {"email": email, "password": PASSWORDS[email]}, format="json"
    ).json()["access"]
    response = client.get("/api/v1/me/care-team/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.json()
    return sorted(member["name"] for member in response.json())


def test_the_demo_care_team_shows_each_clinicians_title_once() -> None:
    _seed()
    assert _care_team_of("ben@demo.example") == ["Dr Chidi Okafor", "Dr Lena Weber"]
    assert not any(name.startswith("Dr ") for _, name, _, _ in DEMO_PEOPLE)


def test_a_demo_seeded_with_the_title_in_the_name_is_corrected_and_a_name_changed_by_hand_kept() -> None:
    # As the seed left them before: the account names began with the title.
    User.objects.create_user(
        "dr.weber@demo.example", PASSWORDS["dr.weber@demo.example"], full_name="Dr Lena Weber"
    )
    User.objects.create_user(
        "dr.okafor@demo.example", PASSWORDS["dr.okafor@demo.example"], full_name="C. Okafor"
    )
    _seed()
    _seed()
    names = dict(User.objects.filter(email__endswith="@demo.example").values_list("email", "full_name"))
    assert names["dr.weber@demo.example"] == "Lena Weber"
    assert names["dr.okafor@demo.example"] == "C. Okafor"  # not the seed's: someone renamed it
    assert _care_team_of("anna@demo.example") == ["Dr Lena Weber"]
