"""What every account page shares: the language (en, de), a strict Content-Security-Policy, no
caching, the browser session of this clinic, and service errors shown next to their field.

Secrets in links stay out of server logs. Emailed links carry their token in the fragment
(`/invitation#token=…`), which browsers never send: not to our access logs, not to a proxy, not
in a Referer. A page's static script (static/accounts/pages.js; no inline script under the CSP)
copies the fragment into a form field, drops it from the address bar and history, and POSTs the
form, so the token reaches the server only in a request body. Without JavaScript, the same form
asks the person to paste the link, and the server reads the token out of the pasted text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from csp.constants import NONE, SELF
from django import forms
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views import View
from rest_framework import exceptions
from rest_framework.request import Request

from accounts.authentication import ClinicSessionAuthentication
from accounts.models import User
from accounts.selectors import ActiveMembership
from core.api.throttling import ScopedRateThrottle
from core.errors import ApplicationError

PAGE_LANGUAGES = ("en", "de")
# The pages need no inline script or style; only the MFA page's QR code is a data: image.
PAGE_CSP = {
    "default-src": [NONE],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF, "data:"],
    "form-action": [SELF],
    "connect-src": [NONE],
}

# What a person reads for each service error code, in their language. Codes not listed here
# show the service's own (English) detail.
ERROR_MESSAGES: dict[str, Any] = {
    "invitation_invalid": _("This invitation link is not valid. Ask your clinic's admin for a new one."),
    "invitation_revoked": _("This invitation was withdrawn. Ask your clinic's admin for a new one."),
    "invitation_used": _("This invitation was already accepted. Sign in instead."),
    "invitation_expired": _("This invitation has expired. Ask your clinic's admin for a new one."),
    "reset_token_invalid": _("This reset link is invalid or expired. Ask for a new one below."),
    "verification_token_invalid": _("This confirmation link is invalid or expired."),
    "signup_expired": _("This signup has expired and was removed. Sign up again."),
    "invalid_credentials": _("The email or password is not right."),
    "mfa_required": _("Enter the code from your authenticator app."),
    "invalid_otp": _("The authenticator code is not valid."),
    "otp_already_used": _("This code was already used. Wait for the next code in your authenticator app."),
    "invalid_current_password": _("The password is not right."),
    "email_unverified": _("Confirm your email address first: open the link we sent you."),
    "mfa_already_enabled": _("Two-factor sign-in is already set up for your account."),
    "mfa_not_started": _("Start the setup again."),
    "clinic_suspended": _("This clinic is suspended: no new members for now."),
    "clinic_offboarding": _("This clinic is leaving CSU Tracker: no new members."),
    "email_taken": _("This email is registered."),
    "plan_limit": _("The clinic's plan has no free seat for another clinician. Ask the clinic's admin."),
    "locked_out": _("Too many failed sign-in attempts. Try again in %(minutes)s minutes."),
}


def page_language(request: HttpRequest) -> str:
    """The first of en/de the browser asks for (Accept-Language), else English. Chosen per
    page, not by Django's LocaleMiddleware, so the JSON API keeps its English messages."""
    for code, _quality in parse_accept_lang_header(request.META.get("HTTP_ACCEPT_LANGUAGE", "")):
        base = code.split("-")[0].lower()
        if base in PAGE_LANGUAGES:
            return base
    return PAGE_LANGUAGES[0]


def page_clinic(request: HttpRequest) -> Any:
    """The clinic of the request's host, or None on the platform host."""
    tenant = getattr(request, "tenant", None)
    return tenant if getattr(tenant, "schema_name", "public") != "public" else None


class _PageSession(ClinicSessionAuthentication):
    """The portal's session rules (this clinic's session, absolute lifetime, active membership,
    revocation, MFA-bound sign-ins) for plain Django views. CSRF is not checked twice: Django's
    CsrfViewMiddleware has already checked every unsafe request to these views."""

    def enforce_csrf(self, request: Request) -> None:
        return None


@dataclass(frozen=True)
class Member:
    user: User
    membership: ActiveMembership


