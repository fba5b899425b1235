"""Opaque page cursors: a JSON object, signed with a salt (HMAC over SECRET_KEY), optionally
encrypted first. One helper for every keyset pager (the sync pull, the portal's patient list and
timeline): a cursor a client altered, or one made for another salt, is a 400 `invalid_cursor`
(the sync pull answers such a cursor with `409 reset_required` instead: patients.sync).

Key rotation: Django's Signer checks SECRET_KEY, then every key in SECRET_KEY_FALLBACKS, and the
encrypted body opens with any key in FIELD_ENCRYPTION_KEYS, so a device's cursor survives a
rotation of either while the old key is still listed (issue 21). New cursors use the newest keys.

Formats (kept stable: clients hold cursors between requests, devices between syncs):
- plain: `Signer(salt).sign(base64url(json))`: the client may read the position, never forge it;
- `encrypt=True`: `Signer(salt).sign(Fernet(json))` (core.crypto's keys, authenticated): the
  client learns nothing either.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from django.core import signing

from core import crypto
from core.errors import ApplicationError, ErrorCode


def cursor_invalid(detail: str = "This cursor is not valid.") -> ApplicationError:
    """The one answer to a cursor that cannot be used (tampered, foreign, or malformed)."""
    return ApplicationError(code=ErrorCode.INVALID_CURSOR, field="cursor", detail=detail)


def cursor_sign(payload: dict[str, Any], *, salt: str, encrypt: bool = False) -> str:
    """The opaque cursor for `payload` (JSON-serializable), bound to `salt`."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    body = crypto.encrypt(raw) if encrypt else base64.urlsafe_b64encode(raw.encode()).decode()
    return signing.Signer(salt=salt).sign(body)


def cursor_unsign(token: str, *, salt: str, encrypt: bool = False) -> dict[str, Any]:
    """The payload of a cursor made by `cursor_sign` with the same salt and `encrypt`; else
    ApplicationError `invalid_cursor` on the field `cursor`."""
    try:
        body = signing.Signer(salt=salt).unsign(token)
        raw = crypto.decrypt(body) if encrypt else base64.urlsafe_b64decode(body.encode()).decode()
        payload = json.loads(raw)
    except (signing.BadSignature, crypto.InvalidToken, ValueError, TypeError) as exc:
        # ValueError covers bad base64 (binascii.Error), bad UTF-8 and bad JSON.
        raise cursor_invalid() from exc
    if not isinstance(payload, dict):
        raise cursor_invalid()
    return payload
