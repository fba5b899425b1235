"""Clinic onboarding (platform host), clinic settings and staff (clinic host, admins),
and clinic lifecycle for platform operators (platform host)."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.api.base import ClinicAdminApi, PlatformOperatorApi
from accounts.authentication import request_amr, request_clinic, request_user
from accounts.models import Membership, Role
from core.api.base import BaseApi, StrictSerializer
from core.api.fields import LocalTimeField, SingleLineCharField
from core.api.throttling import ScopedRateThrottle
from core.errors import ApplicationError, ErrorCode
from onboarding import services as onboarding_services
from onboarding import signup
from tenants import lifecycle
from tenants import selectors as tenant_selectors
from tenants.models import Clinic, ClinicStatus, DiaryMode, timezone_validate


def _timezone(value: str) -> None:
    """The one timezone check (tenants.models.timezone_validate), as a field validator."""
    try:
        timezone_validate(value)
    except ApplicationError as exc:
        raise serializers.ValidationError(exc.detail) from exc


class ClinicOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=ClinicStatus.choices)

    def get_url(self, clinic: Clinic) -> str:
        """The clinic's staff sign-in page (accounts.web), a page that answers 200: the host's root
        is the patient app, not where a new clinic admin starts."""
        return tenant_selectors.clinic_url(clinic, "/account/")


class _PublicSignupApi(BaseApi):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "signup"


class ClinicSignupApi(_PublicSignupApi):
    class InputSerializer(StrictSerializer):
        class AdminSerializer(StrictSerializer):
            email = serializers.EmailField(max_length=254)
            full_name = SingleLineCharField(max_length=200)
            password = serializers.CharField(max_length=128, trim_whitespace=False)

        name = SingleLineCharField(max_length=200)
        slug = serializers.CharField(max_length=64)
        timezone = serializers.CharField(max_length=64, validators=[_timezone])
        country = serializers.RegexField(r"^[A-Z]{2}$", help_text="ISO 3166-1 alpha-2, e.g. DE")
        plan = serializers.CharField(
            max_length=30, default="starter", help_text="starter, clinic or enterprise"
        )
        admin = AdminSerializer()

    class OutputSerializer(serializers.Serializer[Any]):
        slug = serializers.CharField()
        status = serializers.ChoiceField(choices=ClinicStatus.choices)
        detail = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Reserves the address and emails the admin a confirmation link; the clinic stays
        `pending` (its host does not answer) until the link is opened, and is removed after
        24 hours otherwise. The answer is the same whether or not the email has an account."""
        data = self.validated(self.InputSerializer, request.data)
        clinic = signup.clinic_signup(
            name=data["name"],
            slug=data["slug"],
            timezone_name=data["timezone"],
            country=data["country"],
            admin_email=data["admin"]["email"],
            admin_full_name=data["admin"]["full_name"],
            admin_password=data["admin"]["password"],
            plan_code=data["plan"],
        )
        body = {
            "slug": clinic.slug,
            "status": clinic.status,
            "detail": "Check the admin's inbox: the clinic opens once its confirmation link is used.",
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class EmailConfirmApi(_PublicSignupApi):
    """Opens an emailed confirmation link (platform and clinic hosts)."""

    throttle_scope = "auth"

    class InputSerializer(StrictSerializer):
        token = serializers.CharField(max_length=1024)

    class OutputSerializer(serializers.Serializer[Any]):
        email_verified = serializers.BooleanField()
        clinic = ClinicOutputSerializer(allow_null=True)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Verifies the address (accounts cannot sign in before); for a signup, the clinic
        becomes active. 400 `verification_token_invalid`; 410 `signup_expired`."""
        confirmation = signup.email_confirm(**self.validated(self.InputSerializer, request.data))
        body = {"email_verified": True, "clinic": confirmation.clinic}
        return Response(self.OutputSerializer(body, context={"request": request}).data)


class SlugAvailabilityApi(_PublicSignupApi):
    throttle_scope = "auth"

    class FilterSerializer(StrictSerializer):
        slug = serializers.CharField(max_length=64)

    class OutputSerializer(serializers.Serializer[Any]):
        slug = serializers.CharField()
        available = serializers.BooleanField()
        reason = serializers.CharField(allow_null=True)

    @extend_schema(
        parameters=[OpenApiParameter("slug", str, required=True)], responses={200: OutputSerializer}, auth=[]
    )
    def get(self, request: Request) -> Response:
        slug = self.query(self.FilterSerializer, request)["slug"]
        available, reason = lifecycle.clinic_slug_availability(slug=slug)
        return Response({"slug": slug, "available": available, "reason": reason})


# --- Clinic admins, clinic host ----------------------------------------------------------------


class ClinicSettingsSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(read_only=True)
    slug = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    name = serializers.CharField(max_length=200)
    timezone = serializers.CharField(max_length=64, validators=[_timezone])
    locale = serializers.RegexField(r"^[a-z]{2}(-[A-Z]{2})?$", max_length=10)
    default_diary_mode = serializers.ChoiceField(choices=DiaryMode.choices)
    diary_late_entry_days = serializers.IntegerField(min_value=0, max_value=30)
    reminder_default_time = LocalTimeField()
    mfa_required = serializers.BooleanField()


class ClinicSettingsApi(ClinicAdminApi):
    class InputSerializer(StrictSerializer, ClinicSettingsSerializer):
        pass

    @extend_schema(responses={200: ClinicSettingsSerializer})
    def get(self, request: Request) -> Response:
        return Response(
            ClinicSettingsSerializer(tenant_selectors.clinic_get(clinic_id=self.clinic(request).pk)).data
        )

    @extend_schema(request=InputSerializer, responses={200: ClinicSettingsSerializer})
    def patch(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data, partial=True)
        clinic = tenant_selectors.clinic_get(clinic_id=self.clinic(request).pk)
        clinic = onboarding_services.clinic_settings_update(
            clinic=clinic, actor=request_user(request), actor_amr=request_amr(request), **data
        )
        return Response(ClinicSettingsSerializer(clinic).data)


class MemberOutputSerializer(serializers.Serializer[Any]):
    """A member. A patient's email and name are left out (null): who is a patient here is
    health data, shown only through the portal, whose reads are in the access log."""

    id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    email = serializers.SerializerMethodField()
    full_name = serializers.SerializerMethodField()
    role = serializers.ChoiceField(choices=Role.choices)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_email(self, membership: Membership) -> str | None:
        return None if membership.role == Role.PATIENT else membership.user.email

    def get_full_name(self, membership: Membership) -> str | None:
        return None if membership.role == Role.PATIENT else membership.user.full_name


class MemberListApi(ClinicAdminApi):
    class FilterSerializer(StrictSerializer):
        role = serializers.ChoiceField(choices=Role.choices, required=False)
        is_active = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(
        parameters=[OpenApiParameter("role", str), OpenApiParameter("is_active", bool)],
        responses={200: MemberOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        members = account_selectors.clinic_members(
            clinic_id=self.clinic(request).pk, role=filters.get("role"), is_active=filters.get("is_active")
        )
        return Response(MemberOutputSerializer(members, many=True).data)


class MemberDeactivateApi(ClinicAdminApi):
    is_active = False

    @extend_schema(request=None, responses={200: MemberOutputSerializer})
    def post(self, request: Request, membership_id: str) -> Response:
        membership = account_services.clinic_member_set_active(
            clinic=self.clinic(request),
            membership_id=membership_id,
            is_active=self.is_active,
            actor=request_user(request),
        )
        return Response(MemberOutputSerializer(membership).data)


class MemberReactivateApi(MemberDeactivateApi):
    is_active = True


# --- Platform operators, platform host ---------------------------------------------------------


class OperatorTokenApi(BaseApi):
    atomic_requests = False  # failed attempts must persist (lockout)
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        otp = serializers.CharField(max_length=32)

    class OutputSerializer(serializers.Serializer[Any]):
        access = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        if request_clinic(request) is not None:
            raise ApplicationError(
                code=ErrorCode.NOT_FOUND, status_code=404, detail="Operators sign in on the platform host."
            )
        data = self.validated(self.InputSerializer, request.data)
        return Response(account_services.operator_sign_in(request=request._request, **data))


class OperatorClinicSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=ClinicStatus.choices)
    country = serializers.CharField()
    created_at = serializers.DateTimeField()
    member_count = serializers.IntegerField()
    patient_count = serializers.IntegerField()
    offboarding_started_at = serializers.DateTimeField(allow_null=True)
    has_archive = serializers.SerializerMethodField()

    def get_has_archive(self, clinic: Clinic) -> bool:
        return bool(clinic.offboarding_archive)


class OperatorClinicListApi(PlatformOperatorApi):
    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=ClinicStatus.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str)], responses={200: OperatorClinicSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        clinics = account_selectors.clinics_with_member_counts().order_by("slug")
        if filters.get("status"):
            clinics = clinics.filter(status=filters["status"])
        return Response(OperatorClinicSerializer(clinics[:1000], many=True).data)


class _OperatorClinicActionApi(PlatformOperatorApi):
    def respond(self, clinic: Clinic, code: int = status.HTTP_200_OK) -> Response:
        return Response(
            OperatorClinicSerializer(account_selectors.clinics_with_member_counts().get(pk=clinic.pk)).data,
            status=code,
        )


class OperatorClinicSuspendApi(_OperatorClinicActionApi):
    @extend_schema(request=None, responses={200: OperatorClinicSerializer})
    def post(self, request: Request, slug: str) -> Response:
        return self.respond(lifecycle.clinic_suspend(clinic=tenant_selectors.clinic_get_by_slug(slug=slug)))


class OperatorClinicReactivateApi(_OperatorClinicActionApi):
    @extend_schema(request=None, responses={200: OperatorClinicSerializer})
    def post(self, request: Request, slug: str) -> Response:
        return self.respond(
            lifecycle.clinic_reactivate(clinic=tenant_selectors.clinic_get_by_slug(slug=slug))
        )


class OperatorClinicOffboardApi(_OperatorClinicActionApi):
    @extend_schema(request=None, responses={202: OperatorClinicSerializer})
    def post(self, request: Request, slug: str) -> Response:
        """Starts offboarding: a platform-queue task exports the data, then marks the clinic."""
        clinic = lifecycle.clinic_offboard_request(clinic=tenant_selectors.clinic_get_by_slug(slug=slug))
        return self.respond(clinic, status.HTTP_202_ACCEPTED)


class OperatorClinicArchiveApi(_OperatorClinicActionApi):
    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        """The clinic's offboarding export, verified and decrypted: a zip of JSON Lines per table
        with a manifest of row counts and SHA-256 checksums."""
        filename, chunks = lifecycle.clinic_archive_open(
            clinic=tenant_selectors.clinic_get_by_slug(slug=slug), actor_id=request.user.pk
        )
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        return response
