"""The base of the clinician portal's endpoints (`/api/v1/portal/…`)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from accounts.api.base import ClinicianApi
from clinicians.access import patient_get_for_staff
from patients.models import Patient


class PortalApi(ClinicianApi):
    """Clinicians and clinic admins; every patient comes through the access function."""

    def patient_for(
        self, request: Request, patient_id: Any, action: str, not_found: str = "No such patient."
    ) -> Patient:
        return patient_get_for_staff(
            membership=self.membership(request), patient_id=patient_id, action=action, not_found=not_found
        )
