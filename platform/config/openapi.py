"""The API documentation: one registry entry per operation, applied to the generated schema.

The view docstrings are written for developers (why a lock, which design section); the
published schema is written for the API's users. So the schema takes nothing from the
docstrings: every operation's tag (its audience), summary, description, examples and error
answers come from `OPERATIONS` below, keyed by drf-spectacular's operationId, and
`postprocess_schema` (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) applies them.

Adding an endpoint: add its operationId here (`tests/config/test_openapi_docs.py` names every
operation that lacks an entry, a summary, a tag or its error answers). Errors every operation
shares are added by the hook: 401 where a sign-in is required, 429 everywhere (the default
throttles apply to every view), 503 while the database is unreachable.

Each host serves the schema of its own URLconf (`HostSchemaView`): the platform host
documents signup, operators and billing webhooks; a clinic host the clinic API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.codes import ErrorCode as E
from core.errors import status_title
from core.problems import PROBLEM_CODES, problem_type_uri

PROBLEM_SCHEMA_NAME = "Problem"

# Audience tags (their descriptions: SPECTACULAR_SETTINGS["TAGS"]).
PATIENT_APP = "Patient app"
SYNC = "Sync"
PORTAL = "Portal"
CLINIC_ADMIN = "Clinic admin"
AUTH = "Auth"
OPERATOR = "Platform operator"
BILLING = "Billing"
AUDIENCES = (PATIENT_APP, SYNC, PORTAL, CLINIC_ADMIN, AUTH, OPERATOR, BILLING)

# Markers of developer notes that must never reach the published schema.
DEVELOPER_NOTE_MARKERS = ("DESIGN.md", "HackSoft", "One operation per view", "§", "drf-spectacular")

Errors = Mapping[int, tuple[str, ...]]


@dataclass(frozen=True)
class Operation:
    """What the API's user reads about one operation."""

    tag: str
    summary: str
    description: str
    # Status → the problem codes it can carry (besides the shared 401/429/503 the hook adds).
    errors: Errors = field(default_factory=dict)
    request_example: Any = None
    response_example: Any = None


# --- Error sets an entry lists (the hook adds what the view's classes imply, see below) -------

# --- The registry ------------------------------------------------------------------------------

# Example values shared by the entries (a real catalogue code: `cetirizine-10`).
_PATIENT_ID = "6f1d2c3b-4a59-4e8f-9b7a-1c2d3e4f5a6b"
_CLINICIAN_ID = "0b7e9d2a-3c4f-4a1b-8e6d-5f4a3b2c1d0e"
_ENTRY_ID = "9c3e5a71-2b4d-4f60-8a19-7e6d5c4b3a21"
_PRESCRIPTION_ID = "2a4c6e81-9b3d-4f5a-8c7e-1d2f3a4b5c6d"
_CLIENT_ID = "5e7a9c1b-3d5f-4a2c-9e8b-7a6c5d4e3f21"
_INVOICE_ID = "7d9b1f3a-5c7e-4b2d-8f1a-3c5e7a9b1d2f"
_TOKENS = {
    "access": "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2ln",
    "refresh": "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2ln",
}
_DIARY_ENTRY = {
    "id": _ENTRY_ID,
    "day": "2026-11-23",
    "slot": "day",
    "wheals": 2,
    "itch": 1,
    "uas": 3,
    "angioedema": False,
    "aas_items": [],
    "note": "",
    "recorded_at": "2026-11-23T20:14:05Z",
    "updated_at": "2026-11-23T20:14:05Z",
}
_PRESCRIPTION = {
    "id": _PRESCRIPTION_ID,
    "medication": "cetirizine-10",
    "dose": "10 mg",
    "frequency_kind": "n_per_day",
    "frequency_value": 1,
    "guideline_step": 1,
    "start": "2026-11-02",
    "end": None,
    "prescriber_id": _CLINICIAN_ID,
    "created_at": "2026-11-02T09:30:00Z",
}
_UAS7 = {
    "start": "2026-11-17",
    "end": "2026-11-23",
    "uas7": 18.0,
    "method": "complete",
    "days_observed": 7,
    "itch7": 8.0,
    "hives7": 10.0,
    "band": "moderate",
}
_REMINDER = {
    "id": "4b6d8f0a-2c4e-4a6b-8d0f-1a3c5e7b9d2f",
    "kind": "diary",
    "local_time": "20:00",
    "days_of_week": [1, 2, 3, 4, 5, 6, 7],
    "prescription": None,
    "enabled": True,
    "next_fire_at": "2026-11-30T19:00:00Z",
    "server_version": 1,
}
_INVITATION = {
    "id": "8e0a2c4b-6d8f-4b1a-9c3e-5f7a9b1c3d5e",
    "email": "dr.weber@example.org",
    "role": "clinician",
    "created_at": "2026-11-30T10:00:00Z",
    "expires_at": "2026-12-07T10:00:00Z",
    "accepted_at": None,
    "revoked_at": None,
}
_MEMBER = {
    "id": "1c3e5a7b-9d1f-4c3e-8a5b-7d9f1b3c5e7a",
    "user_id": _CLINICIAN_ID,
    "email": "dr.weber@example.org",
    "full_name": "Dr. Anna Weber",
    "role": "clinician",
    "is_active": False,
    "created_at": "2026-10-01T08:00:00Z",
}
_CARE_TEAM = {
    "id": "3e5a7c9b-1d3f-4e5a-9b7c-1d3e5f7a9b1c",
    "clinician_user_id": _CLINICIAN_ID,
    "clinician_name": "Dr Anna Weber",
    "clinician_title": "Dr",
    "clinician_email": "dr.weber@example.org",
    "clinician_role": "clinician",
    "patient": _PATIENT_ID,
    "patient_name": "M. Schneider",
    "role": "primary",
    "since": "2026-11-02",
    "until": None,
    "active": True,
}
_CLINIC_SETTINGS = {
    "id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "slug": "hautklinik-nord",
    "status": "active",
    "name": "Hautklinik Nord",
    "timezone": "Europe/Berlin",
    "locale": "de",
    "default_diary_mode": "once",
    "diary_late_entry_days": 3,
    "reminder_default_time": "20:00",
    "mfa_required": True,
}
_OPERATOR_CLINIC = {
    "id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "slug": "hautklinik-nord",
    "name": "Hautklinik Nord",
    "status": "suspended",
    "country": "DE",
    "created_at": "2026-09-14T12:00:00Z",
    "member_count": 42,
    "patient_count": 37,
    "offboarding_started_at": None,
    "has_archive": False,
}
_INVOICE = {
    "id": _INVOICE_ID,
    "number": "CSU-2026-000123",
    "clinic": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "period": "2026-10-01",
    "currency": "EUR",
    "subtotal_minor": 24900,
    "tax_rate_bp": 1900,
    "tax_minor": 4731,
    "total_minor": 29631,
    "status": "open",
    "issued_at": "2026-11-01T00:05:00Z",
    "due_at": "2026-11-15T00:05:00Z",
    "paid_at": None,
}
_SUBSCRIPTION = {
    "id": "5a7c9e1b-3d5f-4a7c-9e1b-3d5f7a9c1e3b",
    "clinic": "hautklinik-nord",
    "plan": "clinic",
    "status": "trialing",
    "trial_ends_at": "2026-12-28T00:00:00Z",
    "past_due_since": None,
}
_ALERT = {
    "id": "6b8d0f2a-4c6e-4b8d-0f2a-4c6e8b0d2f4a",
    "patient": _PATIENT_ID,
    "patient_name": "M. Schneider",
    "kind": "severe_uas7",
    "opened_at": "2026-11-24T06:00:00Z",
    "evidence": {"uas7": 31, "week_end": "2026-11-23", "method": "complete", "days_observed": 7},
    "acknowledged_by": _CLINICIAN_ID,
    "acknowledged_at": "2026-11-24T09:12:00Z",
    "resolved_at": None,
    "resolved_reason": "",
}
_REPORT = {
    "id": "8d0f2a4c-6e8b-4d0f-9a4c-6e8b0d2f4a6c",
    "kind": "patient_weekly",
    "patient": _PATIENT_ID,
    "week_start": "2026-11-16",
    "status": "pending",
    "generated_at": None,
}
_BILLING = {
    "plan": {
        "code": "clinic",
        "name": "Clinic",
        "currency": "EUR",
        "base_fee_minor": 9900,
        "per_active_patient_minor": 300,
        "included_clinicians": 5,
        "per_extra_clinician_minor": 1500,
        "max_clinicians": 25,
        "max_patients": 500,
    },
    "pending_plan": None,
    "pending_from": None,
    "status": "active",
    "trial_ends_at": None,
    "period": "2026-11-01",
    "usage": {"active_patients": 37, "active_clinicians": 6},
    "seats": {"clinicians": {"used": 6, "limit": 25}, "patients": {"used": 37, "limit": 500}},
}

