"""The portal's patients: the list, enrolling, a patient's page, timeline and UAS7 weeks."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from clinicians import selectors, services
from clinicians.api.views.base import PortalApi
from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField, SingleLineCharField
from core.errors import ApplicationError, ErrorCode
from patients import selectors as patient_selectors
from patients.api.serializers import (
    SummaryAdherenceSerializer,
    SummarySerializer,
    Uas7Serializer,
)
from patients.consent import consent_state
from patients.models import PatientStatus
from patients.summary import summary_page
from tenants.models import DiaryMode

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
CONSENT_STATUSES = ["given", "none", "withdrawn", "outdated"]


class PatientRowSerializer(serializers.Serializer[Any]):
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
    consent = serializers.ChoiceField(
        choices=CONSENT_STATUSES,
        help_text="Consent to the clinic's privacy notice: given; none, withdrawn or outdated mean the "
        "patient's app stores nothing new",
    )


class PatientListPageSerializer(serializers.Serializer[Any]):
    results = PatientRowSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Cursor of the next page")
    pending = serializers.IntegerField(
        help_text="Patients left out of this page because their day has just rolled over and their "
        "values are being recomputed (a few minutes at most)"
    )


class PatientEnrolledSerializer(serializers.Serializer[Any]):
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
        return Response(PatientListPageSerializer(body).data)

    @extend_schema(request=InputSerializer, responses={201: PatientEnrolledSerializer})
    def post(self, request: Request) -> Response:
        """Enroll a patient: the record plus a single-use enrollment code (the enrolling
        clinician joins the care team)."""
        data = self.validated(self.InputSerializer, request.data)
        patient, enrollment, code = services.patient_enroll(
            clinic=self.clinic(request),
            actor=request_user(request),
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
        return Response(PatientEnrolledSerializer(body).data, status=status.HTTP_201_CREATED)


class CareTeamMemberSerializer(serializers.Serializer[Any]):
    """A clinician on the patient's current care team, for the clinic's staff."""

    clinician_user_id = serializers.UUIDField()
    name = serializers.CharField(source="display_name", help_text="Title and name, e.g. Dr Anna Weber")
    title = serializers.CharField(allow_blank=True)
    email = serializers.EmailField(allow_blank=True)
    staff_role = serializers.CharField(allow_blank=True, help_text="clinician or clinic_admin")
    care_role = serializers.CharField(help_text="primary or secondary")
    since = serializers.DateField()


class PatientConsentSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=CONSENT_STATUSES)
    version = serializers.IntegerField(allow_null=True, help_text="The privacy notice version accepted last")
    granted_at = serializers.DateTimeField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)


class PatientDetailSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    date_of_birth = serializers.DateField(allow_null=True)
    timezone = serializers.CharField()
    diary_mode = serializers.ChoiceField(choices=DiaryMode.choices)
    status = serializers.ChoiceField(choices=PatientStatus.choices)
    enrolled_at = serializers.DateTimeField()
    has_account = serializers.BooleanField()
    summary = SummarySerializer()
    care_team = CareTeamMemberSerializer(many=True)
    consent = PatientConsentSerializer(
        help_text="Without consent (none, withdrawn, outdated) the patient's app stores no new health data"
    )


class PatientDetailApi(PortalApi):
    @extend_schema(responses={200: PatientDetailSerializer})
    def get(self, request: Request, patient_id: str) -> Response:
        patient = self.patient_for(request, patient_id, "portal.patient_detail")
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
            "summary": summary_page(patient),
            "care_team": selectors.care_team_of(
                clinic_id=self.membership(request).clinic_id, patient=patient
            ),
            "consent": consent_state(patient=patient),
        }
        return Response(PatientDetailSerializer(body).data)


class PatientCareTeamApi(PortalApi):
    @extend_schema(responses={200: CareTeamMemberSerializer(many=True)})
    def get(self, request: Request, patient_id: str) -> Response:
        """The clinicians who look after this patient now, primary first: for the clinic's
        admins and for clinicians who may see the patient (404 for anyone else, as on the
        patient's page; the read is in the access log)."""
        patient = self.patient_for(request, patient_id, "portal.care_team")
        members = selectors.care_team_of(clinic_id=self.membership(request).clinic_id, patient=patient)
        return Response(CareTeamMemberSerializer(members, many=True).data)


class TimelineEventSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(
        choices=["diary", "questionnaire", "dose", "prescription", "note", "alert"]
    )
    id = serializers.CharField()
    at = serializers.DateTimeField()
    local_date = serializers.DateField()
    # The wire name `data` clashes with Serializer.data in the stubs only: DRF's metaclass
    # moves declared fields off the class, so nothing is shadowed at runtime.
    data = serializers.DictField()  # type: ignore[assignment]


class TimelinePageSerializer(serializers.Serializer[Any]):
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
            raise ApplicationError(code=ErrorCode.INVALID_RANGE, field="from", detail="'from' is after 'to'.")
        events, next_cursor = selectors.patient_timeline(
            patient_id=patient.pk,
            tz=patient.timezone,
            start=start,
            end=end,
            limit=filters["limit"],
            cursor=filters.get("cursor"),
        )
        return Response(TimelinePageSerializer({"results": events, "next": next_cursor}).data)


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
        return Response(Uas7Serializer(weeks, many=True).data)
