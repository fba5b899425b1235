"""`/verify-email` on the platform host (a clinic signup's confirmation) and on clinic hosts (an
account's address): the page the emailed link opens. Onboarding's, not accounts', because a
signup's link also activates the clinic (onboarding.signup.email_confirm); the page itself is
one of the account pages (accounts.web: language, policy, templates, why the token travels in
a form field and never in a URL)."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from accounts.web.base import AccountPage, form_add_service_error, token_from_pasted_link
from core.errors import ApplicationError
from onboarding import signup
from tenants.selectors import clinic_url


class VerifyEmailForm(forms.Form):
    token = forms.CharField(
        label=_("Confirmation link"),
        max_length=4096,
        help_text=_("Paste the whole link from the email."),
    )


class VerifyEmailView(AccountPage):
    template_name = "accounts/verify_email.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, {"form": VerifyEmailForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = VerifyEmailForm(request.POST)
        if not form.is_valid():
            return self.page(request, {"form": form}, status=400)
        try:
            confirmation = signup.email_confirm(token=token_from_pasted_link(form.cleaned_data["token"]))
        except ApplicationError as error:
            form_add_service_error(form, error)
            return self.page_error(request, {"form": form}, error)
        new_clinic = confirmation.clinic
        return self.page(
            request,
            {
                "verified": True,
                "new_clinic": new_clinic,
                "new_clinic_sign_in": clinic_url(new_clinic, "/account/") if new_clinic else None,
                "new_clinic_mfa": clinic_url(new_clinic, "/account/mfa") if new_clinic else None,
            },
        )
