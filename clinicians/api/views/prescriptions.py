"""The medication catalogue, and a patient's prescriptions: list, prescribe, stop."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
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


class MedicationSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="What a prescription names as `medication`")
    name = serializers.CharField()
    drug = serializers.CharField()
    strength = serializers.CharField(help_text="A prescription's default `dose`")
    route = serializers.CharField()
    frequency_kind = serializers.ChoiceField(
        choices=FrequencyKind.choices,
        help_text="The default frequency: n doses a day, one every n days, or as needed",
    )
    frequency_value = serializers.IntegerField(allow_null=True, help_text="The n of the default frequency")
    guideline_step = serializers.IntegerField(
        allow_null=True,
        help_text="EAACI/GA²LEN 2022 step 1-4, a prescription's default step; null for drugs newer "
        "than the guideline and rescue courses (a prescription of these names its step)",
    )
    is_rescue = serializers.BooleanField(help_text="A short course for exacerbations")


class MedicationCatalogueApi(PortalApi):
    @extend_schema(
        responses={200: MedicationSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Cetirizine",
                value=[
                    {
                        "code": "cetirizine-10",
                        "name": "Cetirizine 10 mg once daily (standard dose)",
                        "drug": "cetirizine",
                        "strength": "10 mg",
                        "route": "oral",
                        "frequency_kind": "n_per_day",
                        "frequency_value": 1,
                        "guideline_step": 1,
                        "is_rescue": False,
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        """The medications a prescription can name (`code`), with the dose, frequency and
        guideline step a prescription takes when it does not give its own. Step order: step 1
        first, drugs without a step last."""
        return Response(MedicationSerializer(patient_selectors.medication_catalogue(), many=True).data)


class PatientPrescriptionsApi(PortalApi):
    class InputSerializer(StrictSerializer):
        """Only `medication` is required: what is left out comes from its catalogue entry (dose =
        its strength, its frequency and guideline step) and `start` is the patient's today."""

        medication = serializers.CharField(
            max_length=60, help_text="A catalogue code (GET /api/v1/portal/medications/)"
        )
        dose = serializers.CharField(
            max_length=60, required=False, help_text="Default: the catalogue strength"
        )
        frequency_kind = serializers.ChoiceField(
            choices=FrequencyKind.choices, required=False, help_text="Default: the catalogue's"
        )
        frequency_value = serializers.IntegerField(
            min_value=1, max_value=365, required=False, help_text="Default: the catalogue's"
        )
        guideline_step = serializers.IntegerField(
            min_value=1,
            max_value=4,
            required=False,
            help_text="Default: the catalogue's (required when it has none)",
        )
        start = BoundedDateField(required=False, help_text="Default: the patient's local today")
        end = BoundedDateField(required=False, allow_null=True)

    @extend_schema(responses={200: PrescriptionSerializer(many=True)})
    def get(self, request: Request, patient_id: str) -> Response:
        patient = self.patient_for(request, patient_id, "portal.prescriptions")
        prescriptions = patient_selectors.prescriptions_of(patient=patient)
        return Response(PrescriptionSerializer(prescriptions, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: PrescriptionSerializer},
        examples=[
            OpenApiExample("From the catalogue", value={"medication": "cetirizine-10"}, request_only=True),
            OpenApiExample(
                "Up-dosed from a date",
                value={"medication": "cetirizine-10-x4", "start": "2026-02-02"},
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request, patient_id: str) -> Response:
        """Prescribe: give only what differs from the catalogue entry. 400
        `unknown_medication` for a code not in the catalogue."""
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
