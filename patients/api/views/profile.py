"""The patient's profile: settings the patient may change, and what the PWA needs to know."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from core.api.fields import LocalTimeField, no_control_characters
from patients import services
from patients.api.views.base import OwnRecordApi
from patients.models import Patient
from tenants.models import DiaryMode


class ProfileSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    date_of_birth = serializers.DateField(read_only=True, allow_null=True)
    timezone = serializers.CharField(max_length=64, validators=[no_control_characters])
    locale = serializers.RegexField(r"^[a-z]{2}(-[A-Z]{2})?$", max_length=10)
    diary_mode = serializers.ChoiceField(choices=DiaryMode.choices)
    quiet_hours_start = LocalTimeField(allow_null=True, required=False, help_text="Local time, HH:MM")
    quiet_hours_end = LocalTimeField(allow_null=True, required=False, help_text="Local time, HH:MM")
    status = serializers.CharField(read_only=True)
    enrolled_at = serializers.DateTimeField(read_only=True)
    today = serializers.SerializerMethodField()
    late_entry_days = serializers.SerializerMethodField(
        help_text="How many days back the clinic accepts diary entries (the late-entry window)."
    )

    def get_today(self, patient: Patient) -> date:
        return patient.local_today()

    def get_late_entry_days(self, patient: Patient) -> int:
        return int(self.context["late_entry_days"])


class ProfileApi(OwnRecordApi):
    consent_exempt = True  # settings (time zone, language, diary mode), not health data

    class InputSerializer(StrictSerializer, ProfileSerializer):
        """Also validates `patient_settings` pushed through sync (patients.sync)."""

    @extend_schema(responses={200: ProfileSerializer})
    def get(self, request: Request) -> Response:
        context = {"late_entry_days": self.late_days(request)}
        return Response(ProfileSerializer(self.patient(request), context=context).data)

    @extend_schema(request=InputSerializer, responses={200: ProfileSerializer})
    def patch(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data, partial=True)
        patient = services.patient_profile_update(patient=self.patient(request), **data)
        context = {"late_entry_days": self.late_days(request)}
        return Response(ProfileSerializer(patient, context=context).data)
