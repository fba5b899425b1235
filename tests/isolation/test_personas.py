"""The personas' credentials are real (a refusal on alpha's host is the host binding, not a
broken token), and HEAD and OPTIONS, which the matrix leaves out, decide access like GET."""

from __future__ import annotations

import pytest

from tests.isolation.world import World

pytestmark = pytest.mark.django_db


def test_beta_admins_token_and_session_work_on_beta(world: World) -> None:
    token = world.client("beta_admin_home")
    assert token.get("/api/v1/auth/me/").json()["clinic"]["slug"] == "beta"
    session = world.beta_session_client()
    me = session.get("/api/v1/auth/me/")
    assert (me.status_code, me.json()["auth_method"], me.json()["role"]) == (200, "session", "clinic_admin")


def test_beta_admins_session_is_anonymous_on_alpha(world: World) -> None:
    response = world.client("beta_admin_session").get("/api/v1/auth/me/")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


@pytest.mark.parametrize(("persona", "expected"), [("anonymous", 401), ("erin", 404), ("dr_bob", 200)])
def test_head_decides_access_like_get(world: World, persona: str, expected: int) -> None:
    response = world.client(persona).head(f"/api/v1/portal/patients/{world.alice_patient_id}/")
    assert response.status_code == expected


@pytest.mark.parametrize(("persona", "expected"), [("anonymous", 401), ("beta_admin", 401), ("alice", 403)])
def test_options_is_refused_like_the_route(world: World, persona: str, expected: int) -> None:
    response = world.client(persona).options(f"/api/v1/portal/patients/{world.alice_patient_id}/")
    assert response.status_code == expected


def test_options_shows_a_clinician_outside_the_team_no_patient_data(world: World) -> None:
    response = world.client("erin").options(f"/api/v1/portal/patients/{world.alice_patient_id}/")
    assert response.status_code == 200
    assert "Alice" not in response.content.decode()
    assert set(response.json()) == {"name", "description", "renders", "parses"}
