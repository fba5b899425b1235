"""The diary: one record per local day (or per half-day in the twice-daily mode)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import StrictSerializer
from core.api.fields import BoundedDateField, BoundedDateTimeField, no_control_characters_in_text
from core.errors import ApplicationError, ErrorCode
from patients import selectors, services
from patients.api.views.base import OwnRecordApi, parse_day
from patients.models import Slot


class DiaryEntrySerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    day = serializers.DateField()
    slot = serializers.ChoiceField(choices=Slot.choices)
    wheals = serializers.IntegerField()
    itch = serializers.IntegerField()
    uas = serializers.IntegerField()
    angioedema = serializers.BooleanField()
    aas_items = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    note = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DiaryEntryApi(OwnRecordApi):
    class InputSerializer(StrictSerializer):
        id = serializers.UUIDField(required=False, help_text="Client-generated id (offline-first).")
        wheals = serializers.IntegerField(min_value=0, max_value=3)
        itch = serializers.IntegerField(min_value=0, max_value=3)
        angioedema = serializers.BooleanField(default=False)
        aas_items = serializers.ListField(
            child=serializers.IntegerField(min_value=0, max_value=3),
            min_length=5,
            max_length=5,
            required=False,
            allow_null=True,
        )
        note = serializers.CharField(
            max_length=2000, allow_blank=True, default="", validators=[no_control_characters_in_text]
        )
        recorded_at = BoundedDateTimeField(required=False)

    @extend_schema(request=InputSerializer, responses={200: DiaryEntrySerializer, 201: DiaryEntrySerializer})
    def put(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        entry, created = services.diary_entry_record(
            patient=self.patient(request),
            day=parse_day(day),
            slot=slot,
            wheals=data["wheals"],
            itch=data["itch"],
            angioedema=data["angioedema"],
            aas_items=data.get("aas_items"),
            note=data["note"],
            entry_id=data.get("id"),
            recorded_at=data.get("recorded_at"),
            late_days=self.late_days(request),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(DiaryEntrySerializer(entry).data, status=code)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        services.diary_entry_delete(
            patient=self.patient(request), day=parse_day(day), slot=slot, late_days=self.late_days(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DiarySlotEntryApi(DiaryEntryApi):
    """The twice-daily diary: the same record per half-day (`am` / `pm`)."""

    @extend_schema(
        operation_id="v1_me_diary_slot_update",
        request=DiaryEntryApi.InputSerializer,
        responses={200: DiaryEntrySerializer, 201: DiaryEntrySerializer},
    )
    def put(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        return super().put(request, day, slot)

    @extend_schema(operation_id="v1_me_diary_slot_destroy", responses={204: None})
    def delete(self, request: Request, day: str, slot: str = Slot.DAY) -> Response:
        return super().delete(request, day, slot)


class DiaryListApi(OwnRecordApi):
    class FilterSerializer(StrictSerializer):
        start = BoundedDateField(required=False)  # exposed as `from` (a Python keyword)
        to = BoundedDateField(required=False)

        def get_fields(self) -> dict[str, Any]:
            fields = super().get_fields()
            fields["from"] = fields.pop("start")
            return fields

    @extend_schema(
        parameters=[OpenApiParameter("from", date), OpenApiParameter("to", date)],
        responses={200: DiaryEntrySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Live entries between two local dates (default: the last 28 days; at most 366)."""
        filters = self.query(self.FilterSerializer, request)
        patient = self.patient(request)
        end = filters.get("to") or patient.local_today()
        start = filters.get("from") or end - timedelta(days=27)
        if start > end:
            raise ApplicationError(code=ErrorCode.INVALID_RANGE, field="from", detail="'from' is after 'to'.")
        if (end - start).days + 1 > selectors.MAX_DIARY_RANGE_DAYS:
            raise ApplicationError(
                code=ErrorCode.RANGE_TOO_LONG, field="from", detail="Ask for at most 366 days at a time."
            )
        entries = selectors.diary_entries(patient=patient, start=start, end=end)
        return Response(DiaryEntrySerializer(entries, many=True).data)
