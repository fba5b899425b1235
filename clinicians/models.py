"""Clinic staff side of a clinic schema: clinician profiles, care teams, notes, alerts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core import crypto
from core.models import BaseModel
from patients.models import Patient


class Clinician(BaseModel):
    """A clinician's profile in this clinic; `user_id` is the global account (public schema)."""

    user_id = models.UUIDField(unique=True)
    title = models.CharField(max_length=40, blank=True)
    specialty = models.CharField(max_length=80, blank=True)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"clinician {self.user_id}"


class CareRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    SECONDARY = "secondary", "Secondary"


class CareTeam(BaseModel):
    """A clinician's assignment to a patient. Ended assignments are kept (history)."""

    clinician = models.ForeignKey(Clinician, on_delete=models.PROTECT, related_name="assignments")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="care_team")
    role = models.CharField(max_length=10, choices=CareRole.choices, default=CareRole.PRIMARY)
    since = models.DateField()
    until = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinician", "patient"],
                condition=Q(until__isnull=True),
                name="careteam_one_open_assignment",
            ),
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(until__gte=models.F("since")),
                name="careteam_until_after_since",
            ),
        ]
        indexes = [models.Index(fields=["clinician", "patient"], name="careteam_clinician_patient")]

    def __str__(self) -> str:
        return f"{self.clinician_id} → {self.patient_id}"


class ClinicalNote(BaseModel):
    """A clinician's note. Immutable: a correction is a new note that references the old one
    (the database refuses changes except re-encryption of the body under a newer key)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="notes")
    author_id = models.UUIDField()
    body_encrypted = models.TextField()
    corrects = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections"
    )

    class Meta:
        indexes = [models.Index(fields=["patient", "-created_at"], name="note_patient_created")]

    def __str__(self) -> str:
        return f"note {self.id}"

    @property
    def body(self) -> str:
        return crypto.decrypt(self.body_encrypted)

    @body.setter
    def body(self, value: str) -> None:
        self.body_encrypted = crypto.encrypt(value)


class AlertKind(models.TextChoices):
    SEVERE_UAS7 = "severe_uas7", "Severe activity (UAS7 ≥ 28)"
    UAS7_RISE = "uas7_rise", "UAS7 rose by the MID or more"
    UCT_UNCONTROLLED = "uct_uncontrolled", "UCT below 12"
    DIARY_GAP = "diary_gap", "No diary entries for days"
    LOW_ADHERENCE = "low_adherence", "PDC below 80 % over 28 days"


class ResolvedReason(models.TextChoices):
    CLINICIAN = "clinician", "Resolved by a clinician"
    CONDITION_CLEARED = "condition_cleared", "The condition no longer holds"


class Alert(BaseModel):
    """A flag for clinicians; at most one open alert per patient and kind."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    opened_at = models.DateTimeField(auto_now_add=True)
    evidence = models.JSONField(default=dict)
    acknowledged_by = models.UUIDField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.UUIDField(null=True, blank=True)
    resolved_reason = models.CharField(max_length=20, choices=ResolvedReason.choices, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="alert_one_open_per_kind",
            )
        ]
        indexes = [
            models.Index(
                fields=["patient"], condition=Q(resolved_at__isnull=True), name="alert_open_by_patient"
            ),
            models.Index(fields=["-opened_at"], name="alert_opened"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.patient_id}"


class ReportKind(models.TextChoices):
    PATIENT_WEEKLY = "patient_weekly", "Weekly adherence report for one patient"
    CLINIC_WEEKLY = "clinic_weekly", "Weekly clinic summary"


class ReportStatus(models.TextChoices):
    PENDING = "pending", "Being generated"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Report(BaseModel):
    """An adherence report for one week (Monday–Sunday, local dates): JSON, PNG chart, CSV.

    One per (kind, patient, week): requesting it again returns the same report; the clinic
    summary has no patient (`nulls_distinct=False` keeps it unique too).
    """

    kind = models.CharField(max_length=16, choices=ReportKind.choices)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    week_start = models.DateField()
    status = models.CharField(max_length=8, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    data = models.JSONField(default=dict)
    chart_png = models.BinaryField(null=True, blank=True)
    csv = models.TextField(blank=True, default="")
    requested_by = models.UUIDField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=60, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "patient", "week_start"], nulls_distinct=False, name="report_once_per_week"
            )
        ]
        indexes = [models.Index(fields=["patient", "-week_start"], name="report_patient_week")]

    def __str__(self) -> str:
        return f"{self.kind} {self.week_start}"
