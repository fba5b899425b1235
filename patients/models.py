"""Tenant models (one copy per clinic schema): the patient's record and everything they log."""

from __future__ import annotations

import datetime
import uuid
import zoneinfo

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone as dj_timezone

from core import crypto
from core.models import BaseModel
from tenants.models import DiaryMode, validate_timezone


class AccessLog(models.Model):
    """Who touched which patient's data, when, from where (DESIGN.md §9).

    Append-only: a trigger in every clinic schema refuses UPDATE and DELETE (migration 0002).
    Written in the same transaction as the access it records.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    actor_id = models.UUIDField(null=True, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=64)
    patient_id = models.UUIDField(null=True, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    allowed = models.BooleanField(default=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient_id", "-created_at"], name="accesslog_patient_time"),
            models.Index(fields=["actor_id", "-created_at"], name="accesslog_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"


class PatientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DISCHARGED = "discharged", "Discharged"


class Patient(BaseModel):
    """A patient of this clinic. `user_id` is the global account (public schema), set when the
    patient redeems their enrollment code; no cross-schema foreign key (users are never deleted)."""

    user_id = models.UUIDField(null=True, blank=True, unique=True)
    display_name = models.CharField(max_length=200)
    date_of_birth = models.DateField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    locale = models.CharField(max_length=10, default="en")
    diary_mode = models.CharField(max_length=5, choices=DiaryMode.choices, default=DiaryMode.ONCE)
    status = models.CharField(max_length=12, choices=PatientStatus.choices, default=PatientStatus.ACTIVE)
    enrolled_at = models.DateTimeField(default=dj_timezone.now)
    # No reminder is sent while the patient's local time is inside [start, end) (may wrap midnight).
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    # Sync (DESIGN.md §6): stamped by a database trigger on every write; profile settings merge per field.
    server_version = models.BigIntegerField(default=0, editable=False)
    field_versions = models.JSONField(default=dict, editable=False)

    class Meta:
        indexes = [models.Index(fields=["display_name"], name="patient_display_name")]

    def __str__(self) -> str:
        return f"patient {self.id}"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_today(self, now: datetime.datetime | None = None) -> datetime.date:
        return (now or dj_timezone.now()).astimezone(self.tz).date()


class PrivacyNotice(BaseModel):
    """One version of the clinic's privacy notice, in every language the patient app speaks
    (`texts`: language → text). Published versions are never changed: a patient's acceptance
    names the version they read. Version 1 is the default every clinic starts with (migration
    0017, carried into new clinics by the template snapshot); a clinic admin publishes the
    next. `requires_reacceptance`: acceptances of earlier versions stop counting as consent
    (patients.consent)."""

    version = models.PositiveIntegerField(unique=True)
    texts = models.JSONField()
    requires_reacceptance = models.BooleanField(default=False)
    published_by_id = models.UUIDField(null=True, blank=True)

    def __str__(self) -> str:
        return f"privacy notice v{self.version}"


class ConsentKind(models.TextChoices):
    PRIVACY_NOTICE = "privacy_notice", "The clinic's privacy notice (health data processing)"


class Consent(BaseModel):
    """A patient's acceptance of a consent document (`version` of it), and its withdrawal.
    Rows are history: accepting again (a newer version, or after withdrawing) adds a row; the
    patient's latest row of a kind says whether they consent now (patients.consent)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=40)
    version = models.CharField(max_length=20)
    granted_at = models.DateTimeField(default=dj_timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "kind"], name="consent_patient_kind")]

    def __str__(self) -> str:
        return f"consent {self.kind} v{self.version}"


class Slot(models.TextChoices):
    DAY = "day", "Whole day (once-daily diary)"
    AM = "am", "Morning (twice-daily diary)"
    PM = "pm", "Evening (twice-daily diary)"


SCORE_0_3 = [MinValueValidator(0), MaxValueValidator(3)]


