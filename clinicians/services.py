"""Portal writes: enrolling patients, care teams, notes, prescriptions, alerts."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Role, User
from accounts.selectors import ActiveMembership
from accounts.services import clinic_refuse_new_members
from clinicians.models import Alert, AlertKind, CareRole, CareTeam, ClinicalNote, Clinician
from core.errors import ApplicationError
from core.text import single_line_validate
from patients import selectors as patient_selectors
from patients.audit import access_log_write
from patients.enrollment import enrollment_issue
from patients.models import DiaryEntry, Enrollment, FrequencyKind, Medication, Patient, Prescription
from patients.services import alerts_evaluate_later
from tenants.models import Clinic, validate_timezone


def clinician_for_user(*, user_id: uuid.UUID) -> Clinician:
    clinician, _ = Clinician.objects.get_or_create(user_id=user_id)
    return clinician


@transaction.atomic
def patient_enroll(
    *,
    clinic: Clinic,
    actor: User,
    membership: ActiveMembership,
    display_name: str,
    date_of_birth: date | None = None,
    timezone_name: str | None = None,
    diary_mode: str | None = None,
) -> tuple[Patient, Enrollment, str]:
    """Create the patient's record and a single-use enrollment code; an enrolling clinician
    joins the patient's care team as primary."""
    clinic_refuse_new_members(clinic)
    tz = timezone_name or clinic.timezone
    try:
        validate_timezone(tz)
    except Exception as exc:
        raise ApplicationError(
            code="invalid_timezone", field="timezone", detail="Unknown IANA time zone."
        ) from exc
    from billing.services import seat_check

    seat_check(clinic=clinic, adding="patient")
    if date_of_birth and date_of_birth > timezone.localdate():
        raise ApplicationError(
            code="validation_error", field="date_of_birth", detail="Date of birth is in the future."
        )
    patient = Patient.objects.create(
        display_name=single_line_validate(display_name.strip(), field="display_name"),
        date_of_birth=date_of_birth,
        timezone=tz,
        diary_mode=diary_mode or clinic.default_diary_mode,
    )
    if membership.role == Role.CLINICIAN:
        CareTeam.objects.create(
            clinician=clinician_for_user(user_id=actor.pk),
            patient=patient,
            role=CareRole.PRIMARY,
            since=patient.local_today(),
        )
    enrollment, code = enrollment_issue(
        clinic=clinic, patient=patient, created_by=actor, created_by_role=membership.role
    )
    access_log_write(
        actor_id=actor.pk,
        actor_role=membership.role,
        action="patient.enroll",
        patient_id=patient.pk,
        obj=patient,
    )
    return patient, enrollment, code


@transaction.atomic
def care_team_assign(
    *, clinic: Clinic, actor: ActiveMembership, clinician_user_id: uuid.UUID, patient_id: uuid.UUID, role: str
) -> CareTeam:
    """Assign a clinician (a member with the clinician or admin role) to a patient. Audited:
    an assignment decides who may read the patient's data."""
    if not Membership.objects.filter(
        clinic=clinic, user_id=clinician_user_id, is_active=True, role__in=[Role.CLINICIAN, Role.CLINIC_ADMIN]
    ).exists():
        raise ApplicationError(
            code="not_a_clinician", field="clinician", detail="No active clinician with this id."
        )
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise ApplicationError(code="not_found", status_code=404, field="patient", detail="No such patient.")
    clinician = clinician_for_user(user_id=clinician_user_id)
    try:
        with transaction.atomic():
            assignment = CareTeam.objects.create(
                clinician=clinician, patient=patient, role=role, since=patient.local_today()
            )
            access_log_write(
                actor_id=actor.user_id,
                actor_role=actor.role,
                action="care_team.assign",
                patient_id=patient.pk,
                obj=assignment,
            )
            return assignment
    except IntegrityError as exc:
        raise ApplicationError(
            code="already_assigned",
            status_code=409,
            detail="This clinician is already on the patient's care team.",
        ) from exc


@transaction.atomic
def care_team_end(*, actor: ActiveMembership, assignment: CareTeam, until: date | None = None) -> CareTeam:
    if assignment.until is not None:
        raise ApplicationError(code="already_ended", status_code=409, detail="This assignment has ended.")
    assignment.until = max(until or assignment.patient.local_today(), assignment.since)
    assignment.save(update_fields=["until", "updated_at"])
    access_log_write(
        actor_id=actor.user_id,
        actor_role=actor.role,
        action="care_team.end",
        patient_id=assignment.patient_id,
        obj=assignment,
    )
    return assignment


@transaction.atomic
def note_create(
    *,
    patient: Patient,
    author: User,
    membership: ActiveMembership,
    body: str,
    corrects_id: uuid.UUID | None = None,
) -> ClinicalNote:
    """A new, immutable note (encrypted at rest); a correction names the note it corrects."""
    corrects = None
    if corrects_id is not None:
        corrects = ClinicalNote.objects.filter(pk=corrects_id, patient=patient).first()
        if corrects is None:
            raise ApplicationError(
                code="not_found", field="corrects", detail="No such note for this patient."
            )
    note = ClinicalNote(patient=patient, author_id=author.pk, corrects=corrects)
    note.body = body
    note.save()
    access_log_write(
        actor_id=author.pk, actor_role=membership.role, action="note.write", patient_id=patient.pk, obj=note
    )
    return note


