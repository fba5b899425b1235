"""Billing (plans, subscriptions, usage, invoices) lives in the public schema; see issue #9."""