OPERATIONS: dict[str, Operation] = {
    # --- Auth (clinic host; password reset and email confirmation on every host) ---------------
    "v1_auth_csrf_retrieve": Operation(
        tag=AUTH,
        summary="Get a CSRF cookie for browser sign-in",
        description=(
            "Sets the `csrftoken` cookie. A browser client that signs in with a session "
            "(`POST /api/v1/auth/login/`) sends the cookie's value back in the `X-CSRFToken` "
            "header on every unsafe request."
        ),
        response_example={"csrf_token": "kM3vQ0s9bW2yT8rN1pL5xC7zA4dF6gH0"},
    ),
    "v1_auth_token_create": Operation(
        tag=AUTH,
        summary="Sign in and get an access and a refresh token",
        description=(
            "Exchanges the email and password of a member of this clinic for a JWT pair: send "
            "`Authorization: Bearer <access>` on every call and renew it with the refresh token. "
            "Staff of a clinic that requires two-factor authentication add `otp`, the current "
            "code of their authenticator app. Repeated failures lock the account or network for "
            "a while (429 `locked_out`)."
        ),
        errors={
            401: (
                E.INVALID_CREDENTIALS,
                E.EMAIL_UNVERIFIED,
                E.MFA_REQUIRED,
                E.INVALID_OTP,
                "otp_already_used",
            ),
            404: (E.NOT_FOUND,),
            429: (E.LOCKED_OUT,),
        },
        request_example={
            "email": "dr.weber@example.org",
            "password": "correct horse battery staple",
            "otp": "492817",
        },
        response_example=_TOKENS,
    ),
    "v1_auth_token_refresh_create": Operation(
        tag=AUTH,
        summary="Renew the access token",
        description=(
            "Returns a new pair; the refresh token sent is used up (rotation). Sending a used "
            "refresh token again revokes its whole family, so keep only the newest."
        ),
        errors={401: (E.TOKEN_NOT_VALID,), 404: (E.NOT_FOUND,)},
        request_example={"refresh": _TOKENS["refresh"]},
        response_example=_TOKENS,
    ),
    "v1_auth_logout_create": Operation(
        tag=AUTH,
        summary="Sign out",
        description=(
            "Revokes the refresh token given and/or ends the browser session. The answer asks the "
            "browser to clear this clinic's stored data (`Clear-Site-Data`), so the next person "
            "on a shared device finds nothing."
        ),
        errors={404: (E.NOT_FOUND,)},
        request_example={"refresh": _TOKENS["refresh"]},
    ),
    "v1_auth_login_create": Operation(
        tag=AUTH,
        summary="Sign in with a browser session",
        description=(
            "For browser clients on the clinic's own origin: sets a session cookie instead of "
            "returning tokens. Get a CSRF cookie first (`GET /api/v1/auth/csrf/`) and send it in "
            "`X-CSRFToken`. Same credentials and lockout as `POST /api/v1/auth/token/`."
        ),
        errors={
            401: (
                E.INVALID_CREDENTIALS,
                E.EMAIL_UNVERIFIED,
                E.MFA_REQUIRED,
                E.INVALID_OTP,
                "otp_already_used",
            ),
            403: (E.PERMISSION_DENIED,),
            404: (E.NOT_FOUND,),
            429: (E.LOCKED_OUT,),
        },
        request_example={"email": "dr.weber@example.org", "password": "correct horse battery staple"},
    ),
    "v1_auth_me_retrieve": Operation(
        tag=AUTH,
        summary="Who is signed in",
        description=(
            "The signed-in account, its clinic and role, and whether two-factor authentication is "
            "set up or still required by the clinic (`mfa_setup_required`: set it up before "
            "anything else answers). `email_verified` is false until the address is confirmed "
            "from the emailed link: until then the account cannot sign in again "
            "(`POST /api/v1/auth/verify-email/resend/` sends a new link)."
        ),
        response_example={
            "user": {"id": _CLINICIAN_ID, "email": "dr.weber@example.org", "full_name": "Dr. Anna Weber"},
            "clinic": {
                "id": _CLINIC_SETTINGS["id"],
                "slug": "hautklinik-nord",
                "name": "Hautklinik Nord",
                "timezone": "Europe/Berlin",
            },
            "role": "clinician",
            "auth_method": "jwt",
            "mfa_enabled": True,
            "mfa_setup_required": False,
            "email_verified": True,
        },
    ),
    "v1_auth_password_create": Operation(
        tag=AUTH,
        summary="Change the password",
        description=(
            "Needs the current password. Signs out every other device (all tokens and sessions are "
            "revoked) and returns a new pair for this client."
        ),
        errors={400: (E.INVALID_CURRENT_PASSWORD, E.WEAK_PASSWORD), 429: (E.LOCKED_OUT,)},
        request_example={
            "current_password": "correct horse battery staple",
            "new_password": "purple monkey dishwasher 42",
        },
        response_example=_TOKENS,
    ),
    "v1_auth_password_reset_create": Operation(
        tag=AUTH,
        summary="Email a password-reset link",
        description=(
            "Always answers 202, whether or not the address has an account, so the answer reveals "
            "nothing. The emailed link opens a page where the new password is set; an address "
            "receives a few reset emails per hour at most."
        ),
        request_example={"email": "dr.weber@example.org"},
    ),
    "v1_auth_password_reset_confirm_create": Operation(
        tag=AUTH,
        summary="Set a new password from a reset link",
        description=(
            "`uid` and `token` come from the emailed link. Every token and session of the account "
            "is revoked; sign in again with the new password."
        ),
        errors={400: (E.RESET_TOKEN_INVALID, E.WEAK_PASSWORD)},
        request_example={
            "uid": "MGI3ZTlkMmE",
            "token": "cbx3f1-7c2a0e8d4b6f9a1c3e5d7b9f",
            "password": "purple monkey dishwasher 42",
        },
    ),
    "v1_auth_verify_email_create": Operation(
        tag=AUTH,
        summary="Confirm an email address",
        description=(
            "Opens the confirmation link sent by email (accounts cannot sign in before). For a new "
            "clinic's signup this also opens the clinic: `clinic` is returned with its address."
        ),
        errors={400: (E.VERIFICATION_TOKEN_INVALID,), 410: (E.SIGNUP_EXPIRED,)},
        request_example={"token": "eyJ1IjoiMGI3ZTlkMmEifQ:1tQ9xA:Vb2mT4sQ"},
        response_example={
            "email_verified": True,
            "clinic": {
                "id": _CLINIC_SETTINGS["id"],
                "slug": "hautklinik-nord",
                "name": "Hautklinik Nord",
                "url": "https://hautklinik-nord.csu-tracker.example/account/",
                "status": "active",
            },
        },
    ),
    "v1_auth_verify_email_resend_create": Operation(
        tag=AUTH,
        summary="Email a new confirmation link",
        description=(
            "For an account that cannot sign in yet (401 `email_unverified`): its first link was "
            "lost or is older than 24 hours. Always answers 202, whether or not the address has "
            "an account, is already confirmed or belongs to this clinic, so the answer reveals "
            "nothing. A new link, valid for 24 hours, goes only to an unconfirmed account that is "
            "a member of this clinic; an address receives a few such emails per hour at most."
        ),
        errors={404: (E.NOT_FOUND,)},
        request_example={"email": "patient@example.org"},
    ),
    "v1_auth_mfa_setup_create": Operation(
        tag=AUTH,
        summary="Start setting up an authenticator app (staff)",
        description=(
            "Needs the current password. Returns the TOTP secret, its `otpauth://` URI and a QR "
            "code (PNG data URI) to scan; confirm with a code from the app "
            "(`POST /api/v1/auth/mfa/confirm/`)."
        ),
        errors={
            400: (E.INVALID_CURRENT_PASSWORD,),
            403: (E.EMAIL_UNVERIFIED,),
            409: (E.MFA_ALREADY_ENABLED,),
            429: (E.LOCKED_OUT,),
        },
        request_example={"password": "correct horse battery staple"},
        response_example={
            "secret": "JBSWY3DPEHPK3PXP",
            "otpauth_uri": "otpauth://totp/CSU%20Tracker:dr.weber%40example.org?secret=JBSWY3DPEHPK3PXP&issuer=CSU%20Tracker",
            "qr_png": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA…",
        },
    ),
    "v1_auth_mfa_confirm_create": Operation(
        tag=AUTH,
        summary="Confirm the authenticator app (staff)",
        description=(
            "Turns two-factor authentication on with a current code from the app. Returns "
            "single-use recovery codes, shown this once: keep them safe. Every earlier token and "
            "session is revoked; this client gets a new pair."
        ),
        errors={400: (E.MFA_NOT_STARTED, E.INVALID_OTP, "otp_already_used"), 409: (E.MFA_ALREADY_ENABLED,)},
        request_example={"otp": "492817"},
        response_example={"recovery_codes": ["7KQ2-MX9D", "P4TW-3ZHN", "C8VB-R6LE"], **_TOKENS},
    ),
    "v1_auth_invitations_accept_create": Operation(
        tag=AUTH,
        summary="Accept a staff invitation",
        description=(
            "`token` comes from the emailed invitation link. A new account is created with "
            "`full_name` and `password`; a person who already has an account proves it with its "
            "password (and `otp` when two-factor authentication is on). Returns a token pair for "
            "the new membership."
        ),
        errors={
            400: (
                E.INVITATION_INVALID,
                E.INVITATION_EXPIRED,
                E.INVITATION_REVOKED,
                E.INVITATION_USED,
                E.WEAK_PASSWORD,
            ),
            401: (E.INVALID_CREDENTIALS, E.MFA_REQUIRED, E.INVALID_OTP, E.OTP_ALREADY_USED),
            403: (E.CLINIC_SUSPENDED, E.CLINIC_OFFBOARDING, E.PLAN_LIMIT),
            404: (E.NOT_FOUND,),
            409: (E.ALREADY_MEMBER,),
            429: (E.LOCKED_OUT,),
        },
        request_example={
            "token": "inv_5Qm2xT8rB1vN7pL3",
            "full_name": "Dr. Anna Weber",
            "password": "purple monkey dishwasher 42",
        },
        response_example={**_TOKENS, "user_id": _CLINICIAN_ID, "role": "clinician"},
    ),
    "v1_auth_enroll_create": Operation(
        tag=AUTH,
        summary="Enroll as a patient with the clinic's code",
        description=(
            "The 8-character code comes from the clinic (printed or as a QR code). Creates the "
            "patient's account (or links an existing one, proven by its password) and returns a "
            "token pair. Wrong codes count against the clinic's guessing budget: past it, "
            "enrollment pauses for a while (429 `enrollment_paused`)."
        ),
        errors={
            400: (
                E.ENROLLMENT_INVALID,
                E.ENROLLMENT_EXPIRED,
                E.ENROLLMENT_REVOKED,
                E.ENROLLMENT_USED,
                E.WEAK_PASSWORD,
            ),
            401: (E.INVALID_CREDENTIALS, E.MFA_REQUIRED, E.INVALID_OTP, E.OTP_ALREADY_USED),
            403: (E.CLINIC_SUSPENDED, E.CLINIC_OFFBOARDING, E.PLAN_LIMIT),
            404: (E.NOT_FOUND,),
            409: (E.PATIENT_ALREADY_ENROLLED, E.ALREADY_MEMBER),
            429: (E.ENROLLMENT_PAUSED, E.LOCKED_OUT),
        },
        request_example={
            "code": "K7QM-3XPD",
            "email": "m.schneider@example.org",
            "password": "purple monkey dishwasher 42",
            "privacy_notice_version": 1,
        },
        response_example={**_TOKENS, "user_id": "2d4f6a8c-0e2b-4d6f-8a0c-2e4b6d8f0a2c", "role": "patient"},
    ),
    # --- Clinic admin (clinic host) -------------------------------------------------------------
    "v1_admin_invitations_list": Operation(
        tag=CLINIC_ADMIN,
        summary="List staff invitations",
        description="Every invitation of this clinic, newest first, with whether it was accepted or revoked.",
        response_example=[_INVITATION],
    ),
    "v1_admin_invitations_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Invite a clinician or clinic admin",
        description=(
            "Emails the person a link to join this clinic with the role given; the link is valid "
            "for 7 days. Patients are not invited this way: they enroll with a code from the portal."
        ),
        errors={400: (E.INVALID_ROLE,), 403: (E.PLAN_LIMIT,), 409: (E.ALREADY_MEMBER,)},
        request_example={"email": "dr.weber@example.org", "role": "clinician"},
        response_example=_INVITATION,
    ),
    "v1_admin_invitations_revoke_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Revoke an invitation",
        description="The invitation's link stops working. An accepted invitation is not undone: deactivate the member.",
        response_example={**_INVITATION, "revoked_at": "2026-11-30T11:00:00Z"},
    ),
    "v1_admin_members_list": Operation(
        tag=CLINIC_ADMIN,
        summary="List the clinic's members",
        description=(
            "Staff and patients with their role and whether they are active. A patient's email and "
            "name are null here: who is a patient is health data, shown only in the portal."
        ),
        response_example=[{**_MEMBER, "is_active": True}],
    ),
    "v1_admin_members_deactivate_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Deactivate a member",
        description=(
            "Their next request to this clinic, with any token or session, is refused (401 "
            "`membership_inactive`) until they are reactivated."
        ),
        errors={409: (E.CANNOT_DEACTIVATE_SELF,)},
        response_example=_MEMBER,
    ),
    "v1_admin_members_reactivate_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Reactivate a member",
        description="The member can sign in again.",
        errors={403: (E.PLAN_LIMIT,)},
        response_example={**_MEMBER, "is_active": True},
    ),
    "v1_admin_clinic_retrieve": Operation(
        tag=CLINIC_ADMIN,
        summary="Read the clinic's settings",
        description=(
            "Name, time zone, language, the default diary mode for new patients (`once`: one "
            "entry a day; `twice`: morning and evening), how many days late a diary entry is "
            "accepted, the default reminder time and whether staff must use two-factor authentication."
        ),
        response_example=_CLINIC_SETTINGS,
    ),
    "v1_admin_clinic_partial_update": Operation(
        tag=CLINIC_ADMIN,
        summary="Change the clinic's settings",
        description=(
            "Send only the fields to change. Requiring two-factor authentication "
            "(`mfa_required: true`) is refused until the admin making the change has set it up, so "
            "nobody locks themselves out."
        ),
        errors={422: ("mfa_setup_first",)},
        request_example={"diary_late_entry_days": 3, "mfa_required": True},
        response_example=_CLINIC_SETTINGS,
    ),
    "v1_admin_care_teams_list": Operation(
        tag=CLINIC_ADMIN,
        summary="List care-team assignments",
        description="Which clinician cares for which patient, since when and until when; filter by patient or active.",
        response_example=[_CARE_TEAM],
    ),
    "v1_admin_care_teams_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Assign a clinician to a patient's care team",
        description=(
            "Clinicians see and treat only the patients in their care teams. `role` is `primary` "
            "or `secondary` (default `primary`)."
        ),
        errors={400: (E.NOT_A_CLINICIAN,), 404: (E.NOT_FOUND,), 409: (E.ALREADY_ASSIGNED,)},
        request_example={"clinician_user_id": _CLINICIAN_ID, "patient": _PATIENT_ID, "role": "primary"},
        response_example=_CARE_TEAM,
    ),
    "v1_admin_care_teams_end_create": Operation(
        tag=CLINIC_ADMIN,
        summary="End a care-team assignment",
        description="The clinician loses access to the patient after `until` (default: today).",
        errors={409: (E.ALREADY_ENDED,)},
        request_example={"until": "2026-11-29"},
        response_example={**_CARE_TEAM, "until": "2026-11-29", "active": False},
    ),
    "v1_admin_access_log_list": Operation(
        tag=CLINIC_ADMIN,
        summary="Read the access log",
        description=(
            "Who read or changed patients' data, and every refused attempt, newest first. Filter "
            "by patient; page with `before` (a timestamp) and `limit`. Reading it is itself logged."
        ),
        response_example=[
            {
                "id": "9f1b3d5a-7c9e-4f1b-8d5a-7c9e1f3b5d7a",
                "created_at": "2026-11-30T09:41:12Z",
                "actor_id": _CLINICIAN_ID,
                "actor_role": "clinician",
                "action": "patient.read",
                "patient_id": _PATIENT_ID,
                "object_type": "PatientDetailApi",
                "object_id": _PATIENT_ID,
                "allowed": True,
                "ip": "203.0.113.7",
            }
        ],
    ),
    # --- Billing of the clinic (clinic host, admins) --------------------------------------------
    "v1_admin_billing_retrieve": Operation(
        tag=BILLING,
        summary="The clinic's plan, usage and subscription",
        description=(
            "The current plan and its prices (minor units: cents), a pending plan change, the "
            "subscription's status and trial end, and this month's usage so far."
        ),
        response_example=_BILLING,
    ),
    "v1_admin_billing_plan_create": Operation(
        tag=BILLING,
        summary="Change the clinic's plan",
        description=(
            "`plan` is `starter`, `clinic` or `enterprise`. An upgrade applies now; a downgrade "
            "from the next period, and only if the clinic's members fit the smaller plan."
        ),
        errors={403: (E.PLAN_LIMIT,), 404: (E.NO_SUBSCRIPTION,), 409: (E.SUBSCRIPTION_CANCELED,)},
        request_example={"plan": "clinic"},
        response_example=_BILLING,
    ),
    "v1_admin_billing_invoices_list": Operation(
        tag=BILLING,
        summary="List the clinic's invoices",
        description="Amounts in minor units (cents); `tax_rate_bp` in basis points (1900 = 19 %).",
        response_example=[_INVOICE],
    ),
    "v1_admin_billing_invoices_retrieve": Operation(
        tag=BILLING,
        summary="One invoice with its lines",
        description="Amounts in minor units (cents).",
        response_example={
            **_INVOICE,
            "lines": [
                {
                    "description": "Clinic plan, October 2026",
                    "quantity": 1,
                    "unit_minor": 9900,
                    "amount_minor": 9900,
                },
                {"description": "Active patients", "quantity": 50, "unit_minor": 300, "amount_minor": 15000},
            ],
        },
    ),
    "v1_admin_billing_invoices.csv_retrieve": Operation(
        tag=BILLING,
        summary="The clinic's invoices as CSV",
        description="One row per invoice, for accounting software.",
    ),
    "v1_admin_billing_invoices_invoice.html_retrieve": Operation(
        tag=BILLING,
        summary="One invoice as a printable page",
        description="An HTML page to print or save as PDF.",
    ),
    # --- Billing webhooks (platform host) -------------------------------------------------------
    "v1_billing_webhooks_payments_create": Operation(
        tag=BILLING,
        summary="Receive a payment provider's event",
        description=(
            "For the payment provider only. Signed with HMAC-SHA256 over the body "
            "(`X-Signature: t=<unix time>,v1=<hex>`). An event id seen before answers "
            "`duplicate`, an unknown event type `ignored` (200, so the provider stops retrying)."
        ),
        errors={400: (E.SIGNATURE_INVALID, E.SIGNATURE_EXPIRED), 422: (E.UNKNOWN_INVOICE,)},
        request_example={
            "id": "evt_1QfT2x",
            "type": "invoice.paid",
            "created": 1764500000,
            "data": {"invoice": "CSU-2026-000123"},
        },
        response_example={"received": True, "result": "handled"},
    ),
    # --- Clinic signup (platform host) ----------------------------------------------------------
    "v1_clinics_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Sign up a new clinic",
        description=(
            "On the platform host. Reserves the clinic's address (`slug`: its host is "
            "`<slug>.<platform domain>`) and emails the first admin a confirmation link. The "
            "clinic opens when the link is used (`POST /api/v1/auth/verify-email/`) and is "
            "released after 24 hours otherwise. The answer is the same whether or not the email "
            "already has an account."
        ),
        errors={
            400: (E.INVALID_SLUG, E.RESERVED_SLUG, E.INVALID_NAME, E.INVALID_TIMEZONE, E.WEAK_PASSWORD),
            409: (E.SLUG_TAKEN,),
            429: (E.SIGNUP_BUSY,),
        },
        request_example={
            "name": "Hautklinik Nord",
            "slug": "hautklinik-nord",
            "timezone": "Europe/Berlin",
            "country": "DE",
            "plan": "clinic",
            "admin": {
                "email": "admin@hautklinik-nord.example",
                "full_name": "Dr. Jonas Keller",
                "password": "purple monkey dishwasher 42",
            },
        },
        response_example={
            "slug": "hautklinik-nord",
            "status": "pending",
            "detail": "Check the admin's inbox: the clinic opens once its confirmation link is used.",
        },
    ),
    "v1_clinics_slug_availability_retrieve": Operation(
        tag=CLINIC_ADMIN,
        summary="Check whether a clinic address is free",
        description="For the signup form: `available` and, if not, the `reason` (taken, reserved or invalid).",
        response_example={"slug": "hautklinik-nord", "available": False, "reason": "slug_taken"},
    ),
    # --- Platform operators (platform host) -----------------------------------------------------
    "v1_platform_auth_token_create": Operation(
        tag=OPERATOR,
        summary="Sign in as a platform operator",
        description=(
            "On the platform host only. Needs the operator's password and authenticator code; "
            "returns an access token (no refresh token: sign in again when it expires) for the "
            "`/api/v1/platform/` operations."
        ),
        errors={
            401: (E.INVALID_CREDENTIALS, E.INVALID_OTP, "otp_already_used"),
            404: (E.NOT_FOUND,),
            429: (E.LOCKED_OUT,),
        },
        request_example={
            "email": "ops@csu-tracker.example",
            "password": "correct horse battery staple",
            "otp": "492817",
        },
        response_example={"access": _TOKENS["access"]},
    ),
    "v1_platform_clinics_list": Operation(
        tag=OPERATOR,
        summary="List clinics",
        description="Every clinic with its status and member counts; filter by `status`. At most 1000, by address.",
        response_example=[_OPERATOR_CLINIC],
    ),
    "v1_platform_clinics_suspend_create": Operation(
        tag=OPERATOR,
        summary="Suspend a clinic",
        description=(
            "Staff can still read but not change anything; patients keep recording (patient "
            "safety). Undo with reactivate."
        ),
        errors={409: (E.INVALID_STATUS,)},
        response_example=_OPERATOR_CLINIC,
    ),
    "v1_platform_clinics_reactivate_create": Operation(
        tag=OPERATOR,
        summary="Reactivate a suspended clinic",
        description=(
            "Ends a suspension. An offboarding clinic is not reactivated (409): cancel its "
            "offboarding with `offboard/cancel/`."
        ),
        errors={409: (E.INVALID_STATUS,)},
        response_example={**_OPERATOR_CLINIC, "status": "active"},
    ),
    "v1_platform_clinics_offboard_create": Operation(
        tag=OPERATOR,
        summary="Start offboarding a clinic",
        description=(
            "The clinic becomes read-only and its data is exported in the background to an "
            "encrypted archive (download it from `archive/` when `has_archive` is true)."
        ),
        errors={409: (E.INVALID_STATUS,)},
        response_example={
            **_OPERATOR_CLINIC,
            "status": "offboarding",
            "offboarding_started_at": "2026-11-30T12:00:00Z",
        },
    ),
    "v1_platform_clinics_offboard_cancel_create": Operation(
        tag=OPERATOR,
        summary="Cancel a clinic's offboarding",
        description=(
            "During the grace period, before the purge: the clinic returns to `to` (`active`, the "
            "default, or `suspended`), its staff and patients can write again, and its export "
            "archive is deleted. A purged clinic comes back only from its archive "
            "(`manage.py clinic_import`)."
        ),
        errors={400: (E.VALIDATION_ERROR,), 404: (E.NOT_FOUND,), 409: (E.INVALID_STATUS,)},
        request_example={"to": "active"},
        response_example={**_OPERATOR_CLINIC, "status": "active"},
    ),
    "v1_platform_clinics_archive_retrieve": Operation(
        tag=OPERATOR,
        summary="Download an offboarded clinic's export",
        description=(
            "A zip of one JSON Lines file per table and a manifest of row counts and SHA-256 "
            "checksums, verified and decrypted on the way out. The download is logged."
        ),
        errors={
            404: (E.ARCHIVE_NOT_READY, E.ARCHIVE_MISSING),
            409: (E.ARCHIVE_CHECKSUM_MISMATCH, E.ARCHIVE_UNREADABLE),
        },
    ),
    "v1_platform_subscriptions_list": Operation(
        tag=OPERATOR,
        summary="List subscriptions",
        description="Every clinic's subscription; filter by `status` (trialing, active, past_due, canceled).",
        response_example=[_SUBSCRIPTION],
    ),
    "v1_platform_subscriptions_extend_trial_create": Operation(
        tag=OPERATOR,
        summary="Extend a trial",
        description="Moves the trial's end `days` later (1 to 90).",
        errors={409: (E.NOT_TRIALING,)},
        request_example={"days": 14},
        response_example=_SUBSCRIPTION,
    ),
    "v1_platform_invoices_list": Operation(
        tag=OPERATOR,
        summary="List invoices of all clinics",
        description="Filter by `clinic` (its address) and `status`. Amounts in minor units (cents).",
        response_example=[_INVOICE],
    ),
    "v1_platform_invoices_void_create": Operation(
        tag=OPERATOR,
        summary="Void an open invoice",
        description="The invoice stays on record as `void` and is no longer due.",
        errors={409: (E.INVOICE_NOT_OPEN,)},
        response_example={**_INVOICE, "status": "void"},
    ),
    # --- Patient app (clinic host, patients) ----------------------------------------------------
    "v1_me_profile_retrieve": Operation(
        tag=PATIENT_APP,
        summary="The patient's profile",
        description=(
            "Time zone, language, diary mode (`once`: one entry a day for the past 24 hours; "
            "`twice`: a morning and an evening entry, each for the past 12 hours), quiet hours for "
            "reminders, the patient's local `today` and how many days back a diary entry is still "
            "accepted (`late_entry_days`)."
        ),
        response_example={
            "id": _PATIENT_ID,
            "display_name": "M. Schneider",
            "date_of_birth": "1984-05-17",
            "timezone": "Europe/Berlin",
            "locale": "de",
            "diary_mode": "once",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "status": "active",
            "enrolled_at": "2026-11-02T09:45:00Z",
            "today": "2026-11-30",
            "late_entry_days": 3,
        },
    ),
    "v1_me_profile_partial_update": Operation(
        tag=PATIENT_APP,
        summary="Change the patient's settings",
        description="Send only the fields to change. Times are local wall-clock `HH:MM`.",
        errors={400: (E.INVALID_TIMEZONE,)},
        request_example={
            "timezone": "Europe/Berlin",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
        },
    ),
    "v1_me_summary_retrieve": Operation(
        tag=PATIENT_APP,
        summary="The patient's current scores at a glance",
        description=(
            "This week's UAS7 (0–42, the sum of 7 daily scores; each day wheals 0–3 + itch 0–3) "
            "with its band (0 urticaria-free, 1–6 well controlled, 7–15 mild, 16–27 moderate, "
            "28–42 severe) and last week's, the current UCT (0–16; 12 or more: well controlled), "
            "diary completion and medication adherence over 28 days."
        ),
    ),
    "v1_me_diary_list": Operation(
        tag=PATIENT_APP,
        summary="List diary entries",
        description=(
            "Entries between `from` and `to` (local dates, default: the last 28 days; at most 366 "
            "days). Each day scores wheals 0–3 and itch 0–3 (UAS, 0–6)."
        ),
        errors={400: (E.INVALID_DATE, E.INVALID_RANGE, E.RANGE_TOO_LONG)},
        response_example=[_DIARY_ENTRY],
    ),
    "v1_me_diary_update": Operation(
        tag=PATIENT_APP,
        summary="Record a day's diary entry (once-daily diary)",
        description=(
            "Creates (201) or replaces (200) the entry for the local date `day` (YYYY-MM-DD), "
            "rating the past 24 hours. `wheals`: 0 none, 1 mild (fewer than 20 wheals), 2 moderate "
            "(20–50), 3 intense (more than 50, or large confluent areas). `itch`: 0 none, 1 mild "
            "(present but not annoying or troublesome), 2 moderate (troublesome but does not "
            "interfere with normal daily activity or sleep), 3 intense (severe, interferes with "
            "normal daily activity or sleep). With `angioedema: true`, `aas_items` holds the 5 "
            "Angioedema Activity Score answers (0–3 each). A day after today or before the "
            "clinic's late-entry window is refused."
        ),
        errors={
            400: (
                E.DIARY_FUTURE_DATE,
                E.DIARY_TOO_LATE,
                E.DIARY_SLOT_MISMATCH,
                E.AAS_REQUIRED,
                E.AAS_WITHOUT_ANGIOEDEMA,
                E.INVALID_DATE,
                E.INVALID_CHARACTERS,
            ),
            403: (E.CONSENT_REQUIRED,),
            409: (E.DIARY_DAY_KIND, E.DIARY_ID_CONFLICT, E.DIARY_CONFLICT),
        },
        request_example={"id": _ENTRY_ID, "wheals": 2, "itch": 1, "angioedema": False, "note": ""},
        response_example=_DIARY_ENTRY,
    ),
    "v1_me_diary_destroy": Operation(
        tag=PATIENT_APP,
        summary="Delete a day's diary entry",
        description="Within the clinic's late-entry window, like recording it.",
        errors={400: (E.DIARY_TOO_LATE, E.INVALID_DATE), 403: (E.CONSENT_REQUIRED,)},
    ),
    "v1_me_diary_slot_update": Operation(
        tag=PATIENT_APP,
        summary="Record a morning or evening entry (twice-daily diary)",
        description=(
            "As the once-daily entry, for `slot` `am` or `pm`, each rating the past 12 hours: "
            "`wheals` 0 none, 1 fewer than 6, 2 6–12, 3 more than 12 wheals; `itch` 0 none, 1 "
            "mild, 2 moderate, 3 severe. The day's score is the average of morning and evening."
        ),
        errors={
            400: (
                E.DIARY_FUTURE_DATE,
                E.DIARY_TOO_LATE,
                E.DIARY_SLOT_MISMATCH,
                E.AAS_REQUIRED,
                E.AAS_WITHOUT_ANGIOEDEMA,
                E.INVALID_DATE,
                E.INVALID_CHARACTERS,
            ),
            403: (E.CONSENT_REQUIRED,),
            409: (E.DIARY_DAY_KIND, E.DIARY_ID_CONFLICT, E.DIARY_CONFLICT),
        },
        request_example={"id": _ENTRY_ID, "wheals": 1, "itch": 2},
        response_example={**_DIARY_ENTRY, "slot": "am", "wheals": 1, "itch": 2},
    ),
    "v1_me_diary_slot_destroy": Operation(
        tag=PATIENT_APP,
        summary="Delete a morning or evening entry",
        description="Within the clinic's late-entry window, like recording it.",
        errors={400: (E.DIARY_TOO_LATE, E.INVALID_DATE), 403: (E.CONSENT_REQUIRED,)},
    ),
    "v1_me_medications_list": Operation(
        tag=PATIENT_APP,
        summary="Today's medications",
        description=(
            "The patient's active prescriptions with the doses due today and those already logged. "
            "`guideline_step` is the EAACI/GA²LEN treatment step (1 standard-dose antihistamine, 2 "
            "up-dosed antihistamine, 3 omalizumab, 4 ciclosporin)."
        ),
        response_example=[
            {
                "id": _PRESCRIPTION_ID,
                "medication": "cetirizine-10",
                "name": "Cetirizine 10 mg once daily (standard dose)",
                "dose": "10 mg",
                "frequency_kind": "n_per_day",
                "frequency_value": 1,
                "guideline_step": 1,
                "start": "2026-11-02",
                "end": None,
                "due_today": 1,
                "logged_today": [],
            }
        ],
    ),
    "v1_me_doses_create": Operation(
        tag=PATIENT_APP,
        summary="Log a dose taken or skipped",
        description=(
            "`id` is generated by the app (offline-first): sending the same id again answers 200 "
            "with the dose already stored. `date` is the local date the dose was due."
        ),
        errors={
            400: (E.DOSE_FUTURE_DATE, E.DOSE_TOO_LATE, E.PRESCRIPTION_INACTIVE),
            403: (E.CONSENT_REQUIRED,),
        },
        request_example={
            "id": "c1e3a5b7-9d1f-4b3d-8f5a-7c9e1b3d5f7a",
            "prescription": _PRESCRIPTION_ID,
            "date": "2026-11-30",
            "status": "taken",
            "taken_at": "2026-11-30T07:45:00Z",
        },
        response_example={
            "id": "c1e3a5b7-9d1f-4b3d-8f5a-7c9e1b3d5f7a",
            "prescription": _PRESCRIPTION_ID,
            "date": "2026-11-30",
            "status": "taken",
            "taken_at": "2026-11-30T07:45:00Z",
        },
    ),
    "v1_me_questionnaires_list": Operation(
        tag=PATIENT_APP,
        summary="List answered questionnaires",
        description=(
            "UCT (Urticaria Control Test, 4 weeks' recall), UCT7 (the same 4 items over 7 days) "
            "and AAS (Angioedema Activity Score, one day), newest first, with scores and categories."
        ),
    ),
    "v1_me_questionnaires_create": Operation(
        tag=PATIENT_APP,
        summary="Answer a questionnaire",
        description=(
            "`instrument` is `uct`, `uct7` or `aas`. UCT and UCT7: `answers` is "
            '`{"items": [4 answers, 0–4 each]}`, total 0–16 (16 complete control, 12–15 well '
            'controlled, below 12 poorly controlled). AAS: `{"angioedema": true, "items": '
            "[5 answers, 0–3 each]}`. `period_end` is the local date the recall period ends "
            "(default today)."
        ),
        errors={
            400: (E.INVALID_ANSWERS, E.FUTURE_DATE, E.QUESTIONNAIRE_TOO_LATE),
            403: (E.CONSENT_REQUIRED,),
            404: (E.UNKNOWN_INSTRUMENT,),
        },
        request_example={"answers": {"items": [3, 3, 2, 4]}, "period_end": "2026-11-30"},
        response_example={
            "id": "e3a5c7b9-1d3f-4a5c-9e7b-1d3f5a7c9e1b",
            "instrument": "uct",
            "answers": {"items": [3, 3, 2, 4]},
            "score": 12,
            "category": "well_controlled",
            "period_end": "2026-11-30",
            "recorded_at": "2026-11-30T18:02:00Z",
        },
    ),
    "v1_me_scores_uas7_list": Operation(
        tag=PATIENT_APP,
        summary="Weekly UAS7 scores",
        description=(
            "`weeks` weeks ending on `end` (default today), oldest first. UAS7 is 0–42; `itch7` "
            "and `hives7` (0–21 each) are its two halves. `method` `prorated`: a few days were "
            "missing and the score was scaled up; `missing`: too few days to score."
        ),
        errors={400: (E.INVALID_DATE,)},
        response_example=[_UAS7],
    ),
    "v1_me_scores_uct_list": Operation(
        tag=PATIENT_APP,
        summary="UCT and UCT7 results",
        description="Newest first: total 0–16, category `complete_control` (16), `well_controlled` (12–15) or `poorly_controlled`.",
    ),
    "v1_me_scores_aas_retrieve": Operation(
        tag=PATIENT_APP,
        summary="Angioedema activity (AAS7 and AAS28)",
        description=(
            "AAS7 (0–105) and AAS28 (0–420) ending on `end` (default today), summed from the diary's "
            "daily AAS (5 items, 0–3 each, 0–15 a day; 0 on days without angioedema)."
        ),
        errors={400: (E.INVALID_DATE,)},
    ),
    "v1_me_consent_retrieve": Operation(
        tag=PATIENT_APP,
        summary="The patient's consent to the privacy notice",
        description=(
            "`status`: `given` (health data is stored), `none` or `withdrawn` (nothing new is "
            "stored), `outdated` (the clinic published a notice that needs a new acceptance). "
            "With the current notice to show and the history of acceptances and withdrawals."
        ),
    ),
    "v1_me_consent_create": Operation(
        tag=PATIENT_APP,
        summary="Accept the clinic's privacy notice",
        description=(
            "`version` is the notice the patient read (`GET /api/v1/auth/privacy-notice/`); it "
            "must be the current one (400 `privacy_notice_outdated` names the current version). "
            "Needed again after a withdrawal or when the clinic publishes a version that asks for it."
        ),
        errors={400: (E.PRIVACY_NOTICE_OUTDATED,)},
        request_example={"version": 2},
    ),
    "v1_me_consent_withdraw_create": Operation(
        tag=PATIENT_APP,
        summary="Withdraw consent",
        description=(
            "From now on the patient's diary, doses and questionnaires are refused (403 "
            "`consent_required`) until they accept again; what was recorded stays, and the clinic "
            "sees the withdrawal."
        ),
        errors={409: (E.CONSENT_NOT_GIVEN,)},
    ),
    "v1_auth_privacy_notice_retrieve": Operation(
        tag=AUTH,
        summary="The clinic's current privacy notice",
        description=(
            "Public on the clinic's host: the enrollment screen shows it before the patient has an "
            "account, and enrollment names the `version` accepted. `texts` maps each language of "
            "the app to the notice's plain text."
        ),
        errors={404: (E.NOT_FOUND,)},
    ),
    "v1_admin_privacy_notices_list": Operation(
        tag=CLINIC_ADMIN,
        summary="List the clinic's privacy notices",
        description="Every published version, newest first (published versions never change).",
    ),
    "v1_admin_privacy_notices_create": Operation(
        tag=CLINIC_ADMIN,
        summary="Publish a new privacy notice",
        description=(
            "The next version, with its text in every language of the patient app (`en`, `de`). "
            "`requires_reacceptance: true` when the change needs the patients' new agreement (a "
            "new purpose or recipient): until they accept it, their app stores nothing new."
        ),
        errors={400: (E.INVALID_CHARACTERS,)},
        request_example={
            "texts": {
                "en": "Privacy notice\n\nHautklinik Nord stores your diary to treat your urticaria…",
                "de": "Datenschutzerklärung\n\nDie Hautklinik Nord speichert Ihr Tagebuch…",
            },
            "requires_reacceptance": False,
        },
    ),
    "v1_me_care_team_list": Operation(
        tag=PATIENT_APP,
        summary="The patient's care team",
        description="The clinicians who look after the patient, primary first, with their names and roles.",
        response_example=[
            {"name": "Dr Anna Weber", "care_role": "primary", "since": "2026-11-02"},
            {"name": "Dr Tunde Okafor", "care_role": "secondary", "since": "2026-11-16"},
        ],
    ),
    "v1_me_reminders_list": Operation(
        tag=PATIENT_APP,
        summary="List reminders",
        description="`days_of_week`: 1 = Monday … 7 = Sunday (ISO 8601). `local_time` is wall-clock `HH:MM`.",
        response_example=[_REMINDER],
    ),
    "v1_me_reminders_create": Operation(
        tag=PATIENT_APP,
        summary="Create a reminder",
        description=(
            "A diary, medication (name the `prescription`) or questionnaire reminder at a local "
            "time on `days_of_week` (1 = Monday … 7 = Sunday; default every day). Quiet hours "
            "hold a reminder back. `id` may be generated by the app: sending it again answers 200."
        ),
        errors={
            400: (E.TOO_MANY_REMINDERS, E.PRESCRIPTION_INACTIVE),
            403: (E.CONSENT_REQUIRED,),
            404: (E.NOT_FOUND,),
        },
        request_example={"kind": "diary", "local_time": "20:00", "days_of_week": [1, 2, 3, 4, 5, 6, 7]},
        response_example=_REMINDER,
    ),
    "v1_me_reminders_partial_update": Operation(
        tag=PATIENT_APP,
        summary="Change a reminder",
        description="Send only the fields to change; `days_of_week` 1 = Monday … 7 = Sunday.",
        errors={400: (E.PRESCRIPTION_INACTIVE,), 403: (E.CONSENT_REQUIRED,)},
        request_example={"local_time": "21:30", "enabled": True},
        response_example={**_REMINDER, "local_time": "21:30"},
    ),
    "v1_me_reminders_destroy": Operation(
        tag=PATIENT_APP,
        summary="Delete a reminder",
        description="The reminder stops at once.",
        errors={403: (E.CONSENT_REQUIRED,)},
    ),
    "v1_me_reminder_deliveries_list": Operation(
        tag=PATIENT_APP,
        summary="Recent reminder deliveries",
        description="When each reminder was sent, by which channel (push or email), or why it was held back.",
    ),
    "v1_me_push_subscriptions_retrieve": Operation(
        tag=PATIENT_APP,
        summary="Push subscriptions and the server's VAPID key",
        description=(
            "`vapid_public_key` is the `applicationServerKey` to pass to "
            "`PushManager.subscribe()`; then register the subscription here."
        ),
    ),
    "v1_me_push_subscriptions_create": Operation(
        tag=PATIENT_APP,
        summary="Register a browser push subscription",
        description=(
            "The `endpoint` and `keys` of a `PushSubscription` (only known push services are "
            "accepted). Registering the same endpoint again answers 200."
        ),
        errors={
            400: (E.PUSH_ENDPOINT_NOT_ALLOWED, E.TOO_MANY_PUSH_SUBSCRIPTIONS),
            409: (E.PUSH_ENDPOINT_TAKEN,),
        },
        request_example={
            "endpoint": "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bF",
            "keys": {
                "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                "auth": "tBHItJI5svbpez7KI4CCXg",
            },
        },
    ),
    "v1_me_push_subscriptions_destroy": Operation(
        tag=PATIENT_APP,
        summary="Remove a push subscription",
        description="Reminders are no longer pushed to that browser.",
    ),
    "v1_me_export_retrieve": Operation(
        tag=PATIENT_APP,
        summary="Download all of the patient's data",
        description=(
            "Everything the clinic holds about the patient as one JSON document (right of access, "
            "GDPR Art. 15 and 20). Still available while the clinic is suspended or leaving."
        ),
    ),
    "v1_me_deletion_request_create": Operation(
        tag=PATIENT_APP,
        summary="Ask the clinic to erase the patient's data",
        description=(
            "Records the patient's request for erasure (GDPR Art. 17) for the clinic's staff to act "
            "on. Still accepted while the clinic is leaving the platform."
        ),
        request_example={"reason": "I am moving to another clinic."},
        response_example={"id": "f4b6d8a0-2c4e-4f6b-8d0a-2c4e6f8b0d2a", "created_at": "2026-11-30T18:10:00Z"},
    ),
    # --- Sync (clinic host, the patient app) ---------------------------------------------------
    "v1_sync_push_create": Operation(
        tag=SYNC,
        summary="Send the device's queued changes",
        description=(
            "Up to 500 mutations, numbered by `mutation_id` without gaps per `client_id`. Each gets "
            "a result: `applied`, `merged`, `conflict`, `rejected` (with a problem `code`) or "
            "`duplicate` (already applied). A gap in the ids applies nothing (409 "
            "`mutation_gap`): resend from the first unacknowledged mutation. A `client_id` the "
            "server no longer knows the history of (the clinic was restored from a backup) "
            "applies nothing either (409 `reset_required`): continue as a new client, the queued "
            "mutations numbered again from 1, and pull without a cursor. Diary fields follow "
            "the same scales as the diary operations (wheals and itch 0–3). A `rejected` result "
            "carries the code a REST operation would answer, or one of the sync's own: "
            "`unknown_field`, `server_owned` (the clinic writes this table), `insert_only` and "
            "`immutable` (dose logs are corrected by a new log), `immutable_field`, "
            "`invalid_value`, `min_value`."
        ),
        errors={
            403: (E.CLIENT_NOT_YOURS, E.CONSENT_REQUIRED),
            409: (E.MUTATION_GAP, E.RESET_REQUIRED),
            413: (E.BATCH_TOO_LARGE,),
            426: (E.UPGRADE_REQUIRED,),
        },
        request_example={
            "client_id": _CLIENT_ID,
            "schema_version": 3,
            "mutations": [
                {
                    "mutation_id": 41,
                    "table": "diary_entry",
                    "id": _ENTRY_ID,
                    "op": "upsert",
                    "base_version": None,
                    "fields": {
                        "day": "2026-11-30",
                        "slot": "day",
                        "wheals": 2,
                        "itch": 1,
                        "angioedema": False,
                    },
                }
            ],
        },
        response_example={
            "last_mutation_id": 41,
            "results": [{"mutation_id": 41, "id": _ENTRY_ID, "status": "applied", "server_version": 1}],
        },
    ),
    "v1_sync_pull_retrieve": Operation(
        tag=SYNC,
        summary="Fetch changes since a cursor",
        description=(
            "`changes` is `{table: {upserted: [...], deleted: [ids]}}` since `cursor` (omit it for "
            "a full download). Repeat with the returned `cursor` while `has_more` is true. A copy "
            "too old to catch up, or a cursor the server cannot read, gets 409 `reset_required`: "
            "pull again without a cursor (refused again: the `client_id` is of an older sync "
            "epoch; continue as a new client)."
        ),
        errors={
            400: (E.VALIDATION_ERROR,),
            403: (E.CLIENT_NOT_YOURS,),
            409: (E.RESET_REQUIRED,),
            426: (E.UPGRADE_REQUIRED,),
        },
        response_example={
            "changes": {"diary_entry": {"upserted": [_DIARY_ENTRY], "deleted": []}},
            "cursor": "MTc2NDUyMzQwMDAwMDoxMjM0",
            "has_more": False,
            "last_mutation_id": 41,
        },
    ),
    # --- Portal (clinic host, clinicians and admins) --------------------------------------------
    "v1_portal_patients_list": Operation(
        tag=PORTAL,
        summary="List patients with this week's scores",
        description=(
            "The patients in the caller's care teams (all patients for admins) with UAS7 and its "
            "band (0 urticaria-free, 1–6 well controlled, 7–15 mild, 16–27 moderate, 28–42 "
            "severe), UCT, diary completion, adherence (PDC: proportion of days covered, 80 % or "
            "more is adherent) and open alerts. Filter, `sort`, and page with `cursor`."
        ),
        errors={400: (E.INVALID_CURSOR, E.INVALID_SORT)},
    ),
    "v1_portal_patients_create": Operation(
        tag=PORTAL,
        summary="Enroll a new patient",
        description=(
            "Creates the patient's record and a single-use enrollment code (with its QR code) to "
            "give the patient; the enrolling clinician joins the care team. The patient redeems "
            "the code in the app."
        ),
        errors={400: (E.INVALID_TIMEZONE, E.INVALID_CHARACTERS), 403: (E.PLAN_LIMIT,)},
        request_example={
            "display_name": "M. Schneider",
            "date_of_birth": "1984-05-17",
            "timezone": "Europe/Berlin",
            "diary_mode": "once",
        },
        response_example={
            "id": _PATIENT_ID,
            "display_name": "M. Schneider",
            "enrollment_id": "d2f4b6a8-0c2e-4b4d-9f6a-8c0e2b4d6f8a",
            "enrollment_code": "K7QM-3XPD",
            "enrollment_expires_at": "2026-12-07T10:00:00Z",
            "qr_url": "/api/v1/portal/enrollments/d2f4b6a8-0c2e-4b4d-9f6a-8c0e2b4d6f8a/qr.png",
        },
    ),
    "v1_portal_patients_retrieve": Operation(
        tag=PORTAL,
        summary="A patient's page",
        description=(
            "The record and its summary: UAS7 this and last week with the change (and whether it "
            "exceeds the clinic's minimal important difference), UCT, diary completion and "
            "adherence. A patient outside the caller's care teams answers 404. The read is logged."
        ),
    ),
    "v1_portal_patients_timeline_retrieve": Operation(
        tag=PORTAL,
        summary="A patient's timeline",
        description="Diary entries, questionnaires, doses, prescriptions, notes and alerts between `from` and `to`, newest first.",
        errors={400: (E.INVALID_DATE, E.INVALID_RANGE, E.INVALID_CURSOR)},
    ),
    "v1_portal_patients_scores_uas7_list": Operation(
        tag=PORTAL,
        summary="A patient's weekly UAS7",
        description="`weeks` weeks ending on `end`, oldest first; UAS7 0–42 with its band, as in the patient app.",
        errors={400: (E.INVALID_DATE,)},
        response_example=[_UAS7],
    ),
    "v1_portal_patients_notes_list": Operation(
        tag=PORTAL,
        summary="A patient's clinical notes",
        description="Append-only, newest first. A correction is a new note that names the note it `corrects`.",
    ),
    "v1_portal_patients_notes_create": Operation(
        tag=PORTAL,
        summary="Add a clinical note",
        description="Notes cannot be edited or deleted: to correct one, add a note with `corrects` set to its id.",
        errors={400: (E.INVALID_CHARACTERS,)},
        request_example={"body": "Up-dosed cetirizine discussed; review in 4 weeks.", "corrects": None},
        response_example={
            "id": "b8d0f2a4-6c8e-4d0f-8a4c-6e8b0d2f4a6b",
            "author_id": _CLINICIAN_ID,
            "body": "Up-dosed cetirizine discussed; review in 4 weeks.",
            "corrects": None,
            "created_at": "2026-11-30T10:20:00Z",
        },
    ),
    "v1_portal_patients_prescriptions_list": Operation(
        tag=PORTAL,
        summary="A patient's prescriptions",
        description="Current and past, with the catalogue code, dose, frequency and guideline step.",
        response_example=[_PRESCRIPTION],
    ),
    "v1_portal_patients_prescriptions_create": Operation(
        tag=PORTAL,
        summary="Prescribe a medication",
        description=(
            "`medication` is a code of the clinic's medication catalogue (e.g. `cetirizine-10`, "
            "`bilastine-20-x4`, `omalizumab-300-q4w`). `frequency_kind`: `n_per_day` (n doses a "
            "day), `every_n_days` (one dose every n days) or `prn` (as needed); "
            "`guideline_step` 1–4 (EAACI/GA²LEN)."
        ),
        errors={400: (E.UNKNOWN_MEDICATION,)},
        request_example={
            "medication": "cetirizine-10",
            "dose": "10 mg",
            "frequency_kind": "n_per_day",
            "frequency_value": 1,
            "guideline_step": 1,
            "start": "2026-11-02",
        },
        response_example=_PRESCRIPTION,
    ),
    "v1_portal_prescriptions_stop_create": Operation(
        tag=PORTAL,
        summary="Stop a prescription",
        description="The prescription ends on `end` (default today); doses after it are no longer due.",
        errors={409: (E.ALREADY_STOPPED,)},
        request_example={"end": "2026-11-30"},
        response_example={**_PRESCRIPTION, "end": "2026-11-30"},
    ),
    "v1_portal_patients_reports_create": Operation(
        tag=PORTAL,
        summary="Request a patient's weekly report",
        description=(
            "For the week starting `week_start` (a Monday; default the last full week). Answers "
            "202 while the report is generated, or 200 with one already made; fetch it from "
            "`/api/v1/portal/reports/{report_id}/`."
        ),
        errors={400: (E.REPORT_WEEK_INCOMPLETE, E.REPORT_WEEK_BEFORE_ENROLMENT, E.INVALID_DATE)},
        request_example={"week_start": "2026-11-16"},
        response_example=_REPORT,
    ),
    "v1_portal_reports_list": Operation(
        tag=PORTAL,
        summary="List reports",
        description="Patient reports of patients the caller may see, and the clinic's weekly summaries.",
        response_example=[_REPORT],
    ),
    "v1_portal_reports_retrieve": Operation(
        tag=PORTAL,
        summary="A report",
        description="Its data, and links to the chart (PNG) and CSV once generated.",
    ),
    "v1_portal_reports_chart.png_retrieve": Operation(
        tag=PORTAL,
        summary="A report's chart",
        description="A PNG chart of the week's UAS7 with the activity bands.",
        errors={409: (E.REPORT_NOT_READY,)},
    ),
    "v1_portal_reports_report.csv_retrieve": Operation(
        tag=PORTAL,
        summary="A report as CSV",
        description="One row per day.",
        errors={409: (E.REPORT_NOT_READY,)},
    ),
    "v1_portal_alerts_list": Operation(
        tag=PORTAL,
        summary="List alerts",
        description=(
            "Alerts on the caller's patients: `severe_uas7` (UAS7 28 or more), `uas7_rise` (by the "
            "clinic's minimal important difference or more), `uct_uncontrolled` (UCT below 12), "
            "`diary_gap` and `low_adherence` (PDC below 80 %), with the evidence. Filter by "
            "`status` (`open`, the default, `acknowledged`, `resolved` or `all`) and `patient`."
        ),
        response_example=[_ALERT],
    ),
    "v1_portal_alerts_acknowledge_create": Operation(
        tag=PORTAL,
        summary="Acknowledge an alert",
        description="Marks that someone is looking at it; it stays open until resolved.",
        errors={409: (E.ALERT_RESOLVED,)},
        response_example=_ALERT,
    ),
    "v1_portal_alerts_resolve_create": Operation(
        tag=PORTAL,
        summary="Resolve an alert",
        description="Closes the alert (`resolved_reason` `clinician`). Alerts also resolve themselves when the finding clears.",
        errors={409: (E.ALERT_RESOLVED,)},
        response_example={**_ALERT, "resolved_at": "2026-11-30T10:00:00Z", "resolved_reason": "clinician"},
    ),
    "v1_portal_enrollments_create": Operation(
        tag=PORTAL,
        summary="Issue an enrollment code",
        description=(
            "A single-use code for the patient to join with the app, for an existing patient "
            "record (`patient_id`, earlier open codes are revoked) or for a new one created when "
            "the code is redeemed. Give the patient the code or the QR code."
        ),
        errors={409: (E.PATIENT_ALREADY_ENROLLED,)},
        request_example={"patient_id": _PATIENT_ID},
        response_example={
            "id": "d2f4b6a8-0c2e-4b4d-9f6a-8c0e2b4d6f8a",
            "patient_id": _PATIENT_ID,
            "code": "K7QM-3XPD",
            "expires_at": "2026-12-07T10:00:00Z",
            "enroll_url": "https://hautklinik-nord.csu-tracker.example/enroll#code=K7QM-3XPD",
            "qr_url": "/api/v1/portal/enrollments/d2f4b6a8-0c2e-4b4d-9f6a-8c0e2b4d6f8a/qr.png",
        },
    ),
    "v1_portal_medications_list": Operation(
        tag=PORTAL,
        summary="The medication catalogue",
        description=(
            "The medications a prescription can name by `code` (e.g. `cetirizine-10`), with the "
            "strength, route, default frequency and EAACI/GA²LEN guideline step a prescription "
            "takes when it does not give its own. Step 1 first; drugs without a step last."
        ),
        response_example=[
            {
                "code": "cetirizine-10",
                "name": "Cetirizine 10 mg once daily (standard dose)",
                "drug": "cetirizine",
                "strength": "10 mg",
                "route": "oral",
                "frequency_kind": "n_per_day",
                "frequency_value": 1,
                "guideline_step": 1,
                "is_rescue": False,
            },
            {
                "code": "omalizumab-300-q4w",
                "name": "Omalizumab 300 mg SC every 4 weeks",
                "drug": "omalizumab",
                "strength": "300 mg",
                "route": "subcutaneous",
                "frequency_kind": "every_n_days",
                "frequency_value": 28,
                "guideline_step": 3,
                "is_rescue": False,
            },
        ],
    ),
    "v1_portal_patients_care_team_list": Operation(
        tag=PORTAL,
        summary="A patient's care team",
        description=(
            "The clinicians who look after the patient now, primary first, with their names and "
            "roles. For admins and for clinicians who may see the patient (404 otherwise). The "
            "read is logged."
        ),
    ),
    "v1_portal_enrollments_qr.png_retrieve": Operation(
        tag=PORTAL,
        summary="An enrollment code's QR code",
        description="A PNG QR code of the enrollment link, to print or show to the patient.",
    ),
}

