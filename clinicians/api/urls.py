from __future__ import annotations

from django.urls import path

from clinicians.api import enrollment, views

portal_patterns = [
    path("portal/patients/", views.PatientListCreateApi.as_view(), name="portal-patients"),
    path("portal/patients/<uuid:patient_id>/", views.PatientDetailApi.as_view(), name="portal-patient"),
    path(
        "portal/patients/<uuid:patient_id>/timeline/",
        views.PatientTimelineApi.as_view(),
        name="portal-timeline",
    ),
    path(
        "portal/patients/<uuid:patient_id>/scores/uas7/", views.PatientUas7Api.as_view(), name="portal-uas7"
    ),
    path("portal/patients/<uuid:patient_id>/notes/", views.PatientNotesApi.as_view(), name="portal-notes"),
    path(
        "portal/patients/<uuid:patient_id>/prescriptions/",
        views.PatientPrescriptionsApi.as_view(),
        name="portal-prescriptions",
    ),
    path(
        "portal/prescriptions/<uuid:prescription_id>/stop/",
        views.PrescriptionStopApi.as_view(),
        name="portal-rx-stop",
    ),
    path("portal/alerts/", views.AlertListApi.as_view(), name="portal-alerts"),
    path(
        "portal/alerts/<uuid:alert_id>/acknowledge/",
        views.AlertAcknowledgeApi.as_view(),
        name="portal-alert-ack",
    ),
    path(
        "portal/alerts/<uuid:alert_id>/resolve/", views.AlertResolveApi.as_view(), name="portal-alert-resolve"
    ),
    path(
        "portal/patients/<uuid:patient_id>/reports/",
        views.PatientReportRequestApi.as_view(),
        name="portal-report-request",
    ),
    path("portal/reports/", views.ReportListApi.as_view(), name="portal-reports"),
    path("portal/reports/<uuid:report_id>/", views.ReportDetailApi.as_view(), name="portal-report"),
    path(
        "portal/reports/<uuid:report_id>/chart.png",
        views.ReportChartApi.as_view(),
        name="portal-report-chart",
    ),
    path(
        "portal/reports/<uuid:report_id>/report.csv", views.ReportCsvApi.as_view(), name="portal-report-csv"
    ),
    path("portal/enrollments/", enrollment.EnrollmentCreateApi.as_view(), name="portal-enrollments"),
    path(
        "portal/enrollments/<uuid:enrollment_id>/qr.png",
        enrollment.EnrollmentQrApi.as_view(),
        name="portal-enrollment-qr",
    ),
    path("admin/care-teams/", views.CareTeamListCreateApi.as_view(), name="admin-care-teams"),
    path(
        "admin/care-teams/<uuid:assignment_id>/end/",
        views.CareTeamEndApi.as_view(),
        name="admin-care-team-end",
    ),
    path("admin/access-log/", views.AccessLogListApi.as_view(), name="admin-access-log"),
]
