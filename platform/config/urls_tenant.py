"""URLconf of clinic hosts (<slug>.<PLATFORM_DOMAIN>): the patient app, patient, portal and
clinic-admin APIs."""

from __future__ import annotations

from django.urls import include, path, re_path
from onboarding.api.urls import tenant_patterns
from onboarding.pages import VerifyEmailView

from accounts.api.urls import auth_patterns
from accounts.web.urls import tenant_page_patterns
from billing.api.urls import admin_patterns as billing_admin_patterns
from clinicians.api.urls import portal_patterns
from config.urls_common import common_patterns
from patients import app
from patients.api.urls import me_patterns

urlpatterns = [
    *common_patterns,
    path("api/v1/", include(auth_patterns)),
    path("api/v1/", include(tenant_patterns)),
    path("api/v1/", include(me_patterns)),
    path("api/v1/", include(portal_patterns)),
    path("api/v1/", include(billing_admin_patterns)),
    # The patient PWA (patients/app.py): the clinic's own origin, scope /app/.
    path("", app.IntoAppView.as_view(), name="app-root"),
    path("enroll", app.IntoAppView.as_view(), name="app-enroll"),
    # Account pages (accounts/web, onboarding/pages): where staff links in emails lead.
    *tenant_page_patterns,
    path("verify-email", VerifyEmailView.as_view(), name="page-verify-email"),
    path("app/manifest.webmanifest", app.ManifestView.as_view(), name="app-manifest"),
    path("app/sw.js", app.ServiceWorkerView.as_view(), name="app-service-worker"),
    re_path(
        r"^app/(?P<folder>assets|icons)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,199})$",
        app.AppFileView.as_view(),
        name="app-file",
    ),
    re_path(r"^app/(?P<route>[A-Za-z0-9/._-]{0,200})$", app.AppShellView.as_view(), name="app-shell"),
]

handler400 = "core.errors.bad_request_view"
handler403 = "core.errors.permission_denied_view"
handler404 = "core.errors.not_found_view"
handler500 = "core.errors.server_error_view"
