"""URLconf of the platform host (PLATFORM_DOMAIN): signup, operators, billing webhooks."""

from __future__ import annotations

from django.urls import include, path
from onboarding.api.urls import public_patterns
from onboarding.pages import VerifyEmailView

from accounts.api.urls import public_auth_patterns
from accounts.web.urls import public_page_patterns
from billing.api.urls import public_patterns as billing_public_patterns
from config.urls_common import common_patterns

urlpatterns = [
    *common_patterns,
    path("api/v1/", include(public_auth_patterns)),
    path("api/v1/", include(public_patterns)),
    path("api/v1/", include(billing_public_patterns)),
    # Account pages that live on the platform host: signup confirmation, password reset.
    *public_page_patterns,
    path("verify-email", VerifyEmailView.as_view(), name="page-verify-email"),
]

handler400 = "core.errors.bad_request_view"
handler403 = "core.errors.permission_denied_view"
handler404 = "core.errors.not_found_view"
handler500 = "core.errors.server_error_view"
