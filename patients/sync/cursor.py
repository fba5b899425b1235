"""The pull cursor: opaque to the device. Encrypted and signed for the clinic through
core.cursors (`encrypt=True`): cursors devices already hold keep decoding.

A cursor the server cannot read (signed or encrypted with a key since retired, altered, or from
another clinic) answers 409 `reset_required`, never 400 `invalid_cursor`: the device can always
recover by downloading everything again, while a 400 would leave it stuck with a cursor it cannot
replace (issue 21)."""

from __future__ import annotations

from typing import Any

from core.cursors import cursor_sign, cursor_unsign
from core.errors import ApplicationError, ErrorCode
from tenants.db import tenant_connection


def _salt() -> str:
    # The clinic's schema is part of the key: a cursor cannot be moved to another clinic.
    return f"sync-cursor:{tenant_connection().schema_name}"


def cursor_encode(payload: dict[str, Any]) -> str:
    """Opaque: the payload (versions, the device's acknowledged mutation id) is encrypted with
    the field-encryption keys (Fernet, authenticated), and signed for the clinic's schema."""
    return cursor_sign(payload, salt=_salt(), encrypt=True)


def sync_reset_required(detail: str = "") -> ApplicationError:
    """409 `reset_required`: the device must download everything again (omit the cursor) and
    push what it still has queued as a new client."""
    return ApplicationError(
        code=ErrorCode.RESET_REQUIRED,
        status_code=409,
        detail=detail or "Your copy is too old to catch up: download everything again (omit the cursor).",
    )


def cursor_decode(token: str) -> dict[str, Any]:
    """The payload of a cursor this clinic issued; `reset_required` for anything else."""
    try:
        payload = cursor_unsign(token, salt=_salt(), encrypt=True)
        int(payload["since"])
    except ApplicationError as exc:
        if exc.code != ErrorCode.INVALID_CURSOR:
            raise
        raise sync_reset_required() from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise sync_reset_required() from exc
    return payload
