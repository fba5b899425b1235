from __future__ import annotations

from django.urls import path

from billing.api import views

# Clinic hosts.
admin_patterns = [
    path("admin/billing/", views.BillingOverviewApi.as_view(), name="admin-billing"),
    path("admin/billing/plan/", views.PlanChangeApi.as_view(), name="admin-billing-plan"),
    path("admin/billing/invoices/", views.ClinicInvoiceListApi.as_view(), name="admin-invoices"),
    path("admin/billing/invoices.csv", views.ClinicInvoiceCsvApi.as_view(), name="admin-invoices-csv"),
    path(
        "admin/billing/invoices/<uuid:invoice_id>/",
        views.ClinicInvoiceDetailApi.as_view(),
        name="admin-invoice",
    ),
    path(
        "admin/billing/invoices/<uuid:invoice_id>/invoice.html",
        views.ClinicInvoiceHtmlApi.as_view(),
        name="admin-invoice-html",
    ),
]

# Platform host.
public_patterns = [
    path("billing/webhooks/payments/", views.PaymentWebhookApi.as_view(), name="billing-webhook-payments"),
    path(
        "platform/subscriptions/", views.OperatorSubscriptionListApi.as_view(), name="operator-subscriptions"
    ),
    path(
        "platform/subscriptions/<uuid:subscription_id>/extend-trial/",
        views.OperatorTrialExtendApi.as_view(),
        name="operator-extend-trial",
    ),
    path("platform/invoices/", views.OperatorInvoiceListApi.as_view(), name="operator-invoices"),
    path(
        "platform/invoices/<uuid:invoice_id>/void/",
        views.OperatorInvoiceVoidApi.as_view(),
        name="operator-invoice-void",
    ),
]
