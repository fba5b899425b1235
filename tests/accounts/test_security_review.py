"""Regression tests for the security review (issue 14): MFA bound to tokens (finding 2),
verified email before sign-in (3), password reset that tells nothing (4), names without
control characters (13)."""

from __future__ import annotations

import re
from unittest import mock

import pyotp
import pytest
from django.core import mail
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import TotpDevice, User
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client, tokens_for

pytestmark = pytest.mark.django_db


def obtain(email: str, otp: str | None = None, password: str = PASSWORD):  # noqa: ANN201
    body = {"email": email, "password": password, **({"otp": otp} if otp else {})}
    return host_client("alpha.localhost").post("/api/v1/auth/token/", body, format="json")


def refresh(token: str):  # noqa: ANN201
    return host_client("alpha.localhost").post(
        "/api/v1/auth/token/refresh/", {"refresh": token}, format="json"
    )


def bearer(access: str) -> APIClient:
    client = host_client("alpha.localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def confirm_mfa(client: APIClient) -> tuple[pyotp.TOTP, dict]:
    setup = client.post("/api/v1/auth/mfa/setup/", {"password": PASSWORD}, format="json")
    assert setup.status_code == 200, setup.json()
    totp = pyotp.TOTP(setup.json()["secret"])
    confirm = client.post("/api/v1/auth/mfa/confirm/", {"otp": totp.now()}, format="json")
    assert confirm.status_code == 200, confirm.json()
    return totp, confirm.json()


# --- Finding 2: MFA is bound to tokens ------------------------------------------------------------


def test_tokens_issued_on_the_password_alone_die_when_the_user_confirms_mfa(
    dr_bob: User, clinic_a: Clinic
) -> None:
    before = tokens_for(dr_bob, clinic_a)  # a second device, signed in with the password
    _, confirmed = confirm_mfa(authed_client(dr_bob, clinic_a))
    assert set(confirmed) == {"recovery_codes", "access", "refresh"}
    assert (refresh(before["refresh"]).status_code, refresh(before["refresh"]).json()["code"]) == (
        401,
        "token_not_valid",
    )
    stale = bearer(before["access"]).get("/api/v1/auth/me/")
    assert stale.status_code == 401
    fresh = bearer(confirmed["access"]).get("/api/v1/auth/me/")
    assert (fresh.status_code, fresh.json()["mfa_enabled"]) == (200, True)
    assert refresh(confirmed["refresh"]).status_code == 200  # the confirming client goes on


def test_a_password_only_token_of_a_user_with_mfa_is_refused(dr_bob: User, clinic_a: Clinic) -> None:
    """A token minted with `amr` `pwd` (e.g. by a flow that skipped the second factor) is not
    enough for staff who have MFA."""
    confirm_mfa(authed_client(dr_bob, clinic_a))
    cache.clear()
    later = tokens_for(dr_bob, clinic_a)  # amr=pwd, issued after the revocation
    response = bearer(later["access"]).get("/api/v1/portal/patients/")
    assert (response.status_code, response.json()["code"]) == (401, "mfa_required")


def test_switching_mfa_required_on_revokes_the_staffs_earlier_tokens(
    carol: User, dr_bob: User, alice: User, clinic_a: Clinic
) -> None:
    bob_before = tokens_for(dr_bob, clinic_a)
    alice_before = tokens_for(alice, clinic_a)
    _, carols = confirm_mfa(authed_client(carol, clinic_a))  # an admin without MFA is refused
    try:
        response = bearer(carols["access"]).patch("/api/v1/admin/clinic/", {"mfa_required": True}, format="json")
        assert response.status_code == 200, response.json()
        assert refresh(bob_before["refresh"]).status_code == 401
        assert bearer(bob_before["access"]).get("/api/v1/auth/me/").status_code == 401
        assert refresh(alice_before["refresh"]).status_code == 200  # patients are not staff
    finally:
        Clinic.objects.filter(pk=clinic_a.pk).update(mfa_required=False)
        cache.clear()


def test_setting_up_mfa_needs_the_current_password(dr_bob: User, clinic_a: Clinic) -> None:
    client = authed_client(dr_bob, clinic_a)
    missing = client.post("/api/v1/auth/mfa/setup/", {}, format="json")
    assert (missing.status_code, list(missing.json()["errors"])) == (400, ["password"])
    wrong = client.post("/api/v1/auth/mfa/setup/", {"password": "not the password"}, format="json")
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_current_password")
    assert not TotpDevice.objects.filter(user=dr_bob).exists()


def test_a_session_opened_without_mfa_ends_when_mfa_is_confirmed_elsewhere(
    dr_bob: User, clinic_a: Clinic
) -> None:
    browser = APIClient(HTTP_HOST="alpha.localhost", enforce_csrf_checks=True)
    csrf = browser.get("/api/v1/auth/csrf/").json()["csrf_token"]
    login = browser.post(
        "/api/v1/auth/login/",
        {"email": dr_bob.email, "password": PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=csrf,
    )
    assert login.status_code == 204
    assert browser.get("/api/v1/auth/me/").status_code == 200
    confirm_mfa(authed_client(dr_bob, clinic_a))
    assert browser.get("/api/v1/auth/me/").status_code == 401


# --- Finding 3: an account signs in only with a verified email --------------------------------------


def test_an_unverified_account_cannot_sign_in_until_the_link_is_opened(
    dr_bob: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        enrolled = host_client("alpha.localhost").post(
            "/api/v1/auth/enroll/",
            {"code": code, "email": "new@example.com", "password": PASSWORD, "privacy_notice_version": 1},
            format="json",
        )
    assert enrolled.status_code == 201  # the code is proof enough for this device
    refused = obtain("new@example.com")
    assert (refused.status_code, refused.json()["code"]) == (401, "email_unverified")
    link = mail.outbox[-1]
    assert link.to == ["new@example.com"] and "http://alpha.localhost/verify-email#token=" in link.body
    token = re.search(r"token=([\w:.-]+)", link.body).group(1)
    verified = host_client("alpha.localhost").post(
        "/api/v1/auth/verify-email/", {"token": token}, format="json"
    )
    assert verified.json() == {"email_verified": True, "clinic": None}
    assert obtain("new@example.com").status_code == 200


def test_a_wrong_password_for_an_unverified_account_is_the_generic_401(clinic_a: Clinic) -> None:
    User.objects.create_user("unverified@example.com", PASSWORD, email_verified_at=None)
    response = obtain("unverified@example.com", password="wrong wrong wrong")
    assert response.json()["code"] == "invalid_credentials"


# --- Finding 4: password reset tells nothing --------------------------------------------------------


def test_password_reset_does_the_same_work_for_known_and_unknown_addresses(alice: User) -> None:
    with mock.patch("core.outbox.outbox_enqueue") as enqueue:
        for email in (alice.email, "nobody@example.com"):
            response = host_client("alpha.localhost").post(
                "/api/v1/auth/password-reset/", {"email": email}, format="json"
            )
            assert (response.status_code, response.content) == (202, b"")
    assert enqueue.call_count == 2  # enqueued either way: no branch in the request
    for call in enqueue.call_args_list:
        assert "@" not in str(call)  # the address travels encrypted


def test_reset_emails_are_capped_per_recipient(
    alice: User, django_capture_on_commit_callbacks, settings
) -> None:  # noqa: ANN001
    settings.PASSWORD_RESETS_PER_HOUR = 2
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            host_client("alpha.localhost").post(
                "/api/v1/auth/password-reset/", {"email": alice.email}, format="json"
            )
    assert [m.to for m in mail.outbox] == [[alice.email], [alice.email]]


# --- Finding 13: names are one line -----------------------------------------------------------------


def test_a_clinic_name_with_a_line_break_is_refused_and_invitations_keep_working(
    carol: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    client = authed_client(carol, clinic_a)
    for name in ("Alpha\r\nBcc: victim@example.com", "Alpha\u2028Clinic", "Alpha\x00"):
        response = client.patch("/api/v1/admin/clinic/", {"name": name}, format="json")
        assert (response.status_code, list(response.json()["errors"])) == (400, ["name"]), name
    with django_capture_on_commit_callbacks(execute=True):
        invited = client.post(
            "/api/v1/admin/invitations/", {"email": "doc@example.com", "role": "clinician"}, format="json"
        )
    assert invited.status_code == 201
    assert mail.outbox[-1].subject == "You are invited to Alpha Allergy Clinic on CSU Tracker as a clinician"


def test_a_patient_name_with_a_line_break_is_refused(carol: User, clinic_a: Clinic) -> None:
    response = authed_client(carol, clinic_a).post(
        "/api/v1/portal/patients/", {"display_name": "Eve\nAdmin"}, format="json"
    )
    assert (response.status_code, list(response.json()["errors"])) == (400, ["display_name"])


# --- DESIGN §9: a member's refused authorization is in the access log ---------------------------


def test_a_patient_refused_a_portal_page_is_in_the_access_log(
    alice: User, dave: User, clinic_a: Clinic
) -> None:
    from django_tenants.utils import tenant_context

    from patients.models import AccessLog, Patient

    with tenant_context(clinic_a):
        dave_id = Patient.objects.get(user_id=dave.pk).pk
    response = authed_client(alice, clinic_a).get(f"/api/v1/portal/patients/{dave_id}/")
    assert response.status_code == 403
    with tenant_context(clinic_a):
        row = AccessLog.objects.get(action="access.denied")
    assert (row.actor_id, row.actor_role, row.patient_id, row.allowed, row.object_type) == (
        alice.pk,
        "patient",
        dave_id,
        False,
        "PatientDetailApi",
    )
    assert row.request_id == response["X-Request-ID"]


# --- The second, independent review of these fixes --------------------------------------------------


def _link_token(outbox_index: int = -1) -> str:
    return re.search(r"token=([\w:.-]+)", mail.outbox[outbox_index].body).group(1)


def test_an_account_someone_else_created_with_my_address_is_mine_once_i_verify_it(
    dr_bob: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    """Pre-hijacking through enrollment: the attacker redeems a code with the victim's address
    and a password of theirs; the victim later signs up a clinic with her own password and
    opens the link. The account is hers: her password, none of the attacker's credentials."""
    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    attacker_password, victim_password = "attacker's chosen pass 1", "the victim's own pass 2"
    with django_capture_on_commit_callbacks(execute=True):
        planted = host_client("alpha.localhost").post(
            "/api/v1/auth/enroll/",
            {
                "code": code,
                "email": "victim@example.com",
                "password": attacker_password,
                "privacy_notice_version": 1,
            },
            format="json",
        )
    assert planted.status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        signup = host_client("localhost").post(
            "/api/v1/clinics/",
            {
                "name": "Victim Clinic",
                "slug": "victim-clinic",
                "timezone": "Europe/Berlin",
                "country": "DE",
                "admin": {"email": "victim@example.com", "full_name": "Vic", "password": victim_password},
            },
            format="json",
        )
    assert signup.status_code == 202
    confirmed = host_client("localhost").post(
        "/api/v1/auth/verify-email/", {"token": _link_token()}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.json()
    cache.clear()
    victim = host_client("victim-clinic.localhost")
    assert (
        victim.post(
            "/api/v1/auth/token/", {"email": "victim@example.com", "password": victim_password}, format="json"
        ).status_code
        == 200
    )
    attacker = host_client("alpha.localhost").post(
        "/api/v1/auth/token/", {"email": "victim@example.com", "password": attacker_password}, format="json"
    )
    assert attacker.json()["code"] == "invalid_credentials"
    assert bearer(planted.json()["access"]).get("/api/v1/me/profile/").status_code == 401
    assert refresh(planted.json()["refresh"]).status_code == 401


def test_mfa_cannot_be_bound_to_an_unverified_address(clinic_a: Clinic) -> None:
    from tests.conftest import make_member

    unverified = make_member("fresh@example.com", clinic_a, "clinician")
    User.objects.filter(pk=unverified.pk).update(email_verified_at=None)
    response = authed_client(unverified, clinic_a).post(
        "/api/v1/auth/mfa/setup/", {"password": PASSWORD}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "email_unverified")
    assert not TotpDevice.objects.filter(user=unverified).exists()


def test_redeeming_a_code_does_not_tell_a_weak_password_for_a_known_address_apart(
    dr_bob: User, mallory: User, clinic_a: Clinic
) -> None:
    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    answers = [
        host_client("alpha.localhost")
        .post("/api/v1/auth/enroll/", {"code": code, "email": email, "password": "short", "privacy_notice_version": 1}, format="json")
        .json()
        for email in (mallory.email, "nobody@example.com")
    ]
    assert answers[0] == answers[1]
    assert answers[0]["code"] == "weak_password"


def test_failed_proofs_of_an_existing_account_spend_the_clinic_budget(
    settings, dr_bob: User, mallory: User, clinic_a: Clinic
) -> None:  # noqa: ANN001
    from django_tenants.utils import tenant_context

    from patients.models import EnrollmentFailure

    code = (
        authed_client(dr_bob, clinic_a).post("/api/v1/portal/enrollments/", {}, format="json").json()["code"]
    )
    response = host_client("alpha.localhost").post(
        "/api/v1/auth/enroll/",
        {
            "code": code,
            "email": mallory.email,
            "password": "a wrong but long one",
            "privacy_notice_version": 1,
        },
        format="json",
    )
    assert response.json()["code"] == "invalid_credentials"
    with tenant_context(clinic_a):
        assert EnrollmentFailure.objects.count() == 1


def test_a_password_reset_ends_every_access_token_at_once(
    alice: User, clinic_a: Clinic, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    old = tokens_for(alice, clinic_a)
    with django_capture_on_commit_callbacks(execute=True):
        host_client("localhost").post("/api/v1/auth/password-reset/", {"email": alice.email}, format="json")
    uid, token = re.search(r"uid=([\w-]+)&token=([\w-]+)", mail.outbox[-1].body).groups()
    done = host_client("localhost").post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": uid, "token": token, "password": "a new one entirely 7"},
        format="json",
    )
    assert done.status_code == 204
    assert bearer(old["access"]).get("/api/v1/auth/me/").status_code == 401


def test_anonymous_logout_without_a_token_is_a_400(clinic_a: Clinic) -> None:
    response = host_client("alpha.localhost").post("/api/v1/auth/logout/", {}, format="json")
    assert (response.status_code, list(response.json()["errors"])) == (400, ["refresh"])


def test_the_member_list_shows_no_patient_identity(carol: User, alice: User, clinic_a: Clinic) -> None:
    members = authed_client(carol, clinic_a).get("/api/v1/admin/members/").json()
    patient = next(m for m in members if m["user_id"] == str(alice.pk))
    assert (patient["role"], patient["email"], patient["full_name"]) == ("patient", None, None)
    staff = next(m for m in members if m["user_id"] == str(carol.pk))
    assert staff["email"] == carol.email


def test_reactivating_a_clinician_takes_a_seat(carol: User, dr_bob: User, clinic_a: Clinic) -> None:
    from accounts.models import Membership
    from billing.models import Plan
    from billing.services import subscription_start
    from tests.conftest import make_member

    subscription_start(clinic=clinic_a, plan_code="starter")
    Plan.objects.filter(code="starter").update(max_clinicians=1)
    client = authed_client(carol, clinic_a)
    bob = Membership.objects.get(user=dr_bob, clinic=clinic_a)
    assert client.post(f"/api/v1/admin/members/{bob.pk}/deactivate/").status_code == 200
    make_member("second@example.com", clinic_a, "clinician")
    response = client.post(f"/api/v1/admin/members/{bob.pk}/reactivate/")
    assert (response.status_code, response.json()["code"]) == (403, "plan_limit")
    bob.refresh_from_db()
    assert bob.is_active is False