# Field descriptions by property name, applied to every schema component that has the field:
# the scales a client must know to send or read a value (reference: the 2022 EAACI/GA²LEN/EuroGuiDerm/
# APAAACI guideline's UAS7 and the ASSURE-CSU twice-daily scoring).
FIELD_DESCRIPTIONS: dict[str, str] = {
    "wheals": (
        "Wheals (hives), 0–3. Once-daily diary, past 24 h: 0 none, 1 mild (fewer than 20 "
        "wheals), 2 moderate (20–50 wheals), 3 intense (more than 50 wheals or large confluent "
        "areas of wheals). Twice-daily diary, past 12 h: 0 none, 1 fewer than 6, 2 6–12, 3 more "
        "than 12 wheals."
    ),
    "itch": (
        "Itch (pruritus), 0–3: 0 none, 1 mild (present but not annoying or troublesome), 2 "
        "moderate (troublesome but does not interfere with normal daily activity or sleep), 3 "
        "intense (severe itch, sufficiently troublesome to interfere with normal daily activity "
        "or sleep)."
    ),
    "uas": "The day's urticaria activity score, 0–6: wheals + itch (twice-daily diary: the average of morning and evening).",
    "angioedema": "Whether swelling (angioedema) occurred; if so, `aas_items` holds the day's AAS answers.",
    "aas_items": "The 5 Angioedema Activity Score answers of the day, 0–3 each (AAS 0–15); empty without angioedema.",
    "days_of_week": "ISO weekdays: 1 = Monday, 2 = Tuesday … 7 = Sunday.",
    "band": (
        "UAS7 activity band: `urticaria_free` (0), `well_controlled` (1–6), `mild` (7–15), "
        "`moderate` (16–27), `severe` (28–42)."
    ),
    "guideline_step": (
        "EAACI/GA²LEN treatment step: 1 standard-dose antihistamine, 2 up-dosed antihistamine, "
        "3 omalizumab, 4 ciclosporin."
    ),
    "instrument": (
        "The questionnaire: `uct` (Urticaria Control Test, 4 weeks' recall, 0–16), `uct7` (the "
        "same 4 items over 7 days), `aas` (Angioedema Activity Score, one day)."
    ),
    "uct": "Current Urticaria Control Test score, 0–16: 16 complete control, 12–15 well controlled, below 12 poorly controlled.",
    "itch7": "Weekly itch score (ISS7), 0–21: the sum of 7 daily itch scores.",
    "hives7": "Weekly hives score (HSS7), 0–21: the sum of 7 daily wheal scores.",
    "medication": "A code of the clinic's medication catalogue, e.g. `cetirizine-10`.",
    "week_start": "A Monday (local date).",
}

