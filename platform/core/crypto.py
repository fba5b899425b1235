"""Authenticated encryption of secrets and free text at rest, with rotatable keys.

Keys come from FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first). Fernet is
AES-128-CBC + HMAC-SHA256 (encrypt-then-MAC); MultiFernet encrypts with the first key and
decrypts with any, so keys rotate by prepending a new key and re-encrypting
(`MultiFernet.rotate`). Outside production a fixed development key is used when none is
configured; production settings refuse to start without keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Development/test only (production refuses to start without FIELD_ENCRYPTION_KEYS).
_DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"csu-tracker-development-only").digest())


@cache
def _fernets() -> tuple[Fernet, MultiFernet]:
    keys = [key.encode() for key in settings.FIELD_ENCRYPTION_KEYS] or [_DEV_KEY]
    fernets = [Fernet(key) for key in keys]
    return fernets[0], MultiFernet(fernets)


def _fernet() -> MultiFernet:
    return _fernets()[1]


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernets.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Raises cryptography.fernet.InvalidToken when no configured key opens it."""
    return _fernet().decrypt(ciphertext.encode()).decode()


def reencrypt(ciphertext: str) -> str:
    """The same plaintext under the newest key (key rotation); unchanged if already under it."""
    newest, every = _fernets()
    try:
        newest.decrypt(ciphertext.encode())
        return ciphertext
    except InvalidToken:
        return every.rotate(ciphertext.encode()).decode()


def keyed_hash(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of a secret for lookups: a leaked table alone cannot be brute-forced."""
    key = hashlib.sha256(f"{purpose}:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


__all__ = ["InvalidToken", "decrypt", "encrypt", "keyed_hash", "reencrypt"]