class DiaryEntry(models.Model):
    """One diary record for a local date and slot. The id is generated by the client (offline).

    Deleting sets `deleted_at` (a tombstone, so offline devices learn of it); at most one live
    entry per patient, date and slot.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="diary_entries")
    day = models.DateField()
    slot = models.CharField(max_length=3, choices=Slot.choices, default=Slot.DAY)
    wheals = models.PositiveSmallIntegerField(validators=SCORE_0_3)
    itch = models.PositiveSmallIntegerField(validators=SCORE_0_3)
    angioedema = models.BooleanField(default=False)
    # AAS items (5 × 0–3) when angioedema; null otherwise.
    aas_items = ArrayField(models.PositiveSmallIntegerField(), size=5, null=True, blank=True)
    note_encrypted = models.TextField(blank=True, default="")
    recorded_at = models.DateTimeField(default=dj_timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    server_version = models.BigIntegerField(default=0, editable=False)
    field_versions = models.JSONField(default=dict, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "day", "slot"],
                condition=Q(deleted_at__isnull=True),
                name="diary_one_live_per_slot",
            ),
            models.CheckConstraint(condition=Q(wheals__lte=3) & Q(itch__lte=3), name="diary_scores_0_3"),
            models.CheckConstraint(
                condition=Q(angioedema=True) | Q(aas_items__isnull=True),
                name="diary_aas_only_with_angioedema",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "day"], name="diary_patient_day"),
            models.Index(fields=["patient", "server_version"], name="diary_patient_version"),
        ]

    def __str__(self) -> str:
        return f"diary {self.day} {self.slot}"

    @property
    def uas(self) -> int:
        return self.wheals + self.itch

    @property
    def note(self) -> str:
        return crypto.decrypt(self.note_encrypted) if self.note_encrypted else ""

    @note.setter
    def note(self, value: str) -> None:
        self.note_encrypted = crypto.encrypt(value) if value else ""


class Instrument(models.TextChoices):
    UCT = "uct", "Urticaria Control Test (4 weeks)"
    UCT7 = "uct7", "Urticaria Control Test (7 days)"
    AAS = "aas", "Angioedema Activity Score (day)"


class QuestionnaireResponse(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="questionnaires")
    instrument = models.CharField(max_length=8, choices=Instrument.choices)
    answers = models.JSONField()
    score = models.PositiveSmallIntegerField()
    period_end = models.DateField()
    recorded_at = models.DateTimeField(default=dj_timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    server_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["patient", "instrument", "-period_end"], name="questionnaire_patient_instr"),
            models.Index(fields=["patient", "server_version"], name="questionnaire_patient_version"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} {self.period_end}"


class FrequencyKind(models.TextChoices):
    N_PER_DAY = "n_per_day", "n doses a day"
    EVERY_N_DAYS = "every_n_days", "one dose every n days"
    PRN = "prn", "as needed"


class Medication(models.Model):
    """The regimen catalogue (data, seeded by a migration; guideline steps change over time)."""

    code = models.SlugField(max_length=60, primary_key=True)
    name = models.CharField(max_length=120)
    drug = models.CharField(max_length=80)
    strength = models.CharField(max_length=40)
    route = models.CharField(max_length=20)
    frequency_kind = models.CharField(max_length=12, choices=FrequencyKind.choices)
    frequency_value = models.PositiveSmallIntegerField(null=True, blank=True)
    guideline_step = models.PositiveSmallIntegerField(null=True, blank=True)
    is_rescue = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class Prescription(BaseModel):
    """A regimen for a patient. A step up or down is a new prescription (history kept)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="prescriptions")
    medication = models.ForeignKey(Medication, on_delete=models.PROTECT, related_name="+")
    dose = models.CharField(max_length=60)
    frequency_kind = models.CharField(max_length=12, choices=FrequencyKind.choices)
    frequency_value = models.PositiveSmallIntegerField(null=True, blank=True)
    guideline_step = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(4)])
    start = models.DateField()
    end = models.DateField(null=True, blank=True)
    prescriber_id = models.UUIDField(null=True, blank=True)
    server_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gte=models.F("start")), name="rx_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(guideline_step__gte=1, guideline_step__lte=4), name="rx_step_1_4"
            ),
            models.CheckConstraint(
                condition=Q(frequency_kind="prn") | Q(frequency_value__gte=1),
                name="rx_frequency_value_needed",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "start"], name="rx_patient_start"),
            models.Index(fields=["patient", "server_version"], name="rx_patient_version"),
        ]

    def __str__(self) -> str:
        return f"{self.medication_id} {self.dose}"

    def active_on(self, day: datetime.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


class DoseStatus(models.TextChoices):
    TAKEN = "taken", "Taken"
    SKIPPED = "skipped", "Skipped"


class DoseLog(models.Model):
    """A dose taken or skipped, as the patient logged it. Insert-only: corrections are new rows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="doses")
    prescription = models.ForeignKey(Prescription, on_delete=models.CASCADE, related_name="doses")
    scheduled_date = models.DateField()
    status = models.CharField(max_length=8, choices=DoseStatus.choices)
    taken_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    server_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["patient", "scheduled_date"], name="dose_patient_date"),
            models.Index(fields=["prescription", "scheduled_date"], name="dose_rx_date"),
            models.Index(fields=["patient", "server_version"], name="dose_patient_version"),
        ]

    def __str__(self) -> str:
        return f"dose {self.scheduled_date} {self.status}"


class DeletionRequest(BaseModel):
    """A patient's request that the clinic delete (or anonymise) their data."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="deletion_requests")
    reason = models.TextField(blank=True, max_length=2000)
    handled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"deletion request {self.id}"


# --- Sync (DESIGN.md §6, reference/sync-protocol.md) ------------------------------------------


class SyncState(models.Model):
    """The clinic's single version counter. Every write to a synced table takes the next value
    by `UPDATE ... RETURNING` inside its transaction (trigger `sync_stamp`), holding the row lock
    until commit: versions are gap-free and in commit order, so they are safe pull cursors."""

    singleton = models.BooleanField(primary_key=True, default=True)
    version = models.BigIntegerField(default=0)
    epoch = models.UUIDField(default=uuid.uuid4)
    min_cursor = models.BigIntegerField(default=0, help_text="Raised when tombstones are purged.")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(singleton=True), name="syncstate_singleton")]

    def __str__(self) -> str:
        return f"sync v{self.version}"