# Descriptions of schema components written for the API's user. Object components not listed
# here get no description: a serializer's docstring is a developer note.
COMPONENT_DESCRIPTIONS: dict[str, str] = {
    "MemberOutput": (
        "A member of the clinic. A patient's `email` and `full_name` are null here: who is a "
        "patient is health data, shown only in the portal."
    ),
    "DiaryEntry": "One diary entry: a day (`slot` `day`) or a half-day (`am`, `pm`) of the twice-daily diary.",
    "Uas7": "A week's Urticaria Activity Score (UAS7, 0–42: the sum of 7 daily scores of wheals 0–3 + itch 0–3).",
}


# --- The hook ----------------------------------------------------------------------------------

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SAFE_METHODS = ("get", "head", "options")

# Answers implied by a view's permission and throttle classes, by class name (config sits above
# accounts, but names keep this table readable and free of import cycles).
_SIGN_IN_CODES = (
    "not_authenticated",
    E.TOKEN_NOT_VALID,
    E.SESSION_EXPIRED,
    E.MEMBERSHIP_INACTIVE,
    E.MFA_REQUIRED,
)
_OPERATOR_SIGN_IN_CODES = ("not_authenticated", E.TOKEN_NOT_VALID)
_ROLE_PERMISSIONS = ("IsClinicMember", "IsPatient", "IsClinician", "IsClinicAdmin", "IsPlatformOperator")


