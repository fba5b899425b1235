"""Who on the clinic's staff may see which patient: one function used by every portal view.

Clinicians see the patients of their active care-team assignments; clinic admins see every
patient of the clinic; nobody sees another clinic (the schema boundary). Patients use /me/.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import Role
from accounts.selectors import ActiveMembership
from clinicians.models import CareTeam
from core.errors import ApplicationError
from patients.audit import access_log_write
from patients.models import Patient


class AuditedDenial(ApplicationError):
    """A refused access whose AccessLog row must survive the error response (the exception
    handler does not roll back the request transaction for it)."""

    keep_transaction = True


def _active_assignment(user_id: uuid.UUID, today: date) -> QuerySet[CareTeam]:
    return CareTeam.objects.filter(
        clinician__user_id=user_id, clinician__active=True, since__lte=today
    ).filter(Q(until__isnull=True) | Q(until__gte=today))


def patients_visible_to(*, membership: ActiveMembership, today: date | None = None) -> QuerySet[Patient]:
    if membership.role == Role.CLINIC_ADMIN:
        return Patient.objects.all()
    if membership.role != Role.CLINICIAN:
        return Patient.objects.none()
    today = today or timezone.localdate()
    return Patient.objects.filter(
        Exists(_active_assignment(membership.user_id, today).filter(patient_id=OuterRef("pk")))
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
        else (patient_id if Patient.objects.filter(pk=patient_id).exists() else None),
        object_type="Patient",
        allowed=patient is not None,
        ip=ip,
    )
    if patient is None:
        raise AuditedDenial(code="not_found", status_code=404, detail=not_found)
    return patient
