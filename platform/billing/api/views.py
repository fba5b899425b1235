"""Billing API: clinic admins (`/api/v1/admin/billing/…`, clinic host), operators
(`/api/v1/platform/…`) and the payment provider's webhook (`/api/v1/billing/webhooks/…`)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import ClinicAdminApi, PlatformOperatorApi
from billing import documents, selectors, services
from billing.models import Invoice, InvoiceStatus, SubscriptionStatus
from core.api.base import BaseApi, StrictSerializer
from core.errors import ApplicationError, ErrorCode


class PlanSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    base_fee_minor = serializers.IntegerField()
    per_active_patient_minor = serializers.IntegerField()
    included_clinicians = serializers.IntegerField()
    per_extra_clinician_minor = serializers.IntegerField()
    max_clinicians = serializers.IntegerField(allow_null=True)
    max_patients = serializers.IntegerField(allow_null=True)


class InvoiceLineSerializer(serializers.Serializer[Any]):
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_minor = serializers.IntegerField()
    amount_minor = serializers.IntegerField()


class InvoiceSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    number = serializers.CharField(allow_null=True)
    clinic = serializers.UUIDField(source="clinic_id")
    period = serializers.DateField()
    currency = serializers.CharField()
    subtotal_minor = serializers.IntegerField()
    tax_rate_bp = serializers.IntegerField()
    tax_minor = serializers.IntegerField()
    total_minor = serializers.IntegerField()
    status = serializers.CharField()
    issued_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True)


# --- Clinic admin -------------------------------------------------------------------------------


class BillingOverviewApi(ClinicAdminApi):
    class OutputSerializer(serializers.Serializer[Any]):
        plan = PlanSerializer()
        pending_plan = serializers.CharField(allow_null=True)
        pending_from = serializers.DateField(allow_null=True)
        status = serializers.CharField()
        trial_ends_at = serializers.DateTimeField(allow_null=True)
        period = serializers.DateField()
        usage = serializers.DictField(child=serializers.IntegerField(), help_text="This month so far")
        seats = serializers.DictField(child=serializers.DictField(allow_null=True))

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(selectors.billing_overview(clinic=self.clinic(request))).data)


class PlanChangeApi(ClinicAdminApi):
    allowed_when_suspended = True  # a suspended clinic may still upgrade to pay its way back

    class InputSerializer(StrictSerializer):
        plan = serializers.CharField(max_length=30)

    @extend_schema(request=InputSerializer, responses={200: BillingOverviewApi.OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        clinic = self.clinic(request)
        services.plan_change(clinic=clinic, plan_code=data["plan"])
        return Response(BillingOverviewApi.OutputSerializer(selectors.billing_overview(clinic=clinic)).data)


class ClinicInvoiceListApi(ClinicAdminApi):
    @extend_schema(responses={200: InvoiceSerializer(many=True)})
    def get(self, request: Request) -> Response:
        invoices = selectors.clinic_invoices(clinic=self.clinic(request))[:240]
        return Response(InvoiceSerializer(invoices, many=True).data)


class _ClinicInvoiceApi(ClinicAdminApi):
    def invoice(self, request: Request, invoice_id: Any) -> Invoice:
        return selectors.clinic_invoice_get(clinic=self.clinic(request), invoice_id=invoice_id)


class ClinicInvoiceDetailApi(_ClinicInvoiceApi):
    @extend_schema(responses={200: InvoiceDetailSerializer})
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = self.invoice(request, invoice_id)
        return Response(InvoiceDetailSerializer(invoice).data)


class ClinicInvoiceHtmlApi(_ClinicInvoiceApi):
    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR})
    def get(self, request: Request, invoice_id: str) -> HttpResponse:
        invoice = self.invoice(request, invoice_id)
        html = documents.invoice_html(invoice)
        return HttpResponse(html, content_type="text/html; charset=utf-8")


class ClinicInvoiceCsvApi(ClinicAdminApi):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        invoices = selectors.clinic_invoices(clinic=self.clinic(request), newest_first=False)
        response = HttpResponse(documents.invoices_csv(invoices), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="invoices.csv"'
        return response


# --- Operators ----------------------------------------------------------------------------------


class OperatorSubscriptionSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    clinic = serializers.CharField(source="clinic.slug")
    plan = serializers.CharField(source="plan_id")
    status = serializers.CharField()
    trial_ends_at = serializers.DateTimeField(allow_null=True)
    past_due_since = serializers.DateTimeField(allow_null=True)


class OperatorSubscriptionListApi(PlatformOperatorApi):
    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=SubscriptionStatus.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str)],
        responses={200: OperatorSubscriptionSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        items = selectors.subscriptions_list(status=filters.get("status"))
        return Response(OperatorSubscriptionSerializer(items, many=True).data)


class OperatorTrialExtendApi(PlatformOperatorApi):
    class InputSerializer(StrictSerializer):
        days = serializers.IntegerField(min_value=1, max_value=90)

    @extend_schema(request=InputSerializer, responses={200: OperatorSubscriptionSerializer})
    def post(self, request: Request, subscription_id: str) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        subscription = selectors.subscription_get(subscription_id=subscription_id)
        return Response(
            OperatorSubscriptionSerializer(
                services.trial_extend(subscription=subscription, days=data["days"])
            ).data
        )


class OperatorInvoiceListApi(PlatformOperatorApi):
    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=InvoiceStatus.choices, required=False)
        clinic = serializers.SlugField(required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("clinic", str)],
        responses={200: InvoiceSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.query(self.FilterSerializer, request)
        items = selectors.invoices_list(status=filters.get("status"), clinic_slug=filters.get("clinic"))
        return Response(InvoiceSerializer(items, many=True).data)


class OperatorInvoiceVoidApi(PlatformOperatorApi):
    @extend_schema(request=None, responses={200: InvoiceSerializer})
    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(invoice_id=invoice_id)
        return Response(InvoiceSerializer(services.invoice_void(invoice=invoice)).data)


# --- Payment provider webhook --------------------------------------------------------------------


class PaymentWebhookApi(BaseApi):
    """Signed with HMAC-SHA256 (`X-Signature: t=…,v1=…`); duplicate event ids are ignored and
    unknown event types acknowledged (200) so the provider stops retrying them."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    class InputSerializer(StrictSerializer):
        class DataSerializer(serializers.Serializer[Any]):
            invoice = serializers.CharField(max_length=40, required=False)

        id = serializers.CharField(max_length=100)
        type = serializers.CharField(max_length=60)
        created = serializers.IntegerField(required=False)
        # The wire name `data` clashes with Serializer.data in the stubs only: DRF's metaclass
        # moves declared fields off the class, so nothing is shadowed at runtime.
        data = DataSerializer(required=False, default=dict)  # type: ignore[assignment]

    class OutputSerializer(serializers.Serializer[Any]):
        received = serializers.BooleanField()
        result = serializers.ChoiceField(choices=["handled", "duplicate", "ignored"])

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        body = request.body  # the exact bytes that were signed
        services.webhook_verify(header=request.headers.get("X-Signature", ""), body=body, now=timezone.now())
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise ApplicationError(code=ErrorCode.PARSE_ERROR, detail="The body is not JSON.") from exc
        data = self.validated(self.InputSerializer, payload)
        result = services.payment_event_handle(
            event_id=data["id"], event_type=data["type"], data=dict(data["data"])
        )
        return Response({"received": True, "result": result})