def _merge(*sets: Errors) -> dict[int, tuple[str, ...]]:
    """Union of error sets, per status, codes in first-seen order."""
    merged: dict[int, tuple[str, ...]] = {}
    for errors in sets:
        for status, codes in errors.items():
            merged[status] = tuple(dict.fromkeys((*merged.get(status, ()), *codes)))
    return merged


def _implied_errors(view_class: Any, method: str, path: str, has_body: bool, has_query: bool) -> Errors:
    """The errors every view of its kind answers: sign-in (401), role and clinic-status
    refusals (403), an unknown id in the path (404), invalid input (400), throttles (429)."""
    errors: list[Errors] = []
    names = [getattr(cls, "__name__", "") for cls in getattr(view_class, "permission_classes", [])]
    if "IsAuthenticated" in names:
        errors.append({401: _OPERATOR_SIGN_IN_CODES if "IsPlatformOperator" in names else _SIGN_IN_CODES})
    if any(name in _ROLE_PERMISSIONS for name in names):
        errors.append({403: (E.PERMISSION_DENIED,)})
    if "MfaSatisfied" in names and not getattr(view_class, "allow_without_mfa", False):
        errors.append({403: ("mfa_setup_required",)})
    writes = method not in _SAFE_METHODS
    if writes and "ClinicWritable" in names and not getattr(view_class, "allowed_when_suspended", False):
        errors.append({403: (E.CLINIC_SUSPENDED, E.CLINIC_OFFBOARDING)})
    if writes and "PatientWritesOpen" in names and not getattr(view_class, "allowed_when_offboarding", False):
        errors.append({403: (E.CLINIC_OFFBOARDING,)})
    if "IsPatient" in names:
        errors.append({404: (E.NO_PATIENT_RECORD,)})
    if has_body:
        errors.append({400: (E.VALIDATION_ERROR, E.PARSE_ERROR)})
        errors.append({413: (E.PAYLOAD_TOO_LARGE,), 415: ("unsupported_media_type",)})
    elif has_query:
        errors.append({400: (E.VALIDATION_ERROR,)})
    if "{" in path:
        errors.append({404: (E.NOT_FOUND,)})
    if getattr(view_class, "throttle_classes", None):
        errors.append({429: ("throttled",)})
    errors.append({503: (E.SERVICE_UNAVAILABLE,)})
    return _merge(*errors)


