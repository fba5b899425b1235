"""Global identity (public schema): one user may belong to several clinics via Membership."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        if not email:
            raise ValueError("Users need an email address.")
        # Trusted creation paths (operators' commands, the demo seed, the admin): the address is
        # taken as verified. Public flows create accounts through accounts.services.user_create,
        # which decides per flow.
        fields.setdefault("email_verified_at", timezone.now())
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Never hard-deleted: clinic schemas reference users (deactivate instead)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Stored lowercased (checked by the database), so unique is case-insensitive.
    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Platform operator.")
    date_joined = models.DateTimeField(auto_now_add=True)
    # Set when the owner of the address opened the link sent at signup; an account cannot sign
    # in before (no pre-hijacking of someone else's address, security review finding 3).
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # Tokens (by `iat`) and sessions (by sign-in time) from before this second are refused:
    # set when MFA is confirmed or a clinic starts requiring it (security review finding 2).
    credentials_revoked_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every change to what `accounts.selectors.membership_active_for` answers (a
    # membership granted, revoked or re-roled, the account deactivated, MFA confirmed). The
    # cached answer is keyed by it, so a change takes effect on the next request even when the
    # cache could not be told (a Redis outage): requests load this row anyway.
    membership_generation = models.BigIntegerField(default=0, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []  # noqa: RUF012 (Django reads it; typed by the base class)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="accounts_user_email_lowercase"
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()


class Role(models.TextChoices):
    CLINIC_ADMIN = "clinic_admin", "Clinic admin"
    CLINICIAN = "clinician", "Clinician"
    PATIENT = "patient", "Patient"


STAFF_ROLE_CHOICES = [
    (Role.CLINICIAN.value, Role.CLINICIAN.label),
    (Role.CLINIC_ADMIN.value, Role.CLINIC_ADMIN.label),
]


class Membership(models.Model):
    """What grants a user access to a clinic, with one role."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    clinic = models.ForeignKey("tenants.Clinic", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="accounts_membership_user_clinic_unique"),
        ]
        indexes = [models.Index(fields=["clinic", "role"], name="membership_clinic_role")]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.clinic_id} ({self.role})"


class Invitation(models.Model):
    """A clinic admin's single-use invitation for a clinician or another admin.

    Only a keyed hash of the emailed token is stored.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey("tenants.Clinic", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["clinic", "-created_at"], name="invitation_clinic_created")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(role="patient"), name="invitation_role_is_staff"),
        ]

    def __str__(self) -> str:
        return f"invitation {self.id} ({self.role})"


class TotpDevice(models.Model):
    """A user's TOTP authenticator (RFC 6238). The secret is encrypted at rest."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="totp")
    secret_encrypted = models.TextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last accepted time step: a code is never accepted twice (replay).
    last_used_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"totp for {self.user_id}"


class RecoveryCode(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="recoverycode_user_hash")]

    def __str__(self) -> str:
        return f"recovery code {self.id}"


class TokenFamily(models.Model):
    """The refresh tokens descended by rotation from one sign-in (the `fam` claim).

    Presenting a refresh token that was already rotated means it was copied: the whole family
    is revoked, so neither the thief nor the victim can refresh from it again (RFC 9700 §4.14).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_families")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The last rotation: the token it replaced, when, and the token it issued. The replaced
    # token presented again within REFRESH_REUSE_GRACE_SECONDS is the same device whose answer
    # was lost (a reload, a dropped connection), not a copy: see services.token_refresh.
    rotated_jti = models.CharField(max_length=255, blank=True, default="")
    rotated_at = models.DateTimeField(null=True, blank=True)
    current_jti = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"token family {self.id}"
