"""Billing (public schema): plans, one subscription per clinic, monthly usage, invoices.

Money is exact: integer minor units (cents) with an ISO 4217 currency, never floats. Tax rates
are integer basis points (1900 = 19 %).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import Q

from core.models import BaseModel
from tenants.models import Clinic


class Plan(models.Model):
    """A price list (data, seeded by a migration). `None` limits are unlimited."""

    code = models.SlugField(max_length=30, primary_key=True)
    name = models.CharField(max_length=80)
    currency = models.CharField(max_length=3, default="EUR")
    base_fee_minor = models.PositiveIntegerField()
    per_active_patient_minor = models.PositiveIntegerField()
    included_clinicians = models.PositiveIntegerField()
    per_extra_clinician_minor = models.PositiveIntegerField(default=0)
    max_clinicians = models.PositiveIntegerField(null=True, blank=True)
    max_patients = models.PositiveIntegerField(null=True, blank=True)
    trial_days = models.PositiveIntegerField(default=30)
    rank = models.PositiveSmallIntegerField(default=0, help_text="Higher is bigger: an upgrade goes up")
    public = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trial"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Payment overdue"
    SUSPENDED = "suspended", "Suspended for non-payment"
    CANCELED = "canceled", "Canceled"


class Subscription(BaseModel):
    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIALING
    )
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    # A downgrade waits for the next period; an upgrade is immediate (a PlanChange row).
    pending_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pending_from = models.DateField(null=True, blank=True, help_text="First day of the pending plan")
    past_due_since = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.clinic_id} on {self.plan_id} ({self.status})"


class PlanChange(models.Model):
    """When the plan changed within a period: invoices prorate the base fee by days on each plan."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="plan_changes")
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    effective_on = models.DateField(help_text="First day billed on the new plan (clinic-local date)")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.from_plan_id} → {self.to_plan_id} on {self.effective_on}"


class UsageMetric(models.TextChoices):
    ACTIVE_PATIENTS = "active_patients", "Patients who recorded a diary entry or dose in the month"
    ACTIVE_CLINICIANS = "active_clinicians", "Active clinician memberships at month end"


class UsageRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="usage_records")
    period = models.DateField(help_text="First day of the month (clinic-local)")
    metric = models.CharField(max_length=20, choices=UsageMetric.choices)
    quantity = models.PositiveIntegerField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "period", "metric"], name="usage_once_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.period}: {self.quantity}"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


class InvoiceCounter(models.Model):
    """The last invoice number issued per year. Taken with SELECT … FOR UPDATE in the
    transaction that issues the invoice: a rollback also rolls the counter back (no gaps)."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Invoice(BaseModel):
    """A monthly bill. Invoices outlive their clinic (legal retention): purging an offboarded
    clinic sets `clinic` to NULL, and the retained record below (the clinic's id, slug, name and
    country as billed, copied when the invoice is first saved) still says whom it billed. A
    `PROTECT` here made every purge of a billed clinic fail (issue 21)."""

    number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    clinic = models.ForeignKey(
        Clinic, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    # The retained clinic record (never cleared; kept after the clinic is purged).
    billed_clinic_id = models.UUIDField(null=True, blank=True, db_index=True)
    billed_clinic_slug = models.CharField(max_length=40, blank=True)
    billed_clinic_name = models.CharField(max_length=200, blank=True)
    billed_clinic_country = models.CharField(max_length=2, blank=True)
    period = models.DateField(help_text="First day of the billed month")
    currency = models.CharField(max_length=3)
    subtotal_minor = models.IntegerField()
    tax_rate_bp = models.PositiveIntegerField()
    tax_minor = models.IntegerField()
    total_minor = models.IntegerField()
    status = models.CharField(max_length=14, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "period"], name="invoice_once_per_period"),
            models.CheckConstraint(
                condition=Q(total_minor=models.F("subtotal_minor") + models.F("tax_minor")),
                name="invoice_total_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A denormalised copy, not a workflow: whoever creates an invoice gets the record filled
        # (invoicing creates them one by one, so `bulk_create` is not a path).
        if self.clinic is not None and self.billed_clinic_id is None:
            self.billed_clinic_id = self.clinic.pk
            self.billed_clinic_slug = self.clinic.slug
            self.billed_clinic_name = self.clinic.name
            self.billed_clinic_country = self.clinic.country
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {
                    *update_fields,
                    "billed_clinic_id",
                    "billed_clinic_slug",
                    "billed_clinic_name",
                    "billed_clinic_country",
                }
        super().save(*args, **kwargs)


class InvoiceLine(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_minor = models.IntegerField()
    amount_minor = models.IntegerField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.description


class PaymentEvent(models.Model):
    """Every payment-provider event received once (duplicates by event id are ignored)."""

    event_id = models.CharField(max_length=100, primary_key=True)
    type = models.CharField(max_length=60)
    received_at = models.DateTimeField(auto_now_add=True)
    handled = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
