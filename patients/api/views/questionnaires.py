"""Questionnaires the patient answers (UCT, UCT7, AAS)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField
from core.errors import ApplicationError, ErrorCode
from patients import selectors, services
from patients.api.serializers import QuestionnaireSerializer
from patients.api.views.base import OwnRecordApi
from patients.models import Instrument


class QuestionnaireCreateApi(OwnRecordApi):
    class InputSerializer(StrictSerializer):
        id = serializers.UUIDField(required=False)
        answers = serializers.JSONField(
            help_text='UCT/UCT7: {"items": [0-4 ×4]}; AAS: {"angioedema", "items": [0-3 ×5]}'
        )
        period_end = BoundedDateField(required=False)

    @extend_schema(
        request=InputSerializer, responses={201: QuestionnaireSerializer, 200: QuestionnaireSerializer}
    )
    def post(self, request: Request, instrument: str) -> Response:
        if instrument not in Instrument.values:
            raise ApplicationError(
                code=ErrorCode.UNKNOWN_INSTRUMENT, status_code=404, detail="Unknown instrument."
            )
        data = self.validated(self.InputSerializer, request.data)
        response, created = services.questionnaire_record(
            patient=self.patient(request),
            instrument=instrument,
            answers=data["answers"],
            period_end=data.get("period_end"),
            response_id=data.get("id"),
            late_days=self.late_days(request),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(QuestionnaireSerializer(response).data, status=code)


class QuestionnaireListApi(OwnRecordApi):
    @extend_schema(responses={200: QuestionnaireSerializer(many=True)})
    def get(self, request: Request) -> Response:
        responses = selectors.questionnaire_responses(patient=self.patient(request))
        return Response(QuestionnaireSerializer(responses, many=True).data)
