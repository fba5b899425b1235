"""Weekly adherence reports: a patient's (through the patient access function) and the
clinic's summary."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from clinicians import reports, selectors
from clinicians.access import report_get_for_staff
from clinicians.api.views.base import PortalApi
from clinicians.models import Report, ReportKind, ReportStatus
from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField
from core.api.throttling import ScopedRateThrottle, UserRateThrottle
from core.errors import ApplicationError, ErrorCode


class ReportSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    patient = serializers.UUIDField(source="patient_id", allow_null=True)
    week_start = serializers.DateField()
    status = serializers.CharField()
    generated_at = serializers.DateTimeField(allow_null=True)


class ReportDetailSerializer(ReportSerializer):
    # The wire name `data` clashes with Serializer.data in the stubs only: DRF's metaclass
    # moves declared fields off the class, so nothing is shadowed at runtime.
    data = serializers.JSONField()  # type: ignore[assignment]
    chart_url = serializers.SerializerMethodField()
    csv_url = serializers.SerializerMethodField()

    def get_chart_url(self, report: Report) -> str | None:
        ready = report.status == ReportStatus.READY and report.kind == ReportKind.PATIENT_WEEKLY
        return f"/api/v1/portal/reports/{report.pk}/chart.png" if ready else None

    def get_csv_url(self, report: Report) -> str | None:
        return (
            f"/api/v1/portal/reports/{report.pk}/report.csv" if report.status == ReportStatus.READY else None
        )


class ReportApi(PortalApi):
    def report_for(self, request: Request, report_id: Any, action: str) -> Report:
        """A patient's report through the patient access function (audited); the clinic summary
        (aggregate counts, no patient) for any of the clinic's staff."""
        return report_get_for_staff(membership=self.membership(request), report_id=report_id, action=action)


class ReportListApi(ReportApi):
    class FilterSerializer(StrictSerializer):
        patient = serializers.UUIDField(required=False)
        kind = serializers.ChoiceField(choices=ReportKind.choices, default=ReportKind.PATIENT_WEEKLY)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["kind"] == ReportKind.PATIENT_WEEKLY and "patient" not in attrs:
                raise serializers.ValidationError({"patient": ["Name the patient whose reports to list."]})
            return attrs

    @extend_schema(
        parameters=[OpenApiParameter("patient", str), OpenApiParameter("kind", str)],
        responses={200: ReportSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        patient = None
        if filters["kind"] == ReportKind.PATIENT_WEEKLY:
            patient = self.patient_for(request, filters["patient"], "portal.reports")
        items = selectors.reports_list(patient=patient)
        return Response(ReportSerializer(items, many=True).data)


class ReportDetailApi(ReportApi):
    @extend_schema(responses={200: ReportDetailSerializer})
    def get(self, request: Request, report_id: str) -> Response:
        report = self.report_for(request, report_id, "portal.report.read")
        return Response(ReportDetailSerializer(report).data)


def _ready(report: Report) -> Report:
    if report.status != ReportStatus.READY:
        raise ApplicationError(
            code=ErrorCode.REPORT_NOT_READY, status_code=409, detail="The report is still being generated."
        )
    return report


class ReportChartApi(ReportApi):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request: Request, report_id: str) -> HttpResponse:
        report = _ready(self.report_for(request, report_id, "portal.report.chart"))
        if not report.chart_png:
            raise ApplicationError(
                code=ErrorCode.NOT_FOUND, status_code=404, detail="This report has no chart."
            )
        return HttpResponse(bytes(report.chart_png), content_type="image/png")


class ReportCsvApi(ReportApi):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, report_id: str) -> HttpResponse:
        report = _ready(self.report_for(request, report_id, "portal.report.csv"))
        response = HttpResponse(report.csv, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="report-{report.week_start}.csv"'
        return response


class PatientReportRequestApi(PortalApi):
    # A per-user quota on top of the week range: each new report is work for the clinic's worker.
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "reports"

    class InputSerializer(StrictSerializer):
        week_start = BoundedDateField(required=False, help_text="A Monday; default: the last full week")

    @extend_schema(request=InputSerializer, responses={202: ReportSerializer, 200: ReportSerializer})
    def post(self, request: Request, patient_id: str) -> Response:
        """Queue the patient's report for a week that has ended, within the patient's record
        (400 `report_week_before_enrolment`, `report_week_incomplete`); 429 above the quota."""
        data = self.validated(self.InputSerializer, request.data)
        patient = self.patient_for(request, patient_id, "portal.report.request")
        week_start = selectors.report_week_to_request(
            patient=patient,
            week_start=data.get("week_start"),
            late_days=self.clinic(request).diary_late_entry_days,
        )
        report, created = reports.report_request(
            patient=patient, week_start=week_start, requested_by=request.user.pk
        )
        code = status.HTTP_202_ACCEPTED if report.status == ReportStatus.PENDING else status.HTTP_200_OK
        response = Response(ReportSerializer(report).data, status=code)
        response["Location"] = f"/api/v1/portal/reports/{report.pk}/"
        return response
