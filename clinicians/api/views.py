"""Clinician portal (`/api/v1/portal/…`) and clinic-admin care teams and access log."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import ClinicAdminApi, ClinicianApi
from clinicians import reports, selectors, services
from clinicians.access import patient_get_for_staff
from clinicians.models import Alert, CareRole, CareTeam, ClinicalNote, Report, ReportKind, ReportStatus
from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField, BoundedDateTimeField, SingleLineCharField
from core.api.throttling import ScopedRateThrottle, UserRateThrottle
from core.errors import ApplicationError
from patients import selectors as patient_selectors
from patients.api.views import SummaryAdherenceSerializer, SummarySerializer, Uas7Serializer, summary_body
from patients.models import FrequencyKind, Patient, PatientStatus, Prescription
from patients.summary import summary_get
from tenants.models import DiaryMode

EARLIEST_BIRTH_DATE = date(1900, 1, 1)


class PortalApi(ClinicianApi):
    """Clinicians and clinic admins; every patient comes through the access function."""

    def patient_for(
        self, request: Request, patient_id: Any, action: str, not_found: str = "No such patient."
    ) -> Patient:
        return patient_get_for_staff(
            membership=self.membership(request), patient_id=patient_id, action=action, not_found=not_found
        )

    @staticmethod
    def no_store(response: Response) -> Response:
        response["Cache-Control"] = "no-store"
        return response


# --- Patients -----------------------------------------------------------------------------------


class PatientRowSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    status = serializers.CharField()
    valid_for = serializers.DateField(
        allow_null=True, help_text="The patient's local date these values are for"
    )
    week_end = serializers.DateField(
        allow_null=True, help_text="The current week ends today when today is recorded, else yesterday"
    )
    uas7 = serializers.FloatField(allow_null=True)
    uas7_method = serializers.CharField(source="method")
    uas7_days_observed = serializers.IntegerField(source="days_observed")
    band = serializers.CharField(allow_null=True)
    previous_uas7 = serializers.FloatField(allow_null=True)
    previous_uas7_method = serializers.CharField(source="previous_method")
    previous_uas7_days_observed = serializers.IntegerField(source="previous_days_observed")
    uas7_change = serializers.FloatField(allow_null=True)
    uas7_change_exceeds_mid = serializers.BooleanField(help_text="|change| ≥ the clinic's MID")
    uct = serializers.IntegerField(
        allow_null=True, help_text="Current UCT (UCT within 28 days, UCT7 within 7)"
    )
    uct_instrument = serializers.CharField(allow_blank=True)
    uct_date = serializers.DateField(allow_null=True)
    last_uct = serializers.IntegerField(
        allow_null=True, help_text="Latest UCT of any age, shown with its date"
    )
    last_uct_instrument = serializers.CharField(allow_blank=True)
    last_uct_date = serializers.DateField(allow_null=True)
    diary_completion_28d = serializers.FloatField(
        allow_null=True, help_text="Days recorded ÷ eligible days (from enrollment at the earliest)"
    )
    days_recorded = serializers.IntegerField()
    days_eligible = serializers.IntegerField()
    pdc_28d = serializers.FloatField(
        allow_null=True, help_text="Lowest 28-day PDC among scored medications (null: none, or all new)"
    )
    adherence = SummaryAdherenceSerializer(many=True)
    last_entry = serializers.DateField(allow_null=True)
    diary_gap_days = serializers.IntegerField(help_text="Whole local days missed before today")
    open_alerts = serializers.IntegerField(help_text="Alerts not yet acknowledged")


class PatientListPageSerializer(serializers.Serializer):
    results = PatientRowSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Cursor of the next page")
    pending = serializers.IntegerField(
        help_text="Patients left out of this page because their day has just rolled over and their "
        "values are being recomputed (a few minutes at most)"
    )


class PatientEnrolledSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    enrollment_id = serializers.UUIDField()
    enrollment_code = serializers.CharField()
    enrollment_expires_at = serializers.DateTimeField()
    qr_url = serializers.CharField()


class PatientListCreateApi(PortalApi):
    class FilterSerializer(StrictSerializer):
        band = serializers.ChoiceField(choices=selectors.BANDS, required=False)
        has_open_alerts = serializers.BooleanField(required=False, allow_null=True, default=None)
        pdc_below = serializers.FloatField(required=False, min_value=0, max_value=1)
        diary_gap_gte = serializers.IntegerField(required=False, min_value=0, max_value=3650)
        search = serializers.CharField(required=False, max_length=100)
        sort = serializers.ChoiceField(
            choices=[s for key in selectors.SORTS for s in (key, f"-{key}")], required=False, default="name"
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
        cursor = serializers.CharField(required=False, max_length=1000)

    class InputSerializer(StrictSerializer):
        display_name = SingleLineCharField(max_length=200)
        date_of_birth = BoundedDateField(min_value=EARLIEST_BIRTH_DATE, required=False, allow_null=True)
        timezone = serializers.CharField(max_length=64, required=False)
        diary_mode = serializers.ChoiceField(choices=DiaryMode.choices, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("band", str, enum=list(selectors.BANDS)),
            OpenApiParameter("has_open_alerts", bool),
            OpenApiParameter("pdc_below", float),
            OpenApiParameter("diary_gap_gte", int),
            OpenApiParameter("search", str),
            OpenApiParameter(
                "sort",
                str,
                description="name, uas7, uas7_change, last_uct, diary_completion, pdc, last_entry, open_alerts; '-' for descending",
            ),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={200: PatientListPageSerializer},
        operation_id="v1_portal_patients_list",
    )
    def get(self, request: Request) -> Response:
        """Every visible patient with this week's scores and flags, from their summary rows."""
        filters = self.query(self.FilterSerializer, request)
        membership = self.membership(request)
        rows, next_cursor, pending = selectors.portal_patient_list(membership=membership, **filters)
        body = {"results": rows, "next": next_cursor, "pending": pending}
        return self.no_store(Response(PatientListPageSerializer(body).data))

    @extend_schema(request=InputSerializer, responses={201: PatientEnrolledSerializer})
    def post(self, request: Request) -> Response:
        """Enroll a patient: the record plus a single-use enrollment code (the enrolling
        clinician joins the care team)."""
        data = self.validated(self.InputSerializer, request.data)
        patient, enrollment, code = services.patient_enroll(
            clinic=self.clinic(request),
            actor=request.user,
            membership=self.membership(request),
            display_name=data["display_name"],
            date_of_birth=data.get("date_of_birth"),
            timezone_name=data.get("timezone"),
            diary_mode=data.get("diary_mode"),
        )
        body = {
            "id": patient.pk,
            "display_name": patient.display_name,
            "enrollment_id": enrollment.pk,
            "enrollment_code": f"{code[:4]}-{code[4:]}",
            "enrollment_expires_at": enrollment.expires_at,
            "qr_url": f"/api/v1/portal/enrollments/{enrollment.pk}/qr.png",
        }
        return self.no_store(Response(PatientEnrolledSerializer(body).data, status=status.HTTP_201_CREATED))


class PatientDetailSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    date_of_birth = serializers.DateField(allow_null=True)
    timezone = serializers.CharField()
    diary_mode = serializers.ChoiceField(choices=DiaryMode.choices)
    status = serializers.ChoiceField(choices=PatientStatus.choices)
    enrolled_at = serializers.DateTimeField()
    has_account = serializers.BooleanField()
    summary = SummarySerializer()


class PatientDetailApi(PortalApi):
    @extend_schema(responses={200: PatientDetailSerializer})
    def get(self, request: Request, patient_id: str) -> Response:
        patient = self.patient_for(request, patient_id, "portal.patient_detail")
        summary, row = summary_get(patient)
        body = {
            **{
                f: getattr(patient, f)
                for f in (
                    "id",
                    "display_name",
                    "date_of_birth",
                    "timezone",
                    "diary_mode",
                    "status",
                    "enrolled_at",
                )
            },
            "has_account": patient.user_id is not None,
            "summary": summary_body(summary, row.open_alerts),
        }
        return self.no_store(Response(PatientDetailSerializer(body).data))


class TimelineEventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["diary", "questionnaire", "dose", "prescription", "note", "alert"]
    )
    id = serializers.CharField()
    at = serializers.DateTimeField()
    local_date = serializers.DateField()
    data = serializers.DictField()


class TimelinePageSerializer(serializers.Serializer):
    results = TimelineEventSerializer(many=True)
    next = serializers.CharField(allow_null=True)


