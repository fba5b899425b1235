"""Create (or update) a platform operator: `is_staff`, a generated password and TOTP.

Operators sign in on the platform host with email, password and a TOTP code, so the secret is
printed once here for their authenticator app.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import TotpDevice, User
from accounts.services import email_normalize, mfa_secret_issue
from core import crypto


class Command(BaseCommand):
    help = "Create or reset a platform operator (is_staff) with a new password and TOTP secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--full-name", default="")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        email = email_normalize(options["email"])
        password = secrets.token_urlsafe(18)
        user = User.objects.filter(email=email).first() or User(email=email)
        user.full_name = options["full_name"] or user.full_name
        user.is_staff = True
        user.is_active = True
        user.email_verified_at = user.email_verified_at or timezone.now()
        user.set_password(password)
        user.save()
        TotpDevice.objects.filter(user=user).delete()
        secret, uri = mfa_secret_issue(user=user)
        device = TotpDevice.objects.get(user=user)
        device.confirmed_at = device.created_at
        device.save(update_fields=["confirmed_at"])
        assert crypto.decrypt(device.secret_encrypted) == secret
        self.stdout.write(
            f"Operator {email}\n  password: {password}\n  TOTP secret: {secret}\n  TOTP URI: {uri}\n"
        )
        self.stdout.write("Store these now: they are not shown again.")
