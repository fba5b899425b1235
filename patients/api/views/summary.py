"""The patient's summary page."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from patients.api.serializers import SummarySerializer
from patients.api.views.base import OwnRecordApi
from patients.summary import summary_page


class SummaryApi(OwnRecordApi):
    @extend_schema(responses={200: SummarySerializer})
    def get(self, request: Request) -> Response:
        return Response(summary_page(self.patient(request)))
