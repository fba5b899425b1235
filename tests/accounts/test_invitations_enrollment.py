"""Invitations (staff): single use, expiring, stored hashed. Enrollment codes: tests/patients."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Invitation, Membership, User
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a brand new passphrase"


def invite(
    admin_client: APIClient, capture, email: str = "newdoc@example.com", role: str = "clinician"
) -> str:  # noqa: ANN001
    """Invite and return the token from the email (emails are sent after commit)."""
    with capture(execute=True):
        response = admin_client.post(
            "/api/v1/admin/invitations/", {"email": email, "role": role}, format="json"
        )
    assert response.status_code == 201, response.json()
    return re.search(r"token=([\w-]+)", mail.outbox[-1].body).group(1)


def accept(token: str, password: str = NEW_PASSWORD, full_name: str = "Dr New"):  # noqa: ANN201
    return host_client("alpha.localhost").post(
        "/api/v1/auth/invitations/accept/",
        {"token": token, "full_name": full_name, "password": password},
        format="json",
    )


@pytest.fixture
def carol_client(carol: User, clinic_a: Clinic) -> APIClient:
    return authed_client(carol, clinic_a)


def test_admin_invites_a_clinician_who_accepts_and_signs_in(
    carol_client: APIClient, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    token = invite(carol_client, django_capture_on_commit_callbacks)
    assert mail.outbox[-1].to == ["newdoc@example.com"]
    invitation = Invitation.objects.get(email="newdoc@example.com")
    assert token not in invitation.token_hash and len(invitation.token_hash) == 64  # stored hashed
    response = accept(token)
    assert response.status_code == 201
    assert response.json()["role"] == "clinician"
    user = User.objects.get(email="newdoc@example.com")
    assert user.full_name == "Dr New"
    assert Membership.objects.get(user=user, clinic=clinic_a).role == "clinician"
    me = host_client("alpha.localhost").get(
        "/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}"
    )
    assert me.json()["role"] == "clinician"


def test_invitation_is_single_use(carol_client: APIClient, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    token = invite(carol_client, django_capture_on_commit_callbacks)
    assert accept(token).status_code == 201
    again = accept(token)
    assert (again.status_code, again.json()["code"]) == (400, "invitation_used")
    assert again.json()["errors"] == {"token": ["This invitation was already used."]}


def test_expired_revoked_and_unknown_invitations_are_refused(
    carol_client: APIClient, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    expired = invite(carol_client, django_capture_on_commit_callbacks, "late@example.com")
    revoked = invite(carol_client, django_capture_on_commit_callbacks, "gone@example.com")
    Invitation.objects.filter(email="late@example.com").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    invitation = Invitation.objects.get(email="gone@example.com")
    assert carol_client.post(f"/api/v1/admin/invitations/{invitation.pk}/revoke/").status_code == 200
    assert accept(expired).json()["code"] == "invitation_expired"
    assert accept(revoked).json()["code"] == "invitation_revoked"
    assert accept("made-up-token").json()["code"] == "invitation_invalid"
    assert not User.objects.filter(email__in=["late@example.com", "gone@example.com"]).exists()


def test_invitation_for_an_existing_user_requires_their_password(
    carol_client: APIClient, mallory: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    token = invite(carol_client, django_capture_on_commit_callbacks, mallory.email)
    assert accept(token, password="takeover attempt 1").status_code == 401
    assert accept(token, password=PASSWORD).status_code == 201
    assert Membership.objects.filter(user=mallory, clinic=clinic_a, role="clinician").exists()


def test_invitation_validation(carol_client: APIClient, dr_bob: User) -> None:
    patient_role = carol_client.post(
        "/api/v1/admin/invitations/", {"email": "p@example.com", "role": "patient"}, format="json"
    )
    assert patient_role.status_code == 400 and "role" in patient_role.json()["errors"]
    bad_email = carol_client.post(
        "/api/v1/admin/invitations/", {"email": "nope", "role": "clinician"}, format="json"
    )
    assert bad_email.status_code == 400 and "email" in bad_email.json()["errors"]
    member = carol_client.post(
        "/api/v1/admin/invitations/", {"email": dr_bob.email, "role": "clinician"}, format="json"
    )
    assert (member.status_code, member.json()["code"]) == (409, "already_member")


def test_weak_password_on_accept_is_a_400_and_creates_nothing(
    carol_client: APIClient, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    token = invite(carol_client, django_capture_on_commit_callbacks)
    response = accept(token, password="short")
    assert (response.status_code, response.json()["code"]) == (400, "weak_password")
    assert "password" in response.json()["errors"]
    assert not User.objects.filter(email="newdoc@example.com").exists()
    assert accept(token).status_code == 201  # the invitation was not spent


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("anonymous", 401), ("alice", 403), ("dr_bob", 403), ("carol", 200), ("mallory", 401)],
)
def test_invitation_admin_persona_matrix(request: pytest.FixtureRequest, persona: str, expected: int) -> None:
    if persona == "anonymous":
        client = host_client("alpha.localhost")
    else:
        user = request.getfixturevalue(persona)
        client = authed_client(user, Clinic.objects.get(memberships__user=user))
        client.defaults["HTTP_HOST"] = "alpha.localhost"
    assert client.get("/api/v1/admin/invitations/").status_code == expected
    created = client.post(
        "/api/v1/admin/invitations/", {"email": "z@example.com", "role": "clinician"}, format="json"
    )
    assert created.status_code == (201 if expected == 200 else expected)


def test_other_clinics_invitation_cannot_be_revoked(
    carol_client: APIClient, mallory: User, clinic_b: Clinic
) -> None:
    foreign = Invitation.objects.create(
        clinic=clinic_b,
        email="q@example.com",
        role="clinician",
        token_hash="x" * 64,
        invited_by=mallory,
        expires_at=timezone.now() + timedelta(days=1),
    )
    response = carol_client.post(f"/api/v1/admin/invitations/{foreign.pk}/revoke/")
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
