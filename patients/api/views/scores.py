"""The patient's scores: weekly UAS7, UCT results, AAS7 and AAS28."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField
from patients import scores, selectors
from patients.api.serializers import QuestionnaireSerializer, Uas7Serializer
from patients.api.views.base import OwnRecordApi


class Uas7ScoresApi(OwnRecordApi):
    class FilterSerializer(StrictSerializer):
        end = BoundedDateField(required=False)
        weeks = serializers.IntegerField(min_value=1, max_value=52, default=12)

    @extend_schema(
        parameters=[OpenApiParameter("end", date), OpenApiParameter("weeks", int)],
        responses={200: Uas7Serializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Weekly UAS7 for `weeks` weeks ending on `end` (default today), oldest first."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient(request)
        weeks = selectors.uas7_history(
            patient=patient, end=filters.get("end") or patient.local_today(), weeks=filters["weeks"]
        )
        return Response(Uas7Serializer(weeks, many=True).data)


class UctScoresApi(OwnRecordApi):
    @extend_schema(responses={200: QuestionnaireSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """UCT and UCT7 results, newest first, with their control category."""
        responses = selectors.uct_responses(patient=self.patient(request))
        return Response(QuestionnaireSerializer(responses, many=True).data)


class AasScoresApi(OwnRecordApi):
    class FilterSerializer(StrictSerializer):
        end = BoundedDateField(required=False)

    class OutputSerializer(serializers.Serializer[Any]):
        class WeeklySerializer(serializers.Serializer[Any]):
            start = serializers.DateField()
            end = serializers.DateField()
            value = serializers.FloatField(allow_null=True)
            method = serializers.CharField()
            days_observed = serializers.IntegerField()

        aas7 = WeeklySerializer()
        aas28 = WeeklySerializer()
        days = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(parameters=[OpenApiParameter("end", date)], responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        """AAS7 and AAS28 ending on `end` (default today) from the diary's angioedema items."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient(request)
        end = filters.get("end") or patient.local_today()
        entries = list(selectors.diary_entries(patient=patient, start=end - timedelta(days=27), end=end))
        per_day = selectors.aas_per_day_from(entries)
        body = {
            "aas7": scores.aas7(per_day, end),
            "aas28": scores.aas28(per_day, end),
            "days": {day.isoformat(): value for day, value in sorted(per_day.items())},
        }
        return Response(self.OutputSerializer(body).data)