class SyncClient(models.Model):
    """One installation of the PWA (an IndexedDB instance), with its last applied mutation id."""

    client_id = models.UUIDField(primary_key=True)
    user_id = models.UUIDField()
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="sync_clients")
    last_mutation_id = models.BigIntegerField(default=0)
    # The clinic's sync epoch this client registered in (SyncState.epoch). A restore starts a
    # new epoch: what the server acknowledged to the client since the backup is gone, so such a
    # client must reset (409 reset_required) and come back as a new one, never resume its ids.
    epoch = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sync client {self.client_id}"


class SyncMutationResult(models.Model):
    """The result of each applied mutation, so a replayed push gets the original answer."""

    client = models.ForeignKey(SyncClient, on_delete=models.CASCADE, related_name="results")
    mutation_id = models.BigIntegerField()
    result = models.JSONField()
    # The version this mutation wrote, if it wrote one: what makes a version this device's own
    # (merge._own_versions). Not the result's server_version, which can name another device's
    # write (a delete-wins conflict answers with the deleter's version).
    written_version = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "mutation_id"], name="sync_result_once")]
        indexes = [
            models.Index(
                fields=["client", "written_version"],
                name="sync_result_written",
                condition=models.Q(written_version__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.client_id}#{self.mutation_id}"


class SyncConflict(models.Model):
    """A field the server resolved between two writers; synced down so the patient can see it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="sync_conflicts")
    table_name = models.CharField(max_length=40)
    record_id = models.UUIDField()
    client_id = models.UUIDField()
    mutation_id = models.BigIntegerField()
    fields = ArrayField(models.CharField(max_length=40))
    client_value = models.JSONField()
    server_value = models.JSONField()
    resolution = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)
    server_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        indexes = [models.Index(fields=["patient", "server_version"], name="conflict_patient_version")]

    def __str__(self) -> str:
        return f"conflict on {self.table_name} {self.record_id}"


class SyncAlias(models.Model):
    """A device's id for a record that merged into another one (two ids created offline for one
    diary day): later mutations of the losing id reach the winner (DESIGN.md §6)."""

    alias_id = models.UUIDField(primary_key=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="sync_aliases")
    table_name = models.CharField(max_length=40)
    record_id = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.table_name} {self.alias_id} → {self.record_id}"


class SyncDeletion(models.Model):
    """The id of a purged tombstone: it outlives the tombstone's payload, so a device that was
    offline past the purge cannot bring the deleted record back under its old id."""

    record_id = models.UUIDField(primary_key=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="sync_deletions")
    table_name = models.CharField(max_length=40)
    purged_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"purged {self.table_name} {self.record_id}"


# --- Reminders (DESIGN.md §7) -------------------------------------------------------------------


class ReminderKind(models.TextChoices):
    DIARY = "diary", "Daily diary"
    MEDICATION = "medication", "Medication dose"
    QUESTIONNAIRE = "questionnaire", "Questionnaire (UCT)"


ALL_DAYS = [1, 2, 3, 4, 5, 6, 7]


def all_days() -> list[int]:
    return list(ALL_DAYS)


class Reminder(models.Model):
    """A patient's reminder at a local wall-clock time on some ISO weekdays (1 = Monday).

    The id is generated by the client (reminders are synced). `next_fire_at`/`next_local_date`
    are server-owned scheduling state: the next occurrence in UTC and the local date it belongs
    to, recomputed whenever the reminder or the patient's timezone changes; the dispatcher reads
    them through a partial index. The sync trigger only watches the patient-owned columns, so
    advancing the schedule never creates a sync change (nor takes the sync version lock).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=14, choices=ReminderKind.choices)
    local_time = models.TimeField()
    days_of_week = ArrayField(models.PositiveSmallIntegerField(), size=7, default=all_days)
    prescription = models.ForeignKey(
        Prescription, null=True, blank=True, on_delete=models.CASCADE, related_name="reminders"
    )
    enabled = models.BooleanField(default=True)
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_local_date = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    server_version = models.BigIntegerField(default=0, editable=False)
    field_versions = models.JSONField(default=dict, editable=False)  # per-field merge, as the diary

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="medication") & Q(prescription__isnull=False))
                | (~Q(kind="medication") & Q(prescription__isnull=True)),
                name="reminder_prescription_iff_medication",
            ),
            models.CheckConstraint(
                condition=Q(days_of_week__contained_by=ALL_DAYS) & Q(days_of_week__len__gte=1),
                name="reminder_days_iso_weekdays",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_fire_at"], condition=Q(next_fire_at__isnull=False), name="reminder_due"
            ),
            models.Index(fields=["patient", "server_version"], name="reminder_patient_version"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} reminder at {self.local_time:%H:%M}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Too late to send"
    FAILED = "failed", "Failed"


