"""The patient's rights over their record: a copy of everything (export), and erasure."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from core.api.throttling import ScopedRateThrottle, UserRateThrottle
from patients import services
from patients.api.views.base import OwnRecordApi


class ExportApi(OwnRecordApi):
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "export"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        """All the patient's data as one JSON document (right of access). Audited."""
        document = services.patient_export(
            patient=self.patient(request),
            actor_id=request.user.pk,
            actor_role="patient",
        )
        response = Response(document)
        response["Content-Disposition"] = 'attachment; filename="csu-tracker-export.json"'
        return response


class DeletionRequestApi(OwnRecordApi):
    consent_exempt = True  # asking for deletion must never need consent

    allowed_when_offboarding = True  # a data-subject right, whatever the clinic's state

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=2000, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.UUIDField()
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        deletion = services.deletion_request_create(patient=self.patient(request), reason=data["reason"])
        return Response(self.OutputSerializer(deletion).data, status=status.HTTP_202_ACCEPTED)
