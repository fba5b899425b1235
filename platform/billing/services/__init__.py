"""Billing writes: subscriptions, seat limits, usage, invoices, payment events.

The money rules are stated once, in `billing.services.arithmetic` (pure, no ORM). The names are
re-exported here so `from billing.services import ...` keeps working.
"""

from __future__ import annotations

from billing.services.arithmetic import (
    Line,
    Totals,
    div_round_half_up,
    invoice_lines,
    invoice_totals,
    plan_segments,
)
from billing.services.invoicing import (
    clinics_due_invoicing,
    invoice_generate,
    invoice_void,
    tax_rate_bp,
    usage_record,
)
from billing.services.periods import (
    clinic_month_bounds,
    clinic_today,
    month_end,
    month_start,
    next_month,
    previous_month,
)
from billing.services.subscriptions import (
    DEFAULT_PLAN,
    active_clinicians,
    plan_change,
    seat_check,
    subscription_lock,
    subscription_start,
    subscriptions_advance,
    trial_extend,
)
from billing.services.webhooks import (
    payment_event_handle,
    webhook_signature,
    webhook_verify,
)

__all__ = [
    "DEFAULT_PLAN",
    "Line",
    "Totals",
    "active_clinicians",
    "clinic_month_bounds",
    "clinic_today",
    "clinics_due_invoicing",
    "div_round_half_up",
    "invoice_generate",
    "invoice_lines",
    "invoice_totals",
    "invoice_void",
    "month_end",
    "month_start",
    "next_month",
    "payment_event_handle",
    "plan_change",
    "plan_segments",
    "previous_month",
    "seat_check",
    "subscription_lock",
    "subscription_start",
    "subscriptions_advance",
    "tax_rate_bp",
    "trial_extend",
    "usage_record",
    "webhook_signature",
    "webhook_verify",
]
