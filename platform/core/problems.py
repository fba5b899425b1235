"""What every problem `code` means, for the people who meet one: the `type` URI of every API
problem points at `/problems/<code>` on the platform host, a page generated from this table
(and the OpenAPI error examples quote it). One entry per `ErrorCode`, plus the codes DRF
itself answers with; `tests/core/test_problem_pages.py` fails when a code lacks its entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views import View

from core.codes import ErrorCode as E


@dataclass(frozen=True)
class ProblemCode:
    code: str
    meaning: str
    # What the client can do about it.
    remedy: str = ""


# Codes that are not ErrorCode members: DRF's own, and a permission class's code.
FRAMEWORK_CODES = (
    "mfa_setup_required",
    "not_authenticated",
    "authentication_failed",
    "throttled",
    "method_not_allowed",
    "not_acceptable",
    "unsupported_media_type",
)

_MEANINGS: dict[str, tuple[str, str]] = {
    # Authentication and accounts
    "not_authenticated": ("The request carries no credentials.", "Sign in and send the access token."),
    "authentication_failed": ("The credentials were not accepted.", "Sign in again."),
    E.TOKEN_NOT_VALID: (
        "The access or refresh token is expired, revoked or not for this clinic.",
        "Refresh the access token; if the refresh token is refused too, sign in again.",
    ),
    E.INVALID_CREDENTIALS: ("The email or password is wrong.", "Check both and try again."),
    E.INVALID_CURRENT_PASSWORD: ("The current password given is wrong.", "Enter the current password."),
    E.INVALID_OTP: ("The one-time code from the authenticator app is not valid.", "Enter the current code."),
    E.LOCKED_OUT: (
        "Too many failed sign-ins for this account or network: sign-in is paused for a while.",
        "Wait for the time in `retry_after`, or reset the password.",
    ),
    E.EMAIL_UNVERIFIED: (
        "The account's email address is not confirmed yet.",
        "Open the confirmation link sent by email, or ask for a new one "
        "(`POST /api/v1/auth/verify-email/resend/`).",
    ),
    E.EMAIL_TAKEN: ("An account with this email address exists.", "Sign in, or use another address."),
    E.WEAK_PASSWORD: (
        "The new password is too short, too common or too similar to the account's details.",
        "Choose a longer, less guessable password.",
    ),
    E.RESET_TOKEN_INVALID: ("The password-reset link is invalid or expired.", "Request a new link."),
    E.VERIFICATION_TOKEN_INVALID: ("The confirmation link is invalid or expired.", "Request a new link."),
    E.SESSION_EXPIRED: ("The browser session has ended.", "Sign in again."),
    E.MFA_REQUIRED: (
        "This clinic requires two-factor authentication for staff, and the sign-in did not use it.",
        "Set up an authenticator app (`/auth/mfa/setup/`) and sign in with its code.",
    ),
    "mfa_setup_required": (
        "This clinic requires two-factor authentication and the account has not set it up yet.",
        "Set up an authenticator app (`/api/v1/auth/mfa/setup/`), then try again.",
    ),
    E.MFA_SETUP_FIRST: (
        "Requiring two-factor authentication would lock out the admin making the change, who has "
        "not set it up.",
        "Set up your own authenticator app first.",
    ),
    E.OTP_ALREADY_USED: (
        "This authenticator code was just used: each code works once.",
        "Wait for the next code (at most 30 seconds).",
    ),
    E.MFA_ALREADY_ENABLED: ("Two-factor authentication is already set up.", ""),
    E.MFA_NOT_STARTED: ("There is no pending authenticator setup to confirm.", "Start the setup first."),
    E.MEMBERSHIP_INACTIVE: (
        "The account's membership in this clinic is deactivated.",
        "Ask the clinic's admin to reactivate it.",
    ),
    E.PERMISSION_DENIED: ("The signed-in account's role may not do this.", ""),
    E.NOT_ALLOWED: ("This operation is not allowed for this account or record.", ""),
    E.CLIENT_NOT_YOURS: ("This client id belongs to another account.", "Generate a new client id."),
    # Invitations and enrollment
    E.INVITATION_INVALID: ("The invitation link is not valid.", "Ask the clinic for a new invitation."),
    E.INVITATION_EXPIRED: ("The invitation has expired.", "Ask the clinic for a new invitation."),
    E.INVITATION_REVOKED: ("The clinic revoked this invitation.", "Ask the clinic for a new invitation."),
    E.INVITATION_USED: ("The invitation was already accepted.", "Sign in instead."),
    E.INVALID_ROLE: ("The role cannot be given this way (invite clinicians or clinic admins).", ""),
    E.ALREADY_MEMBER: ("This person is already a member of the clinic.", ""),
    E.ENROLLMENT_INVALID: ("The enrollment code is not valid.", "Check the code, or ask the clinic."),
    E.ENROLLMENT_EXPIRED: ("The enrollment code has expired.", "Ask the clinic for a new code."),
    E.ENROLLMENT_REVOKED: ("The clinic revoked this enrollment code.", "Ask the clinic for a new code."),
    E.ENROLLMENT_USED: ("The enrollment code was already used.", "Sign in instead."),
    E.ENROLLMENT_PAUSED: (
        "Too many wrong enrollment codes were tried at this clinic: enrollment is paused for a while.",
        "Wait for the time in `retry_after`.",
    ),
    E.PATIENT_ALREADY_ENROLLED: ("This patient record already has an account.", ""),
    E.NO_PATIENT_RECORD: ("The signed-in account has no patient record in this clinic.", ""),
    E.NOT_A_CLINICIAN: ("The person named is not a clinician of this clinic.", ""),
    E.ALREADY_ASSIGNED: ("The clinician is already in this patient's care team.", ""),
    E.ALREADY_ENDED: ("This care-team assignment has already ended.", ""),
    E.CANNOT_DEACTIVATE_SELF: ("An admin cannot deactivate their own membership.", ""),
    # Clinic signup and lifecycle
    E.INVALID_SLUG: (
        "The clinic address is not valid: lowercase letters, digits and hyphens, 3 to 40 characters.",
        "",
    ),
    E.RESERVED_SLUG: ("This clinic address is reserved.", "Choose another address."),
    E.SLUG_TAKEN: ("Another clinic uses this address.", "Choose another address."),
    E.INVALID_NAME: ("The name is empty or not valid.", ""),
    E.SIGNUP_BUSY: ("Too many signups are being processed right now.", "Try again in a minute."),
    E.SIGNUP_EXPIRED: (
        "The signup was not confirmed in time and has been released.",
        "Sign up again.",
    ),
    E.CLINIC_SUSPENDED: (
        "The clinic is suspended: staff can read, but nothing new can be recorded by staff.",
        "Contact the platform operator.",
    ),
    E.CLINIC_OFFBOARDING: ("The clinic is leaving the platform: no changes are accepted.", ""),
    E.INVALID_STATUS: ("The clinic or record cannot move to that status from its current one.", ""),
    E.UNKNOWN_HOST: ("No clinic answers at this host name.", "Check the clinic's address."),
    E.ARCHIVE_NOT_READY: ("The clinic's export archive is not ready yet.", "Try again later."),
    E.ARCHIVE_MISSING: ("The clinic's export archive file is missing.", ""),
    E.ARCHIVE_UNREADABLE: ("The clinic's export archive cannot be read.", ""),
    E.ARCHIVE_CHECKSUM_MISMATCH: ("The export archive does not match its recorded checksum.", ""),
    E.ARCHIVE_NOT_RECORDED: ("No export archive was recorded for this clinic.", ""),
    # Billing
    E.PLAN_LIMIT: (
        "The clinic's plan does not allow more of these (patients, staff or features).",
        "Upgrade the plan.",
    ),
    E.NO_SUBSCRIPTION: ("The clinic has no subscription.", ""),
    E.NOT_TRIALING: ("Only a subscription in its trial can have the trial extended.", ""),
    E.SUBSCRIPTION_CANCELED: ("The subscription is canceled.", ""),
    E.INVOICE_NOT_OPEN: ("Only an open invoice can be changed this way.", ""),
    E.UNKNOWN_INVOICE: ("No such invoice.", ""),
    E.SIGNATURE_INVALID: ("The webhook signature does not match.", ""),
    E.SIGNATURE_EXPIRED: ("The webhook signature's timestamp is too old.", ""),
    E.UPGRADE_REQUIRED: ("This client version is too old for the API.", "Update the app."),
    # Diary, doses, questionnaires
    E.DIARY_FUTURE_DATE: ("A diary day after the patient's local today cannot be recorded.", ""),
    E.DIARY_TOO_LATE: (
        "The day is older than the clinic's late-entry window (the profile's `late_entry_days`).",
        "",
    ),
    E.DIARY_CONFLICT: ("The diary entry was changed since it was read.", "Pull, then retry."),
    E.DIARY_DAY_KIND: (
        "The day is already recorded in the other diary mode (whole day vs. morning/evening).",
        "Change that entry instead.",
    ),
    E.DIARY_SLOT_MISMATCH: ("The slot does not fit the clinic's diary mode.", ""),
    E.DIARY_ID_CONFLICT: ("This entry id belongs to another diary entry.", "Generate a new id."),
    E.DOSE_FUTURE_DATE: ("A dose after the patient's local today cannot be recorded.", ""),
    E.DOSE_TOO_LATE: ("The dose is older than the clinic's late-entry window.", ""),
    E.PRESCRIPTION_INACTIVE: ("The prescription is not active on that date.", ""),
    E.UNKNOWN_MEDICATION: (
        "The medication code is not in the clinic's catalogue.",
        "Use a code from the medication catalogue.",
    ),
    E.ALREADY_STOPPED: ("The prescription is already stopped.", ""),
    E.UNKNOWN_INSTRUMENT: ("Unknown questionnaire: use `uct`, `uct7` or `aas`.", ""),
    E.INVALID_ANSWERS: ("The questionnaire answers do not fit the instrument's items.", ""),
    E.AAS_REQUIRED: ("With angioedema reported, the 5 AAS swelling questions must be answered.", ""),
    E.AAS_WITHOUT_ANGIOEDEMA: ("AAS answers were sent for a day without angioedema.", ""),
    E.QUESTIONNAIRE_TOO_LATE: ("The questionnaire's date is outside the accepted window.", ""),
    E.FUTURE_DATE: ("The date is in the future.", ""),
    E.CONSENT_REQUIRED: (
        "The patient has not accepted the clinic's privacy notice: no health data is stored.",
        "Accept the privacy notice first.",
    ),
    E.CONSENT_NOT_GIVEN: ("There is no consent to withdraw or act on.", ""),
    E.PRIVACY_NOTICE_OUTDATED: (
        "The privacy notice accepted is not the clinic's current version.",
        "Read and accept the current notice.",
    ),
    # Reminders and push
    E.TOO_MANY_REMINDERS: ("The patient has the maximum number of reminders.", "Delete one first."),
    E.TOO_MANY_PUSH_SUBSCRIPTIONS: ("The account has the maximum number of push subscriptions.", ""),
    E.PUSH_ENDPOINT_NOT_ALLOWED: ("The push endpoint is not on a known push service.", ""),
    E.PUSH_ENDPOINT_TAKEN: ("This push endpoint is registered to another account.", ""),
    # Sync
    E.BATCH_TOO_LARGE: ("The push holds more mutations than one batch may.", "Send smaller batches."),
    E.MUTATION_GAP: ("A mutation sequence number was skipped.", "Resend from the first unacknowledged one."),
    E.RESET_REQUIRED: (
        "The client's copy is too old to catch up.",
        "Download everything again (pull without a cursor).",
    ),
    E.SERVER_OWNED: ("This record is written by the clinic, not by the patient's app.", ""),
    E.INSERT_ONLY: ("Records of this kind can be added but not changed.", ""),
    E.IMMUTABLE: ("This record cannot be changed any more.", ""),
    E.IMMUTABLE_FIELD: ("This field cannot be changed once set.", ""),
    # Portal and reports
    E.ALERT_RESOLVED: ("The alert is already resolved.", ""),
    E.REPORT_NOT_READY: ("The report is still being generated.", "Try again in a few seconds."),
    E.REPORT_WEEK_INCOMPLETE: ("Reports cover weeks that have ended.", "Choose an earlier Monday."),
    E.REPORT_WEEK_BEFORE_ENROLMENT: ("The week is before the patient's enrollment.", ""),
    E.NOT_READY: ("The resource is not ready yet.", "Try again later."),
    E.APP_NOT_BUILT: ("The patient app is not built on this server.", ""),
    # Generic input problems
    E.VALIDATION_ERROR: ("One or more fields were refused; `errors` names each.", "Fix the fields named."),
    E.PARSE_ERROR: ("The body is not valid JSON.", ""),
    E.BAD_REQUEST: ("The request could not be accepted.", ""),
    E.UNKNOWN_FIELD: ("The body contains a field the operation does not accept.", "Remove it."),
    E.INVALID_VALUE: ("A value is not allowed.", ""),
    E.INVALID_DATE: ("A date is not valid (YYYY-MM-DD).", ""),
    E.INVALID_RANGE: ("The range is not valid: `from` is after `to`.", ""),
    E.RANGE_TOO_LONG: ("The date range is longer than allowed.", "Ask for a shorter range."),
    E.INVALID_CURSOR: ("The page cursor is not valid for this listing.", "Start from the first page."),
    E.INVALID_SORT: ("Unknown sort order.", ""),
    E.INVALID_TIMEZONE: ("Unknown IANA time zone (such as Europe/Berlin).", ""),
    E.INVALID_CHARACTERS: ("The text contains control characters.", ""),
    E.MIN_VALUE: ("The value is below the minimum.", ""),
    E.PAYLOAD_TOO_LARGE: ("The request body is too large.", ""),
    E.NOT_FOUND: ("No such resource, or it is not visible to the signed-in account.", ""),
    # Framework and service
    "throttled": ("Too many requests.", "Wait for the time in `retry_after` (and `Retry-After`)."),
    "method_not_allowed": ("The operation does not accept this HTTP method.", ""),
    "not_acceptable": ("The server cannot answer in the media type asked for.", ""),
    "unsupported_media_type": ("The body's media type is not accepted.", "Send `application/json`."),
    E.SERVICE_UNAVAILABLE: ("The service is briefly unavailable.", "Retry after `Retry-After` seconds."),
    E.SERVER_ERROR: ("An unexpected error occurred on the server.", "Try again; report it if it persists."),
}

PROBLEM_CODES: dict[str, ProblemCode] = {
    str(code): ProblemCode(code=str(code), meaning=meaning, remedy=remedy)
    for code, (meaning, remedy) in sorted(_MEANINGS.items(), key=lambda item: str(item[0]))
}


def problem_type_uri(code: str) -> str:
    """The page explaining `code`, on the platform host (the page is served on every host, but
    a problem type is one URI wherever it was answered). Built like the links in emails:
    PUBLIC_URL_SCHEME://PLATFORM_DOMAIN[:PUBLIC_PORT]."""
    port = getattr(settings, "PUBLIC_PORT", None)
    origin = f"{settings.PUBLIC_URL_SCHEME}://{settings.PLATFORM_DOMAIN}{f':{port}' if port else ''}"
    return f"{origin}/problems/{code}"


