"""Clinic admins: care-team assignments, the privacy notice and the access log."""

from __future__ import annotations

from typing import Any, NoReturn

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import ClinicAdminApi
from accounts.authentication import request_membership
from accounts.models import Role
from clinicians import selectors, services
from clinicians.access import care_team_get
from clinicians.models import CareRole
from core.api.base import StrictSerializer
from core.api.fields import BoundedDateTimeField
from patients import consent
from patients.api.views.consent import PrivacyNoticeSerializer


class CareTeamSerializer(serializers.Serializer[Any]):
    """An assignment as the clinic's admins manage it: who (name, title, email, their role in
    the clinic) looks after which patient, in which care role, since when."""

    id = serializers.UUIDField(source="assignment_id")
    clinician_user_id = serializers.UUIDField()
    clinician_name = serializers.CharField(
        source="display_name", help_text="Title and name, e.g. Dr Anna Weber"
    )
    clinician_title = serializers.CharField(source="title", allow_blank=True)
    clinician_email = serializers.EmailField(source="email", allow_blank=True)
    clinician_role = serializers.CharField(
        source="staff_role",
        allow_blank=True,
        help_text="Their role in the clinic: clinician or clinic_admin (blank: no longer a member)",
    )
    patient = serializers.UUIDField(source="patient_id")
    patient_name = serializers.CharField()
    role = serializers.ChoiceField(source="care_role", choices=CareRole.choices, help_text="Care role")
    since = serializers.DateField()
    until = serializers.DateField(allow_null=True)
    active = serializers.BooleanField(help_text="Gives access today (started, not ended)")


class CareTeamListCreateApi(ClinicAdminApi):
    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        """A clinician who asks here for care teams is told where they read one (refused and
        audited all the same: managing assignments is the admins')."""
        membership = request_membership(request)
        if membership is not None and membership.role == Role.CLINICIAN and request.method == "GET":
            message = (
                "Care teams are managed by the clinic's admins. A clinician reads the care team of a "
                "patient they may see at /api/v1/portal/patients/{id}/care-team/."
            )
        super().permission_denied(request, message=message, code=code)

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
        shown = selectors.care_team_members(
            clinic_id=self.membership(request).clinic_id, assignments=[assignment]
        )
        return Response(CareTeamSerializer(shown[0]).data, status=status.HTTP_201_CREATED)


class CareTeamEndApi(ClinicAdminApi):
    class InputSerializer(StrictSerializer):
        until = serializers.DateField(required=False)

    @extend_schema(request=InputSerializer, responses={200: CareTeamSerializer})
    def post(self, request: Request, assignment_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        assignment = care_team_get(membership=self.membership(request), assignment_id=assignment_id)
        ended = services.care_team_end(
            actor=self.membership(request), assignment=assignment, until=data.get("until")
        )
        shown = selectors.care_team_members(clinic_id=self.membership(request).clinic_id, assignments=[ended])
        return Response(CareTeamSerializer(shown[0]).data)


class AdminPrivacyNoticeSerializer(PrivacyNoticeSerializer):
    published_by_id = serializers.UUIDField(
        allow_null=True, help_text="null: the default every clinic starts with"
    )


class PrivacyNoticeListPublishApi(ClinicAdminApi):
    class InputSerializer(StrictSerializer):
        texts = serializers.DictField(
            child=serializers.CharField(max_length=consent.NOTICE_MAX_CHARS, trim_whitespace=False),
            help_text="Language → text, in every language of the patient app (en, de)",
        )
        requires_reacceptance = serializers.BooleanField(
            default=False,
            help_text="The change needs the patients' new agreement (a new purpose or recipient): until they "
            "accept this version, their app stores nothing new. Leave false for a clarification.",
        )

    @extend_schema(responses={200: AdminPrivacyNoticeSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Every published version of the clinic's privacy notice, newest first."""
        return Response(AdminPrivacyNoticeSerializer(consent.privacy_notices(), many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: AdminPrivacyNoticeSerializer},
        examples=[
            OpenApiExample(
                "A clarification",
                value={
                    "texts": {"en": "Privacy notice\n\n…", "de": "Datenschutzerklärung\n\n…"},
                    "requires_reacceptance": False,
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        """Publish the next version (published versions never change). 400 naming `texts`
        when a language is missing, unknown, empty or too long."""
        data = self.validated(self.InputSerializer, request.data)
        membership = self.membership(request)
        notice = consent.privacy_notice_publish(
            texts=data["texts"],
            requires_reacceptance=data["requires_reacceptance"],
            actor_id=membership.user_id,
            actor_role=membership.role,
        )
        return Response(AdminPrivacyNoticeSerializer(notice).data, status=status.HTTP_201_CREATED)


class AccessLogSerializer(serializers.Serializer[Any]):
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
