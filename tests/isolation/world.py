"""The objects the matrix points at: alpha's patients and everything around them, built through
the APIs (or the services where no API creates the object), each on first use.

Alice (patient at alpha) owns the objects whose ids fill the path parameters. dr_bob is on her
care team (assigned by carol through the care-team API); erin is a clinician of alpha outside
it; dave is another patient of alpha; carol is alpha's admin. beta_admin is the admin of beta,
the other clinic. Uma is a patient record of alpha without an account (user_id NULL) on
dr_bob's care team: the record an enrollment code may still be issued for.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import pyotp
import pytest
from django.apps import apps
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.db import connection
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.authentication import SESSION_CLINIC_KEY, SESSION_STARTED_KEY
from accounts.models import Membership, Role, User
from patients.models import AccessLog, Patient
from patients.summary import summaries_roll
from patients.sync import sync_stamp_now
from tenants.models import Clinic
from tests.conftest import PASSWORD, authed_client, host_client, make_member, tokens_for
from tests.fakes import BrowserKeys

ALPHA_HOST = "alpha.localhost"
BETA_HOST = "beta.localhost"
PLATFORM_HOST = "localhost"

NOTE_BODY = "Isolation marker: flare after NSAIDs"
NEW_PASSWORD = "a different horse battery staple 42"
ALPHA_PERSONAS = ("dave", "alice", "erin", "dr_bob", "carol")
BETA_PERSONAS = ("beta_admin", "beta_admin_session", "beta_admin_home")
# Personas who must never see or change Alice's data, whatever the route.
OUTSIDERS = ("anonymous", *BETA_PERSONAS, "dave", "erin")


class World:
    """Alpha's objects for one test (rolled back with it). Attributes are ids as strings."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.clinic_a: Clinic = request.getfixturevalue("clinic_a")
        self.clinic_b: Clinic = request.getfixturevalue("clinic_b")
        self.users: dict[str, User] = {
            name: request.getfixturevalue(name)
            for name in ("alice", "dave", "erin", "dr_bob", "carol", "beta_admin")
        }
        alice_patient: Patient = request.getfixturevalue("alice_patient")
        with tenant_context(self.clinic_a):
            # Enrolled two months ago: reports may cover the last complete week.
            Patient.objects.filter(pk=alice_patient.pk).update(
                enrolled_at=timezone.now() - timedelta(days=60)
            )
            self.alice_today: date = alice_patient.local_today()
            dave_patient = Patient.objects.get(user_id=self.users["dave"].pk)
        self.alice_patient_id = str(alice_patient.pk)
        self.dave_patient_id = str(dave_patient.pk)
        connection.set_schema_to_public()
        assigned = self.api("carol").post(
            "/api/v1/admin/care-teams/",
            {"clinician_user_id": str(self.users["dr_bob"].pk), "patient": self.alice_patient_id},
            format="json",
        )
        assert assigned.status_code == 201, assigned.content
        self.care_team_id: str = assigned.json()["id"]
        self.otp: dict[str, str] = {}
        self.protect_uma = False

    # --- Clients -------------------------------------------------------------------------------

    def api(self, persona: str) -> APIClient:
        """An alpha member's client on alpha's host (for building the world)."""
        return authed_client(self.users[persona], self.clinic_a)

    def client(self, persona: str) -> APIClient:
        """The persona's client, on the host the persona attacks from."""
        if persona == "anonymous":
            return host_client(ALPHA_HOST)
        if persona in ("beta_admin", "beta_admin_home"):
            client = authed_client(self.users["beta_admin"], self.clinic_b)
            client.defaults["HTTP_HOST"] = ALPHA_HOST if persona == "beta_admin" else BETA_HOST
            return client
        if persona == "beta_admin_session":
            client = self.beta_session_client()
            client.defaults["HTTP_HOST"] = ALPHA_HOST
            return client
        return self.api(persona)

    def beta_session_client(self) -> APIClient:
        """A browser session opened on beta's host by beta's admin (the cookie is then replayed
        against alpha: the test client sends cookies to any host)."""
        client = host_client(BETA_HOST)
        client.force_login(self.users["beta_admin"], backend="django.contrib.auth.backends.ModelBackend")
        connection.set_schema_to_public()
        session = client.session
        session[SESSION_CLINIC_KEY] = self.clinic_b.schema_name
        session[SESSION_STARTED_KEY] = int(time.time())
        session.save()
        return client

    def platform_client(self, persona: str) -> APIClient:
        if persona == "anonymous":
            return host_client(PLATFORM_HOST)
        if persona == "clinic_user":
            client = authed_client(self.users["carol"], self.clinic_a)
            client.defaults["HTTP_HOST"] = PLATFORM_HOST
            return client
        assert persona == "operator"
        return self._request.getfixturevalue("ops_client")

    # --- Placeholders ----------------------------------------------------------------------------

    def resolve(self, value: Any, persona: str) -> Any:
        """`"{name}"` → the world's value (any type); `"…{name}…"` → formatted into the string."""
        if isinstance(value, dict):
            return {k: self.resolve(v, persona) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, persona) for v in value]
        if not isinstance(value, str):
            return value
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole:
            return self.value(whole.group(1), persona)
        return re.sub(r"\{(\w+)\}", lambda m: str(self.value(m.group(1), persona)), value)

    def value(self, name: str, persona: str) -> Any:
        if name == "new_uuid":
            return str(uuid.uuid4())
        if name == "persona_user_id":
            user = self.users.get("beta_admin" if persona in BETA_PERSONAS else persona)
            return str(user.pk) if user else str(uuid.uuid4())
        if name == "persona_otp":
            return self.otp.get(persona, "000000")
        if name == "own_prescription_id":
            return self.dave_prescription_id if persona == "dave" else self.alice_prescription_id
        return getattr(self, name)

    # --- Plain values ------------------------------------------------------------------------------

    @property
    def yesterday(self) -> str:
        """Alice's local yesterday (Berlin); also a recordable day for dave (Chicago, behind)."""
        return (self.alice_today - timedelta(days=1)).isoformat()

    @property
    def last_month(self) -> str:
        return (self.alice_today - timedelta(days=30)).isoformat()

    @cached_property
    def unknown_id(self) -> str:
        return str(uuid.uuid4())

    @property
    def alice_email(self) -> str:
        return self.users["alice"].email

    @cached_property
    def alice_refresh(self) -> str:
        return tokens_for(self.users["alice"], self.clinic_a)["refresh"]

    @property
    def alice_reset_uid(self) -> str:
        return urlsafe_base64_encode(force_bytes(self.users["alice"].pk))

    @property
    def alice_reset_token(self) -> str:
        return default_token_generator.make_token(self.users["alice"])

    @property
    def alice_verification_token(self) -> str:
        """What the link in the confirmation email carries (built where the email is)."""
        from accounts.services import email_verification_token

        return email_verification_token(user=self.users["alice"])

    # --- Patients' records (through the patient API, as Alice or dave) -------------------------

    @cached_property
    def alice_prescription_id(self) -> str:
        return self._created(
            "dr_bob",
            f"/api/v1/portal/patients/{self.alice_patient_id}/prescriptions/",
            {"medication": "cetirizine-10", "dose": "10 mg", "guideline_step": 1, "start": self.last_month},
        )

    @cached_property
    def dave_prescription_id(self) -> str:
        return self._created(
            "carol",
            f"/api/v1/portal/patients/{self.dave_patient_id}/prescriptions/",
            {"medication": "cetirizine-10", "dose": "10 mg", "guideline_step": 1, "start": self.last_month},
        )

    @cached_property
    def alice_note_id(self) -> str:
        return self._created(
            "dr_bob", f"/api/v1/portal/patients/{self.alice_patient_id}/notes/", {"body": NOTE_BODY}
        )

    @cached_property
    def alice_diary_entry_id(self) -> str:
        response = self.api("alice").put(
            f"/api/v1/me/diary/{self.yesterday}/", {"wheals": 2, "itch": 1}, format="json"
        )
        assert response.status_code == 201, response.content
        return str(response.json()["id"])

    @cached_property
    def alice_questionnaire_id(self) -> str:
        return self._created("alice", "/api/v1/me/questionnaires/uct/", {"answers": {"items": [2, 2, 2, 2]}})

    @cached_property
    def alice_dose_id(self) -> str:
        return self._created(
            "alice",
            "/api/v1/me/doses/",
            {
                "id": str(uuid.uuid4()),
                "prescription": self.alice_prescription_id,
                "date": self.yesterday,
                "status": "taken",
            },
        )

    @cached_property
    def alice_reminder_id(self) -> str:
        return self._created("alice", "/api/v1/me/reminders/", {"kind": "diary", "local_time": "20:00"})

    @cached_property
    def _alice_push_subscription(self) -> dict[str, Any]:
        keys = BrowserKeys.new()
        body = {
            "endpoint": f"https://fcm.googleapis.com/fcm/send/alice-{uuid.uuid4()}",
            "keys": {"p256dh": keys.p256dh, "auth": keys.auth},
        }
        response = self.api("alice").post("/api/v1/me/push-subscriptions/", body, format="json")
        assert response.status_code == 201, response.content
        return {**body, "id": response.json()["id"]}

    @property
    def alice_push_subscription_id(self) -> str:
        return str(self._alice_push_subscription["id"])

    @property
    def alice_push_endpoint(self) -> str:
        return str(self._alice_push_subscription["endpoint"])

    @cached_property
    def browser_keys(self) -> dict[str, str]:
        keys = BrowserKeys.new()
        return {"p256dh": keys.p256dh, "auth": keys.auth}

    # --- Staff objects -------------------------------------------------------------------------

    @cached_property
    def alice_alert_id(self) -> str:
        from clinicians.models import Alert  # no API opens an alert: the evaluator does

        with tenant_context(self.clinic_a):
            alert = Alert.objects.create(
                patient_id=self.alice_patient_id, kind="severe_uas7", evidence={"uas7": 35}
            )
        connection.set_schema_to_public()
        return str(alert.pk)

    @cached_property
    def alice_report_id(self) -> str:
        response = self.api("dr_bob").post(
            f"/api/v1/portal/patients/{self.alice_patient_id}/reports/", {}, format="json"
        )
        assert response.status_code == 202, response.content
        return self._generated(response.json()["id"])

    @cached_property
    def clinic_report_id(self) -> str:
        from clinicians.reports import last_complete_week, report_request

        with tenant_context(self.clinic_a):
            report, _ = report_request(patient=None, week_start=last_complete_week(self.alice_today))
        connection.set_schema_to_public()
        return self._generated(str(report.pk))

    def _generated(self, report_id: str) -> str:
        """The worker's part, in process: the report is ready with its chart and CSV."""
        from clinicians.reports import report_generate

        with tenant_context(self.clinic_a):
            assert report_generate(report_id=report_id) == "ready"
        connection.set_schema_to_public()
        return report_id

    @cached_property
    def _uma(self) -> dict[str, Any]:
        """A patient record without an account, created by dr_bob (who joins her care team),
        with the open enrollment code issued with it."""
        response = self.api("dr_bob").post(
            "/api/v1/portal/patients/", {"display_name": "Uma Unlinked"}, format="json"
        )
        assert response.status_code == 201, response.content
        return dict(response.json())

    @property
    def uma_patient_id(self) -> str:
        return str(self._uma["id"])

    @property
    def uma_enrollment_id(self) -> str:
        return str(self._uma["enrollment_id"])

    @property
    def uma_enrollment_code(self) -> str:
        return str(self._uma["enrollment_code"])

    @cached_property
    def bob_open_enrollment_id(self) -> str:
        """A code dr_bob issued without a patient (redeeming it creates a new record)."""
        return self._created("dr_bob", "/api/v1/portal/enrollments/", {})

    @cached_property
    def _invitation(self) -> dict[str, str]:
        capture = self._request.getfixturevalue("django_capture_on_commit_callbacks")
        with capture(execute=True):
            response = self.api("carol").post(
                "/api/v1/admin/invitations/",
                {"email": "newdoc@example.com", "role": "clinician"},
                format="json",
            )
        assert response.status_code == 201, response.content
        match = re.search(r"#token=([\w-]+)", str(mail.outbox[-1].body))
        assert match, mail.outbox[-1].body
        return {"id": response.json()["id"], "token": match.group(1)}

    @property
    def invitation_id(self) -> str:
        return self._invitation["id"]

    @property
    def invitation_token(self) -> str:
        return self._invitation["token"]

    @cached_property
    def frank_membership_id(self) -> str:
        """A clinician of alpha who is no persona: the member whose access the admin routes
        switch off and on."""
        frank = make_member("frank@example.com", self.clinic_a, Role.CLINICIAN, "Dr Frank")
        return str(Membership.objects.get(user=frank, clinic=self.clinic_a).pk)

    @cached_property
    def _billing(self) -> dict[str, str]:
        from billing.models import Subscription, SubscriptionStatus
        from billing.services import invoice_generate, subscription_start

        subscription = subscription_start(
            clinic=self.clinic_a, plan_code="clinic", now=datetime(2026, 1, 1, tzinfo=UTC)
        )
        Subscription.objects.filter(pk=subscription.pk).update(
            status=SubscriptionStatus.ACTIVE,
            trial_ends_at=datetime(2026, 1, 31, tzinfo=UTC),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        invoice = invoice_generate(
            clinic=self.clinic_a, period=date(2026, 11, 1), now=datetime(2026, 12, 1, 6, tzinfo=UTC)
        )
        assert invoice is not None
        return {
            "subscription": str(subscription.pk),
            "invoice": str(invoice.pk),
            "number": str(invoice.number),
        }

    @property
    def alpha_subscription_id(self) -> str:
        return self._billing["subscription"]

    @property
    def alpha_invoice_id(self) -> str:
        return self._billing["invoice"]

    @property
    def alpha_invoice_number(self) -> str:
        return self._billing["number"]

    @cached_property
    def _operator_credentials(self) -> dict[str, str]:
        """A second operator whose password and fresh TOTP code go in the sign-in body (the
        operator persona's own code is spent by its sign-in)."""
        from accounts.models import TotpDevice
        from core import crypto

        user = User.objects.create_user("ops2@platform.example", PASSWORD, is_staff=True)
        secret = pyotp.random_base32()
        TotpDevice.objects.create(
            user=user, secret_encrypted=crypto.encrypt(secret), confirmed_at=timezone.now()
        )
        return {"email": user.email, "password": PASSWORD, "otp": pyotp.TOTP(secret).now()}

    @property
    def operator_credentials(self) -> dict[str, str]:
        return self._operator_credentials

    # --- Helpers --------------------------------------------------------------------------------

    def _created(self, persona: str, path: str, body: dict[str, Any]) -> str:
        response = self.api(persona).post(path, body, format="json")
        assert response.status_code == 201, (path, response.content)
        return str(response.json()["id"])

    def built(self, name: str) -> bool:
        return name in self.__dict__

    # --- What the matrix asserts besides the status ------------------------------------------

    def protected_patient_ids(self) -> list[str]:
        """Alice, and Uma where the case names her: the records no outsider may touch."""
        return [self.alice_patient_id, *([self.uma_patient_id] if self.protect_uma else [])]

    def snapshot(self) -> dict[str, list[str]]:
        """Every row that belongs to a protected patient, in every model that names a patient
        (except the access log, which refusals append to)."""
        ids = self.protected_patient_ids()
        rows: dict[str, list[str]] = {}
        with tenant_context(self.clinic_a):
            # The test's writes so far stamped as their commit would (patients.sync): a request
            # can then change a sync version only by writing the row.
            sync_stamp_now(fresh=True)
            # Summary rows of patients the world made through the ORM start stale; a read that
            # recomputes a stale row changes derived values only, so they are made fresh first.
            summaries_roll()
            for model in apps.get_models():
                if model is AccessLog:
                    continue
                queryset: Any
                if model is Patient:
                    queryset = Patient.objects.filter(pk__in=ids)
                elif any(f.attname == "patient_id" for f in model._meta.concrete_fields):
                    queryset = model._default_manager.filter(patient_id__in=ids)
                else:
                    continue
                rows[model._meta.label] = sorted(repr(sorted(r.items())) for r in queryset.values())
        connection.set_schema_to_public()
        return rows

    def leak_markers(self) -> list[str]:
        """Strings that only Alice's data carries: none may appear in an outsider's response."""
        # (Not her email address: the API documentation's examples use alice@example.com too.)
        markers = ["Alice P.", str(self.users["alice"].pk), self.alice_patient_id, NOTE_BODY]
        for name in (
            "alice_note_id",
            "alice_diary_entry_id",
            "alice_questionnaire_id",
            "alice_dose_id",
            "alice_reminder_id",
            "alice_alert_id",
            "alice_report_id",
        ):
            if self.built(name):
                markers.append(getattr(self, name))
        if self.built("_alice_push_subscription"):
            markers.append(self.alice_push_endpoint)
        return markers

    def access_rows(self, clinic: Clinic, persona: str, *, allowed: bool, patient_id: str | None) -> int:
        user = self.users["beta_admin" if persona in BETA_PERSONAS else persona]
        with tenant_context(clinic):
            rows = AccessLog.objects.filter(actor_id=user.pk, allowed=allowed)
            if patient_id is not None:
                rows = rows.filter(patient_id=patient_id)
            count = rows.count()
        connection.set_schema_to_public()
        return count

    def allowed_rows_naming(self, persona: str, patient_ids: list[str]) -> int:
        user = self.users.get("beta_admin" if persona in BETA_PERSONAS else persona)
        if user is None:
            return 0
        with tenant_context(self.clinic_a):
            count = AccessLog.objects.filter(
                actor_id=user.pk, allowed=True, patient_id__in=patient_ids
            ).count()
        connection.set_schema_to_public()
        return count


# --- Setups a case can ask for before its request -------------------------------------------------


def diary_once(world: World, persona: str) -> None:
    """Both patients keep a once-daily diary, each with yesterday's entry."""
    _diary_mode(world, "once")
    world.alice_diary_entry_id  # noqa: B018 (built on first use)
    response = world.api("dave").put(
        f"/api/v1/me/diary/{world.yesterday}/", {"wheals": 1, "itch": 0}, format="json"
    )
    assert response.status_code == 201, response.content


def diary_twice(world: World, persona: str) -> None:
    """Both patients keep a twice-daily diary, each with yesterday morning's entry."""
    _diary_mode(world, "twice")
    for patient in ("alice", "dave"):
        response = world.api(patient).put(
            f"/api/v1/me/diary/{world.yesterday}/am/", {"wheals": 1, "itch": 1}, format="json"
        )
        assert response.status_code == 201, response.content


def _diary_mode(world: World, mode: str) -> None:
    with tenant_context(world.clinic_a):
        Patient.objects.filter(pk__in=[world.alice_patient_id, world.dave_patient_id]).update(diary_mode=mode)
    connection.set_schema_to_public()


def mfa_pending(world: World, persona: str) -> None:
    """The persona (staff of alpha) has started TOTP set-up; its first code confirms it."""
    if persona not in ("erin", "dr_bob", "carol"):
        return
    response = world.api(persona).post("/api/v1/auth/mfa/setup/", {"password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    world.otp[persona] = pyotp.TOTP(response.json()["secret"]).now()


def frank_deactivated(world: World, persona: str) -> None:
    response = world.api("carol").post(f"/api/v1/admin/members/{world.frank_membership_id}/deactivate/")
    assert response.status_code == 200, response.content


def alpha_suspended(world: World, persona: str) -> None:
    from tenants.lifecycle import clinic_suspend

    clinic_suspend(clinic=Clinic.objects.get(pk=world.clinic_a.pk))


def alpha_offboarding(world: World, persona: str) -> None:
    from tenants.lifecycle import clinic_offboard_request

    clinic_offboard_request(clinic=Clinic.objects.get(pk=world.clinic_a.pk))


def alpha_trialing(world: World, persona: str) -> None:
    from billing.models import Subscription

    Subscription.objects.filter(pk=world.alpha_subscription_id).update(
        status="trialing", trial_ends_at=timezone.now() + timedelta(days=10)
    )


SETUPS = {
    "diary_once": diary_once,
    "diary_twice": diary_twice,
    "mfa_pending": mfa_pending,
    "frank_deactivated": frank_deactivated,
    "alpha_suspended": alpha_suspended,
    "alpha_offboarding": alpha_offboarding,
    "alpha_trialing": alpha_trialing,
}
