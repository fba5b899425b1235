"""Account page routes, included by config's URLconfs (the verify-email page is onboarding's:
onboarding.pages, routed there too)."""

from __future__ import annotations

from django.urls import path

from accounts.web import views

# Clinic hosts.
tenant_page_patterns = [
    path("account/", views.AccountView.as_view(), name="page-account"),
    path("account/mfa", views.MfaSetupView.as_view(), name="page-mfa"),
    path("invitation", views.InvitationView.as_view(), name="page-invitation"),
    path("password-reset", views.PasswordResetView.as_view(), name="page-password-reset"),
]

# The platform host: a reset asked for there (an operator, an account outside any clinic).
public_page_patterns = [
    path("password-reset", views.PasswordResetView.as_view(), name="page-password-reset"),
]
