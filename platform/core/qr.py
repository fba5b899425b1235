"""QR codes as PNG bytes (enrollment links, TOTP provisioning URIs)."""

from __future__ import annotations

import io

import qrcode


def qr_png(data: str) -> bytes:
    image = qrcode.make(data, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