def _views_by_operation(generator: Any) -> dict[tuple[str, str], Any]:
    """(path, method) → the view class, from the endpoints the generator enumerated."""
    views: dict[tuple[str, str], Any] = {}
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or []:
        views[(path, method.lower())] = getattr(callback, "cls", None)
    return views


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "An RFC 9457 problem. Switch on `code` (stable); `detail` is for people; `type` links "
            "to a page explaining the code. A refused field is named in `errors`."
        ),
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "A page explaining the code."},
            "title": {"type": "string", "description": "The status in words."},
            "status": {"type": "integer", "description": "The HTTP status."},
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "code": {"type": "string", "description": "The stable machine-readable reason."},
            "errors": {
                "type": "object",
                "description": "Field name → messages, when a field was refused.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "retry_after": {"type": "integer", "description": "Seconds to wait (429)."},
        },
    }


def _error_response(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    examples = {
        str(code): {
            "summary": str(code),
            "value": {
                "type": problem_type_uri(str(code)),
                "title": status_title(status),
                "status": status,
                # A real `detail` is plain text: the meaning without its Markdown code spans.
                "detail": (
                    PROBLEM_CODES[str(code)].meaning if str(code) in PROBLEM_CODES else str(code)
                ).replace("`", ""),
                "code": str(code),
            },
        }
        for code in codes
    }
    return {
        "description": f"{status_title(status)}: a problem with `code` {listed}.",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"},
                "examples": examples,
            }
        },
    }


