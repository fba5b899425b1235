"""The counts billing needs from the clinical records, which billing does not own: the app that
owns them registers its functions here (`PatientsConfig.ready`), so billing never reads
another app's tables (README, "Layers")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

PatientSeats = Callable[[Any], int]  # (clinic) -> active patient records
ActivePatients = Callable[[Any, datetime, datetime], int]  # (clinic, start, end) -> patients with activity

_sources: dict[str, Callable[..., int]] = {}


def usage_sources_register(*, patient_seats: PatientSeats, active_patients: ActivePatients) -> None:
    _sources["patient_seats"] = patient_seats
    _sources["active_patients"] = active_patients


def _source(name: str) -> Callable[..., int]:
    try:
        return _sources[name]
    except KeyError as exc:  # an installation without the patients app
        raise RuntimeError(f"No usage source registered for {name}") from exc


def patient_seats(clinic: Any) -> int:
    return _source("patient_seats")(clinic)


def active_patients_between(clinic: Any, start: datetime, end: datetime) -> int:
    return _source("active_patients")(clinic, start, end)
