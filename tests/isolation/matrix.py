"""The persona matrix: for every route and method of both URLconfs, the exact status each persona
gets (DESIGN.md §4, §9, §10). test_coverage.py holds it against the URL resolver both ways.

Keys are `"METHOD /path/{param}/"` as the resolver spells the route. A key may carry a variant
after ` | `: the same route with a body or query that names someone's object (a patient id in
the body counts as a route of its own). How each case fills its path, body and query is in
requests.py; what the ids point at is in world.py.

One case is one test, named `"<key> as <persona>"`; run a few with
`pytest tests/isolation -k "qr and erin"`.

A status is an int, or `(status, code)` where the problem's `code` tells a refusal from a
business answer. `NA`: the persona does not apply (beta's admin on beta's own host is only
tried on cases that name one of alpha's objects).

Clinic host personas, in column order:
    anon   anonymous, no credentials
    btok   beta_admin: beta's admin with a beta token, on alpha's host
    bses   beta_admin_session: beta's admin's browser session opened on beta, replayed on alpha
    b@b    beta_admin_home: beta's admin on beta's own host, naming alpha's objects
    dave   another patient of alpha
    alice  the patient herself (owner of every object the ids name)
    erin   a clinician of alpha outside Alice's care team
    bob    dr_bob, a clinician on Alice's care team
    carol  alpha's clinic admin
"""

from __future__ import annotations

Status = int | tuple[int, str]

NA = None

TENANT_PERSONAS = (
    "anonymous",
    "beta_admin",
    "beta_admin_session",
    "beta_admin_home",
    "dave",
    "alice",
    "erin",
    "dr_bob",
    "carol",
)
PLATFORM_PERSONAS = ("anonymous", "clinic_user", "operator")


def t(*statuses: Status | None) -> dict[str, Status | None]:
    return dict(zip(TENANT_PERSONAS, statuses, strict=True))


def p(*statuses: Status) -> dict[str, Status | None]:
    return dict(zip(PLATFORM_PERSONAS, statuses, strict=True))


ALREADY_ENROLLED = (409, "patient_already_enrolled")
TAKEN = (409, "push_endpoint_taken")

