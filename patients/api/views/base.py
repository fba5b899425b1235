"""The base of the patient's own endpoints (`/api/v1/me/…`, `/api/v1/sync/…`)."""

from __future__ import annotations

from datetime import date

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from accounts.api.base import PatientApi
from accounts.authentication import request_user
from core.api.fields import EARLIEST_DATE, TOO_EARLY
from core.errors import ApplicationError, ErrorCode
from patients import selectors
from patients.consent import consent_require
from patients.models import Patient
from patients.services import patient_write_lock
from tenants.models import Clinic


def parse_day(value: str, field: str = "day") -> date:
    """A local date from the URL (YYYY-MM-DD, from 2000-01-01 on)."""
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ApplicationError(
            code=ErrorCode.INVALID_DATE, field=field, detail="Use a date as YYYY-MM-DD."
        ) from exc
    if day < EARLIEST_DATE:
        raise ApplicationError(
            code=ErrorCode.VALIDATION_ERROR, field=field, detail=TOO_EARLY.format(EARLIEST_DATE.isoformat())
        )
    return day


# An endpoint on the signed-in patient's own record (accounts' `MeApi` is the signed-in account).
# Its docstring is the OpenAPI description of every view that has none of its own.
class OwnRecordApi(PatientApi):
    """Patients keep recording when their clinic is suspended (patient safety)."""

    allowed_when_suspended = True
    # Writes through this view store no health data (settings, consent itself, a deletion
    # request, a browser's push address): allowed without consent to the privacy notice.
    consent_exempt = False

    def patient(self, request: Request) -> Patient:
        """The signed-in patient's record. A write (any unsafe method) of a view that is not
        consent-exempt is refused without consent to the clinic's privacy notice (403
        `consent_required`, patients.consent): every health-data write goes through here."""
        patient = selectors.patient_for_user(user_id=request_user(request).pk)
        if patient is None:
            raise ApplicationError(
                code=ErrorCode.NO_PATIENT_RECORD,
                status_code=404,
                detail="No patient record for this account.",
            )
        if request.method not in SAFE_METHODS and not self.consent_exempt:
            # Checked under the patient's write lock, held to the request's commit (the first
            # lock of every write, as the services take it): a withdrawal that committed first
            # is seen here, and one that starts now waits until this write has committed.
            patient_write_lock(patient)
            consent_require(patient=patient)
        return patient

    def late_days(self, request: Request) -> int:
        clinic: Clinic = self.clinic(request)
        return clinic.diary_late_entry_days
