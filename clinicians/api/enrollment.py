"""Enrollment codes in the portal (`/api/v1/portal/enrollments/…`).

A code for an existing patient record is issued only through the staff access function: a
clinician outside the patient's care team gets the same 404 as on the patient's page, and the
attempt is in the access log either way.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from clinicians.access import enrollment_get_for_staff
from clinicians.api.views.base import PortalApi
from core.api.base import StrictSerializer
from core.qr import qr_png
from patients.enrollment import (
    enrollment_code_display,
    enrollment_issue,
    enrollment_url,
)


class EnrollmentCreateApi(PortalApi):
    class InputSerializer(StrictSerializer):
        patient_id = serializers.UUIDField(
            required=False,
            allow_null=True,
            help_text="The patient record the code links (in your care team); omit to create a new "
            "record when the code is redeemed (it then takes a plan seat)",
        )

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.UUIDField()
        patient_id = serializers.UUIDField(allow_null=True)
        code = serializers.CharField()
        expires_at = serializers.DateTimeField()
        enroll_url = serializers.CharField()
        qr_url = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        """Issues a single-use code (earlier open codes of the same patient are revoked).
        404 for a patient you cannot see or that does not exist; 409
        `patient_already_enrolled` when the patient already has an account."""
        data = self.validated(self.InputSerializer, request.data)
        patient = None
        if data.get("patient_id") is not None:
            patient = self.patient_for(request, data["patient_id"], "enrollment.issue")
        clinic = self.clinic(request)
        enrollment, code = enrollment_issue(
            clinic=clinic,
            patient=patient,
            created_by=request_user(request),
            created_by_role=self.membership(request).role,
        )
        body = {
            "id": enrollment.pk,
            "patient_id": enrollment.patient_id,
            "code": enrollment_code_display(code),
            "expires_at": enrollment.expires_at,
            "enroll_url": enrollment_url(clinic=clinic, enrollment=enrollment),
            "qr_url": f"/api/v1/portal/enrollments/{enrollment.pk}/qr.png",
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class EnrollmentQrApi(PortalApi):
    @extend_schema(responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request: Request, enrollment_id: str) -> HttpResponse:
        """The QR code of an open code: for a code naming a patient, only staff who may see
        that patient; for a code without one, its issuer and the clinic's admins."""
        enrollment = enrollment_get_for_staff(
            membership=self.membership(request), enrollment_id=enrollment_id, action="enrollment.qr"
        )
        png = qr_png(enrollment_url(clinic=self.clinic(request), enrollment=enrollment))
        return HttpResponse(png, content_type="image/png")