class ReminderDelivery(models.Model):
    """One occurrence of a reminder: at most one per reminder and local date, whatever the number
    of dispatcher runs, retries or clock changes (the unique constraint is the guarantee)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    reminder = models.ForeignKey(Reminder, on_delete=models.CASCADE, related_name="deliveries")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="reminder_deliveries")
    local_date = models.DateField()
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    reason = models.CharField(max_length=30, blank=True)
    channel = models.CharField(max_length=8, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reminder", "local_date"], name="reminder_delivery_once_per_day")
        ]
        indexes = [
            models.Index(fields=["patient", "-local_date"], name="delivery_patient_date"),
            # The per-minute sweep reads only deliveries still open.
            models.Index(
                fields=["scheduled_for"],
                # OR, not IN: `varchar IN (...)` does not survive pg_dump's round trip unchanged,
                # which the template-snapshot check would (rightly) refuse.
                condition=Q(status="pending") | Q(status="sending"),
                name="delivery_open",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.local_date} {self.status}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (endpoint + keys from PushManager.subscribe())."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"push subscription {self.id}"


class Enrollment(models.Model):
    """A single-use code that lets a patient create their account in the PWA (DESIGN.md §4).

    It lives with the patient record, in the clinic's schema: `patient` is the record the code
    links (issued through the staff access function), or null when the record is created at
    redemption (which then takes a plan seat). `code_hash` (keyed) finds it; `code_encrypted`
    lets staff show the code or QR again. Users are global, so `created_by_id` and
    `redeemed_by_id` are plain UUIDs (no cross-schema foreign key).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="enrollments"
    )
    code_hash = models.CharField(max_length=64, unique=True)
    code_encrypted = models.TextField()
    created_by_id = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by_id = models.UUIDField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="enrollment_created")]

    def __str__(self) -> str:
        return f"enrollment {self.id}"


