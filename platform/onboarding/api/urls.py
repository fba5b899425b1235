from __future__ import annotations

from django.urls import path

from onboarding.api import views
from onboarding.api.offboarding import OperatorClinicOffboardCancelApi

# Platform host.
public_patterns = [
    path("clinics/", views.ClinicSignupApi.as_view(), name="clinic-signup"),
    path("auth/verify-email/", views.EmailConfirmApi.as_view(), name="auth-verify-email"),
    path("clinics/slug-availability/", views.SlugAvailabilityApi.as_view(), name="clinic-slug-availability"),
    path("platform/auth/token/", views.OperatorTokenApi.as_view(), name="operator-token"),
    path("platform/clinics/", views.OperatorClinicListApi.as_view(), name="operator-clinics"),
    path(
        "platform/clinics/<str:slug>/suspend/",
        views.OperatorClinicSuspendApi.as_view(),
        name="operator-suspend",
    ),
    path(
        "platform/clinics/<str:slug>/reactivate/",
        views.OperatorClinicReactivateApi.as_view(),
        name="operator-reactivate",
    ),
    path(
        "platform/clinics/<str:slug>/offboard/",
        views.OperatorClinicOffboardApi.as_view(),
        name="operator-offboard",
    ),
    path(
        "platform/clinics/<str:slug>/offboard/cancel/",
        OperatorClinicOffboardCancelApi.as_view(),
        name="operator-offboard-cancel",
    ),
    path(
        "platform/clinics/<str:slug>/archive/",
        views.OperatorClinicArchiveApi.as_view(),
        name="operator-archive",
    ),
]

# Clinic hosts.
tenant_patterns = [
    path("auth/verify-email/", views.EmailConfirmApi.as_view(), name="auth-verify-email"),
    path("admin/clinic/", views.ClinicSettingsApi.as_view(), name="admin-clinic"),
    path("admin/members/", views.MemberListApi.as_view(), name="admin-members"),
    path(
        "admin/members/<uuid:membership_id>/deactivate/",
        views.MemberDeactivateApi.as_view(),
        name="admin-member-deactivate",
    ),
    path(
        "admin/members/<uuid:membership_id>/reactivate/",
        views.MemberReactivateApi.as_view(),
        name="admin-member-reactivate",
    ),
]
