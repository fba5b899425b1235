"""Print a new VAPID key pair as environment lines (WEB_PUSH_VAPID_PRIVATE_KEY / _PUBLIC_KEY)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from patients.vapid import vapid_keypair


class Command(BaseCommand):
    help = "Generate a VAPID key pair for Web Push; store the private key as a secret."

    def handle(self, *args: Any, **options: Any) -> None:
        private, public = vapid_keypair()
        self.stdout.write(f"WEB_PUSH_VAPID_PRIVATE_KEY={private}")
        self.stdout.write(f"WEB_PUSH_VAPID_PUBLIC_KEY={public}")
