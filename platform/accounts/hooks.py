"""What accounts lets a higher layer plug in, so it never imports one (README, "Layers").

Seat checks: before a clinic gains a clinician, every registered check runs in the caller's
transaction and may refuse (billing registers its plan limits in `BillingConfig.ready`)."""

from __future__ import annotations

from collections.abc import Callable

from tenants.models import Clinic

SeatCheck = Callable[..., None]  # (*, clinic: Clinic, adding: str) -> None; raises to refuse
_seat_checks: list[SeatCheck] = []


def seat_check_register(check: SeatCheck) -> None:
    if check not in _seat_checks:
        _seat_checks.append(check)


def seat_check(*, clinic: Clinic, adding: str) -> None:
    """Run every registered check for one more `adding` ("clinician" or "patient") seat."""
    for check in _seat_checks:
        check(clinic=clinic, adding=adding)