# fmt: off
TENANT_MATRIX: dict[str, dict[str, Status | None]] = {
    # key                                                          anon btok bses  b@b  dave alice erin  bob carol
    # --- Served to everyone -----------------------------------------------------------------------------------
    "GET /readyz":                                                t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /api/schema/":                                           t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /api/docs/":                                             t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /problems/":                                             t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /problems/{code}":                                       t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    # --- Sign-in and account: credentials in the body, so every caller gets the same answer --------------------
    "POST /api/v1/auth/token/":                                   t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/token/refresh/":                           t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/logout/":                                  t(204, 204, 204,  NA, 204, 204, 204, 204, 204),
    "GET /api/v1/auth/csrf/":                                     t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/login/":                                   t(204, 204, 204,  NA, 204, 204, 204, 204, 204),
    "POST /api/v1/auth/password-reset/":                          t(202, 202, 202,  NA, 202, 202, 202, 202, 202),
    "POST /api/v1/auth/password-reset/confirm/":                  t(204, 204, 204,  NA, 204, 204, 204, 204, 204),
    "POST /api/v1/auth/invitations/accept/":                      t(201, 201, 201,  NA, 201, 201, 201, 201, 201),
    "POST /api/v1/auth/enroll/":                                  t(201, 201, 201,  NA, 201, 201, 201, 201, 201),
    "GET /api/v1/auth/privacy-notice/":                           t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/verify-email/":                            t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/verify-email/resend/":                     t(202, 202, 202,  NA, 202, 202, 202, 202, 202),
    # --- The patient app (patients/app.py): the same public files for everyone, nothing of anyone's -----------
    "GET /":                                                      t(302, 302, 302,  NA, 302, 302, 302, 302, 302),
    "GET /enroll":                                                t(302, 302, 302,  NA, 302, 302, 302, 302, 302),
    "GET /app/manifest.webmanifest":                              t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /app/sw.js":                                             t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /app/{folder}/{name}":                                   t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "GET /app/{route}":                                           t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    # --- Account pages (accounts/web, onboarding/pages): browser sessions only, tokens count for nothing; -----
    # an empty form is a 400 for anyone; the MFA page sends anyone without this clinic's session to sign in.
    "GET /account/":                                              t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /account/":                                             t(400, 400, 400,  NA, 400, 400, 400, 400, 400),
    "GET /account/mfa":                                           t(302, 302, 302,  NA, 302, 302, 302, 302, 302),
    "POST /account/mfa":                                          t(302, 302, 302,  NA, 302, 302, 302, 302, 302),
    "GET /invitation":                                            t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /invitation":                                           t(400, 400, 400,  NA, 400, 400, 400, 400, 400),
    "GET /password-reset":                                        t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /password-reset":                                       t(400, 400, 400,  NA, 400, 400, 400, 400, 400),
    "GET /verify-email":                                          t(200, 200, 200,  NA, 200, 200, 200, 200, 200),
    "POST /verify-email":                                         t(400, 400, 400,  NA, 400, 400, 400, 400, 400),
    # --- Any member of alpha, for themself ---------------------------------------------------------------------
    "GET /api/v1/auth/me/":                                       t(401, 401, 401,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/password/":                                t(401, 401, 401,  NA, 200, 200, 200, 200, 200),
    "POST /api/v1/auth/mfa/setup/":                               t(401, 401, 401,  NA, 403, 403, 200, 200, 200),
    "POST /api/v1/auth/mfa/confirm/":                             t(401, 401, 401,  NA, 403, 403, 200, 200, 200),
    # --- The patient's own API: dave gets his own data, never Alice's --------------------------------------------
    "GET /api/v1/me/profile/":                                    t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "PATCH /api/v1/me/profile/":                                  t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/consent/":                                    t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/consent/":                                   t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/consent/withdraw/":                          t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/diary/":                                      t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "PUT /api/v1/me/diary/{day}/":                                t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "PUT /api/v1/me/diary/{day}/ | id=alice's entry":             t(401, 401, 401, 403, 404, 200, 403, 403, 403),
    "DELETE /api/v1/me/diary/{day}/":                             t(401, 401, 401,  NA, 204, 204, 403, 403, 403),
    "PUT /api/v1/me/diary/{day}/{slot}/":                         t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "DELETE /api/v1/me/diary/{day}/{slot}/":                      t(401, 401, 401,  NA, 204, 204, 403, 403, 403),
    "GET /api/v1/me/scores/uas7/":                                t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/scores/uct/":                                 t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/scores/aas/":                                 t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/questionnaires/":                             t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/questionnaires/{instrument}/":               t(401, 401, 401,  NA, 201, 201, 403, 403, 403),
    "POST /api/v1/me/questionnaires/{instrument}/ | id=alice's":  t(401, 401, 401, 403, 404, 200, 403, 403, 403),
    "GET /api/v1/me/medications/":                                t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/doses/":                                     t(401, 401, 401,  NA, 201, 201, 403, 403, 403),
    "POST /api/v1/me/doses/ | prescription=alice's":              t(401, 401, 401, 403, 404, 201, 403, 403, 403),
    "POST /api/v1/me/doses/ | id=alice's dose":                   t(401, 401, 401, 403, 404, 200, 403, 403, 403),
    "GET /api/v1/me/summary/":                                    t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/care-team/":                                  t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/export/":                                     t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/deletion-request/":                          t(401, 401, 401,  NA, 202, 202, 403, 403, 403),
    "GET /api/v1/me/reminders/":                                  t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/reminders/":                                 t(401, 401, 401,  NA, 201, 201, 403, 403, 403),
    "POST /api/v1/me/reminders/ | id=alice's":                    t(401, 401, 401, 403, 404, 200, 403, 403, 403),
    "POST /api/v1/me/reminders/ | prescription=alice's":          t(401, 401, 401, 403, 404, 201, 403, 403, 403),
    "PATCH /api/v1/me/reminders/{reminder_id}/":                  t(401, 401, 401, 403, 404, 200, 403, 403, 403),
    "DELETE /api/v1/me/reminders/{reminder_id}/":                 t(401, 401, 401, 403, 404, 204, 403, 403, 403),
    "GET /api/v1/me/reminder-deliveries/":                        t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "GET /api/v1/me/push-subscriptions/":                         t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/me/push-subscriptions/":                        t(401, 401, 401,  NA, 201, 201, 403, 403, 403),
    "POST /api/v1/me/push-subscriptions/ | endpoint=alice's":     t(401, 401, 401, 403, TAKEN, 200, 403, 403, 403),
    "DELETE /api/v1/me/push-subscriptions/{subscription_id}/":    t(401, 401, 401, 403, 404, 204, 403, 403, 403),
    "POST /api/v1/sync/push/":                                    t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    "POST /api/v1/sync/push/ | mutation on alice's entry":        t(401, 401, 401, 403, 200, 200, 403, 403, 403),
    "GET /api/v1/sync/pull/":                                     t(401, 401, 401,  NA, 200, 200, 403, 403, 403),
    # --- Portal: lists show each clinician their care team; one patient goes through the access function -----
    "GET /api/v1/portal/patients/":                               t(401, 401, 401,  NA, 403, 403, 200, 200, 200),
    "POST /api/v1/portal/patients/":                              t(401, 401, 401,  NA, 403, 403, 201, 201, 201),
    "GET /api/v1/portal/patients/{patient_id}/":                  t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/patients/{patient_id}/timeline/":         t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/patients/{patient_id}/care-team/":        t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/patients/{patient_id}/scores/uas7/":      t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/patients/{patient_id}/notes/":            t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "POST /api/v1/portal/patients/{patient_id}/notes/":           t(401, 401, 401, 404, 403, 403, 404, 201, 201),
    "GET /api/v1/portal/patients/{patient_id}/prescriptions/":    t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "POST /api/v1/portal/patients/{patient_id}/prescriptions/":   t(401, 401, 401, 404, 403, 403, 404, 201, 201),
    "POST /api/v1/portal/prescriptions/{prescription_id}/stop/":  t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/alerts/":                                 t(401, 401, 401,  NA, 403, 403, 200, 200, 200),
    "GET /api/v1/portal/medications/":                            t(401, 401, 401,  NA, 403, 403, 200, 200, 200),
    "GET /api/v1/portal/alerts/ | patient=alice":                 t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "POST /api/v1/portal/alerts/{alert_id}/acknowledge/":         t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "POST /api/v1/portal/alerts/{alert_id}/resolve/":             t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "POST /api/v1/portal/patients/{patient_id}/reports/":         t(401, 401, 401, 404, 403, 403, 404, 202, 202),
    "GET /api/v1/portal/reports/ | patient=alice":                t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/reports/ | kind=clinic_weekly":           t(401, 401, 401,  NA, 403, 403, 200, 200, 200),
    "GET /api/v1/portal/reports/{report_id}/":                    t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/reports/{report_id}/ | clinic report":    t(401, 401, 401, 404, 403, 403, 200, 200, 200),
    "GET /api/v1/portal/reports/{report_id}/chart.png":           t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/reports/{report_id}/report.csv":          t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    # --- Enrollment codes: issuing one for a record goes through the staff access function --------------------
    "POST /api/v1/portal/enrollments/":                           t(401, 401, 401,  NA, 403, 403, 201, 201, 201),
    "POST /api/v1/portal/enrollments/ | patient_id=uma":          t(401, 401, 401, 404, 403, 403, 404, 201, 201),
    "POST /api/v1/portal/enrollments/ | patient_id=alice":        t(401, 401, 401, 404, 403, 403, 404, ALREADY_ENROLLED, ALREADY_ENROLLED),
    "POST /api/v1/portal/enrollments/ | patient_id=unknown":      t(401, 401, 401, 404, 403, 403, 404, 404, 404),
    "GET /api/v1/portal/enrollments/{enrollment_id}/qr.png":      t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    "GET /api/v1/portal/enrollments/{enrollment_id}/qr.png | code without patient":
                                                                  t(401, 401, 401, 404, 403, 403, 404, 200, 200),
    # --- Clinic admin --------------------------------------------------------------------------------------------
    "GET /api/v1/admin/clinic/":                                  t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "PATCH /api/v1/admin/clinic/":                                t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/members/":                                 t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "POST /api/v1/admin/members/{membership_id}/deactivate/":     t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "POST /api/v1/admin/members/{membership_id}/reactivate/":     t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/invitations/":                             t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "POST /api/v1/admin/invitations/":                            t(401, 401, 401,  NA, 403, 403, 403, 403, 201),
    "POST /api/v1/admin/invitations/{invitation_id}/revoke/":     t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/care-teams/":                              t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/care-teams/ | patient=alice":              t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "POST /api/v1/admin/care-teams/ | patient=alice":             t(401, 401, 401, 404, 403, 403, 403, 403, 201),
    "POST /api/v1/admin/care-teams/{assignment_id}/end/":         t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/access-log/ | patient=alice":              t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/privacy-notices/":                         t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "POST /api/v1/admin/privacy-notices/":                        t(401, 401, 401,  NA, 403, 403, 403, 403, 201),
    "GET /api/v1/admin/billing/":                                 t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "POST /api/v1/admin/billing/plan/":                           t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/billing/invoices/":                        t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/billing/invoices.csv":                     t(401, 401, 401,  NA, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/billing/invoices/{invoice_id}/":           t(401, 401, 401, 404, 403, 403, 403, 403, 200),
    "GET /api/v1/admin/billing/invoices/{invoice_id}/invoice.html": t(401, 401, 401, 404, 403, 403, 403, 403, 200),
}

# Platform host personas: anonymous; a clinic admin's token (alpha's carol) on the platform host;
# a platform operator (is_staff, signed in with TOTP).
PLATFORM_MATRIX: dict[str, dict[str, Status | None]] = {
    # key                                                                 anon clinic operator
    "GET /readyz":                                                       p(200, 200, 200),
    "GET /api/schema/":                                                  p(200, 200, 200),
    "GET /api/docs/":                                                    p(200, 200, 200),
    "GET /problems/":                                                    p(200, 200, 200),
    "GET /problems/{code}":                                              p(200, 200, 200),
    "POST /api/v1/auth/password-reset/":                                 p(202, 202, 202),
    "POST /api/v1/auth/password-reset/confirm/":                         p(204, 204, 204),
    "POST /api/v1/clinics/":                                             p(202, 202, 202),
    "GET /api/v1/clinics/slug-availability/":                            p(200, 200, 200),
    "POST /api/v1/auth/verify-email/":                                   p(200, 200, 200),
    "GET /password-reset":                                               p(200, 200, 200),
    "POST /password-reset":                                              p(400, 400, 400),
    "GET /verify-email":                                                 p(200, 200, 200),
    "POST /verify-email":                                                p(400, 400, 400),
    "POST /api/v1/platform/auth/token/":                                 p(200, 200, 200),
    "GET /api/v1/platform/clinics/":                                     p(401, 401, 200),
    "POST /api/v1/platform/clinics/{slug}/suspend/":                     p(401, 401, 200),
    "POST /api/v1/platform/clinics/{slug}/reactivate/":                  p(401, 401, 200),
    "POST /api/v1/platform/clinics/{slug}/offboard/":                    p(401, 401, 202),
    "POST /api/v1/platform/clinics/{slug}/offboard/cancel/":             p(401, 401, 200),
    "GET /api/v1/platform/clinics/{slug}/archive/":                      p(401, 401, (404, "archive_not_ready")),
    "POST /api/v1/billing/webhooks/payments/":                           p(200, 200, 200),
    "POST /api/v1/billing/webhooks/payments/ | unsigned":                p(400, 400, 400),
    "GET /api/v1/platform/subscriptions/":                               p(401, 401, 200),
    "POST /api/v1/platform/subscriptions/{subscription_id}/extend-trial/": p(401, 401, 200),
    "GET /api/v1/platform/invoices/":                                    p(401, 401, 200),
    "POST /api/v1/platform/invoices/{invoice_id}/void/":                 p(401, 401, 200),
}
# fmt: on


def route_key(case_key: str) -> str:
    """`"POST /path/ | variant"` → `"POST /path/"`."""
    return case_key.split(" | ", 1)[0]