def page_member(request: HttpRequest) -> Member | None:
    """The signed-in member of this clinic, by the portal's own session rules; None for anyone
    else (another clinic's session, an expired or revoked one, the platform host)."""
    if page_clinic(request) is None:
        return None
    drf_request = Request(request)
    try:
        result = _PageSession().authenticate(drf_request)
    except exceptions.APIException:
        return None
    if result is None:
        return None
    membership = getattr(request, "membership", None)
    user = result[0]
    if membership is None or not isinstance(user, User):
        return None
    return Member(user=user, membership=membership)


def error_message(error: ApplicationError) -> str:
    message = ERROR_MESSAGES.get(str(error.code))
    if message is None:
        return error.detail
    if error.code == "locked_out":
        minutes = max(1, math.ceil(int(error.extra.get("retry_after", 60)) / 60))
        return str(message) % {"minutes": minutes}
    return str(message)


def form_add_service_error(form: forms.Form, error: ApplicationError) -> None:
    """A service's error next to the field it names (or above the form)."""
    field = error.field if error.field in form.fields else None
    if not hasattr(form, "cleaned_data"):  # an unbound form (a fresh one, shown with the error)
        form.errors  # noqa: B018 (sets up the form's error dict)
        form.cleaned_data = {}
    form.add_error(field, error_message(error))


class _PageThrottle(ScopedRateThrottle):
    """The scoped throttle, counted per client (core.net.client_key) only: reading the DRF
    request's user here would replace the Django request's session user."""

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class AccountPage(View):
    """An account page: rendered in the browser's language under the strict policy, never
    cached. Outside the request transaction: sign-in and linking flows check passwords
    through django-axes, whose failed attempts must persist (the services open their own
    transactions)."""

    template_name: ClassVar[str] = ""
    # Every form a page posts is throttled per client as its JSON twin is (the `auth` scope):
    # tokens cannot be tried, nor reset emails queued, faster through the pages than the API.
    throttle_scope: ClassVar[str] = "auth"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        language = page_language(request)
        with translation.override(language):
            wait = self.throttled(request) if request.method == "POST" else None
            if wait is not None:
                response: HttpResponseBase = self.page(request, {"throttled": True}, status=429)
                response["Retry-After"] = str(wait)
            else:
                response = super().dispatch(request, *args, **kwargs)
        response["Content-Language"] = language
        response["Cache-Control"] = "no-store"
        patch_vary_headers(response, ["Accept-Language", "Cookie"])
        response._csp_replace = PAGE_CSP  # type: ignore[attr-defined]  # read by csp.middleware
        return response

    def throttled(self, request: HttpRequest) -> int | None:
        """Seconds to wait when this client has posted too often, else None."""
        throttle = _PageThrottle()
        if throttle.allow_request(Request(request), self):
            return None
        return max(1, int(throttle.wait() or 1))

    def page_error(
        self, request: HttpRequest, context: dict[str, Any], error: ApplicationError
    ) -> HttpResponse:
        """The page again with a service's error: its status and headers (a lockout's
        Retry-After). A lockout stays this page: django-axes' middleware would otherwise put
        its JSON problem in its place (accounts.lockout.lockout_response keeps marked pages)."""
        response = self.page(request, context, status=error.status_code)
        for name, value in error.headers.items():
            response[name] = value
        response.csu_page = True  # type: ignore[attr-defined]  # read by accounts.lockout
        return response

    def page(self, request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
        clinic = page_clinic(request)
        return render(
            request,
            self.template_name,
            {"lang": translation.get_language(), "clinic": clinic, **context},
            status=status,
        )


def token_from_pasted_link(value: str, name: str = "token") -> str:
    """The secret out of what was put in the field: the bare token (filled in by the page's
    script) or a whole link pasted by someone without JavaScript (`…#token=abc`)."""
    value = value.strip()
    if "#" in value or f"{name}=" in value:
        fragment = value.split("#", 1)[-1]
        for part in fragment.split("&"):
            key, _sep, found = part.partition("=")
            if key == name:
                return found.strip()
    return value
