"""How each case of the matrix is sent: path parameters, body, query and the state it needs.

Values are resolved by the world (world.py): `"{name}"` is the world's value (Alice's objects,
her care team's, alpha's), `"{persona_user_id}"`, `"{persona_otp}"` and
`"{own_prescription_id}"` depend on the persona sending it, `"{new_uuid}"` is a fresh id.
Every write carries a valid body, so that the status reflects who asks, not what they send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import PASSWORD
from tests.isolation.world import NEW_PASSWORD

# Which of the world's objects fills each path parameter, unless a case says otherwise.
TENANT_PATH_DEFAULTS = {
    "patient_id": "{alice_patient_id}",
    "prescription_id": "{alice_prescription_id}",
    "alert_id": "{alice_alert_id}",
    "report_id": "{alice_report_id}",
    "reminder_id": "{alice_reminder_id}",
    "subscription_id": "{alice_push_subscription_id}",
    "enrollment_id": "{uma_enrollment_id}",
    "invitation_id": "{invitation_id}",
    "membership_id": "{frank_membership_id}",
    "assignment_id": "{care_team_id}",
    "invoice_id": "{alpha_invoice_id}",
    "day": "{yesterday}",
    "slot": "am",
    "instrument": "uct",
    "code": "unknown_medication",  # a problem code (core.problems), not an object of anyone's
}
PLATFORM_PATH_DEFAULTS = {
    "code": "unknown_medication",
    "slug": "alpha",
    "subscription_id": "{alpha_subscription_id}",
    "invoice_id": "{alpha_invoice_id}",
}
# The world's attributes that are alpha's objects (or an id alpha might hold): a case naming one,
# in its path, body or query, is also tried by beta's admin on beta's own host.
ALPHA_OBJECTS = frozenset(
    {value.strip("{}") for param, value in TENANT_PATH_DEFAULTS.items() if param.endswith("_id")}
    | {
        "alice_patient_id",
        "uma_patient_id",
        "unknown_id",
        "clinic_report_id",
        "alice_diary_entry_id",
        "alice_questionnaire_id",
        "alice_dose_id",
        "alice_push_endpoint",
        "bob_open_enrollment_id",
    }
)


@dataclass(frozen=True)
class Req:
    body: Any = None  # a JSON object, or a placeholder the world resolves to one
    query: dict[str, Any] | None = None
    path: dict[str, str] = field(default_factory=dict)  # parameter → value, as in *_PATH_DEFAULTS
    setup: tuple[str, ...] = ()  # world.SETUPS run before the request
    builds: tuple[str, ...] = ()  # world objects that must exist (no id of theirs is sent)
    # The patient whose access the route decides (and audits): a world attribute.
    audit: str | None = None
    # An export or deletion request: audited even when the patient does it herself (§9).
    audit_own: bool = False
    # persona → (dotted path into the JSON answer, expected value)
    answer: dict[str, tuple[str, Any]] = field(default_factory=dict)
    signed: bool = False  # the payment provider's signature (platform webhook)

    def names_alpha_object(self, params: tuple[str, ...]) -> bool:
        return bool(self.placeholders(params) & ALPHA_OBJECTS)

    def placeholders(self, params: tuple[str, ...]) -> set[str]:
        """The world attributes this case sends, in its path, body or query."""
        values = {**TENANT_PATH_DEFAULTS, **self.path}
        sent = [values.get(p, "") for p in params]
        return set(re.findall(r"\{(\w+)\}", repr((sent, self.body, self.query))))


ALICE_CREDENTIALS = {"email": "{alice_email}", "password": PASSWORD}
PUSH_BODY = {"endpoint": "https://fcm.googleapis.com/fcm/send/{new_uuid}", "keys": "{browser_keys}"}
SYNC_EMPTY = {"client_id": "{new_uuid}", "schema_version": 1, "mutations": []}
ALICE = "alice_patient_id"
PORTAL_AUDIT = Req(audit=ALICE)

TENANT_REQUESTS: dict[str, Req] = {
    "POST /api/v1/auth/token/": Req(body=ALICE_CREDENTIALS),
    "POST /api/v1/auth/token/refresh/": Req(body={"refresh": "{alice_refresh}"}),
    "POST /api/v1/auth/logout/": Req(body={"refresh": "{alice_refresh}"}),
    "POST /api/v1/auth/login/": Req(body=ALICE_CREDENTIALS),
    "POST /api/v1/auth/password-reset/": Req(body={"email": "{alice_email}"}),
    "POST /api/v1/auth/verify-email/resend/": Req(body={"email": "{alice_email}"}),
    "POST /api/v1/auth/password-reset/confirm/": Req(
        body={"uid": "{alice_reset_uid}", "token": "{alice_reset_token}", "password": NEW_PASSWORD}
    ),
    "POST /api/v1/auth/invitations/accept/": Req(
        body={"token": "{invitation_token}", "full_name": "Dr New", "password": NEW_PASSWORD}
    ),
    "POST /api/v1/auth/enroll/": Req(
        body={
            "code": "{uma_enrollment_code}",
            "email": "uma@example.com",
            "password": NEW_PASSWORD,
            "privacy_notice_version": 1,
        }
    ),
    "POST /api/v1/auth/verify-email/": Req(body={"token": "{alice_verification_token}"}),
    # The patient app's files come from the build (`make pwa`; `make test` builds it first).
    "GET /app/{folder}/{name}": Req(path={"folder": "icons", "name": "icon-192.png"}),
    "GET /app/{route}": Req(path={"route": "today"}),
    "POST /api/v1/auth/password/": Req(body={"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    "POST /api/v1/auth/mfa/setup/": Req(body={"password": PASSWORD}),
    "POST /api/v1/auth/mfa/confirm/": Req(body={"otp": "{persona_otp}"}, setup=("mfa_pending",)),
    # --- /me/ ---
    "PATCH /api/v1/me/profile/": Req(body={"locale": "de"}),
    "POST /api/v1/me/consent/": Req(body={"version": 1}),
    "POST /api/v1/me/consent/withdraw/": Req(body={}),
    "POST /api/v1/admin/privacy-notices/": Req(body={"texts": {"en": "Notice.", "de": "Erklärung."}}),
    "PUT /api/v1/me/diary/{day}/": Req(body={"wheals": 3, "itch": 3}, setup=("diary_once",)),
    "PUT /api/v1/me/diary/{day}/ | id=alice's entry": Req(
        body={"id": "{alice_diary_entry_id}", "wheals": 3, "itch": 3}, setup=("diary_once",)
    ),
    "DELETE /api/v1/me/diary/{day}/": Req(setup=("diary_once",)),
    "PUT /api/v1/me/diary/{day}/{slot}/": Req(body={"wheals": 3, "itch": 3}, setup=("diary_twice",)),
    "DELETE /api/v1/me/diary/{day}/{slot}/": Req(setup=("diary_twice",)),
    "POST /api/v1/me/questionnaires/{instrument}/": Req(body={"answers": {"items": [1, 2, 3, 4]}}),
    "POST /api/v1/me/questionnaires/{instrument}/ | id=alice's": Req(
        body={"id": "{alice_questionnaire_id}", "answers": {"items": [1, 2, 3, 4]}}
    ),
    "POST /api/v1/me/doses/": Req(
        body={
            "id": "{new_uuid}",
            "prescription": "{own_prescription_id}",
            "date": "{yesterday}",
            "status": "taken",
        }
    ),
    "POST /api/v1/me/doses/ | prescription=alice's": Req(
        body={
            "id": "{new_uuid}",
            "prescription": "{alice_prescription_id}",
            "date": "{yesterday}",
            "status": "taken",
        }
    ),
    "POST /api/v1/me/doses/ | id=alice's dose": Req(
        body={
            "id": "{alice_dose_id}",
            "prescription": "{own_prescription_id}",
            "date": "{yesterday}",
            "status": "taken",
        }
    ),
    "GET /api/v1/me/export/": Req(audit_own=True),
    "POST /api/v1/me/deletion-request/": Req(body={"reason": ""}, audit_own=True),
    "POST /api/v1/me/reminders/": Req(body={"kind": "diary", "local_time": "21:00"}),
    "POST /api/v1/me/reminders/ | id=alice's": Req(
        body={"id": "{alice_reminder_id}", "kind": "diary", "local_time": "21:00"}
    ),
    "POST /api/v1/me/reminders/ | prescription=alice's": Req(
        body={"kind": "medication", "local_time": "08:00", "prescription": "{alice_prescription_id}"}
    ),
    "PATCH /api/v1/me/reminders/{reminder_id}/": Req(body={"enabled": False}),
    "POST /api/v1/me/push-subscriptions/": Req(body=PUSH_BODY),
    "POST /api/v1/me/push-subscriptions/ | endpoint=alice's": Req(
        body={"endpoint": "{alice_push_endpoint}", "keys": "{browser_keys}"}
    ),
    "POST /api/v1/sync/push/": Req(body=SYNC_EMPTY),
    "POST /api/v1/sync/push/ | mutation on alice's entry": Req(
        body={
            **SYNC_EMPTY,
            "mutations": [
                {"mutation_id": 1, "table": "diary_entry", "id": "{alice_diary_entry_id}", "op": "delete"}
            ],
        },
        answer={"dave": ("results.0.status", "rejected"), "alice": ("results.0.status", "applied")},
    ),
    "GET /api/v1/sync/pull/": Req(query={"schema_version": 1}),
    # --- Portal ---
    "GET /api/v1/portal/patients/": Req(audit=ALICE),
    "POST /api/v1/portal/patients/": Req(body={"display_name": "Walter Walk-in"}),
    "GET /api/v1/portal/patients/{patient_id}/": PORTAL_AUDIT,
    "GET /api/v1/portal/patients/{patient_id}/care-team/": PORTAL_AUDIT,
    "GET /api/v1/portal/patients/{patient_id}/timeline/": PORTAL_AUDIT,
    "GET /api/v1/portal/patients/{patient_id}/scores/uas7/": PORTAL_AUDIT,
    "GET /api/v1/portal/patients/{patient_id}/notes/": Req(audit=ALICE, builds=("alice_note_id",)),
    "POST /api/v1/portal/patients/{patient_id}/notes/": Req(body={"body": "Seen today."}, audit=ALICE),
    "GET /api/v1/portal/patients/{patient_id}/prescriptions/": Req(
        audit=ALICE, builds=("alice_prescription_id",)
    ),
    "POST /api/v1/portal/patients/{patient_id}/prescriptions/": Req(
        body={"medication": "cetirizine-10", "dose": "10 mg", "guideline_step": 1, "start": "{yesterday}"},
        audit=ALICE,
    ),
    "POST /api/v1/portal/prescriptions/{prescription_id}/stop/": Req(body={}, audit=ALICE),
    "GET /api/v1/portal/alerts/": Req(builds=("alice_alert_id",)),
    "GET /api/v1/portal/alerts/ | patient=alice": Req(
        query={"patient": "{alice_patient_id}"}, builds=("alice_alert_id",), audit=ALICE
    ),
    "POST /api/v1/portal/alerts/{alert_id}/acknowledge/": PORTAL_AUDIT,
    "POST /api/v1/portal/alerts/{alert_id}/resolve/": PORTAL_AUDIT,
    "POST /api/v1/portal/patients/{patient_id}/reports/": Req(body={}, audit=ALICE),
    "GET /api/v1/portal/reports/ | patient=alice": Req(
        query={"patient": "{alice_patient_id}"}, builds=("alice_report_id",), audit=ALICE
    ),
    "GET /api/v1/portal/reports/ | kind=clinic_weekly": Req(
        query={"kind": "clinic_weekly"}, builds=("clinic_report_id", "alice_report_id")
    ),
    "GET /api/v1/portal/reports/{report_id}/": PORTAL_AUDIT,
    "GET /api/v1/portal/reports/{report_id}/ | clinic report": Req(
        path={"report_id": "{clinic_report_id}"}, builds=("alice_report_id",)
    ),
    "GET /api/v1/portal/reports/{report_id}/chart.png": PORTAL_AUDIT,
    "GET /api/v1/portal/reports/{report_id}/report.csv": PORTAL_AUDIT,
    "POST /api/v1/portal/enrollments/": Req(body={}),
    "POST /api/v1/portal/enrollments/ | patient_id=uma": Req(
        body={"patient_id": "{uma_patient_id}"}, audit="uma_patient_id"
    ),
    "POST /api/v1/portal/enrollments/ | patient_id=alice": Req(
        body={"patient_id": "{alice_patient_id}"}, audit=ALICE
    ),
    "POST /api/v1/portal/enrollments/ | patient_id=unknown": Req(body={"patient_id": "{unknown_id}"}),
    "GET /api/v1/portal/enrollments/{enrollment_id}/qr.png": Req(audit="uma_patient_id"),
    "GET /api/v1/portal/enrollments/{enrollment_id}/qr.png | code without patient": Req(
        path={"enrollment_id": "{bob_open_enrollment_id}"}
    ),
    # --- Clinic admin ---
    "PATCH /api/v1/admin/clinic/": Req(body={"name": "Alpha Allergy Clinic"}),
    "POST /api/v1/admin/members/{membership_id}/reactivate/": Req(setup=("frank_deactivated",)),
    "POST /api/v1/admin/invitations/": Req(body={"email": "another.doc@example.com", "role": "clinician"}),
    "GET /api/v1/admin/care-teams/": Req(builds=("_uma",)),
    "GET /api/v1/admin/care-teams/ | patient=alice": Req(query={"patient": "{alice_patient_id}"}),
    "POST /api/v1/admin/care-teams/ | patient=alice": Req(
        body={"clinician_user_id": "{persona_user_id}", "patient": "{alice_patient_id}"}
    ),
    "POST /api/v1/admin/care-teams/{assignment_id}/end/": Req(body={}),
    "GET /api/v1/admin/access-log/ | patient=alice": Req(
        query={"patient": "{alice_patient_id}"}, audit=ALICE
    ),
    "GET /api/v1/admin/billing/": Req(builds=("_billing",)),
    "POST /api/v1/admin/billing/plan/": Req(body={"plan": "enterprise"}, builds=("_billing",)),
    "GET /api/v1/admin/billing/invoices/": Req(builds=("_billing",)),
    "GET /api/v1/admin/billing/invoices.csv": Req(builds=("_billing",)),
}

PLATFORM_REQUESTS: dict[str, Req] = {
    "POST /api/v1/auth/password-reset/": Req(body={"email": "{alice_email}"}),
    "POST /api/v1/auth/password-reset/confirm/": Req(
        body={"uid": "{alice_reset_uid}", "token": "{alice_reset_token}", "password": NEW_PASSWORD}
    ),
    "POST /api/v1/clinics/": Req(
        body={
            "name": "Gamma Skin Centre",
            "slug": "gamma",
            "timezone": "Europe/Vienna",
            "country": "AT",
            "plan": "starter",
            "admin": {"email": "gina@gamma.example", "full_name": "Gina Gamma", "password": NEW_PASSWORD},
        }
    ),
    "GET /api/v1/clinics/slug-availability/": Req(query={"slug": "gamma"}),
    "POST /api/v1/auth/verify-email/": Req(body={"token": "{alice_verification_token}"}),
    "POST /api/v1/platform/auth/token/": Req(body="{operator_credentials}"),
    "POST /api/v1/platform/clinics/{slug}/reactivate/": Req(setup=("alpha_suspended",)),
    "POST /api/v1/platform/clinics/{slug}/offboard/cancel/": Req(setup=("alpha_offboarding",)),
    "POST /api/v1/billing/webhooks/payments/": Req(
        body={"id": "evt_{new_uuid}", "type": "invoice.paid", "data": {"invoice": "{alpha_invoice_number}"}},
        signed=True,
    ),
    "POST /api/v1/billing/webhooks/payments/ | unsigned": Req(
        body={"id": "evt_{new_uuid}", "type": "invoice.paid", "data": {"invoice": "{alpha_invoice_number}"}},
    ),
    "GET /api/v1/platform/subscriptions/": Req(builds=("_billing",)),
    "POST /api/v1/platform/subscriptions/{subscription_id}/extend-trial/": Req(
        body={"days": 7}, setup=("alpha_trialing",)
    ),
    "GET /api/v1/platform/invoices/": Req(builds=("_billing",)),
}