class EnrollmentFailure(models.Model):
    """One wrong enrollment code tried on this clinic's host: the per-clinic guessing budget
    (finding 15 of the security review) counts these rows, whatever the caller's IP."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"enrollment failure at {self.created_at:%Y-%m-%d %H:%M}"


# The portal list sorts on these (both directions, nulls last, then the patient id).
SUMMARY_SORT_COLUMNS = (
    "uas7",
    "uas7_change",
    "uct",
    "diary_completion",
    "lowest_pdc",
    "last_entry",
    "open_alerts",
)


class PatientSummary(models.Model):
    """What the portal, the alerts and the reports show of a patient, computed by
    `patients.scores.patient_summary` only (`patients.summary.summaries_refresh`): in the
    transaction of every write that changes it, and when the patient's local date rolls over.

    A row is valid for one local date; `stale_after` is the instant that date ends (the
    patient's next local midnight), so stale rows are found through an index. A new patient's
    row is inserted by a trigger, stale from the start (migration 0013)."""

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, primary_key=True, related_name="summary"
    )
    valid_for = models.DateField(null=True)
    stale_after = models.DateTimeField(db_index=True)
    computed_at = models.DateTimeField(null=True)
    week_end = models.DateField(null=True)
    uas7 = models.DecimalField(max_digits=4, decimal_places=1, null=True)
    uas7_method = models.CharField(max_length=10, default="missing")
    uas7_days = models.PositiveSmallIntegerField(default=0)
    band = models.CharField(max_length=20, null=True)
    previous_uas7 = models.DecimalField(max_digits=4, decimal_places=1, null=True)
    previous_method = models.CharField(max_length=10, default="missing")
    previous_days = models.PositiveSmallIntegerField(default=0)
    uas7_change = models.DecimalField(max_digits=4, decimal_places=1, null=True)
    exceeds_mid = models.BooleanField(default=False)
    uct = models.PositiveSmallIntegerField(null=True, help_text="Current UCT (within its recall period)")
    uct_instrument = models.CharField(max_length=8, blank=True, default="")
    uct_date = models.DateField(null=True)
    last_uct = models.PositiveSmallIntegerField(null=True, help_text="Latest UCT of any age")
    last_uct_instrument = models.CharField(max_length=8, blank=True, default="")
    last_uct_date = models.DateField(null=True)
    days_recorded = models.PositiveSmallIntegerField(default=0)
    days_eligible = models.PositiveSmallIntegerField(default=0)
    diary_completion = models.DecimalField(max_digits=5, decimal_places=4, null=True)
    adherence = models.JSONField(default=list)
    lowest_pdc = models.DecimalField(max_digits=5, decimal_places=4, null=True)
    last_entry = models.DateField(null=True)
    diary_gap = models.PositiveIntegerField(default=0)
    # The patient's page as `summary.page_of` renders this summary (read back by
    # `summary.summary_page` instead of recomputing; empty until the row is first computed).
    page = models.JSONField(default=dict, db_default=Value({}, output_field=models.JSONField()))
    open_alerts = models.PositiveIntegerField(default=0, help_text="Alerts not yet acknowledged")

    class Meta:
        indexes = [
            models.Index(F(column).asc(nulls_last=True), "patient", name=f"summary_{column}_asc")
            for column in SUMMARY_SORT_COLUMNS
        ] + [
            models.Index(F(column).desc(nulls_last=True), "patient", name=f"summary_{column}_desc")
            for column in SUMMARY_SORT_COLUMNS
        ]

    def __str__(self) -> str:
        return f"summary of {self.patient_id} for {self.valid_for}"
