"""Idempotent demo data for `make run`: the clinic `demo`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.models import Clinic
from tenants.services import clinic_create


class Command(BaseCommand):
    help = "Create the demo clinic (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = Clinic.objects.filter(slug="demo").first()
        if clinic is None:
            clinic = clinic_create(slug="demo", name="Demo Urticaria Clinic", timezone="Europe/Berlin")
            self.stdout.write(f"Created demo clinic (schema {clinic.schema_name}).")
        else:
            self.stdout.write("Demo clinic already exists.")
