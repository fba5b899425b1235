"""Redeeming an enrollment code (`POST /api/v1/auth/enroll/`, anonymous, on the clinic host):
the patient's account, membership and link to their record, then a token pair."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.views import SignUpOutputSerializer, _JoinClinicApi
from core.api.base import StrictSerializer
from patients.enrollment import enrollment_redeem


class EnrollApi(_JoinClinicApi):
    throttle_scope = "enroll"

    class InputSerializer(StrictSerializer):
        code = serializers.CharField(
            max_length=16, help_text="The 8-character code, with or without the hyphen"
        )
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        otp = serializers.CharField(
            max_length=32, required=False, allow_blank=True, help_text="For an existing account with MFA"
        )
        privacy_notice_version = serializers.IntegerField(
            min_value=1,
            help_text="The version of the clinic's privacy notice (GET /api/v1/auth/privacy-notice/) the "
            "patient was shown and accepts: their consent to storing their health data",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: SignUpOutputSerializer},
        auth=[],
        summary="Redeem an enrollment code: create (or link) the patient's account",
        examples=[
            OpenApiExample(
                "New patient",
                value={
                    "code": "ABCD-EFGH",
                    "email": "alice@example.com",
                    "password": "a long passphrase",
                    "privacy_notice_version": 1,
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        """The patient accepts the clinic's current privacy notice (400 `privacy_notice_outdated`
        for another version). A wrong, used, revoked or expired code is refused (400 `enrollment_*`) and counts
        against the clinic's guessing budget (429 `enrollment_paused` when spent). A code that
        creates a new patient record takes a plan seat (403 `plan_limit`)."""
        clinic = self.clinic_or_404(request)
        data = self.validated(self.InputSerializer, request.data)
        data["otp"] = data.get("otp") or None
        enrollee = enrollment_redeem(clinic=clinic, request=request._request, **data)
        return self.joined(enrollee.user, enrollee.membership, clinic, enrollee.amr)
