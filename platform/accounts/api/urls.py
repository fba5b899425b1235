from __future__ import annotations

from django.urls import path

from accounts.api import views

# Clinic hosts.
auth_patterns = [
    path("auth/token/", views.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/csrf/", views.CsrfApi.as_view(), name="auth-csrf"),
    path("auth/login/", views.SessionLoginApi.as_view(), name="auth-login"),
    path("auth/me/", views.MeApi.as_view(), name="auth-me"),
    path("auth/password/", views.PasswordChangeApi.as_view(), name="auth-password-change"),
    path("auth/password-reset/", views.PasswordResetRequestApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm/",
        views.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path(
        "auth/verify-email/resend/",
        views.EmailVerificationResendApi.as_view(),
        name="auth-verify-email-resend",
    ),
    path("auth/mfa/setup/", views.MfaSetupApi.as_view(), name="auth-mfa-setup"),
    path("auth/mfa/confirm/", views.MfaConfirmApi.as_view(), name="auth-mfa-confirm"),
    path("auth/invitations/accept/", views.InvitationAcceptApi.as_view(), name="auth-invitation-accept"),
    path("admin/invitations/", views.InvitationListCreateApi.as_view(), name="admin-invitations"),
    path(
        "admin/invitations/<uuid:invitation_id>/revoke/",
        views.InvitationRevokeApi.as_view(),
        name="admin-invitation-revoke",
    ),
]

# The platform host: users are global, so a password reset works there too.
public_auth_patterns = [
    path("auth/password-reset/", views.PasswordResetRequestApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm/",
        views.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
]
