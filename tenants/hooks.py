"""What tenancy lets a higher layer plug in, so it never imports one (README, "Layers").

Schema created: after a clinic's schema is built from the template snapshot, each registered
function gets the schema name, in the creating transaction (the patients app gives the clinic its
own sync epoch: the snapshot carries the template's)."""

from __future__ import annotations

from collections.abc import Callable

_schema_created: list[Callable[[str], None]] = []


def on_clinic_schema_created(hook: Callable[[str], None]) -> None:
    if hook not in _schema_created:
        _schema_created.append(hook)


def clinic_schema_created(schema_name: str) -> None:
    for hook in _schema_created:
        hook(schema_name)