def _set_example(content: dict[str, Any], example: Any) -> None:
    for media in content.values():
        media.pop("example", None)
        media["examples"] = {"example": {"summary": "Example", "value": example}}


def _apply(operation: dict[str, Any], entry: Operation, implied: Errors) -> None:
    operation["tags"] = [entry.tag]
    operation["summary"] = entry.summary
    operation["description"] = entry.description
    if entry.request_example is not None and "requestBody" in operation:
        _set_example(operation["requestBody"].get("content", {}), entry.request_example)
    responses = operation.setdefault("responses", {})
    if entry.response_example is not None:
        for status, response in responses.items():
            if status.startswith("2") and "content" in response:
                _set_example(response["content"], entry.response_example)
    for status, codes in sorted(_merge(implied, entry.errors).items()):
        responses[str(status)] = _error_response(status, codes)


def postprocess_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Apply the registry. An operation without an entry keeps what drf-spectacular made of it,
    minus its docstring (the docs test names it, so its author adds the entry)."""
    views = _views_by_operation(generator)
    for path, path_item in result.get("paths", {}).items():
        for method in _HTTP_METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            entry = OPERATIONS.get(operation.get("operationId", ""))
            if entry is None:
                operation.pop("description", None)
                continue
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            implied = _implied_errors(
                views.get((path, method)), method, path, "requestBody" in operation, has_query
            )
            _apply(operation, entry, implied)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in schemas.items():
        if "enum" not in component:
            component.pop("description", None)
            if name in COMPONENT_DESCRIPTIONS:
                component["description"] = COMPONENT_DESCRIPTIONS[name]
        properties = component.get("properties", {})
        for prop_name, prop in list(properties.items()):
            if prop_name not in FIELD_DESCRIPTIONS or not isinstance(prop, dict):
                continue
            if "$ref" in prop:  # OpenAPI 3.0 ignores a $ref's siblings
                properties[prop_name] = prop = {"allOf": [prop]}
            prop["description"] = FIELD_DESCRIPTIONS[prop_name]
    schemas[PROBLEM_SCHEMA_NAME] = _problem_schema()
    _describe_host(result, generator)
    return result


_ERRORS_NOTE = (
    "Every error is an RFC 9457 `application/problem+json` problem: switch on its stable `code`; "
    "its `type` links to a page explaining the code (all codes: `/problems/`)."
)
_HOST_DESCRIPTIONS = {
    "config.urls_public": (
        "The platform's own API, on the platform host: sign up a clinic (`POST /api/v1/clinics/`, "
        "then open the emailed confirmation link), the platform operators' management of clinics, "
        "subscriptions and invoices (sign in with `POST /api/v1/platform/auth/token/`: password "
        "and authenticator code), and payment-provider webhooks.\n\n"
        "Each clinic's API (patient app, sync, portal, clinic admin) is documented on the "
        "clinic's own host: `<clinic>.<platform domain>/api/docs/`.\n\n" + _ERRORS_NOTE
    ),
    "config.urls_tenant": (
        "The API of one clinic, on the clinic's host `<clinic>.<platform domain>`. Sign in with "
        "`POST /api/v1/auth/token/` (staff of a clinic that requires two-factor authentication "
        "add the code of their authenticator app) and send `Authorization: Bearer <access>`; "
        "renew it with `POST /api/v1/auth/token/refresh/`. Browsers on the clinic's own origin "
        "may use a session instead (`/api/v1/auth/csrf/`, then `/api/v1/auth/login/`). Patients "
        "join with an enrollment code from the clinic (`POST /api/v1/auth/enroll/`); staff with "
        "an emailed invitation (`POST /api/v1/auth/invitations/accept/`).\n\n"
        "Clinic signup and the platform operators' API are documented on the platform host's "
        "`/api/docs/`.\n\n" + _ERRORS_NOTE
    ),
}


def _describe_host(result: dict[str, Any], generator: Any) -> None:
    """The introduction for the host's readers, and only the tags its operations use."""
    urlconf = getattr(generator, "urlconf", None) or settings.ROOT_URLCONF
    name = urlconf if isinstance(urlconf, str) else getattr(urlconf, "__name__", "")
    if name in _HOST_DESCRIPTIONS:
        result.setdefault("info", {})["description"] = _HOST_DESCRIPTIONS[name]
    used = {
        tag
        for path_item in result.get("paths", {}).values()
        for operation in path_item.values()
        if isinstance(operation, dict)
        for tag in operation.get("tags", [])
    }
    if "tags" in result:
        result["tags"] = [tag for tag in result["tags"] if tag.get("name") in used]


