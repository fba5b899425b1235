"""The account pages of a clinic host: sign in and see where things are (`/account/`), accept an
invitation (`/invitation`), reset a password (`/password-reset`, also on the platform host) and
set up two-factor sign-in (`/account/mfa`). Email verification (`/verify-email`) is
onboarding.pages: a signup's link activates a clinic, which is onboarding's to do.

Each POST is one step of a flow and calls the same service as the JSON API (accounts.services);
these views only parse the form, call it and render the outcome. Why tokens arrive in form
fields rather than URLs: accounts.web.base.
"""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from accounts import services, sessions
from accounts.models import Role, User
from accounts.services import STAFF_ROLES
from accounts.web.base import (
    AccountPage,
    Member,
    form_add_service_error,
    page_clinic,
    page_member,
    token_from_pasted_link,
)
from core.errors import ApplicationError
from core.qr import qr_png
from tenants.selectors import clinic_get

PASSWORD_MAX = 128


def _password_field(label: Any, autocomplete: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=PASSWORD_MAX,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


def _otp_field(required: bool = False) -> forms.CharField:
    return forms.CharField(
        label=_("Code from your authenticator app"),
        required=required,
        max_length=32,
        help_text=_("Six digits, or one of your recovery codes.") if not required else "",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def role_name(role: str) -> str:
    names: dict[str, Any] = {
        Role.CLINIC_ADMIN: _("clinic admin"),
        Role.CLINICIAN: _("clinician"),
        Role.PATIENT: _("patient"),
    }
    return str(names.get(role, role))


# --- /account/: sign in, and where everything is ----------------------------------------------


class SignInForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = _password_field(_("Password"), "current-password")
    otp = _otp_field()


class AccountView(AccountPage):
    """The portal's front door in a browser: a sign-in form, or, signed in, who you are here
    and where the portal, the API documentation and the patient app are. Every emailed flow
    ends here (or on the MFA setup when the clinic requires it)."""

    template_name = "accounts/account.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if page_clinic(request) is None:
            return self.page(request, {"platform_host": True}, status=404)
        member = page_member(request)
        if member is None:
            return self.page(request, {"form": SignInForm()})
        return self.signed_in(request, member)

    def signed_in(self, request: HttpRequest, member: Member) -> HttpResponse:
        clinic = clinic_get(clinic_id=page_clinic(request).pk)  # as stored now, not the host cache's
        return self.page(
            request,
            {
                "member": member,
                "role": role_name(member.membership.role),
                "is_staff_member": member.membership.role in STAFF_ROLES,
                "mfa_enabled": member.membership.mfa_enabled,
                "mfa_setup_required": services.mfa_setup_pending(membership=member.membership, clinic=clinic),
                "welcome": request.GET.get("welcome") == "1",
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        clinic = page_clinic(request)
        if clinic is None:
            return self.page(request, {"platform_host": True}, status=404)
        if request.POST.get("action") == "sign-out":
            logout(request)
            return HttpResponseRedirect("/account/")
        form = SignInForm(request.POST)
        if not form.is_valid():
            return self.page(request, {"form": form}, status=400)
        try:
            sign_in = services.credentials_check(
                request=request,
                clinic=clinic,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                otp=form.cleaned_data["otp"] or None,
            )
        except ApplicationError as error:
            form_add_service_error(form, error)
            return self.page_error(request, {"form": form}, error)
        sessions.session_sign_in(request=request, user=sign_in.user, clinic=clinic, amr=sign_in.amr)
        if services.mfa_setup_pending(membership=sign_in.membership, clinic=clinic_get(clinic_id=clinic.pk)):
            return HttpResponseRedirect("/account/mfa")
        return HttpResponseRedirect("/account/")


# --- /invitation: accept an invitation ----------------------------------------------------------


class InvitationOpenForm(forms.Form):
    token = forms.CharField(
        label=_("Invitation link"),
        max_length=2048,
        help_text=_("Paste the whole link from the invitation email."),
    )


class InvitationAcceptForm(forms.Form):
    token = forms.CharField(max_length=256, widget=forms.HiddenInput)
    full_name = forms.CharField(
        label=_("Your full name"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password = _password_field(_("Password"), "new-password")
    otp = _otp_field()

    def __init__(self, *args: Any, new_account: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_account = new_account
        if new_account:
            self.fields["full_name"].required = True
            self.fields["password"].help_text = _("At least 10 characters, not a common password.")
            del self.fields["otp"]
        else:
            del self.fields["full_name"]
            self.fields["password"].label = _("Your current password")
            self.fields["password"].widget.attrs["autocomplete"] = "current-password"


class InvitationView(AccountPage):
    """Shows the clinic, the role and who invited, then creates the account (or links the
    person's existing one, proven by its password and second factor) and signs them in."""

    template_name = "accounts/invitation.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if page_clinic(request) is None:
            return self.page(request, {"platform_host": True}, status=404)
        return self.page(request, {"open_form": InvitationOpenForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        clinic = page_clinic(request)
        if clinic is None:
            return self.page(request, {"platform_host": True}, status=404)
        if request.POST.get("step") == "accept":
            return self.accept(request, clinic)
        form = InvitationOpenForm(request.POST)
        if not form.is_valid():
            return self.page(request, {"open_form": form}, status=400)
        token = token_from_pasted_link(form.cleaned_data["token"])
        try:
            invitation = services.invitation_open(clinic=clinic, token=token)
        except ApplicationError as error:
            form_add_service_error(form, error)
            return self.page_error(request, {"open_form": form}, error)
        new_account = not User.objects.filter(email=invitation.email).exists()
        accept = InvitationAcceptForm(initial={"token": token}, new_account=new_account)
        return self.page(request, self._details(invitation, accept))

    @staticmethod
    def _details(invitation: Any, accept: InvitationAcceptForm) -> dict[str, Any]:
        inviter = invitation.invited_by
        return {
            "invitation": invitation,
            "role": role_name(invitation.role),
            "inviter": inviter.full_name or inviter.email,
            "accept_form": accept,
        }

    def accept(self, request: HttpRequest, clinic: Any) -> HttpResponse:
        token = request.POST.get("token", "")
        try:
            invitation = services.invitation_open(clinic=clinic, token=token)
        except ApplicationError as error:
            open_form = InvitationOpenForm()
            form_add_service_error(open_form, error)
            return self.page_error(request, {"open_form": open_form}, error)
        new_account = not User.objects.filter(email=invitation.email).exists()
        form = InvitationAcceptForm(request.POST, new_account=new_account)
        if not form.is_valid():
            return self.page(request, self._details(invitation, form), status=400)
        try:
            joined = services.invitation_accept(
                clinic=clinic,
                token=form.cleaned_data["token"],
                full_name=form.cleaned_data.get("full_name", ""),
                password=form.cleaned_data["password"],
                otp=form.cleaned_data.get("otp") or None,
                request=request,
            )
        except ApplicationError as error:
            form_add_service_error(form, error)
            return self.page_error(request, self._details(invitation, form), error)
        sessions.session_sign_in(request=request, user=joined.user, clinic=clinic, amr=joined.amr)
        if clinic_get(clinic_id=clinic.pk).mfa_required and not services.mfa_enabled(user=joined.user):
            return HttpResponseRedirect("/account/mfa")
        return HttpResponseRedirect("/account/?welcome=1")


# --- /password-reset: ask for a link, then set a new password ------------------------------------


class ResetRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


class ResetSetForm(forms.Form):
    uid = forms.CharField(max_length=64, widget=forms.HiddenInput)
    token = forms.CharField(max_length=128, widget=forms.HiddenInput)
    password = _password_field(_("New password"), "new-password")
    password_again = _password_field(_("New password again"), "new-password")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = _("At least 10 characters, not a common password.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", _("The two passwords are not the same."))
        return data


class PasswordResetView(AccountPage):
    """`/password-reset` without a link asks for an email (the answer never tells whether it
    is registered); opened from the emailed link, its script fills `uid` and `token` from the
    fragment and shows the new-password form."""

    template_name = "accounts/password_reset.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, {"request_form": ResetRequestForm(), "set_form": ResetSetForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.POST.get("step") == "set":
            return self.set_password(request)
        form = ResetRequestForm(request.POST)
        if not form.is_valid():
            return self.page(request, {"request_form": form, "set_form": ResetSetForm()}, status=400)
        services.password_reset_request(email=form.cleaned_data["email"], clinic=page_clinic(request))
        return self.page(request, {"requested": True})

    def set_password(self, request: HttpRequest) -> HttpResponse:
        form = ResetSetForm(request.POST)
        context: dict[str, Any] = {"request_form": ResetRequestForm(), "set_form": form, "show_set": True}
        if not form.is_valid():
            status = 400
            if "uid" in form.errors or "token" in form.errors:
                context["link_broken"] = True
            return self.page(request, context, status=status)
        try:
            services.password_reset_confirm(
                uid=form.cleaned_data["uid"],
                token=form.cleaned_data["token"],
                password=form.cleaned_data["password"],
            )
        except ApplicationError as error:
            if error.field == "token":
                context["show_set"] = False
                form_add_service_error(context["request_form"], error)
            else:
                form_add_service_error(form, error)
            return self.page_error(request, context, error)
        return self.page(request, {"done": True})


# --- /account/mfa: two-factor sign-in -------------------------------------------------------------


class MfaStartForm(forms.Form):
    password = _password_field(_("Your current password"), "current-password")


class MfaConfirmForm(forms.Form):
    # The secret shown with the QR code comes back with the code: a mistyped code shows the QR
    # code again only to whoever was shown it (accounts.services.mfa_provisioning_uri).
    secret = forms.CharField(max_length=64, widget=forms.HiddenInput)
    otp = _otp_field(required=True)


def _qr_data_uri(uri: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(uri)).decode()


class MfaSetupView(AccountPage):
    """Staff set up TOTP: the current password (a stolen session must not bind its own
    authenticator), then the QR code and a first code, then the recovery codes, shown once on
    this answer only (never stored in clear, never cached)."""

    template_name = "accounts/mfa.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        member = page_member(request)
        if member is None:
            return HttpResponseRedirect("/account/")
        if member.membership.role not in STAFF_ROLES:
            return self.page(request, {"not_staff": True}, status=403)
        if member.membership.mfa_enabled:
            return self.page(request, {"already": True})
        return self.page(request, {"start_form": MfaStartForm(), **self._required(request, member)})

    @staticmethod
    def _required(request: HttpRequest, member: Member) -> dict[str, Any]:
        clinic = clinic_get(clinic_id=page_clinic(request).pk)  # as stored now, not the host cache's
        return {"required": services.mfa_setup_pending(membership=member.membership, clinic=clinic)}

    def post(self, request: HttpRequest) -> HttpResponse:
        member = page_member(request)
        if member is None:
            return HttpResponseRedirect("/account/")
        if member.membership.role not in STAFF_ROLES:
            return self.page(request, {"not_staff": True}, status=403)
        if request.POST.get("step") == "confirm":
            return self.confirm(request, member)
        form = MfaStartForm(request.POST)
        if not form.is_valid():
            return self.page(request, {"start_form": form, **self._required(request, member)}, status=400)
        try:
            secret, uri = services.mfa_setup(
                request=request, user=member.user, password=form.cleaned_data["password"]
            )
        except ApplicationError as error:
            form_add_service_error(form, error)
            return self.page_error(request, {"start_form": form, **self._required(request, member)}, error)
        return self.page(request, self._scan(uri, MfaConfirmForm(initial={"secret": secret})))

    @staticmethod
    def _scan(uri: str, form: MfaConfirmForm) -> dict[str, Any]:
        secret = uri.split("secret=", 1)[1].split("&", 1)[0] if "secret=" in uri else ""
        return {"qr": _qr_data_uri(uri), "secret": secret, "confirm_form": form}

    def confirm(self, request: HttpRequest, member: Member) -> HttpResponse:
        form = MfaConfirmForm(request.POST)
        uri = services.mfa_provisioning_uri(user=member.user, secret=request.POST.get("secret", ""))
        if uri is None:
            return self.page(
                request, {"start_form": MfaStartForm(), **self._required(request, member)}, status=400
            )
        if not form.is_valid():
            return self.page(request, self._scan(uri, form), status=400)
        try:
            codes = services.mfa_confirm(user=member.user, otp=form.cleaned_data["otp"])
        except ApplicationError as error:
            form_add_service_error(form, error)
            return self.page_error(request, self._scan(uri, form), error)
        sessions.session_mfa_confirmed(request=request)
        return self.page(request, {"recovery_codes": codes})
