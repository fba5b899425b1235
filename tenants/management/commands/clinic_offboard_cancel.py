"""Cancel a clinic's offboarding during its grace period.

    python manage.py clinic_offboard_cancel <slug>              # back to active
    python manage.py clinic_offboard_cancel <slug> --suspended  # back, but still read-only

The clinic must be offboarding (not yet purged): its portal and patients write again, and its
export archive is deleted. A purged clinic comes back only with `clinic_import <archive>`.
Same service as `POST /api/v1/platform/clinics/<slug>/offboard/cancel/`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from tenants.lifecycle import clinic_offboard_cancel
from tenants.models import Clinic, ClinicStatus


class Command(BaseCommand):
    help = "Cancel a clinic's offboarding during its grace period (back to active, or --suspended)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--suspended", action="store_true", help="return to suspended, not active")

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = Clinic.objects.filter(slug=options["slug"]).first()
        if clinic is None:
            raise CommandError(
                f"No clinic {options['slug']!r} (a purged clinic comes back with clinic_import)."
            )
        to = ClinicStatus.SUSPENDED if options["suspended"] else ClinicStatus.ACTIVE
        try:
            clinic = clinic_offboard_cancel(clinic=clinic, to=to)
        except ApplicationError as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stdout.write(
            f"clinic {clinic.slug} is {clinic.status} again; its offboarding export was deleted"
        )