class HostSchemaView(SpectacularAPIView):
    """The schema of the URLconf that serves this host (django-tenants sets `request.urlconf`:
    the platform's on the platform host, the clinic API's on a clinic host). drf-spectacular
    would otherwise enumerate ROOT_URLCONF on every host."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.urlconf = getattr(request, "urlconf", None) or settings.ROOT_URLCONF
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        return response

    def _get_schema_response(self, request: Request) -> Response:
        """Generated once per URLconf, version and language, then served from memory: the
        schema changes only with a deploy, and generating it costs about a second of CPU, which
        an anonymous caller could otherwise make the server spend on every request."""
        version = self.api_version or request.version or self._get_version_parameter(request)  # type: ignore[no-untyped-call]
        lang = request.GET.get("lang") if settings.USE_I18N else None
        key = (str(self.urlconf), version, lang if lang in dict(settings.LANGUAGES) else None)
        data = _SERVED_SCHEMAS.get(key)
        if data is None:
            generator = self.generator_class(
                urlconf=self.urlconf, api_version=version, patterns=self.patterns
            )
            data = generator.get_schema(request=request, public=self.serve_public)  # type: ignore[no-untyped-call]
            _SERVED_SCHEMAS[key] = data
        filename = self._get_filename(request, version)  # type: ignore[no-untyped-call]
        return Response(data=data, headers={"Content-Disposition": f'inline; filename="{filename}"'})


# (urlconf, version, language) → the schema served (HostSchemaView).
_SERVED_SCHEMAS: dict[tuple[str, Any, Any], Any] = {}
