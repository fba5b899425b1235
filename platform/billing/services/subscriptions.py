"""Subscriptions and seat limits: start, change plan, extend a trial, advance states hourly."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import usage
from billing.models import Plan, PlanChange, Subscription, SubscriptionStatus
from billing.services.periods import clinic_today, month_start, next_month
from core.errors import ApplicationError, ErrorCode
from tenants.models import Clinic, ClinicStatus

logger = logging.getLogger("billing.services")


DEFAULT_PLAN = "starter"


def _plan(code: str, field: str = "plan", *, public_only: bool = False) -> Plan:
    plans = Plan.objects.filter(public=True) if public_only else Plan.objects.all()
    plan = plans.filter(code=code).first()
    if plan is None:
        raise ApplicationError(code=ErrorCode.VALIDATION_ERROR, field=field, detail="Unknown plan.")
    return plan


def subscription_lock(*, clinic: Clinic) -> Subscription | None:
    """The clinic's subscription (with its plan and clinic), locked until the transaction ends;
    None for a clinic without one. Seat checks, plan changes and invoicing take this lock, so
    one clinic's concurrent additions, plan changes and invoice runs are serialised. Only the
    subscription row is locked (`of=self`), not the plan or the clinic."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("clinic", "plan")
        .filter(clinic=clinic)
        .first()
    )


def subscription_start(
    *, clinic: Clinic, plan_code: str = DEFAULT_PLAN, now: datetime | None = None
) -> Subscription:
    """At signup: the chosen plan, in trial for the plan's trial days."""
    plan = _plan(plan_code)
    now = now or timezone.now()
    return Subscription.objects.create(
        clinic=clinic,
        plan=plan,
        status=SubscriptionStatus.TRIALING if plan.trial_days else SubscriptionStatus.ACTIVE,
        trial_ends_at=now + timedelta(days=plan.trial_days) if plan.trial_days else None,
    )


def active_clinicians(clinic: Clinic) -> int:
    from accounts.models import Membership, Role

    return Membership.objects.filter(clinic=clinic, role=Role.CLINICIAN, is_active=True).count()


def _limit_error(limit: str, value: int) -> ApplicationError:
    return ApplicationError(
        code=ErrorCode.PLAN_LIMIT,
        status_code=403,
        detail=f"Your plan allows at most {value} ({limit.replace('_', ' ')}). Upgrade to add more.",
        extra={"limit": limit, "allowed": value},
    )


def seat_check(*, clinic: Clinic, adding: str) -> None:
    """Refuse one more clinician or patient beyond the plan's limit (403 `plan_limit`).
    Clinics without a subscription (created by operators' tools) have no limits. Call it in
    the transaction that adds the seat."""
    with transaction.atomic():
        # The lock serialises concurrent additions for one clinic until the caller commits.
        subscription = subscription_lock(clinic=clinic)
    if subscription is None:
        return
    plan = subscription.plan
    if adding == "clinician" and plan.max_clinicians is not None:
        if active_clinicians(clinic) >= plan.max_clinicians:
            raise _limit_error("max_clinicians", plan.max_clinicians)
    if adding == "patient" and plan.max_patients is not None:
        if usage.patient_seats(clinic) >= plan.max_patients:
            raise _limit_error("max_patients", plan.max_patients)


@transaction.atomic
def plan_change(*, clinic: Clinic, plan_code: str, now: datetime | None = None) -> Subscription:
    """An upgrade takes effect today (the base fee is prorated on the next invoice); a
    downgrade at the start of next month, and only if current usage fits the smaller plan."""
    subscription = subscription_lock(clinic=clinic)
    if subscription is None:
        raise ApplicationError(
            code=ErrorCode.NO_SUBSCRIPTION, status_code=404, detail="This clinic has no subscription."
        )
    if subscription.status == SubscriptionStatus.CANCELED:
        raise ApplicationError(
            code=ErrorCode.SUBSCRIPTION_CANCELED, status_code=409, detail="The subscription is canceled."
        )
    target = _plan(plan_code, public_only=True)
    if target.code == subscription.plan_id:
        subscription.pending_plan, subscription.pending_from = None, None
        subscription.save(update_fields=["pending_plan", "pending_from", "updated_at"])
        return subscription
    for limit, current in (
        ("max_clinicians", active_clinicians(clinic)),
        ("max_patients", usage.patient_seats(clinic)),
    ):
        allowed = getattr(target, limit)
        if allowed is not None and current > allowed:
            raise _limit_error(limit, allowed)
    today = clinic_today(clinic, now)
    if target.rank > subscription.plan.rank:
        PlanChange.objects.create(
            subscription=subscription, from_plan=subscription.plan, to_plan=target, effective_on=today
        )
        subscription.plan, subscription.pending_plan = target, None
    else:
        subscription.pending_plan, subscription.pending_from = target, next_month(month_start(today))
    subscription.save(update_fields=["plan", "pending_plan", "pending_from", "updated_at"])
    return subscription


def trial_extend(*, subscription: Subscription, days: int) -> Subscription:
    if subscription.status != SubscriptionStatus.TRIALING:
        raise ApplicationError(code=ErrorCode.NOT_TRIALING, status_code=409, detail="Only a trial can be extended.")
    subscription.trial_ends_at = (subscription.trial_ends_at or timezone.now()) + timedelta(days=days)
    subscription.save(update_fields=["trial_ends_at", "updated_at"])
    return subscription


def subscriptions_advance(*, now: datetime | None = None) -> dict[str, int]:
    """Hourly: trials that ended become active; pending downgrades apply from the 1st; past-due
    clinics beyond the grace period are suspended (lifecycle semantics)."""
    from tenants.lifecycle import clinic_suspend

    now = now or timezone.now()
    counts = {"activated": 0, "downgraded": 0, "suspended": 0}
    counts["activated"] = Subscription.objects.filter(
        status=SubscriptionStatus.TRIALING, trial_ends_at__lte=now
    ).update(status=SubscriptionStatus.ACTIVE, updated_at=now)
    for subscription in Subscription.objects.filter(pending_plan__isnull=False).select_related(
        "clinic", "plan"
    ):
        with transaction.atomic():
            locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
            effective = locked.pending_from
            if (
                locked.pending_plan_id is None
                or effective is None
                or clinic_today(subscription.clinic, now) < effective
            ):
                continue
            PlanChange.objects.create(
                subscription=locked,
                from_plan_id=locked.plan_id,
                to_plan_id=locked.pending_plan_id,
                effective_on=effective,
            )
            locked.plan_id, locked.pending_plan, locked.pending_from = locked.pending_plan_id, None, None
            locked.save(update_fields=["plan", "pending_plan", "pending_from", "updated_at"])
            counts["downgraded"] += 1
    cutoff = now - timedelta(days=settings.BILLING_GRACE_DAYS)
    for subscription in Subscription.objects.filter(
        status=SubscriptionStatus.PAST_DUE, past_due_since__lte=cutoff
    ).select_related("clinic"):
        with transaction.atomic():
            # Conditional: a payment that arrived since the read above wins.
            changed = Subscription.objects.filter(
                pk=subscription.pk, status=SubscriptionStatus.PAST_DUE, past_due_since__lte=cutoff
            ).update(status=SubscriptionStatus.SUSPENDED, updated_at=now)
            if not changed:
                continue
            if subscription.clinic.status == ClinicStatus.ACTIVE:
                clinic_suspend(clinic=subscription.clinic)
        counts["suspended"] += 1
        logger.info("clinic %s suspended for non-payment", subscription.clinic.slug)
    return counts
