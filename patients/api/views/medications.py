"""Today's medications and the doses the patient logs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField, BoundedDateTimeField
from patients import selectors, services
from patients.api.views.base import OwnRecordApi
from patients.models import DoseStatus


class DoseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    prescription = serializers.UUIDField(source="prescription_id")
    date = serializers.DateField(source="scheduled_date")
    status = serializers.ChoiceField(choices=DoseStatus.choices)
    taken_at = serializers.DateTimeField(allow_null=True)


class MedicationTodaySerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    medication = serializers.CharField(source="medication_id")
    name = serializers.CharField(source="medication.name")
    dose = serializers.CharField()
    frequency_kind = serializers.CharField()
    frequency_value = serializers.IntegerField(allow_null=True)
    guideline_step = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField(allow_null=True)
    due_today = serializers.IntegerField()
    logged_today = DoseSerializer(many=True)


class MedicationsApi(OwnRecordApi):
    @extend_schema(responses={200: MedicationTodaySerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Current prescriptions with today's schedule and what is already logged for today."""
        body = selectors.medications_today(patient=self.patient(request))
        return Response(MedicationTodaySerializer(body, many=True).data)


class DoseCreateApi(OwnRecordApi):
    class InputSerializer(StrictSerializer):
        id = serializers.UUIDField()
        prescription = serializers.UUIDField()
        date = BoundedDateField()
        status = serializers.ChoiceField(choices=DoseStatus.choices)
        taken_at = BoundedDateTimeField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: DoseSerializer, 200: DoseSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        dose, created = services.dose_log_record(
            patient=self.patient(request),
            dose_id=data["id"],
            prescription_id=data["prescription"],
            day=data["date"],
            status=data["status"],
            taken_at=data.get("taken_at"),
            late_days=self.late_days(request),
        )
        return Response(DoseSerializer(dose).data, status=201 if created else 200)
