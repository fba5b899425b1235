"""Portal writes: enrolling patients, care teams, notes, prescriptions, alerts."""

from __future__ import annotations

import uuid
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Role, User
from accounts.selectors import ActiveMembership
from accounts.services import clinic_refuse_new_members
from clinicians.models import Alert, CareRole, CareTeam, ClinicalNote, Clinician, ResolvedReason
from core.errors import ApplicationError, ErrorCode
from core.text import single_line_validate
from patients import scores
from patients.audit import access_log_write
from patients.enrollment import enrollment_issue
from patients.models import Enrollment, FrequencyKind, Medication, Patient, Prescription
from patients.services import patient_changed, patient_write_lock
from patients.summary import summaries_refresh, summary_open_alerts_set, thresholds_of
from tenants.models import Clinic, timezone_validate


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
    timezone_validate(tz)
    from billing.services import seat_check

    seat_check(clinic=clinic, adding="patient")
    if date_of_birth and date_of_birth > timezone.localdate():
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="date_of_birth", detail="Date of birth is in the future."
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
    patient_changed(patient)  # its summary row exists from the start (no account: nothing judged)
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
            code=ErrorCode.NOT_A_CLINICIAN, field="clinician", detail="No active clinician with this id."
        )
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise ApplicationError(
            code=ErrorCode.NOT_FOUND, status_code=404, field="patient", detail="No such patient."
        )
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
            code=ErrorCode.ALREADY_ASSIGNED,
            status_code=409,
            detail="This clinician is already on the patient's care team.",
        ) from exc


@transaction.atomic
def care_team_end(*, actor: ActiveMembership, assignment: CareTeam, until: date | None = None) -> CareTeam:
    if assignment.until is not None:
        raise ApplicationError(
            code=ErrorCode.ALREADY_ENDED, status_code=409, detail="This assignment has ended."
        )
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
                code=ErrorCode.NOT_FOUND, field="corrects", detail="No such note for this patient."
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
    dose: str | None = None,
    guideline_step: int | None = None,
    start: date | None = None,
    frequency_kind: str | None = None,
    frequency_value: int | None = None,
    end: date | None = None,
) -> Prescription:
    """A new regimen (a step up or down is a new prescription; history is kept).

    A prescription states only what differs from its catalogue entry: the dose defaults to the
    entry's strength, the frequency and guideline step to the entry's, the start to the
    patient's local today. An entry without a step (drugs newer than the guideline) needs one."""
    patient_write_lock(patient)  # the documented lock order: the patient first
    catalogue = Medication.objects.filter(code=medication).first()
    if catalogue is None:
        raise ApplicationError(
            code=ErrorCode.UNKNOWN_MEDICATION,
            field="medication",
            detail="Not in the medication catalogue (GET /api/v1/portal/medications/ lists its codes).",
        )
    kind = frequency_kind or catalogue.frequency_kind
    if frequency_value is not None:
        value: int | None = frequency_value
    elif kind == catalogue.frequency_kind:
        value = catalogue.frequency_value
    else:
        value = None  # another kind of frequency: the catalogue's n does not carry over
    if kind != FrequencyKind.PRN and not value:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="frequency_value", detail="Give how often."
        )
    step = guideline_step if guideline_step is not None else catalogue.guideline_step
    if step is None:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR,
            field="guideline_step",
            detail="This medication has no guideline step in the catalogue: give one (1-4).",
        )
    dose = dose or catalogue.strength
    start = start or patient.local_today()
    if end is not None and end < start:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="end", detail="The end is before the start."
        )
    prescription = Prescription.objects.create(
        patient=patient,
        medication=catalogue,
        dose=dose,
        frequency_kind=kind,
        frequency_value=None if kind == FrequencyKind.PRN else value,
        guideline_step=step,
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
    patient_changed(patient)
    return prescription


@transaction.atomic
def prescription_stop(
    *, prescription: Prescription, actor: User, membership: ActiveMembership, end: date | None = None
) -> Prescription:
    patient_write_lock(prescription.patient)
    end = end or prescription.patient.local_today()
    if prescription.end is not None and prescription.end <= end:
        raise ApplicationError(
            code=ErrorCode.ALREADY_STOPPED, status_code=409, detail="This prescription has already ended."
        )
    if end < prescription.start:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field="end", detail="The end is before the start."
        )
    prescription.end = end
    prescription.save(update_fields=["end", "updated_at"])
    patient_changed(prescription.patient)
    access_log_write(
        actor_id=actor.pk,
        actor_role=membership.role,
        action="prescription.stop",
        patient_id=prescription.patient_id,
        obj=prescription,
    )
    return prescription


