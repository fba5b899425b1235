"""Who on the clinic's staff may see which patient: one function used by every portal view,
and one per entity a portal URL names (a prescription, an alert, a report, an enrollment
code, a care-team assignment), each going through the patient's where there is one.

Clinicians see the patients of their active care-team assignments; clinic admins see every
patient of the clinic; nobody sees another clinic (the schema boundary). Patients use /me/.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.db.models import DateField, Exists, Func, OuterRef, Q, QuerySet

from accounts.models import Role
from accounts.selectors import ActiveMembership
from clinicians.models import Alert, CareTeam, Report
from core.errors import ApplicationError, ErrorCode
from patients import selectors as patient_selectors
from patients.audit import access_log_write
from patients.enrollment import enrollment_open_get
from patients.models import Enrollment, Patient, Prescription


class AuditedDenial(ApplicationError):
    """A refused access whose AccessLog row must survive the error response (the exception
    handler does not roll back the request transaction for it)."""

    keep_transaction = True


class _LocalToday(Func):
    """Today's date in the time zone its expression names (an IANA name, as Patient.timezone)."""

    template = "(now() AT TIME ZONE %(expressions)s)::date"
    output_field = DateField()


def _active_assignment(user_id: uuid.UUID, today: Any) -> QuerySet[CareTeam]:
    return CareTeam.objects.filter(
        clinician__user_id=user_id, clinician__active=True, since__lte=today
    ).filter(Q(until__isnull=True) | Q(until__gte=today))


def patients_visible_to(*, membership: ActiveMembership, today: date | None = None) -> QuerySet[Patient]:
    """The patients the member may see. A clinician's assignment counts from its `since` to its
    `until` in the patient's own local dates (as they are written, services.care_team_assign),
    not the server's: east of UTC a new assignment would otherwise show nothing until the
    server's midnight."""
    if membership.role == Role.CLINIC_ADMIN:
        return Patient.objects.all()
    if membership.role != Role.CLINICIAN:
        return Patient.objects.none()
    today_expr: Any = today if today is not None else _LocalToday(OuterRef("timezone"))
    return Patient.objects.filter(
        Exists(_active_assignment(membership.user_id, today_expr).filter(patient_id=OuterRef("pk")))
    )


def patient_get_for_staff(
    *,
    membership: ActiveMembership,
    patient_id: uuid.UUID | str,
    action: str,
    ip: str | None = None,
    not_found: str = "No such patient.",
) -> Patient:
    """The patient if this staff member may see them, with the access logged; otherwise a
    logged refusal and 404 (the same answer as for a patient that does not exist). A route
    that reached the patient through one of their objects passes that object's not-found
    message, so the refusal reads exactly like a missing object."""
    patient = patients_visible_to(membership=membership).filter(pk=patient_id).first()
    access_log_write(
        actor_id=membership.user_id,
        actor_role=membership.role,
        action=action,
        patient_id=patient.pk
        if patient
        else Patient.objects.filter(pk=patient_id).values_list("pk", flat=True).first(),
        object_type="Patient",
        allowed=patient is not None,
        ip=ip,
    )
    if patient is None:
        raise AuditedDenial(code=ErrorCode.NOT_FOUND, status_code=404, detail=not_found)
    return patient


def prescription_get_for_staff(
    *, membership: ActiveMembership, prescription_id: uuid.UUID | str, action: str
) -> Prescription:
    """The prescription if this staff member may see its patient (the access logged as for
    the patient); otherwise 404, the same for a prescription that does not exist."""
    prescription = patient_selectors.prescription_get(prescription_id=prescription_id)
    if prescription is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such prescription.")
    patient_get_for_staff(
        membership=membership,
        patient_id=prescription.patient_id,
        action=action,
        not_found="No such prescription.",
    )
    return prescription


def alert_get_for_staff(*, membership: ActiveMembership, alert_id: uuid.UUID | str, action: str) -> Alert:
    """The alert (with its patient) if this staff member may see its patient (the access
    logged as for the patient); otherwise 404, the same for an alert that does not exist."""
    alert = Alert.objects.select_related("patient").filter(pk=alert_id).first()
    if alert is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such alert.")
    patient_get_for_staff(
        membership=membership, patient_id=alert.patient_id, action=action, not_found="No such alert."
    )
    return alert


def report_get_for_staff(*, membership: ActiveMembership, report_id: uuid.UUID | str, action: str) -> Report:
    """A patient's report if this staff member may see the patient (the access logged as for
    the patient); the clinic summary (aggregate counts, no patient) for any of the clinic's
    staff; otherwise 404, the same for a report that does not exist."""
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such report.")
    if report.patient_id is not None:
        patient_get_for_staff(
            membership=membership, patient_id=report.patient_id, action=action, not_found="No such report."
        )
    return report


def care_team_get(*, membership: ActiveMembership, assignment_id: uuid.UUID | str) -> CareTeam:
    """A care-team assignment (with its clinician and patient) for the clinic's admins, who
    manage care teams; 404 for anyone else, and for an assignment that does not exist."""
    assignment = None
    if membership.role == Role.CLINIC_ADMIN:
        assignment = CareTeam.objects.select_related("clinician", "patient").filter(pk=assignment_id).first()
    if assignment is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such assignment.")
    return assignment


def enrollment_get_for_staff(
    *, membership: ActiveMembership, enrollment_id: uuid.UUID | str, action: str
) -> Enrollment:
    """An open enrollment code: for a code naming a patient, only staff who may see that
    patient (the access logged as for the patient); for a code without one, its issuer and
    the clinic's admins; otherwise 404, the same for a code that is not open."""
    enrollment = enrollment_open_get(enrollment_id=enrollment_id)
    if enrollment is not None and enrollment.patient_id is not None:
        patient_get_for_staff(
            membership=membership,
            patient_id=enrollment.patient_id,
            action=action,
            not_found="No such open enrollment.",
        )
    elif enrollment is not None and not (
        membership.role == Role.CLINIC_ADMIN or enrollment.created_by_id == membership.user_id
    ):
        enrollment = None
    if enrollment is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such open enrollment.")
    return enrollment
