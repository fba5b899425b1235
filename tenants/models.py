"""Clinics (tenants), their hosts, and the DDL snapshots new clinic schemas are built from."""

from __future__ import annotations

import datetime
import functools
import uuid
import zoneinfo
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from core.errors import ApplicationError, ErrorCode


@functools.cache
def _iana_timezones() -> frozenset[str]:
    # available_timezones() walks the tz database on disk (~25 ms): once per process.
    return frozenset(zoneinfo.available_timezones())


def _is_iana_timezone(value: object) -> bool:
    return isinstance(value, str) and value in _iana_timezones()


def validate_timezone(value: str) -> None:
    """Model-field validator (kept under this name: migrations reference it)."""
    if not _is_iana_timezone(value):
        raise ValidationError("Unknown IANA time zone.", code=ErrorCode.INVALID_TIMEZONE)


def timezone_validate(name: object, *, field: str = "timezone") -> str:
    """The one timezone check for services: `name` must be an IANA zone on this host.

    Raises ApplicationError `invalid_timezone` naming `field`; returns the name.
    """
    if not _is_iana_timezone(name):
        raise ApplicationError(code=ErrorCode.INVALID_TIMEZONE, field=field, detail="Unknown IANA time zone.")
    assert isinstance(name, str)
    return name


class ClinicStatus(models.TextChoices):
    # Signed up, waiting for the admin to confirm their email address (purged after 24 h).
    PENDING = "pending", "Pending email confirmation"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    OFFBOARDING = "offboarding", "Offboarding"


# Statuses whose host answers; a provisioning clinic is not routable yet.
ROUTABLE_STATUSES = (ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED, ClinicStatus.OFFBOARDING)
# Workers consume the queue of every clinic whose hosts answer (an offboarding clinic's hosts
# still serve its export and password resets, whose tasks go to its queue). Periodic work
# (reminders, purges) is dispatched to active and suspended clinics only.
QUEUE_STATUSES = ROUTABLE_STATUSES
DISPATCH_STATUSES = (ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED)


class DiaryMode(models.TextChoices):
    ONCE = "once", "Once daily"
    TWICE = "twice", "Twice daily (am/pm)"


class Clinic(TenantMixin):
    """A clinic: one PostgreSQL schema holding all of its patient data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    status = models.CharField(max_length=20, choices=ClinicStatus.choices, default=ClinicStatus.PROVISIONING)
    created_at = models.DateTimeField(auto_now_add=True)
    country = models.CharField(max_length=2, default="DE", help_text="ISO 3166-1 alpha-2")
    offboarding_started_at = models.DateTimeField(null=True, blank=True)
    # The encrypted export's name in the "archives" storage and the SHA-256 of its stored bytes,
    # checked before the schema is dropped.
    offboarding_archive = models.CharField(max_length=255, blank=True)
    offboarding_archive_sha256 = models.CharField(max_length=64, blank=True)
    # Clinic settings (clinic admins change them on the clinic host).
    locale = models.CharField(max_length=10, default="en")
    default_diary_mode = models.CharField(max_length=5, choices=DiaryMode.choices, default=DiaryMode.ONCE)
    diary_late_entry_days = models.PositiveSmallIntegerField(default=7)
    reminder_default_time = models.TimeField(default=datetime.time(20, 0))
    mfa_required = models.BooleanField(default=False, help_text="Staff must use TOTP to sign in.")
    # Alert thresholds (DESIGN.md §5 defaults).
    alert_severe_uas7 = models.PositiveSmallIntegerField(default=28)
    alert_uas7_rise = models.PositiveSmallIntegerField(default=10, help_text="UAS7 MID")
    alert_uct_below = models.PositiveSmallIntegerField(default=12)
    alert_diary_gap_days = models.PositiveSmallIntegerField(default=3)
    alert_pdc_below = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.80"))

    # Schemas are created by tenants.services.clinic_create from the template's DDL snapshot,
    # never by TenantMixin.save(), and never dropped implicitly.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.slug


class Domain(DomainMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class SchemaSnapshot(models.Model):
    """The template schema's DDL (plus the rows its migrations wrote) for one migration state.

    `migration_key` is a hash of every migration the code defines; a snapshot is used only when
    it equals the running code's key, so a deploy that adds a migration never replays stale DDL.
    """

    migration_key = models.CharField(max_length=64, unique=True)
    sql = models.TextField()
    statement_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"snapshot {self.migration_key[:12]}"


class ClinicDue(models.Model):
    """When a clinic next has reminder work, kept in the public schema so the per-minute
    dispatcher sends a scan only to clinics with something due (DESIGN.md §7). No PHI: a clinic
    and an instant.

    `next_due_at`, together with the clinic's `ClinicDueHint` rows, is a lower bound: no enabled
    reminder of the clinic is due before the earliest of them, and no open delivery needs the
    sweep before `next_due_at`; NULL and no hint means nothing is scheduled. Earlier than needed
    costs one empty scan; later than needed would lose a reminder. Only the dispatcher writes
    this row (the recompute after a clinic's scan and the hourly reconcile, `patients.due`, under
    this row's lock: dispatcher against dispatcher, never a writer). A write that can make a
    reminder due sooner inserts a hint instead (patients migration 0015), so writers of one
    clinic never share a row and never wait for each other or for the dispatcher.
    """

    clinic = models.OneToOneField(Clinic, primary_key=True, on_delete=models.CASCADE, related_name="+")
    next_due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_due_at"], condition=models.Q(next_due_at__isnull=False), name="clinic_due_next"
            )
        ]

    def __str__(self) -> str:
        return f"{self.clinic_id} due {self.next_due_at}"


class ClinicDueHint(models.Model):
    """A note that this clinic may have something due at `at`: inserted, never updated, by the
    trigger on each clinic's `patients_reminder` (patients migration 0015) when a write makes a
    reminder due sooner, in the writer's own transaction. No PHI: a clinic and an instant.

    Insert-only, so writers take no shared row lock: two patients saving reminders at once, or a
    long sync push, never serialize the clinic. The dispatcher treats a clinic with a hint at or
    before now as due; the recompute after its scan folds every hint it read into `next_due_at`
    and deletes exactly those (`patients.due.clinic_next_due_recompute`), the hourly reconcile
    does the same for every clinic, so hints live about a scan, at most an hour. No database
    foreign key (the trigger takes the id from `tenants_clinic` itself): a key check would lock
    the clinic row against a status change; a hint orphaned by a deleted clinic is dropped by the
    reconcile.
    """

    id = models.BigAutoField(primary_key=True)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["at"], name="clinic_due_hint_at"),
            models.Index(fields=["clinic", "at"], name="clinic_due_hint_clinic"),
        ]

    def __str__(self) -> str:
        return f"{self.clinic_id} hint {self.at}"
