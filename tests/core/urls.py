"""Views that exist only in tests, to exercise the error handler end to end."""

from __future__ import annotations

from django.urls import path
from rest_framework import serializers
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import BaseApi, StrictSerializer
from core.errors import ApplicationError


class EchoApi(BaseApi):
    permission_classes = [AllowAny]

    class InputSerializer(StrictSerializer):
        wheals = serializers.IntegerField(min_value=0, max_value=3)
        nested = serializers.DictField(required=False)

    def post(self, request: Request) -> Response:
        return Response(self.validated(self.InputSerializer, request.data))


class RuleApi(BaseApi):
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        raise ApplicationError(code="diary_future_date", field="date", detail="Cannot record a future day.")


class BoomApi(BaseApi):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


class ThrottledApi(BaseApi):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise Throttled(wait=42)


class PrivateApi(BaseApi):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({})


urlpatterns = [
    path("echo/", EchoApi.as_view()),
    path("rule/", RuleApi.as_view()),
    path("boom/", BoomApi.as_view()),
    path("throttled/", ThrottledApi.as_view()),
    path("private/", PrivateApi.as_view()),
]

handler404 = "core.errors.not_found_view"
handler500 = "core.errors.server_error_view"
