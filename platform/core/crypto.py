"""Authenticated encryption of secrets and free text at rest, and keyed hashes, with rotatable
keys.

Keys come from FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first). Fernet is
AES-128-CBC + HMAC-SHA256 (encrypt-then-MAC); MultiFernet encrypts with the first key and
decrypts with any, so keys rotate by prepending a new key and re-encrypting
(`MultiFernet.rotate`). Outside production a fixed development key is used when none is
configured; production settings refuse to start without keys.

Keyed hashes (enrollment codes, staff invitations, MFA recovery codes: looked up by hash, never
decrypted) use HASH_KEYS, newest first, separate from SECRET_KEY: rotating SECRET_KEY must not
silently kill every outstanding code and, permanently, every recovery code (issue 21). A hash
is made with the newest key and matched against every key (`keyed_hashes`), so a hash key
rotates by prepending; an old one is dropped once the codes hashed under it are gone. Unset
(development, and deployments from before HASH_KEYS), the hash key is SECRET_KEY, as it always
was, and SECRET_KEY_FALLBACKS are matched too; setting HASH_KEYS to the current SECRET_KEY keeps
every existing hash valid (`manage.py rotate_keys --plan` says so).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from functools import cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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


@cache
def _key_ring() -> tuple[Fernet, ...]:
    return tuple(Fernet(key.encode()) for key in settings.FIELD_ENCRYPTION_KEYS) or (Fernet(_DEV_KEY),)


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernets.cache_clear()
        _key_ring.cache_clear()


def key_index(ciphertext: str | bytes) -> int | None:
    """Which FIELD_ENCRYPTION_KEYS key opens `ciphertext` (0 is the newest), or None when none
    does: what `check_keys` and `/readyz` report (Fernet tokens carry no key id)."""
    token = ciphertext.encode() if isinstance(ciphertext, str) else ciphertext
    for index, fernet in enumerate(_key_ring()):
        try:
            fernet.decrypt(token)
        except InvalidToken:
            continue
        return index
    return None


def encryption_key_count() -> int:
    """How many field encryption keys are configured (the development key counts as one)."""
    return len(_key_ring())


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


def hash_keys() -> list[str]:
    """The keyed-hash keys, newest first: HASH_KEYS, or (unset) SECRET_KEY and its fallbacks.

    When HASH_KEYS is set, SECRET_KEY and its fallbacks still match (never make) hashes: the
    codes hashed before HASH_KEYS existed keep working while that SECRET_KEY is configured. To
    keep them across a SECRET_KEY rotation, list that SECRET_KEY in HASH_KEYS."""
    configured = [key for key in settings.HASH_KEYS if key]
    legacy = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return list(dict.fromkeys([*configured, *legacy]))


def _keyed_hash_with(key: str, value: str, purpose: str) -> str:
    # Per-purpose key derived as it always was from SECRET_KEY, so HASH_KEYS=<SECRET_KEY> gives
    # the very same hashes.
    derived = hashlib.sha256(f"{purpose}:{key}".encode()).digest()
    return hmac.new(derived, value.encode(), hashlib.sha256).hexdigest()


def keyed_hash(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of a secret for lookups: a leaked table alone cannot be brute-forced. Made
    with the newest hash key; look it up with `keyed_hashes` (`field__in=`)."""
    return _keyed_hash_with(hash_keys()[0], value, purpose)


def keyed_hashes(value: str, *, purpose: str) -> list[str]:
    """The hash of `value` under every configured hash key, newest first: what a lookup
    matches (`code_hash__in=keyed_hashes(code, purpose=...)`), so a code hashed under a key that
    is no longer the newest (a rotated HASH_KEYS, or SECRET_KEY in SECRET_KEY_FALLBACKS) works."""
    return [_keyed_hash_with(key, value, purpose) for key in hash_keys()]


# --- Archives (offboarding exports) ------------------------------------------------------------
#
# Envelope encryption in a chunked AEAD stream, so an archive of any size is sealed and opened in
# constant memory. Each archive gets a fresh random 256-bit data key; the key ring above wraps it
# (Fernet), so the archive opens with any key still in FIELD_ENCRYPTION_KEYS — keep retired keys
# until the archives sealed under them are gone.
#
#   header = MAGIC | len(wrapped key) (2 bytes, big-endian) | wrapped key | nonce prefix (7 bytes)
#   chunk  = AES-256-GCM(data key, nonce = prefix | counter (4 bytes) | final (1 byte),
#                        plaintext, associated data = header)
#
# Every chunk but the last holds exactly ARCHIVE_CHUNK_SIZE plaintext bytes; the last holds 0 to
# ARCHIVE_CHUNK_SIZE and is the only one sealed with final = 1 (the STREAM construction of
# Hoang, Reyhanitabar, Rogaway and Vizár, "Online authenticated-encryption and its nonce-reuse
# misuse-resistance", CRYPTO 2015): reordered, dropped, truncated or extended chunks and a
# swapped header all fail authentication.

ARCHIVE_MAGIC = b"CSUARC1\n"
ARCHIVE_CHUNK_SIZE = 64 * 1024
_TAG_SIZE = 16
_NONCE_PREFIX_SIZE = 7


class ArchiveSource(Protocol):
    def read(self, size: int, /) -> bytes: ...


