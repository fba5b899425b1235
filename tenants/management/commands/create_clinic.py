from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from tenants.services import clinic_create


class Command(BaseCommand):
    help = "Create a clinic (tenant) with its schema and domain <slug>.<PLATFORM_DOMAIN>."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--timezone", default="UTC")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            clinic = clinic_create(slug=options["slug"], name=options["name"], timezone=options["timezone"])
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        domain = clinic.domains.get(is_primary=True).domain
        self.stdout.write(
            self.style.SUCCESS(f"Created clinic {clinic.slug} (schema {clinic.schema_name}) at {domain}")
        )
