"""The clinic's privacy notice and the patient's consent to it (patients.consent).

`GET /api/v1/auth/privacy-notice/` is public on the clinic host: the enrollment screen shows
it before the patient has an account. The patient's own consent is under `/api/v1/me/consent/`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_clinic, request_user
from core.api.base import BaseApi, StrictSerializer
from core.errors import ApplicationError, ErrorCode
from patients import consent
from patients.api.views.base import OwnRecordApi


class PrivacyNoticeSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(help_text="What an acceptance names")
    texts = serializers.DictField(
        child=serializers.CharField(), help_text="Language → the notice's text (plain text, paragraphs)"
    )
    published_at = serializers.DateTimeField(source="created_at")
    requires_reacceptance = serializers.BooleanField(
        help_text="Acceptances of earlier versions no longer count: patients accept this one again"
    )


class PublicPrivacyNoticeSerializer(PrivacyNoticeSerializer):
    clinic = serializers.CharField(help_text="The clinic's name")


NOTICE_EXAMPLE = {
    "version": 1,
    "texts": {"en": "Privacy notice\n\nYour clinic uses CSU Tracker…", "de": "Datenschutzerklärung\n\n…"},
    "published_at": "2026-01-05T09:00:00Z",
    "requires_reacceptance": False,
}


class PrivacyNoticeApi(BaseApi):
    """Anonymous on the clinic host: the notice is public, and the enrollment screen needs it
    before the patient has an account."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: PublicPrivacyNoticeSerializer},
        auth=[],
        examples=[
            OpenApiExample("Notice", value={**NOTICE_EXAMPLE, "clinic": "Demo Clinic"}, response_only=True)
        ],
    )
    def get(self, request: Request) -> Response:
        """The clinic's current privacy notice, which a patient accepts when joining."""
        clinic = request_clinic(request)
        if clinic is None:
            raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="Not a clinic host.")
        notice = consent.privacy_notice_current()
        body = {
            "version": notice.version,
            "texts": notice.texts,
            "created_at": notice.created_at,
            "requires_reacceptance": notice.requires_reacceptance,
            "clinic": clinic.name,
        }
        return Response(PublicPrivacyNoticeSerializer(body).data)


class ConsentEventSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    granted_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)


class ConsentStateSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(
        choices=["given", "none", "withdrawn", "outdated"],
        help_text="given: health data is stored; none / withdrawn: nothing new is stored; outdated: "
        "the clinic asks to accept its newer notice first",
    )
    version = serializers.IntegerField(allow_null=True, help_text="The version last accepted")
    granted_at = serializers.DateTimeField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    required_version = serializers.IntegerField(help_text="The oldest version whose acceptance counts")
    notice = PrivacyNoticeSerializer(help_text="The current notice, to show and accept")
    history = ConsentEventSerializer(many=True)


def _state_body(patient: Any) -> dict[str, Any]:
    state = consent.consent_state(patient=patient)
    return {
        "status": state.status,
        "version": state.version,
        "granted_at": state.granted_at,
        "withdrawn_at": state.withdrawn_at,
        "required_version": state.required_version,
        "notice": consent.privacy_notice_current(),
        "history": [
            {"version": int(row.version), "granted_at": row.granted_at, "withdrawn_at": row.withdrawn_at}
            for row in consent.consent_history(patient=patient)
        ],
    }


class MyConsentApi(OwnRecordApi):
    consent_exempt = True  # consenting is how a patient without consent gets one

    class InputSerializer(StrictSerializer):
        version = serializers.IntegerField(
            min_value=1, help_text="The version of the notice the patient read and accepts (the current one)"
        )

    @extend_schema(responses={200: ConsentStateSerializer})
    def get(self, request: Request) -> Response:
        """Whether the patient consents now, to which version, the current notice and the
        history of acceptances and withdrawals."""
        return Response(ConsentStateSerializer(_state_body(self.patient(request))).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: ConsentStateSerializer},
        examples=[OpenApiExample("Accept version 2", value={"version": 2}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        """Accept the current notice (again, after a withdrawal or a version that requires it).
        400 `privacy_notice_outdated` when `version` is not the current one."""
        data = self.validated(self.InputSerializer, request.data)
        patient = self.patient(request)
        consent.consent_accept(patient=patient, version=data["version"], actor_id=request_user(request).pk)
        return Response(ConsentStateSerializer(_state_body(patient)).data)


class MyConsentWithdrawApi(OwnRecordApi):
    consent_exempt = True  # withdrawing stores no health data

    class InputSerializer(StrictSerializer):
        """No fields: an empty body (or `{}`); anything else is refused, as for every write."""

    @extend_schema(request=None, responses={200: ConsentStateSerializer})
    def post(self, request: Request) -> Response:
        """Withdraw consent: from now on the patient's health-data writes are refused (403
        `consent_required`) until they accept again; what was recorded stays, and the clinic
        sees the withdrawal. 409 `consent_not_given` when there is none to withdraw."""
        self.validated(self.InputSerializer, request.data)
        patient = self.patient(request)
        consent.consent_withdraw(patient=patient, actor_id=request_user(request).pk)
        return Response(ConsentStateSerializer(_state_body(patient)).data, status=status.HTTP_200_OK)
