"""The pull cursor: opaque to the device. Encrypted and signed for the clinic through
core.cursors (`encrypt=True`): cursors devices already hold keep decoding."""

from __future__ import annotations

from typing import Any

from core.cursors import cursor_invalid, cursor_sign, cursor_unsign
from tenants.db import tenant_connection


def _salt() -> str:
    # The clinic's schema is part of the key: a cursor cannot be moved to another clinic.
    return f"sync-cursor:{tenant_connection().schema_name}"


def cursor_encode(payload: dict[str, Any]) -> str:
    """Opaque: the payload (versions, the device's acknowledged mutation id) is encrypted with
    the field-encryption keys (Fernet, authenticated), and signed for the clinic's schema."""
    return cursor_sign(payload, salt=_salt(), encrypt=True)


def cursor_decode(token: str) -> dict[str, Any]:
    """The payload of a cursor this clinic issued; `invalid_cursor` for anything else."""
    payload = cursor_unsign(token, salt=_salt(), encrypt=True)
    try:
        int(payload["since"])
    except (KeyError, ValueError, TypeError) as exc:
        raise cursor_invalid() from exc
    return payload
