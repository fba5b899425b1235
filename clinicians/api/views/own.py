"""What the patient sees of the clinic's staff (`/api/v1/me/care-team/`): served by the portal
app because care teams are its records (patients never imports clinicians), on the patient's
own-record base, so only the signed-in patient reads only their own team."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from clinicians import selectors
from patients.api.views.base import OwnRecordApi


class MyCareTeamMemberSerializer(serializers.Serializer[Any]):
    """A clinician as the patient sees them: a name and a role, no email or account id (the
    clinic's contact details are the clinic's to give)."""

    name = serializers.CharField(source="display_name", help_text="Title and name, e.g. Dr Anna Weber")
    care_role = serializers.CharField(help_text="primary (your main clinician) or secondary")
    since = serializers.DateField()


class MyCareTeamApi(OwnRecordApi):
    @extend_schema(
        responses={200: MyCareTeamMemberSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Two clinicians",
                value=[
                    {"name": "Dr Anna Weber", "care_role": "primary", "since": "2026-01-12"},
                    {"name": "Dr Tunde Okafor", "care_role": "secondary", "since": "2026-03-02"},
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        """The clinicians who look after the signed-in patient now, primary first."""
        members = selectors.care_team_of(
            clinic_id=self.membership(request).clinic_id, patient=self.patient(request)
        )
        return Response(MyCareTeamMemberSerializer(members, many=True).data)
