from __future__ import annotations

from django.urls import path

from clinicians.api import enrollment
from clinicians.api.views import admin, alerts, notes, own, patients, prescriptions, reports

portal_patterns = [
    path("portal/patients/", patients.PatientListCreateApi.as_view(), name="portal-patients"),
    path("portal/patients/<uuid:patient_id>/", patients.PatientDetailApi.as_view(), name="portal-patient"),
    path(
        "portal/patients/<uuid:patient_id>/care-team/",
        patients.PatientCareTeamApi.as_view(),
        name="portal-care-team",
    ),
    path("me/care-team/", own.MyCareTeamApi.as_view(), name="me-care-team"),
    path(
        "portal/patients/<uuid:patient_id>/timeline/",
        patients.PatientTimelineApi.as_view(),
        name="portal-timeline",
    ),
    path(
        "portal/patients/<uuid:patient_id>/scores/uas7/",
        patients.PatientUas7Api.as_view(),
        name="portal-uas7",
    ),
    path("portal/patients/<uuid:patient_id>/notes/", notes.PatientNotesApi.as_view(), name="portal-notes"),
    path(
        "portal/patients/<uuid:patient_id>/prescriptions/",
        prescriptions.PatientPrescriptionsApi.as_view(),
        name="portal-prescriptions",
    ),
    path(
        "portal/prescriptions/<uuid:prescription_id>/stop/",
        prescriptions.PrescriptionStopApi.as_view(),
        name="portal-rx-stop",
    ),
    path("portal/medications/", prescriptions.MedicationCatalogueApi.as_view(), name="portal-medications"),
    path("portal/alerts/", alerts.AlertListApi.as_view(), name="portal-alerts"),
    path(
        "portal/alerts/<uuid:alert_id>/acknowledge/",
        alerts.AlertAcknowledgeApi.as_view(),
        name="portal-alert-ack",
    ),
    path(
        "portal/alerts/<uuid:alert_id>/resolve/",
        alerts.AlertResolveApi.as_view(),
        name="portal-alert-resolve",
    ),
    path(
        "portal/patients/<uuid:patient_id>/reports/",
        reports.PatientReportRequestApi.as_view(),
        name="portal-report-request",
    ),
    path("portal/reports/", reports.ReportListApi.as_view(), name="portal-reports"),
    path("portal/reports/<uuid:report_id>/", reports.ReportDetailApi.as_view(), name="portal-report"),
    path(
        "portal/reports/<uuid:report_id>/chart.png",
        reports.ReportChartApi.as_view(),
        name="portal-report-chart",
    ),
    path(
        "portal/reports/<uuid:report_id>/report.csv", reports.ReportCsvApi.as_view(), name="portal-report-csv"
    ),
    path("portal/enrollments/", enrollment.EnrollmentCreateApi.as_view(), name="portal-enrollments"),
    path(
        "portal/enrollments/<uuid:enrollment_id>/qr.png",
        enrollment.EnrollmentQrApi.as_view(),
        name="portal-enrollment-qr",
    ),
    path("admin/care-teams/", admin.CareTeamListCreateApi.as_view(), name="admin-care-teams"),
    path(
        "admin/care-teams/<uuid:assignment_id>/end/",
        admin.CareTeamEndApi.as_view(),
        name="admin-care-team-end",
    ),
    path("admin/access-log/", admin.AccessLogListApi.as_view(), name="admin-access-log"),
    path(
        "admin/privacy-notices/", admin.PrivacyNoticeListPublishApi.as_view(), name="admin-privacy-notices"
    ),
]
