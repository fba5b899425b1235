"""Billing: usage per clinic-local month, exact invoice arithmetic per plan, proration and
trials, idempotent gap-free invoice numbers (also under concurrency), signed payment webhooks,
past-due suspension and reactivation, seat limits, and who sees which invoices."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import Membership, User
from billing.models import (
    Invoice,
    InvoiceCounter,
    Plan,
    PlanChange,
    Subscription,
    SubscriptionStatus,
    UsageRecord,
)
from billing.services import (
    clinics_due_invoicing,
    div_round_half_up,
    invoice_generate,
    plan_change,
    subscription_start,
    subscriptions_advance,
    usage_record,
    webhook_signature,
)
from patients.models import DoseLog, Patient
from tenants.models import Clinic, ClinicStatus
from tests.conftest import authed_client, host_client, make_member
from tests.factories import DiaryEntryFactory, DoseLogFactory, PatientFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_only"
NOVEMBER = date(2026, 11, 1)


def subscribe(clinic: Clinic, plan: str = "starter", *, trial_ended: datetime | None = None) -> Subscription:
    subscription = subscription_start(clinic=clinic, plan_code=plan, now=datetime(2026, 1, 1, tzinfo=UTC))
    Subscription.objects.filter(pk=subscription.pk).update(
        status=SubscriptionStatus.ACTIVE, trial_ends_at=trial_ended or datetime(2026, 1, 31, tzinfo=UTC)
    )
    Subscription.objects.filter(pk=subscription.pk).update(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    subscription.refresh_from_db()
    return subscription


def set_usage(clinic: Clinic, period: date, patients: int, clinicians: int) -> None:
    UsageRecord.objects.create(clinic=clinic, period=period, metric="active_patients", quantity=patients)
    UsageRecord.objects.create(clinic=clinic, period=period, metric="active_clinicians", quantity=clinicians)


def test_rounding_is_half_up_on_integers() -> None:
    assert [div_round_half_up(n, 2) for n in (0, 1, 2, 3, 5)] == [0, 1, 1, 2, 3]
    assert div_round_half_up(20450 * 1900, 10_000) == 3886  # 3885.5
    assert div_round_half_up(4900 * 10, 30) == 1633  # 1633.33


# --- Usage ---------------------------------------------------------------------------------------


def test_active_patients_are_counted_per_month_in_the_clinics_timezone(clinic_a: Clinic) -> None:
    """alpha is Europe/Berlin: 31 Jan 23:30 local (22:30 UTC) is January; 1 Feb 00:30 local
    (31 Jan 23:30 UTC) is February."""
    with tenant_context(clinic_a):
        january, february, doser, idle = (
            PatientFactory(display_name=name, timezone="Europe/Berlin")
            for name in ("Jan", "Feb", "Dose", "Idle")
        )
        DiaryEntryFactory(
            patient=january,
            day=date(2026, 1, 31),
            wheals=1,
            itch=1,
            recorded_at=datetime(2026, 1, 31, 22, 30, tzinfo=UTC),
        )
        DiaryEntryFactory(
            patient=february,
            day=date(2026, 2, 1),
            wheals=1,
            itch=1,
            recorded_at=datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
        )
        rx = PrescriptionFactory(patient=doser, medication_id="cetirizine-10", start=date(2026, 1, 1))
        dose = DoseLogFactory(prescription=rx, scheduled_date=date(2026, 1, 15), status="taken")
        DoseLog.objects.filter(pk=dose.pk).update(created_at=datetime(2026, 1, 15, 8, 0, tzinfo=UTC))
    make_member("clin1@example.com", clinic_a, "clinician")
    assert usage_record(clinic=clinic_a, period=date(2026, 1, 1)) == {
        "active_patients": 2,
        "active_clinicians": 1,
    }
    assert usage_record(clinic=clinic_a, period=date(2026, 2, 1)) == {
        "active_patients": 1,
        "active_clinicians": 1,
    }
    make_member("clin2@example.com", clinic_a, "clinician")
    assert (
        usage_record(clinic=clinic_a, period=date(2026, 1, 1))["active_clinicians"] == 2
    )  # a late re-run updates
    assert UsageRecord.objects.filter(clinic=clinic_a).count() == 4


# --- Invoices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "lines", "subtotal", "tax", "total"),
    [
        # base + 37 × per-patient + (4 − included) × extra clinician; DE VAT 19 % half up.
        ("starter", [4900, 37 * 200, 2 * 1500], 15300, 2907, 18207),
        ("clinic", [14900, 37 * 150], 20450, 3886, 24336),  # tax 3885.5 → 3886
        ("enterprise", [49900, 37 * 100], 53600, 10184, 63784),
    ],
)
def test_invoice_totals_per_plan_are_exact(
    clinic_a: Clinic, plan: str, lines: list[int], subtotal: int, tax: int, total: int
) -> None:
    subscribe(clinic_a, plan)
    set_usage(clinic_a, NOVEMBER, patients=37, clinicians=4)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER, now=datetime(2026, 12, 1, 6, tzinfo=UTC))
    assert invoice is not None
    assert [line.amount_minor for line in invoice.lines.all()] == lines
    assert (invoice.subtotal_minor, invoice.tax_rate_bp, invoice.tax_minor, invoice.total_minor) == (
        subtotal,
        1900,
        tax,
        total,
    )
    assert (invoice.currency, invoice.status) == ("EUR", "open")
    assert invoice.number.startswith("INV-2026-")


def test_an_upgrade_mid_month_prorates_the_base_fee_by_days(clinic_a: Clinic) -> None:
    subscription = subscribe(clinic_a, "starter")
    plan_change(clinic=clinic_a, plan_code="clinic", now=datetime(2026, 11, 11, 9, tzinfo=UTC))
    subscription.refresh_from_db()
    assert subscription.plan_id == "clinic"  # immediately
    set_usage(clinic_a, NOVEMBER, patients=10, clinicians=2)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    assert [(line.description, line.amount_minor) for line in invoice.lines.all()] == [
        ("Starter base fee, 01 Nov–10 Nov (10 of 30 days)", 1633),  # 4900 × 10 / 30 = 1633.3
        ("Clinic base fee, 11 Nov–30 Nov (20 of 30 days)", 9933),  # 14900 × 20 / 30 = 9933.3
        ("Active patients", 1500),  # priced on the plan at the end of the period
    ]


def test_a_downgrade_waits_for_the_next_month_and_must_fit(clinic_a: Clinic) -> None:
    subscribe(clinic_a, "clinic")
    for i in range(4):
        make_member(f"doc{i}@example.com", clinic_a, "clinician")
    with pytest.raises(Exception) as refused:
        plan_change(clinic=clinic_a, plan_code="starter")
    assert refused.value.code == "plan_limit" and refused.value.extra["limit"] == "max_clinicians"
    Membership.objects.filter(clinic=clinic_a, role="clinician").first().delete()
    subscription = plan_change(clinic=clinic_a, plan_code="starter", now=datetime(2026, 11, 20, tzinfo=UTC))
    assert (subscription.plan_id, subscription.pending_plan_id, subscription.pending_from) == (
        "clinic",
        "starter",
        date(2026, 12, 1),
    )
    assert subscriptions_advance(now=datetime(2026, 11, 30, 22, 59, tzinfo=UTC))["downgraded"] == 0
    assert (
        subscriptions_advance(now=datetime(2026, 11, 30, 23, 0, tzinfo=UTC))["downgraded"] == 1
    )  # Berlin midnight
    subscription.refresh_from_db()
    assert (subscription.plan_id, subscription.pending_plan_id) == ("starter", None)
    assert PlanChange.objects.get(subscription=subscription).effective_on == date(2026, 12, 1)


def test_trial_days_are_not_billed_and_an_all_trial_month_has_no_invoice(
    clinic_a: Clinic, clinic_b: Clinic
) -> None:
    subscribe(
        clinic_a, "starter", trial_ended=datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
    )  # 16 Nov 00:00 Berlin
    set_usage(clinic_a, NOVEMBER, patients=0, clinicians=0)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    assert [line.amount_minor for line in invoice.lines.all()] == [2450]  # 4900 × 15 / 30
    subscribe(clinic_b, "starter", trial_ended=datetime(2026, 12, 10, tzinfo=UTC))
    set_usage(clinic_b, NOVEMBER, patients=3, clinicians=1)
    assert invoice_generate(clinic=clinic_b, period=NOVEMBER) is None
    assert not Invoice.objects.filter(clinic=clinic_b).exists()


def test_two_runs_for_one_period_make_one_invoice_and_numbers_follow_on(
    clinic_a: Clinic, clinic_b: Clinic
) -> None:
    subscribe(clinic_a)
    subscribe(clinic_b)
    first = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    again = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    other = invoice_generate(clinic=clinic_b, period=NOVEMBER)
    assert again.pk == first.pk
    assert Invoice.objects.filter(clinic=clinic_a).count() == 1
    year = first.number.split("-")[1]
    assert int(other.number.rsplit("-", 1)[1]) == int(first.number.rsplit("-", 1)[1]) + 1
    assert InvoiceCounter.objects.get(year=int(year)).last == int(other.number.rsplit("-", 1)[1])


def test_clinics_are_invoiced_once_their_local_month_has_turned(clinic_a: Clinic, clinic_b: Clinic) -> None:
    subscribe(clinic_a)  # Europe/Berlin
    subscribe(clinic_b)  # America/New_York
    moment = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 03:00 in Berlin, still 30 Nov in New York
    october = date(2026, 10, 1)
    assert sorted((c.slug, p) for c, p in clinics_due_invoicing(now=moment)) == [
        ("alpha", NOVEMBER),
        ("beta", october),
    ]
    invoice_generate(clinic=clinic_a, period=NOVEMBER, now=moment)
    invoice_generate(clinic=clinic_b, period=october, now=moment)
    later = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert [(c.slug, p) for c, p in clinics_due_invoicing(now=later)] == [("beta", NOVEMBER)]


# --- Payments ------------------------------------------------------------------------------------


def webhook(client: APIClient, event: dict, *, secret: str = SECRET, at: int | None = None) -> object:
    body = json.dumps(event).encode()
    timestamp = at if at is not None else int(time.time())
    signature = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return client.post(
        "/api/v1/billing/webhooks/payments/",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=f"t={timestamp},v1={signature}",
    )


@override_settings(BILLING_WEBHOOK_SECRET=SECRET)
def test_webhook_signatures_timestamps_replays_and_unknown_events(
    public_client: APIClient, clinic_a: Clinic
) -> None:
    subscribe(clinic_a)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    paid = {"id": "evt_1", "type": "invoice.paid", "data": {"invoice": invoice.number}}

    forged = webhook(public_client, paid, secret="not the secret")
    assert (forged.status_code, forged.json()["code"]) == (400, "signature_invalid")
    stale = webhook(public_client, paid, at=int(time.time()) - 301)
    assert (stale.status_code, stale.json()["code"]) == (400, "signature_expired")
    unsigned = public_client.post("/api/v1/billing/webhooks/payments/", paid, format="json")
    assert unsigned.status_code == 400
    invoice.refresh_from_db()
    assert invoice.status == "open"

    assert webhook(public_client, paid).json() == {"received": True, "result": "handled"}
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert webhook(public_client, paid).json() == {"received": True, "result": "duplicate"}
    assert webhook(public_client, {"id": "evt_2", "type": "customer.updated", "data": {}}).json() == {
        "received": True,
        "result": "ignored",
    }
    unknown_invoice = webhook(
        public_client, {"id": "evt_3", "type": "invoice.paid", "data": {"invoice": "INV-1999-000001"}}
    )
    assert (unknown_invoice.status_code, unknown_invoice.json()["code"]) == (422, "unknown_invoice")


@override_settings(BILLING_WEBHOOK_SECRET=SECRET)
def test_past_due_then_suspended_after_the_grace_period_then_paid_and_active(
    public_client: APIClient, clinic_a: Clinic
) -> None:
    subscription = subscribe(clinic_a)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER, now=datetime(2026, 12, 1, 6, tzinfo=UTC))
    webhook(
        public_client, {"id": "evt_f", "type": "invoice.payment_failed", "data": {"invoice": invoice.number}}
    )
    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    since = subscription.past_due_since
    assert subscriptions_advance(now=since + timedelta(days=13))["suspended"] == 0
    assert subscriptions_advance(now=since + timedelta(days=14, seconds=1))["suspended"] == 1
    subscription.refresh_from_db()
    clinic_a.refresh_from_db()
    assert (subscription.status, clinic_a.status) == ("suspended", ClinicStatus.SUSPENDED)

    webhook(public_client, {"id": "evt_p", "type": "invoice.paid", "data": {"invoice": invoice.number}})
    subscription.refresh_from_db()
    clinic_a.refresh_from_db()
    assert (subscription.status, subscription.past_due_since, clinic_a.status) == (
        "active",
        None,
        ClinicStatus.ACTIVE,
    )


# --- Seat limits ---------------------------------------------------------------------------------


def test_inviting_a_clinician_beyond_the_plan_is_refused_naming_the_limit(
    carol: User, clinic_a: Clinic
) -> None:
    subscribe(clinic_a, "starter")  # at most 3 clinicians
    for i in range(3):
        make_member(f"doc{i}@example.com", clinic_a, "clinician")
    response = authed_client(carol, clinic_a).post(
        "/api/v1/admin/invitations/", {"email": "fourth@example.com", "role": "clinician"}, format="json"
    )
    assert response.status_code == 403
    assert (response.json()["code"], response.json()["limit"], response.json()["allowed"]) == (
        "plan_limit",
        "max_clinicians",
        3,
    )
    admin_invite = authed_client(carol, clinic_a).post(
        "/api/v1/admin/invitations/", {"email": "admin2@example.com", "role": "clinic_admin"}, format="json"
    )
    assert admin_invite.status_code == 201  # admins are not clinician seats


def test_enrolling_a_patient_beyond_the_plan_is_refused_and_creates_nothing(
    carol: User, clinic_a: Clinic
) -> None:
    subscribe(clinic_a, "starter")
    Plan.objects.filter(code="starter").update(max_patients=1)
    client = authed_client(carol, clinic_a)
    first = client.post("/api/v1/portal/patients/", {"display_name": "One"}, format="json")
    assert first.status_code == 201, first.json()
    second = client.post("/api/v1/portal/patients/", {"display_name": "Two"}, format="json")
    assert (second.status_code, second.json()["code"], second.json()["limit"]) == (
        403,
        "plan_limit",
        "max_patients",
    )
    with tenant_context(clinic_a):
        assert list(Patient.objects.values_list("display_name", flat=True)) == ["One"]


# --- APIs and isolation --------------------------------------------------------------------------


def test_a_clinic_admin_sees_their_plan_usage_and_only_their_invoices(
    carol: User, dr_bob: User, mallory: User, clinic_a: Clinic, clinic_b: Clinic
) -> None:
    subscribe(clinic_a, "clinic")
    subscribe(clinic_b, "starter")
    mine = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    theirs = invoice_generate(clinic=clinic_b, period=NOVEMBER)
    admin = authed_client(carol, clinic_a)
    overview = admin.get("/api/v1/admin/billing/").json()
    assert (overview["plan"]["code"], overview["status"], overview["seats"]["clinicians"]) == (
        "clinic",
        "active",
        {"used": 1, "limit": 25},
    )
    assert [i["number"] for i in admin.get("/api/v1/admin/billing/invoices/").json()] == [mine.number]
    assert admin.get(f"/api/v1/admin/billing/invoices/{theirs.pk}/").status_code == 404
    html = admin.get(f"/api/v1/admin/billing/invoices/{mine.pk}/invoice.html")
    assert html["Content-Type"].startswith("text/html")
    assert mine.number in html.content.decode() and "EUR 149.00" in html.content.decode()
    csv_text = admin.get("/api/v1/admin/billing/invoices.csv").content.decode()
    assert csv_text.splitlines()[1].startswith(f"{mine.number},2026-11-01,EUR,")

    assert host_client("alpha.localhost").get("/api/v1/admin/billing/invoices/").status_code == 401
    assert authed_client(dr_bob, clinic_a).get("/api/v1/admin/billing/invoices/").status_code == 403
    foreign = authed_client(mallory, clinic_b)
    foreign.defaults["HTTP_HOST"] = "alpha.localhost"
    assert foreign.get("/api/v1/admin/billing/invoices/").status_code == 401


def test_plan_change_api_refuses_unknown_plans_and_upgrades(carol: User, clinic_a: Clinic) -> None:
    subscribe(clinic_a, "starter")
    admin = authed_client(carol, clinic_a)
    unknown = admin.post("/api/v1/admin/billing/plan/", {"plan": "platinum"}, format="json")
    assert (unknown.status_code, list(unknown.json()["errors"])) == (400, ["plan"])
    upgraded = admin.post("/api/v1/admin/billing/plan/", {"plan": "enterprise"}, format="json")
    assert (upgraded.status_code, upgraded.json()["plan"]["code"]) == (200, "enterprise")


def test_operators_list_void_and_extend_trials(ops_client: APIClient, clinic_a: Clinic, carol: User) -> None:
    subscription = subscribe(clinic_a)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    assert [
        i["number"] for i in ops_client.get("/api/v1/platform/invoices/", {"clinic": "alpha"}).json()
    ] == [invoice.number]
    voided = ops_client.post(f"/api/v1/platform/invoices/{invoice.pk}/void/")
    assert voided.json()["status"] == "void"
    assert ops_client.post(f"/api/v1/platform/invoices/{invoice.pk}/void/").status_code == 409
    not_trial = ops_client.post(
        f"/api/v1/platform/subscriptions/{subscription.pk}/extend-trial/", {"days": 7}, format="json"
    )
    assert (not_trial.status_code, not_trial.json()["code"]) == (409, "not_trialing")
    Subscription.objects.filter(pk=subscription.pk).update(
        status="trialing", trial_ends_at=datetime(2026, 12, 1, tzinfo=UTC)
    )
    extended = ops_client.post(
        f"/api/v1/platform/subscriptions/{subscription.pk}/extend-trial/", {"days": 7}, format="json"
    )
    assert extended.json()["trial_ends_at"].startswith("2026-12-08")
    # A clinic admin token is not an operator's.
    admin_on_platform_host = authed_client(carol, clinic_a)
    admin_on_platform_host.defaults["HTTP_HOST"] = "localhost"
    assert admin_on_platform_host.get("/api/v1/platform/invoices/").status_code == 401


def test_signup_starts_a_trial_on_the_chosen_plan_when_confirmed(
    public_client: APIClient, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    from tests.tenants.test_onboarding import signup, signup_body

    response, token = signup(
        public_client, django_capture_on_commit_callbacks, signup_body(slug="plan-pick", plan="clinic")
    )
    assert response.status_code == 202, response.json()
    assert not Subscription.objects.filter(clinic__slug="plan-pick").exists()  # nothing billed while pending
    assert (
        public_client.post("/api/v1/auth/verify-email/", {"token": token}, format="json").status_code == 200
    )
    subscription = Subscription.objects.get(clinic__slug="plan-pick")
    assert (subscription.plan_id, subscription.status) == ("clinic", "trialing")
    assert subscription.trial_ends_at > datetime.now(UTC) + timedelta(days=29)
    bad = public_client.post("/api/v1/clinics/", signup_body(slug="plan-bad", plan="gold"), format="json")
    assert (bad.status_code, list(bad.json()["errors"])) == (400, ["plan"])
    assert not Clinic.objects.filter(slug="plan-bad").exists()


# --- Hardening (independent review) ---------------------------------------------------------------


@override_settings(BILLING_WEBHOOK_SECRET=SECRET)
def test_a_late_payment_failure_for_a_paid_invoice_changes_nothing(
    public_client: APIClient, clinic_a: Clinic
) -> None:
    subscription = subscribe(clinic_a)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    webhook(public_client, {"id": "evt_ok", "type": "invoice.paid", "data": {"invoice": invoice.number}})
    late = webhook(
        public_client,
        {"id": "evt_late", "type": "invoice.payment_failed", "data": {"invoice": invoice.number}},
    )
    assert late.json()["result"] == "handled"
    subscription.refresh_from_db()
    assert (subscription.status, subscription.past_due_since) == ("active", None)


@override_settings(BILLING_WEBHOOK_SECRET=SECRET)
@pytest.mark.parametrize("signature", ["t=1,v1=é", "t=1,v1=" + "g" * 64, "t=x,v1=00", "garbage"])
def test_malformed_webhook_signatures_are_400_not_500(public_client: APIClient, signature: str) -> None:
    response = public_client.post(
        "/api/v1/billing/webhooks/payments/",
        b"{}",
        content_type="application/json",
        HTTP_X_SIGNATURE=signature,
    )
    assert (response.status_code, response.json()["code"]) == (400, "signature_invalid")


def test_hidden_plans_cannot_be_chosen_by_a_clinic(carol: User, clinic_a: Clinic) -> None:
    subscribe(clinic_a, "starter")
    Plan.objects.create(
        code="partner",
        name="Partner",
        base_fee_minor=0,
        per_active_patient_minor=0,
        included_clinicians=99,
        rank=9,
        public=False,
    )
    response = authed_client(carol, clinic_a).post(
        "/api/v1/admin/billing/plan/", {"plan": "partner"}, format="json"
    )
    assert (response.status_code, list(response.json()["errors"])) == (400, ["plan"])


def test_usage_in_the_month_a_trial_ends_is_prorated_like_the_base_fee(clinic_a: Clinic) -> None:
    subscribe(
        clinic_a, "starter", trial_ended=datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
    )  # billed from 16 Nov
    set_usage(clinic_a, NOVEMBER, patients=10, clinicians=3)
    invoice = invoice_generate(clinic=clinic_a, period=NOVEMBER)
    assert [(line.description, line.quantity, line.amount_minor) for line in invoice.lines.all()] == [
        ("Starter base fee, 16 Nov–30 Nov (15 of 30 days)", 1, 2450),
        ("Active patients (15 of 30 days after the trial)", 10, 1000),  # 10 × 200 × 15 / 30
        ("Clinicians beyond the plan (15 of 30 days after the trial)", 1, 750),  # 1500 × 15 / 30
    ]
