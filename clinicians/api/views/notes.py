"""Clinical notes on a patient (append-only; a correction is a new note)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from clinicians import selectors, services
from clinicians.api.views.base import PortalApi
from core.api.base import StrictSerializer


class NoteSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    author_id = serializers.UUIDField()
    body = serializers.CharField()
    corrects = serializers.UUIDField(source="corrects_id", allow_null=True)
    created_at = serializers.DateTimeField()


class PatientNotesApi(PortalApi):
    class InputSerializer(StrictSerializer):
        body = serializers.CharField(max_length=20000)
        corrects = serializers.UUIDField(required=False, allow_null=True)

    @extend_schema(responses={200: NoteSerializer(many=True)})
    def get(self, request: Request, patient_id: str) -> Response:
        patient = self.patient_for(request, patient_id, "portal.notes")
        notes = selectors.notes_of(patient=patient)
        return Response(NoteSerializer(notes, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: NoteSerializer})
    def post(self, request: Request, patient_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        patient = self.patient_for(request, patient_id, "portal.note_write")
        note = services.note_create(
            patient=patient,
            author=request_user(request),
            membership=self.membership(request),
            body=data["body"],
            corrects_id=data.get("corrects"),
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)