@transaction.atomic
def prescription_create(
    *,
    patient: Patient,
    prescriber: User,
    membership: ActiveMembership,
    medication: str,
    dose: str,
    guideline_step: int,
    start: date,
    frequency_kind: str | None = None,
    frequency_value: int | None = None,
    end: date | None = None,
) -> Prescription:
    """A new regimen (a step up or down is a new prescription; history is kept)."""
    catalogue = Medication.objects.filter(code=medication).first()
    if catalogue is None:
        raise ApplicationError(
            code="unknown_medication", field="medication", detail="Not in the medication catalogue."
        )
    kind = frequency_kind or catalogue.frequency_kind
    value = frequency_value if frequency_value is not None else catalogue.frequency_value
    if kind != FrequencyKind.PRN and not value:
        raise ApplicationError(code="validation_error", field="frequency_value", detail="Give how often.")
    if end is not None and end < start:
        raise ApplicationError(code="validation_error", field="end", detail="The end is before the start.")
    prescription = Prescription.objects.create(
        patient=patient,
        medication=catalogue,
        dose=dose,
        frequency_kind=kind,
        frequency_value=None if kind == FrequencyKind.PRN else value,
        guideline_step=guideline_step,
        start=start,
        end=end,
        prescriber_id=prescriber.pk,
    )
    access_log_write(
        actor_id=prescriber.pk,
        actor_role=membership.role,
        action="prescription.write",
        patient_id=patient.pk,
        obj=prescription,
    )
    alerts_evaluate_later(patient)
    return prescription


@transaction.atomic
def prescription_stop(
    *, prescription: Prescription, actor: User, membership: ActiveMembership, end: date | None = None
) -> Prescription:
    end = end or prescription.patient.local_today()
    if prescription.end is not None and prescription.end <= end:
        raise ApplicationError(
            code="already_stopped", status_code=409, detail="This prescription has already ended."
        )
    if end < prescription.start:
        raise ApplicationError(code="validation_error", field="end", detail="The end is before the start.")
    prescription.end = end
    prescription.save(update_fields=["end", "updated_at"])
    access_log_write(
        actor_id=actor.pk,
        actor_role=membership.role,
        action="prescription.stop",
        patient_id=prescription.patient_id,
        obj=prescription,
    )
    return prescription


# --- Alerts -------------------------------------------------------------------------------------


def alerts_evaluate(*, patient: Patient, clinic: Clinic, today: date | None = None) -> list[Alert]:
    """Open the alerts the patient's current data calls for (idempotent: at most one open alert
    per kind; an open alert is not reopened or duplicated). Thresholds are clinic settings."""
    summary = patient_selectors.patient_summary(patient=patient, today=today)
    today = summary.today
    findings: dict[str, dict[str, Any]] = {}
    uas7 = summary.current.uas7
    if uas7 is not None and uas7 >= clinic.alert_severe_uas7:
        findings[AlertKind.SEVERE_UAS7] = {
            "uas7": uas7,
            "week_end": today.isoformat(),
            "method": summary.current.method,
        }
    if summary.change.delta is not None and summary.change.delta >= clinic.alert_uas7_rise:
        findings[AlertKind.UAS7_RISE] = {
            "uas7": uas7,
            "previous": summary.previous.uas7,
            "change": summary.change.delta,
        }
    if summary.last_uct is not None and summary.last_uct.score < clinic.alert_uct_below:
        findings[AlertKind.UCT_UNCONTROLLED] = {
            "uct": summary.last_uct.score,
            "period_end": summary.last_uct.period_end.isoformat(),
        }
    last_entry = (
        DiaryEntry.objects.filter(patient=patient, deleted_at__isnull=True, day__lte=today)
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    gap_days = (
        (today - last_entry).days if last_entry else (today - patient.local_today(patient.enrolled_at)).days
    )
    if gap_days >= clinic.alert_diary_gap_days:
        findings[AlertKind.DIARY_GAP] = {
            "days_without_entry": gap_days,
            "last_entry": last_entry.isoformat() if last_entry else None,
        }
    low = [
        {"prescription": str(rx.pk), "medication": rx.medication_id, "pdc": result.pdc}
        for rx, result in summary.adherence
        if result.pdc is not None and result.pdc < float(clinic.alert_pdc_below) and result.eligible_days >= 7
    ]
    if low:
        findings[AlertKind.LOW_ADHERENCE] = {"prescriptions": low, "window_days": 28}
    opened = []
    for kind, evidence in findings.items():
        try:
            with transaction.atomic():
                alert, created = Alert.objects.get_or_create(
                    patient=patient, kind=kind, resolved_at=None, defaults={"evidence": evidence}
                )
        except IntegrityError:  # opened concurrently by another evaluation
            continue
        if created:
            opened.append(alert)
    return opened


def alert_acknowledge(*, alert: Alert, actor: User) -> Alert:
    if alert.resolved_at is not None:
        raise ApplicationError(code="alert_resolved", status_code=409, detail="This alert is resolved.")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = actor.pk
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
    return alert


def alert_resolve(*, alert: Alert, actor: User) -> Alert:
    if alert.resolved_at is not None:
        raise ApplicationError(
            code="alert_resolved", status_code=409, detail="This alert is already resolved."
        )
    alert.resolved_at = timezone.now()
    alert.resolved_by = actor.pk
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = alert.resolved_at, actor.pk
    alert.save(
        update_fields=["resolved_at", "resolved_by", "acknowledged_at", "acknowledged_by", "updated_at"]
    )
    return alert