def codes_without_meaning() -> list[str]:
    """Codes a problem can carry that this table does not explain (the test lists them)."""
    known = set(PROBLEM_CODES)
    return sorted(code for code in (*(str(c) for c in E), *FRAMEWORK_CODES) if code not in known)


def problem_html(text: str) -> SafeString:
    """A meaning or remedy for the page: escaped, its `code spans` as <code> (the same text is
    Markdown in the OpenAPI examples)."""
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text)))  # noqa: S308 (escaped above)


class ProblemsPageView(View):
    """Every problem code and what it means (`/problems/`)."""

    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest) -> HttpResponse:
        problems = [
            {
                "code": p.code,
                "meaning": problem_html(p.meaning),
                "remedy": problem_html(p.remedy),
                "url": reverse("problem", args=[p.code]),
            }
            for p in PROBLEM_CODES.values()
        ]
        return render(request, "core/problems.html", {"problems": problems})


class ProblemPageView(View):
    """One problem code: the page a problem's `type` URI resolves to (`/problems/<code>`)."""

    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        problem = PROBLEM_CODES.get(code)
        if problem is None:
            raise Http404
        single = {
            "code": problem.code,
            "meaning": problem_html(problem.meaning),
            "remedy": problem_html(problem.remedy),
        }
        return render(request, "core/problems.html", {"single": single, "index_url": reverse("problems")})
