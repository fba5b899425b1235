"""A patient's prescriptions: list, prescribe, stop."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from clinicians import services
from clinicians.access import prescription_get_for_staff
from clinicians.api.views.base import PortalApi
from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField
from patients import selectors as patient_selectors
from patients.models import FrequencyKind


class PrescriptionSerializer(serializers.Serializer[Any]):
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
        prescriptions = patient_selectors.prescriptions_of(patient=patient)
        return Response(PrescriptionSerializer(prescriptions, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: PrescriptionSerializer})
    def post(self, request: Request, patient_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        patient = self.patient_for(request, patient_id, "portal.prescription_write")
        prescription = services.prescription_create(
            patient=patient, prescriber=request_user(request), membership=self.membership(request), **data
        )
        return Response(PrescriptionSerializer(prescription).data, status=status.HTTP_201_CREATED)


class PrescriptionStopApi(PortalApi):
    class InputSerializer(StrictSerializer):
        end = BoundedDateField(required=False)

    @extend_schema(request=InputSerializer, responses={200: PrescriptionSerializer})
    def post(self, request: Request, prescription_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        prescription = prescription_get_for_staff(
            membership=self.membership(request),
            prescription_id=prescription_id,
            action="portal.prescription_stop",
        )
        prescription = services.prescription_stop(
            prescription=prescription,
            actor=request_user(request),
            membership=self.membership(request),
            end=data.get("end"),
        )
        return Response(PrescriptionSerializer(prescription).data)
