"""Alerts on the staff member's patients: list, acknowledge, resolve."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from clinicians import selectors, services
from clinicians.access import alert_get_for_staff
from clinicians.api.views.base import PortalApi
from core.api.base import StrictSerializer


class AlertSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    patient = serializers.UUIDField(source="patient_id")
    patient_name = serializers.CharField(source="patient.display_name")
    kind = serializers.CharField()
    opened_at = serializers.DateTimeField()
    evidence = serializers.DictField()
    acknowledged_by = serializers.UUIDField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_reason = serializers.ChoiceField(
        choices=["", "clinician", "condition_cleared"],
        help_text="`condition_cleared`: the summary no longer shows the finding (resolved by itself)",
    )


class AlertListApi(PortalApi):
    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=["open", "acknowledged", "resolved", "all"], default="open")
        patient = serializers.UUIDField(required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("patient", str)],
        responses={200: AlertSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        membership = self.membership(request)
        alerts = selectors.alerts_visible_to(
            membership=membership, status=filters["status"], patient_id=filters.get("patient")
        )
        return Response(AlertSerializer(alerts, many=True).data)


class AlertAcknowledgeApi(PortalApi):
    action_name = "acknowledge"

    @extend_schema(request=None, responses={200: AlertSerializer})
    def post(self, request: Request, alert_id: str) -> Response:
        alert = alert_get_for_staff(
            membership=self.membership(request), alert_id=alert_id, action=f"portal.alert_{self.action_name}"
        )
        act = services.alert_acknowledge if self.action_name == "acknowledge" else services.alert_resolve
        return Response(AlertSerializer(act(alert=alert, actor=request_user(request))).data)


class AlertResolveApi(AlertAcknowledgeApi):
    action_name = "resolve"
