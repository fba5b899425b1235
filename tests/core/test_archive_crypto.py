"""Archive encryption (core.crypto): a chunked AEAD stream whose data key the key ring wraps."""

from __future__ import annotations

import io
import os

import pytest
from cryptography.fernet import Fernet

from core.crypto import ARCHIVE_CHUNK_SIZE, ArchiveCorrupt, ArchiveDecryptor, ArchiveEncryptor

CHUNK = ARCHIVE_CHUNK_SIZE
SEALED_CHUNK = CHUNK + 16  # AES-GCM tag


def seal(plaintext: bytes, *, write_size: int = 1000) -> bytes:
    sink = io.BytesIO()
    encryptor = ArchiveEncryptor(sink)
    for start in range(0, len(plaintext), write_size):
        encryptor.write(plaintext[start : start + write_size])
    encryptor.close()
    return sink.getvalue()


def opened(sealed: bytes) -> bytes:
    return b"".join(ArchiveDecryptor(io.BytesIO(sealed)))


class TrickleReader:
    """A source that returns at most 1000 bytes per read, as streaming storage bodies may."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, size: int) -> bytes:
        return self.stream.read(min(size, 1000))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7])
def test_archives_round_trip_at_every_chunk_boundary(size: int) -> None:
    plaintext = os.urandom(size)
    sealed = seal(plaintext)
    assert opened(sealed) == plaintext
    assert b"".join(ArchiveDecryptor(TrickleReader(sealed))) == plaintext


def test_each_archive_has_its_own_data_key() -> None:
    plaintext = b"the same export twice" * 100
    first, second = seal(plaintext), seal(plaintext)
    assert first != second
    assert first[-200:] != second[-200:]


def body_start(sealed: bytes, size: int) -> int:
    chunks = size // CHUNK + (0 if size % CHUNK == 0 and size else 1)
    return len(sealed) - size - 16 * chunks


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s, b: s[: len(s) - SEALED_CHUNK], id="last-whole-chunk-dropped"),
        pytest.param(lambda s, b: s[:-1], id="last-byte-dropped"),
        pytest.param(lambda s, b: s + s[-SEALED_CHUNK:], id="final-chunk-repeated"),
        pytest.param(
            lambda s, b: (
                s[:b]
                + s[b + SEALED_CHUNK : b + 2 * SEALED_CHUNK]
                + s[b : b + SEALED_CHUNK]
                + s[b + 2 * SEALED_CHUNK :]
            ),
            id="chunks-swapped",
        ),
        pytest.param(lambda s, b: s[:b], id="header-only"),
        pytest.param(lambda s, b: s[:8] + s[9:], id="header-damaged"),
        pytest.param(lambda s, b: b"PK\x03\x04" + s, id="not-an-archive"),
    ],
)
def test_altered_archives_do_not_open(damage) -> None:  # noqa: ANN001
    size = 3 * CHUNK
    sealed = seal(os.urandom(size))
    with pytest.raises(ArchiveCorrupt):
        opened(damage(sealed, body_start(sealed, size)))


def test_a_chunk_moved_between_archives_does_not_open() -> None:
    size = 2 * CHUNK + 10
    first, second = seal(os.urandom(size)), seal(os.urandom(size))
    start = body_start(first, size)
    spliced = first[:start] + second[body_start(second, size) :]
    with pytest.raises(ArchiveCorrupt):
        opened(spliced)


def test_archives_open_with_any_configured_key_only(settings) -> None:  # noqa: ANN001
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    sealed = seal(b"export")
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert opened(sealed) == b"export"
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    with pytest.raises(ArchiveCorrupt, match="No configured key"):
        ArchiveDecryptor(io.BytesIO(sealed))
