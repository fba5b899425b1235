"""URLconf of clinic hosts (<slug>.<PLATFORM_DOMAIN>): patient, portal and clinic-admin APIs."""

from __future__ import annotations

from django.urls import include, path

from accounts.api.urls import auth_patterns
from billing.api.urls import admin_patterns as billing_admin_patterns
from clinicians.api.urls import portal_patterns
from config.urls_common import common_patterns
from patients.api.urls import me_patterns
from tenants.api.urls import tenant_patterns

urlpatterns = [
    *common_patterns,
    path("api/v1/", include(auth_patterns)),
    path("api/v1/", include(tenant_patterns)),
    path("api/v1/", include(me_patterns)),
    path("api/v1/", include(portal_patterns)),
    path("api/v1/", include(billing_admin_patterns)),
]

handler400 = "core.errors.bad_request_view"
handler403 = "core.errors.permission_denied_view"
handler404 = "core.errors.not_found_view"
handler500 = "core.errors.server_error_view"