# --- Alerts -------------------------------------------------------------------------------------


def alerts_evaluate(*, patient: Patient, clinic: Clinic) -> list[Alert]:
    """Bring the patient's alerts in line with their summary: the row that the portal shows is
    recomputed and stored, and `scores.alert_findings` decides on the same values. At most one
    unresolved alert per kind: a finding already alerted is left as it is; an unresolved alert
    whose finding has gone resolves itself (`condition_cleared`) and stays in the history.
    Returns the alerts opened. Thresholds are the clinic's settings."""
    thresholds = thresholds_of(clinic)
    with transaction.atomic():
        patient_write_lock(patient)
        summary = summaries_refresh([patient.pk])[patient.pk]
        findings = scores.alert_findings(summary, thresholds)
        now = timezone.now()
        unresolved = {
            a.kind: a for a in Alert.objects.select_for_update().filter(patient=patient, resolved_at=None)
        }
        for kind, alert in unresolved.items():
            if kind not in findings:
                alert.resolved_at, alert.resolved_reason = now, ResolvedReason.CONDITION_CLEARED
                alert.save(update_fields=["resolved_at", "resolved_reason", "updated_at"])
        opened = []
        for kind, evidence in findings.items():
            if kind in unresolved:
                continue
            try:
                with transaction.atomic():
                    opened.append(Alert.objects.create(patient=patient, kind=kind, evidence=evidence))
            except IntegrityError:  # opened concurrently by another evaluation
                continue
        _open_alerts_count(patient.pk)
    return opened


def _open_alerts_count(patient_id: uuid.UUID) -> None:
    """The summary row's count of open alerts: not yet acknowledged (DESIGN §5)."""
    summary_open_alerts_set(
        patient_id=patient_id,
        open_alerts=Alert.objects.filter(
            patient_id=patient_id, resolved_at__isnull=True, acknowledged_at__isnull=True
        ).count(),
    )


def _alert_locked(alert: Alert) -> Alert:
    """The alert re-read under the documented lock order (the patient's write lock, then the
    row), as alert evaluation takes them: no deadlock with it, and its state is the committed
    one (a clinician never overwrites an evaluation's resolution, or counts before it)."""
    patient_write_lock(alert.patient)
    locked: Alert = Alert.objects.select_for_update().select_related("patient").get(pk=alert.pk)
    return locked


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: User) -> Alert:
    alert = _alert_locked(alert)
    if alert.resolved_at is not None:
        raise ApplicationError(
            code=ErrorCode.ALERT_RESOLVED, status_code=409, detail="This alert is resolved."
        )
    if alert.acknowledged_at is None:
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = actor.pk
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
        _open_alerts_count(alert.patient_id)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor: User) -> Alert:
    alert = _alert_locked(alert)
    if alert.resolved_at is not None:
        raise ApplicationError(
            code=ErrorCode.ALERT_RESOLVED, status_code=409, detail="This alert is already resolved."
        )
    alert.resolved_at = timezone.now()
    alert.resolved_by = actor.pk
    alert.resolved_reason = ResolvedReason.CLINICIAN
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = alert.resolved_at, actor.pk
    alert.save(
        update_fields=[
            "resolved_at",
            "resolved_by",
            "resolved_reason",
            "acknowledged_at",
            "acknowledged_by",
            "updated_at",
        ]
    )
    _open_alerts_count(alert.patient_id)
    return alert
