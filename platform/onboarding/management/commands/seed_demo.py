"""Idempotent demo data for `make run`: the clinic `demo` with its staff and patients.

The demo passwords are public by design (printed by `make run`); never run this in production.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_tenants.utils import tenant_context

from accounts.models import Membership, Role, User
from patients.demo import demo_records_seed
from patients.models import Patient
from tenants.models import Clinic
from tenants.services import clinic_create

# Account names only: a clinician's title ("Dr") is their clinic profile's (Clinician.title), and
# the care team shows the two together (clinicians.selectors.clinician_display_name).
DEMO_PEOPLE = [
    ("admin@demo.example", "Dana Admin", Role.CLINIC_ADMIN, "demo-admin-pass-2026"),
    ("dr.weber@demo.example", "Lena Weber", Role.CLINICIAN, "demo-clinician-pass-2026"),
    ("dr.okafor@demo.example", "Chidi Okafor", Role.CLINICIAN, "demo-clinician-pass-2026"),
    ("anna@demo.example", "Anna Schmidt", Role.PATIENT, "demo-patient-pass-2026"),
    ("ben@demo.example", "Ben Keller", Role.PATIENT, "demo-patient-pass-2026"),
    ("chloe@demo.example", "Chloe Martin", Role.PATIENT, "demo-patient-pass-2026"),
]


DEMO_PATIENT_PROFILES = {
    "anna@demo.example": "improving",
    "ben@demo.example": "flare",
    "chloe@demo.example": "steady",
}

# Each demo clinician's care-team patients (clinician, patient, role): signed in as either, the
# portal lists patients, and Ben shows a care team of two.
DEMO_CARE_TEAMS = [
    ("dr.weber@demo.example", "anna@demo.example", "primary"),
    ("dr.weber@demo.example", "ben@demo.example", "primary"),
    ("dr.okafor@demo.example", "chloe@demo.example", "primary"),
    ("dr.okafor@demo.example", "ben@demo.example", "secondary"),
]


class Command(BaseCommand):
    help = (
        "Create the demo clinic with an admin, two clinicians and three patients on their care "
        "teams (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        if not settings.DEBUG and not getattr(settings, "ALLOW_DEMO_SEED", False):
            raise CommandError("seed_demo only runs with DEBUG on (local development).")
        clinic = Clinic.objects.filter(slug="demo").first()
        if clinic is None:
            clinic = clinic_create(slug="demo", name="Demo Urticaria Clinic", timezone="Europe/Berlin")
        with transaction.atomic():
            users = {}
            for email, full_name, role, password in DEMO_PEOPLE:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create_user(email, password, full_name=full_name)
                elif user.full_name == f"Dr {full_name}":
                    # Seeded before the title left the name ("Dr Dr Lena Weber" on the care
                    # team): corrected on the next `make run`. A name changed by hand is kept.
                    User.objects.filter(pk=user.pk).update(full_name=full_name)
                    user.full_name = full_name
                Membership.objects.get_or_create(user=user, clinic=clinic, defaults={"role": role})
                users[email] = user
        with tenant_context(clinic):
            prescriber = users["dr.weber@demo.example"].pk
            patients = {}
            for email, profile in DEMO_PATIENT_PROFILES.items():
                user = users[email]
                patient, _ = Patient.objects.get_or_create(
                    user_id=user.pk,
                    defaults={
                        "display_name": user.full_name,
                        "timezone": clinic.timezone,
                        "diary_mode": "once",
                    },
                )
                demo_records_seed(
                    patient=patient, profile=profile, today=patient.local_today(), prescriber_id=prescriber
                )
                patients[email] = patient
            _demo_care_teams(users, patients)
        invoices = _demo_billing(clinic)
        host = clinic.domains.get(is_primary=True).domain
        lines = [f"Demo clinic: http://{host}:<port>  (sign in: POST /api/v1/auth/token/ on that host)"]
        lines += [f"  {role:<13} {email:<26} {password}" for email, _, role, password in DEMO_PEOPLE]
        lines.append(
            "Care teams: "
            + "; ".join(
                f"{clinician.split('@')[0]} → {patient.split('@')[0]} ({role})"
                for clinician, patient, role in DEMO_CARE_TEAMS
            )
        )
        lines.append(f"Billing: plan clinic, invoices {', '.join(invoices)}")
        self.stdout.write("\n".join(lines))


def _demo_care_teams(users: dict[str, User], patients: dict[str, Patient]) -> None:
    """The demo clinicians' profiles and open care-team assignments since the demo records
    begin (idempotent: an open assignment is kept as it is)."""
    from datetime import timedelta

    from clinicians.models import CareTeam, Clinician

    for clinician_email, patient_email, role in DEMO_CARE_TEAMS:
        clinician, _ = Clinician.objects.get_or_create(
            user_id=users[clinician_email].pk, defaults={"title": "Dr", "specialty": "Dermatology"}
        )
        patient = patients[patient_email]
        CareTeam.objects.get_or_create(
            clinician=clinician,
            patient=patient,
            until=None,
            defaults={"role": role, "since": patient.local_today() - timedelta(weeks=8)},
        )


def _demo_billing(clinic: Clinic) -> list[str]:
    """The demo clinic on the `clinic` plan since four months ago, with its last two months
    invoiced (usage counted from the demo records); idempotent."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Subscription, SubscriptionStatus
    from billing.services import (
        clinic_today,
        invoice_generate,
        month_start,
        previous_month,
        subscription_start,
        usage_record,
    )

    subscription = Subscription.objects.filter(clinic=clinic).first()
    if subscription is None:
        started = timezone.now() - timedelta(days=120)
        subscription = subscription_start(clinic=clinic, plan_code="clinic", now=started)
        Subscription.objects.filter(pk=subscription.pk).update(
            status=SubscriptionStatus.ACTIVE, created_at=started, trial_ends_at=started + timedelta(days=1)
        )
    this_month = month_start(clinic_today(clinic))
    numbers = []
    for period in (previous_month(previous_month(this_month)), previous_month(this_month)):
        usage_record(clinic=clinic, period=period)
        invoice = invoice_generate(clinic=clinic, period=period)
        if invoice is not None:
            numbers.append(invoice.number or "")
    return numbers