class ArchiveSink(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> None: ...


class ArchiveCorrupt(Exception):
    """The bytes are not an archive sealed by `ArchiveEncryptor` under a configured key, or were
    altered, truncated or extended."""


def _chunk_nonce(prefix: bytes, counter: int, *, final: bool) -> bytes:
    if counter >= 2**32:
        raise ArchiveCorrupt("Archive has too many chunks.")
    return prefix + struct.pack(">IB", counter, 1 if final else 0)


class ArchiveEncryptor:
    """A write-only binary stream that seals what is written into `sink` (see the format above).

    `close()` seals the final chunk and must be called once everything is written; it does not
    close `sink`. Nothing is written to `sink` in plaintext.
    """

    def __init__(self, sink: ArchiveSink) -> None:
        data_key = AESGCM.generate_key(bit_length=256)
        wrapped = _fernet().encrypt(data_key)
        self._prefix = os.urandom(_NONCE_PREFIX_SIZE)
        self._header = ARCHIVE_MAGIC + struct.pack(">H", len(wrapped)) + wrapped + self._prefix
        self._aead = AESGCM(data_key)
        self._sink = sink
        self._buffer = bytearray()
        self._counter = 0
        self._closed = False
        sink.write(self._header)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed archive")
        self._buffer += data
        # Strictly more than a chunk: whatever is left at close() (0..CHUNK bytes) is the final one.
        while len(self._buffer) > ARCHIVE_CHUNK_SIZE:
            self._seal(bytes(self._buffer[:ARCHIVE_CHUNK_SIZE]), final=False)
            del self._buffer[:ARCHIVE_CHUNK_SIZE]
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        if not self._closed:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True
            self._sink.flush()

    @property
    def closed(self) -> bool:
        return self._closed

    def _seal(self, plaintext: bytes, *, final: bool) -> None:
        nonce = _chunk_nonce(self._prefix, self._counter, final=final)
        self._sink.write(self._aead.encrypt(nonce, plaintext, self._header))
        self._counter += 1


def _read_exactly(source: ArchiveSource, size: int) -> bytes:
    # Storage backends (S3 streaming bodies) may return short reads before the end.
    parts, remaining = [], size
    while remaining:
        part = source.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def archive_key_index(source: ArchiveSource) -> int | None:
    """Which FIELD_ENCRYPTION_KEYS key (0 is the newest) wraps the data key of the archive
    `source` starts with, or None when none does or it is not an archive. Reads the header only.

    An archive cannot be re-wrapped under a newer key (the header is every chunk's associated
    data), so its key stays configured as long as the archive is kept (`check_keys`)."""
    magic = _read_exactly(source, len(ARCHIVE_MAGIC) + 2)
    if len(magic) != len(ARCHIVE_MAGIC) + 2 or not magic.startswith(ARCHIVE_MAGIC):
        return None
    (wrapped_size,) = struct.unpack(">H", magic[len(ARCHIVE_MAGIC) :])
    wrapped = _read_exactly(source, wrapped_size)
    return key_index(wrapped) if len(wrapped) == wrapped_size else None


class ArchiveDecryptor:
    """Opens an archive sealed by `ArchiveEncryptor`, chunk by chunk, from `source`.

    The header is read and its data key unwrapped on construction (`ArchiveCorrupt` at once when
    no configured key opens it); iterating yields the plaintext in order and raises
    `ArchiveCorrupt` on the first chunk that fails authentication or when the stream ends
    without its final chunk.
    """

    def __init__(self, source: ArchiveSource) -> None:
        self._source = source
        magic = _read_exactly(source, len(ARCHIVE_MAGIC) + 2)
        if len(magic) != len(ARCHIVE_MAGIC) + 2 or not magic.startswith(ARCHIVE_MAGIC):
            raise ArchiveCorrupt("Not an encrypted archive.")
        (wrapped_size,) = struct.unpack(">H", magic[len(ARCHIVE_MAGIC) :])
        wrapped = _read_exactly(source, wrapped_size)
        prefix = _read_exactly(source, _NONCE_PREFIX_SIZE)
        if len(wrapped) != wrapped_size or len(prefix) != _NONCE_PREFIX_SIZE:
            raise ArchiveCorrupt("Truncated archive header.")
        try:
            data_key = _fernet().decrypt(wrapped)
        except InvalidToken as exc:
            raise ArchiveCorrupt("No configured key opens this archive.") from exc
        self._header = magic + wrapped + prefix
        self._prefix = prefix
        self._aead = AESGCM(data_key)

    def __iter__(self) -> Iterator[bytes]:
        block_size = ARCHIVE_CHUNK_SIZE + _TAG_SIZE
        counter = 0
        block = _read_exactly(self._source, block_size)
        while True:
            following = _read_exactly(self._source, block_size) if len(block) == block_size else b""
            final = not following
            try:
                yield self._aead.decrypt(
                    _chunk_nonce(self._prefix, counter, final=final), block, self._header
                )
            except InvalidTag as exc:
                raise ArchiveCorrupt("Archive chunk failed authentication.") from exc
            if final:
                return
            block, counter = following, counter + 1


__all__ = [
    "ARCHIVE_CHUNK_SIZE",
    "ARCHIVE_MAGIC",
    "ArchiveCorrupt",
    "ArchiveDecryptor",
    "ArchiveEncryptor",
    "ArchiveSink",
    "ArchiveSource",
    "archive_key_index",
    "InvalidToken",
    "decrypt",
    "encrypt",
    "encryption_key_count",
    "hash_keys",
    "key_index",
    "keyed_hash",
    "keyed_hashes",
    "reencrypt",
]