class PatientTimelineApi(PortalApi):
    class FilterSerializer(StrictSerializer):
        start = BoundedDateField(required=False)
        to = BoundedDateField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
        cursor = serializers.CharField(required=False, max_length=1000)

        def get_fields(self) -> dict[str, Any]:
            fields = super().get_fields()
            fields["from"] = fields.pop("start")  # `from` is a Python keyword
            return fields

    @extend_schema(
        parameters=[
            OpenApiParameter("from", date),
            OpenApiParameter("to", date),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={200: TimelinePageSerializer},
    )
    def get(self, request: Request, patient_id: str) -> Response:
        """Diary, questionnaires, doses, prescriptions, notes and alerts, newest first."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient_for(request, patient_id, "portal.timeline")
        end = filters.get("to") or patient.local_today()
        start = filters.get("from") or end - timedelta(days=90)
        if start > end:
            raise ApplicationError(code="invalid_range", field="from", detail="'from' is after 'to'.")
        events, next_cursor = selectors.patient_timeline(
            patient_id=patient.pk,
            tz=patient.timezone,
            start=start,
            end=end,
            limit=filters["limit"],
            cursor=filters.get("cursor"),
        )
        return self.no_store(Response(TimelinePageSerializer({"results": events, "next": next_cursor}).data))


class PatientUas7Api(PortalApi):
    class FilterSerializer(StrictSerializer):
        weeks = serializers.IntegerField(min_value=1, max_value=52, default=12)
        end = BoundedDateField(required=False)

    @extend_schema(
        parameters=[OpenApiParameter("weeks", int), OpenApiParameter("end", date)],
        responses={200: Uas7Serializer(many=True)},
    )
    def get(self, request: Request, patient_id: str) -> Response:
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient_for(request, patient_id, "portal.scores")
        weeks = patient_selectors.uas7_history(
            patient=patient, end=filters.get("end") or patient.local_today(), weeks=filters["weeks"]
        )
        return self.no_store(Response(Uas7Serializer(weeks, many=True).data))


# --- Notes --------------------------------------------------------------------------------------


class NoteSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    author_id = serializers.UUIDField()
    body = serializers.CharField()
    corrects = serializers.UUIDField(source="corrects_id", allow_null=True)
    created_at = serializers.DateTimeField()


class PatientNotesApi(PortalApi):
    class InputSerializer(StrictSerializer):
        body = serializers.CharField(max_length=20000)
        corrects = serializers.UUIDField(required=False, allow_null=True)

    @extend_schema(responses={200: NoteSerializer(many=True)})
    def get(self, request: Request, patient_id: str) -> Response:
        patient = self.patient_for(request, patient_id, "portal.notes")
        notes = ClinicalNote.objects.filter(patient=patient).order_by("-created_at")[:200]
        return self.no_store(Response(NoteSerializer(notes, many=True).data))

    @extend_schema(request=InputSerializer, responses={201: NoteSerializer})
    def post(self, request: Request, patient_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        patient = self.patient_for(request, patient_id, "portal.note_write")
        note = services.note_create(
            patient=patient,
            author=request.user,
            membership=self.membership(request),
            body=data["body"],
            corrects_id=data.get("corrects"),
        )
        return self.no_store(Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED))


# --- Prescriptions ------------------------------------------------------------------------------


class PrescriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    medication = serializers.CharField(source="medication_id")
    dose = serializers.CharField()
    frequency_kind = serializers.ChoiceField(choices=FrequencyKind.choices)
    frequency_value = serializers.IntegerField(allow_null=True)
    guideline_step = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField(allow_null=True)
    prescriber_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()


class PatientPrescriptionsApi(PortalApi):
    class InputSerializer(StrictSerializer):
        medication = serializers.CharField(max_length=60)
        dose = serializers.CharField(max_length=60)
        frequency_kind = serializers.ChoiceField(choices=FrequencyKind.choices, required=False)
        frequency_value = serializers.IntegerField(min_value=1, max_value=365, required=False)
        guideline_step = serializers.IntegerField(min_value=1, max_value=4)
        start = BoundedDateField()
        end = BoundedDateField(required=False, allow_null=True)

    @extend_schema(responses={200: PrescriptionSerializer(many=True)})
    def get(self, request: Request, patient_id: str) -> Response:
        patient = self.patient_for(request, patient_id, "portal.prescriptions")
        prescriptions = Prescription.objects.filter(patient=patient).order_by("-start", "-created_at")
        return self.no_store(Response(PrescriptionSerializer(prescriptions, many=True).data))

    @extend_schema(request=InputSerializer, responses={201: PrescriptionSerializer})
    def post(self, request: Request, patient_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        patient = self.patient_for(request, patient_id, "portal.prescription_write")
        prescription = services.prescription_create(
            patient=patient, prescriber=request.user, membership=self.membership(request), **data
        )
        return self.no_store(
            Response(PrescriptionSerializer(prescription).data, status=status.HTTP_201_CREATED)
        )


class PrescriptionStopApi(PortalApi):
    class InputSerializer(StrictSerializer):
        end = BoundedDateField(required=False)

    @extend_schema(request=InputSerializer, responses={200: PrescriptionSerializer})
    def post(self, request: Request, prescription_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        prescription = Prescription.objects.filter(pk=prescription_id).first()
        if prescription is None:
            raise ApplicationError(code="not_found", status_code=404, detail="No such prescription.")
        self.patient_for(
            request, prescription.patient_id, "portal.prescription_stop", "No such prescription."
        )
        prescription = services.prescription_stop(
            prescription=prescription,
            actor=request.user,
            membership=self.membership(request),
            end=data.get("end"),
        )
        return self.no_store(Response(PrescriptionSerializer(prescription).data))


# --- Alerts -------------------------------------------------------------------------------------


class AlertSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    patient = serializers.UUIDField(source="patient_id")
    patient_name = serializers.CharField(source="patient.display_name")
    kind = serializers.CharField()
    opened_at = serializers.DateTimeField()
    evidence = serializers.DictField()
    acknowledged_by = serializers.UUIDField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_reason = serializers.ChoiceField(
        choices=["", "clinician", "condition_cleared"],
        help_text="`condition_cleared`: the summary no longer shows the finding (resolved by itself)",
    )


class AlertListApi(PortalApi):
    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=["open", "acknowledged", "resolved", "all"], default="open")
        patient = serializers.UUIDField(required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("patient", str)],
        responses={200: AlertSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        membership = self.membership(request)
        alerts = selectors.alerts_visible_to(
            membership=membership, status=filters["status"], patient_id=filters.get("patient")
        )
        return self.no_store(Response(AlertSerializer(alerts, many=True).data))


class AlertAcknowledgeApi(PortalApi):
    action_name = "acknowledge"

    @extend_schema(request=None, responses={200: AlertSerializer})
    def post(self, request: Request, alert_id: str) -> Response:
        alert = Alert.objects.select_related("patient").filter(pk=alert_id).first()
        if alert is None:
            raise ApplicationError(code="not_found", status_code=404, detail="No such alert.")
        self.patient_for(request, alert.patient_id, f"portal.alert_{self.action_name}", "No such alert.")
        act = services.alert_acknowledge if self.action_name == "acknowledge" else services.alert_resolve
        return Response(AlertSerializer(act(alert=alert, actor=request.user)).data)


class AlertResolveApi(AlertAcknowledgeApi):
    action_name = "resolve"


# --- Clinic admins: care teams and access log ---------------------------------------------------


class CareTeamSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    clinician_user_id = serializers.UUIDField(source="clinician.user_id")
    patient = serializers.UUIDField(source="patient_id")
    role = serializers.ChoiceField(choices=CareRole.choices)
    since = serializers.DateField()
    until = serializers.DateField(allow_null=True)


class CareTeamListCreateApi(ClinicAdminApi):
    class FilterSerializer(StrictSerializer):
        patient = serializers.UUIDField(required=False)
        active = serializers.BooleanField(required=False, allow_null=True, default=None)

    class InputSerializer(StrictSerializer):
        clinician_user_id = serializers.UUIDField()
        patient = serializers.UUIDField()
        role = serializers.ChoiceField(choices=CareRole.choices, default=CareRole.PRIMARY)

    @extend_schema(
        parameters=[OpenApiParameter("patient", str), OpenApiParameter("active", bool)],
        responses={200: CareTeamSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        assignments = selectors.care_teams_list(
            membership=self.membership(request),
            patient_id=filters.get("patient"),
            active=filters.get("active"),
        )
        return Response(CareTeamSerializer(assignments, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CareTeamSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        assignment = services.care_team_assign(
            clinic=self.clinic(request),
            actor=self.membership(request),
            clinician_user_id=data["clinician_user_id"],
            patient_id=data["patient"],
            role=data["role"],
        )
        return Response(CareTeamSerializer(assignment).data, status=status.HTTP_201_CREATED)


class CareTeamEndApi(ClinicAdminApi):
    class InputSerializer(StrictSerializer):
        until = serializers.DateField(required=False)

    @extend_schema(request=InputSerializer, responses={200: CareTeamSerializer})
    def post(self, request: Request, assignment_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        assignment = CareTeam.objects.select_related("clinician", "patient").filter(pk=assignment_id).first()
        if assignment is None:
            raise ApplicationError(code="not_found", status_code=404, detail="No such assignment.")
        return Response(
            CareTeamSerializer(
                services.care_team_end(
                    actor=self.membership(request), assignment=assignment, until=data.get("until")
                )
            ).data
        )


class AccessLogSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    actor_id = serializers.UUIDField(allow_null=True)
    actor_role = serializers.CharField()
    action = serializers.CharField()
    patient_id = serializers.UUIDField(allow_null=True)
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    allowed = serializers.BooleanField()
    ip = serializers.IPAddressField(allow_null=True)


class AccessLogListApi(ClinicAdminApi):
    class FilterSerializer(StrictSerializer):
        patient = serializers.UUIDField()
        limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
        before = BoundedDateTimeField(required=False, help_text="Cursor: created_at of the last row seen")

    @extend_schema(
        parameters=[
            OpenApiParameter("patient", str, required=True),
            OpenApiParameter("limit", int),
            OpenApiParameter("before", str),
        ],
        responses={200: AccessLogSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Who read or changed this patient's data, newest first (itself an audited read)."""
        filters = self.query(self.FilterSerializer, request)
        rows = selectors.access_log_read(
            membership=self.membership(request),
            patient_id=filters["patient"],
            before=filters.get("before"),
            limit=filters["limit"],
        )
        return Response(AccessLogSerializer(rows, many=True).data)


# --- Adherence reports --------------------------------------------------------------------------


class ReportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    patient = serializers.UUIDField(source="patient_id", allow_null=True)
    week_start = serializers.DateField()
    status = serializers.CharField()
    generated_at = serializers.DateTimeField(allow_null=True)


class ReportDetailSerializer(ReportSerializer):
    data = serializers.JSONField()
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
        report = Report.objects.filter(pk=report_id).first()
        if report is None:
            raise ApplicationError(code="not_found", status_code=404, detail="No such report.")
        if report.patient_id is not None:
            self.patient_for(request, report.patient_id, action, "No such report.")
        return report


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
        return self.no_store(Response(ReportSerializer(items, many=True).data))


class ReportDetailApi(ReportApi):
    @extend_schema(responses={200: ReportDetailSerializer})
    def get(self, request: Request, report_id: str) -> Response:
        report = self.report_for(request, report_id, "portal.report.read")
        return self.no_store(Response(ReportDetailSerializer(report).data))


def _ready(report: Report) -> Report:
    if report.status != ReportStatus.READY:
        raise ApplicationError(
            code="report_not_ready", status_code=409, detail="The report is still being generated."
        )
    return report


class ReportChartApi(ReportApi):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request: Request, report_id: str) -> HttpResponse:
        report = _ready(self.report_for(request, report_id, "portal.report.chart"))
        if not report.chart_png:
            raise ApplicationError(code="not_found", status_code=404, detail="This report has no chart.")
        response = HttpResponse(bytes(report.chart_png), content_type="image/png")
        response["Cache-Control"] = "no-store"
        return response


class ReportCsvApi(ReportApi):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, report_id: str) -> HttpResponse:
        report = _ready(self.report_for(request, report_id, "portal.report.csv"))
        response = HttpResponse(report.csv, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="report-{report.week_start}.csv"'
        response["Cache-Control"] = "no-store"
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
        today = patient.local_today()
        week_start = data.get("week_start") or reports.last_complete_week(today)
        earliest = reports.earliest_report_week(
            patient=patient, late_days=self.clinic(request).diary_late_entry_days
        )
        reports.check_week(week_start, today, earliest=earliest)
        report, created = reports.report_request(
            patient=patient, week_start=week_start, requested_by=request.user.pk
        )
        code = status.HTTP_202_ACCEPTED if report.status == ReportStatus.PENDING else status.HTTP_200_OK
        response = Response(ReportSerializer(report).data, status=code)
        response["Location"] = f"/api/v1/portal/reports/{report.pk}/"
        return self.no_store(response)
