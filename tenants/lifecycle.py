"""Clinic lifecycle: signup, settings, suspension, offboarding (export, then drop)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import IO, Any, NamedTuple

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import connection, transaction
from django.utils import timezone

from core.crypto import ArchiveCorrupt, ArchiveDecryptor, ArchiveEncryptor
from core.errors import ApplicationError, ErrorCode
from core.text import single_line_validate
from tenants.archive import plaintext_write, public_rows_write
from tenants.models import Clinic, ClinicStatus
from tenants.selectors import clinic_host_cache_clear
from tenants.services import RESERVED_SLUGS, clinic_delete, clinic_slug_validate

logger = logging.getLogger(__name__)


def clinic_slug_availability(*, slug: str) -> tuple[bool, str | None]:
    """Whether a slug can be signed up now, and why not (a stable code). Creates nothing."""
    try:
        clinic_slug_validate(slug)
    except ApplicationError as exc:
        return False, exc.code
    if slug in RESERVED_SLUGS or Clinic.objects.filter(slug=slug).exists():
        return False, "slug_taken"
    return True, None


CLINIC_SETTINGS_FIELDS = (
    "name",
    "timezone",
    "locale",
    "default_diary_mode",
    "diary_late_entry_days",
    "reminder_default_time",
    "mfa_required",
)


def clinic_settings_apply(*, clinic: Clinic, **changes: Any) -> bool:
    """Validate and store clinic settings; returns whether `mfa_required` was just switched on
    (then the caller revokes the staff's earlier credentials: `onboarding.services`)."""
    unknown = set(changes) - set(CLINIC_SETTINGS_FIELDS)
    if unknown:
        raise ApplicationError(code=ErrorCode.VALIDATION_ERROR, field=sorted(unknown)[0], detail="Unknown field.")
    if "name" in changes:
        single_line_validate(changes["name"], field="name")
    mfa_switched_on = changes.get("mfa_required") is True and not clinic.mfa_required
    for field, value in changes.items():
        setattr(clinic, field, value)
    clinic.full_clean(validate_unique=False, exclude=["schema_name"])
    clinic.save(update_fields=list(changes))
    _host_cache_clear_now_and_on_commit(clinic)
    return mfa_switched_on


def _host_cache_clear_now_and_on_commit(clinic: Clinic) -> None:
    clinic_host_cache_clear(clinic=clinic)
    transaction.on_commit(lambda: clinic_host_cache_clear(clinic=clinic))


def _status_change(*, clinic: Clinic, allowed_from: tuple[str, ...], to: str) -> Clinic:
    with transaction.atomic():
        locked: Clinic = Clinic.objects.select_for_update().get(pk=clinic.pk)
        if locked.status not in allowed_from:
            raise ApplicationError(
                code=ErrorCode.INVALID_STATUS,
                status_code=409,
                detail=f"A clinic that is {locked.status} cannot become {to}.",
            )
        locked.status = to
        locked.save(update_fields=["status"])
    _host_cache_clear_now_and_on_commit(locked)
    logger.info("clinic %s is now %s", locked.slug, to)
    return locked


def clinic_suspend(*, clinic: Clinic) -> Clinic:
    """Portal read-only, no new enrollments; patients keep recording (patient safety)."""
    return _status_change(clinic=clinic, allowed_from=(ClinicStatus.ACTIVE,), to=ClinicStatus.SUSPENDED)


def clinic_reactivate(*, clinic: Clinic) -> Clinic:
    """A suspended clinic becomes active. An offboarding clinic is not reactivated (409): its
    way back is `clinic_offboard_cancel`, which also discards the export."""
    return _status_change(clinic=clinic, allowed_from=(ClinicStatus.SUSPENDED,), to=ClinicStatus.ACTIVE)


def clinic_offboard_request(*, clinic: Clinic) -> Clinic:
    """Start offboarding: the clinic becomes `offboarding` (read-only) at once, and its export
    is enqueued on the platform queue; the grace period runs from now.

    Read-only before the export, never after: an export taken while the clinic still accepted
    writes would miss them, and the purge would drop them unexported (issue 21). Asked again of
    an offboarding clinic, it exports anew (the grace period keeps its start): the way out when
    the purge refused a missing or damaged archive (the schema is still there)."""
    from core.outbox import outbox_enqueue

    allowed = (ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED, ClinicStatus.OFFBOARDING)
    with transaction.atomic():
        locked = _clinic_lock(clinic)
        if locked.status not in allowed:
            raise ApplicationError(
                code=ErrorCode.INVALID_STATUS,
                status_code=409,
                detail=f"A clinic that is {locked.status} cannot be offboarded.",
            )
        if locked.status != ClinicStatus.OFFBOARDING:
            locked.status = ClinicStatus.OFFBOARDING
            locked.offboarding_started_at = timezone.now()
            locked.save(update_fields=["status", "offboarding_started_at"])
        # Through the outbox: a broker outage must not leave the request answered and the clinic
        # never exported (the platform outbox is relayed every minute).
        outbox_enqueue("tenants.clinic_offboard", clinic_id=str(locked.pk))
    _host_cache_clear_now_and_on_commit(locked)
    logger.info("clinic %s is now offboarding; export enqueued", locked.slug)
    return locked


def clinic_offboard_cancel(*, clinic: Clinic, to: str = ClinicStatus.ACTIVE) -> Clinic:
    """Cancel an offboarding during its grace period: the clinic becomes `to` (active, or
    suspended when it should stay read-only, e.g. for non-payment) and its export is deleted.

    Only an offboarding clinic can be cancelled (409 `invalid_status` otherwise); a purged
    clinic comes back only with `manage.py clinic_import <archive>`. An export still running
    records nothing once the clinic is no longer offboarding (`clinic_offboard`), so a cancel
    always wins over an in-flight export. The archive is deleted after commit: it holds the
    clinic's data, and nothing will purge against it any more.
    """
    if to not in (ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED):
        raise ApplicationError(
            code=ErrorCode.INVALID_STATUS, field="to", detail="A cancelled offboarding returns to active or suspended."
        )
    with transaction.atomic():
        locked = _clinic_lock(clinic)
        if locked.status != ClinicStatus.OFFBOARDING:
            raise ApplicationError(
                code=ErrorCode.INVALID_STATUS,
                status_code=409,
                detail=f"Only an offboarding clinic can cancel offboarding; this one is {locked.status}.",
            )
        archive = locked.offboarding_archive
        locked.status = to
        locked.offboarding_started_at = None
        locked.offboarding_archive = ""
        locked.offboarding_archive_sha256 = ""
        locked.save(
            update_fields=["status", "offboarding_started_at", "offboarding_archive", "offboarding_archive_sha256"]
        )
        if archive:
            transaction.on_commit(lambda: _archive_delete_quietly(archive))
    _host_cache_clear_now_and_on_commit(locked)
    logger.info("clinic %s offboarding cancelled; now %s", locked.slug, to)
    return locked


def _clinic_lock(clinic: Clinic) -> Clinic:
    """The clinic's row, locked to the end of the transaction; 404 when it is gone (purged
    while the caller held an older copy), never a 500."""
    locked: Clinic | None = Clinic.objects.select_for_update().filter(pk=clinic.pk).first()
    if locked is None:
        raise ApplicationError(code=ErrorCode.NOT_FOUND, status_code=404, detail="No such clinic.")
    return locked


def _archive_delete_quietly(name: str) -> None:
    try:
        _archive_storage().delete(name)
    except Exception as exc:  # the cancel stands; an orphaned archive is only storage
        logger.error("archive %s of a cancelled offboarding not deleted: %s", name, type(exc).__name__)


def _tenant_tables(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
            [schema],
        )
        return [name for (name,) in cursor.fetchall()]


# Offboarding archives go through this named storage (settings.STORAGES): durable and shared by
# every process, so the web container serves what a worker wrote, across deploys.
ARCHIVE_STORAGE = "archives"
_READ_SIZE = 1024 * 1024


def _archive_storage() -> Storage:
    return storages[ARCHIVE_STORAGE]


class StoredArchive(NamedTuple):
    name: str  # in the archives storage
    sha256: str  # of the stored (encrypted) bytes


def clinic_export(*, clinic: Clinic) -> StoredArchive:
    """Export every table of the clinic's schema as JSON Lines into a zip, with a manifest of
    row counts and SHA-256 checksums, plus the clinic's public rows and its encrypted values
    decrypted (tenants.archive: the archive stands alone), and store it encrypted in the
    archives storage.

    Reads one consistent snapshot (REPEATABLE READ). The zip is sealed as it is written
    (core.crypto.ArchiveEncryptor: a fresh data key per archive), so only ciphertext touches a
    disk, here or in storage. Returns the stored name and the SHA-256 of the stored bytes.
    """
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    schema = clinic.schema_name
    manifest: dict[str, Any] = {
        "clinic": {"id": str(clinic.pk), "slug": clinic.slug, "name": clinic.name, "schema": schema},
        "exported_at": timezone.now().isoformat(),
        "format": "one JSON object per line (PostgreSQL row_to_json)",
        "tables": {},
    }
    fresh_transaction = not connection.in_atomic_block
    with tempfile.TemporaryFile() as sealed:
        encryptor = ArchiveEncryptor(sealed)
        # zipfile writes to a stream it cannot seek (data descriptors), so nothing is buffered
        # beyond one table.
        with (
            transaction.atomic(),
            zipfile.ZipFile(encryptor, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            if fresh_transaction:  # (the offboarding task); inside a caller's transaction, it decides
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for table in _tenant_tables(schema):
                digest, rows, buffer = hashlib.sha256(), 0, io.BytesIO()
                for data in _table_lines(schema, table):
                    digest.update(data)
                    buffer.write(data)
                    rows += 1
                archive.writestr(f"tables/{table}.jsonl", buffer.getvalue())
                manifest["tables"][table] = {"rows": rows, "sha256": digest.hexdigest()}
            # Self-sufficient (tenants.archive): the clinic's public rows, and its encrypted
            # values decrypted, in the same snapshot; `clinic_import` brings it back from this.
            manifest["public"] = public_rows_write(archive=archive, clinic=clinic)
            manifest["plaintext"] = plaintext_write(archive=archive, clinic=clinic)
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        encryptor.close()
        sealed.seek(0)
        checksum = _sha256_of(sealed)
        sealed.seek(0)
        name = _archive_storage().save(
            f"offboarding/{clinic.pk}/{clinic.slug}-{stamp}.zip.enc", File(sealed, name="archive")
        )
    return StoredArchive(name=name, sha256=checksum)


def _table_lines(schema: str, table: str) -> Iterator[bytes]:
    """The table's rows as the archive holds them: one JSON object per line, in a stable order
    (the purge recomputes these to prove the schema still equals its archive)."""
    with connection.cursor() as cursor:
        # Names come from the catalog, quoted; never from input.
        cursor.execute(f'SELECT row_to_json(t)::text FROM "{schema}"."{table}" t ORDER BY 1')  # noqa: S608
        for (line,) in cursor:
            yield line.encode() + b"\n"


def _schema_fingerprint(schema: str, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Row count and SHA-256 per table, exactly as `clinic_export` writes them in the manifest."""
    fingerprint = {}
    for table in tables:
        digest, rows = hashlib.sha256(), 0
        for data in _table_lines(schema, table):
            digest.update(data)
            rows += 1
        fingerprint[table] = {"rows": rows, "sha256": digest.hexdigest()}
    return fingerprint


def _sha256_of(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_READ_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def clinic_offboard(*, clinic_id: str) -> Clinic | None:
    """Export an offboarding clinic's data and record the archive (idempotent: re-exports if
    re-run, and the new archive replaces the one recorded before).

    Only a clinic that is offboarding (`clinic_offboard_request` made it read-only first) is
    exported: a message that arrives after a cancel, or after the purge, does nothing."""
    clinic: Clinic | None = Clinic.objects.filter(pk=clinic_id).first()
    if clinic is None or clinic.status != ClinicStatus.OFFBOARDING:
        return clinic
    superseded = clinic.offboarding_archive
    archive = clinic_export(clinic=clinic)
    # Conditional: if the clinic was purged, cancelled, or another export recorded its archive
    # while this one ran, record nothing and delete nothing (the archive the purge verified must
    # survive; a cancelled clinic's export is dropped below).
    recorded = Clinic.objects.filter(
        pk=clinic.pk, offboarding_archive=superseded, status=ClinicStatus.OFFBOARDING
    ).update(
        offboarding_archive=archive.name,
        offboarding_archive_sha256=archive.sha256,
        offboarding_started_at=clinic.offboarding_started_at or timezone.now(),
    )
    if not recorded:
        logger.warning(
            "clinic %s changed during its export; archive %s left unrecorded", clinic.slug, archive.name
        )
        still = Clinic.objects.filter(pk=clinic.pk).values_list("status", flat=True).first()
        if still in (ClinicStatus.ACTIVE, ClinicStatus.SUSPENDED):  # cancelled meanwhile: no use
            transaction.on_commit(lambda: _archive_delete_quietly(archive.name))
        return clinic
    clinic.refresh_from_db()
    _host_cache_clear_now_and_on_commit(clinic)
    if superseded and superseded != archive.name:
        transaction.on_commit(lambda: _archive_storage().delete(superseded))
    logger.info("clinic %s offboarding; archive %s sha256 %s", clinic.slug, archive.name, archive.sha256)
    return clinic


class _HashingReader:
    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        return data


class _Tail:
    """The last `size` bytes written (bounded memory): the end of a zip, where its manifest and
    central directory are."""

    def __init__(self, size: int) -> None:
        self.size, self.data = size, bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.size:
            del self.data[: len(self.data) - self.size]

    def manifest(self) -> dict[str, Any] | None:
        """The archive's manifest.json, read from the tail of its plaintext zip (zipfile finds
        the central directory at the end and entries relative to it, so the cut-off start is
        never read), or None when the tail does not hold it."""
        try:
            with zipfile.ZipFile(io.BytesIO(bytes(self.data[-self.size :]))) as archive:
                manifest = json.loads(archive.read("manifest.json"))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError):
            return None
        return manifest if isinstance(manifest, dict) else None


# The manifest is written last and is small (about 100 bytes per table); a megabyte of tail
# holds it and the central directory many times over.
_MANIFEST_TAIL_SIZE = 1024 * 1024


def clinic_archive_problem(*, clinic: Clinic) -> str | None:
    """Why the clinic's archive cannot stand in for its schema yet, or None when it can.

    Security-relevant: the purge drops a schema only on None. One pass over the stored bytes
    checks both that they have the SHA-256 recorded at export and that every chunk opens with a
    key still configured (a retired key would make the archive unreadable).
    """
    return _archive_verify(clinic=clinic, plaintext=None)


def _archive_verify(*, clinic: Clinic, plaintext: _Tail | None) -> str | None:
    """`clinic_archive_problem`, also writing the decrypted zip to `plaintext` (kept in memory,
    never on disk) when given."""
    if not clinic.offboarding_archive or not clinic.offboarding_archive_sha256:
        return "archive_not_recorded"
    storage = _archive_storage()
    if not storage.exists(clinic.offboarding_archive):
        return "archive_missing"
    with storage.open(clinic.offboarding_archive, "rb") as stored:
        reader = _HashingReader(stored)
        try:
            for chunk in ArchiveDecryptor(reader):
                if plaintext is not None:
                    plaintext.write(chunk)
            readable = True
        except ArchiveCorrupt:
            readable = False
            while reader.read(_READ_SIZE):
                pass
    if reader.digest.hexdigest() != clinic.offboarding_archive_sha256:
        return "archive_checksum_mismatch"
    return None if readable else "archive_unreadable"


def clinics_purge_offboarded(*, now: Any = None) -> list[str]:
    """Drop clinics whose offboarding grace period has passed (schema, rows, domains); returns
    the slugs purged.

    Each clinic is purged on its own (`clinic_purge`): a clinic that cannot be purged yet, or
    whose purge fails, is logged for an operator (slug and reason only, no PHI), stays
    offboarding and is tried again next run, and never stops the purge of the clinics after it.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.OFFBOARDING_GRACE_DAYS)
    purged = []
    for clinic in Clinic.objects.filter(status=ClinicStatus.OFFBOARDING, offboarding_started_at__lte=cutoff):
        try:
            problem = clinic_purge(clinic=clinic)
        except Exception as exc:  # a storage or database failure must not stop the other clinics
            problem = f"purge_failed ({type(exc).__name__})"
        if problem:
            logger.error(
                "clinic %s not purged: %s; it stays offboarding until %s",
                clinic.slug,
                problem,
                "its new export is verified"
                if problem == "changed_since_export"
                else "an operator re-exports it",
            )
            continue
        purged.append(clinic.slug)
    return purged


def clinic_purge(*, clinic: Clinic) -> str | None:
    """Drop one offboarding clinic's schema and rows, only if its archive stands in for it.

    Returns None once purged, else why not (nothing dropped). Security-relevant, in order:
    1. the archive is verified (`clinic_archive_problem`: stored, recorded SHA-256, opens with
       a configured key), and its manifest is read from the decrypted stream in memory;
    2. in one transaction, the clinic row is locked and still offboarding with that archive,
       every table of the schema is locked SHARE (a writer waits, and never commits a row the
       archive lacks), and each table's row count and SHA-256 are recomputed and compared with
       the manifest: anything written since the export (`changed_since_export`) enqueues a new
       export instead, and the next run purges against it;
    3. the schema is dropped in that same transaction. Invoices stay (billing keeps its
       retained clinic record); memberships and the subscription go with the clinic row, and are
       in the archive.
    """
    from core.outbox import outbox_enqueue

    tail = _Tail(_MANIFEST_TAIL_SIZE)
    try:
        problem = _archive_verify(clinic=clinic, plaintext=tail)
    except Exception as exc:  # a storage outage: try again next run
        return f"archive_unavailable ({type(exc).__name__})"
    if problem:
        return problem
    manifest = tail.manifest()
    if manifest is None:
        return "archive_manifest_unreadable"
    if manifest.get("clinic", {}).get("id") != str(clinic.pk):
        return "archive_clinic_mismatch"
    with transaction.atomic():
        locked = (
            Clinic.objects.select_for_update()
            .filter(
                pk=clinic.pk,
                status=ClinicStatus.OFFBOARDING,
                offboarding_archive=clinic.offboarding_archive,
                offboarding_archive_sha256=clinic.offboarding_archive_sha256,
            )
            .first()
        )
        if locked is None:
            return "changed_during_purge"
        schema = locked.schema_name
        tables = _tenant_tables(schema)
        with connection.cursor() as cursor:
            # A long transaction holding a table fails this run (retried next), never stalls it.
            cursor.execute("SET LOCAL lock_timeout = '30s'")
            if tables:
                names = ", ".join(f'"{schema}"."{table}"' for table in tables)  # from the catalog
                cursor.execute(f"LOCK TABLE {names} IN SHARE MODE")
        if _schema_fingerprint(schema, tables) != manifest.get("tables"):
            outbox_enqueue("tenants.clinic_offboard", clinic_id=str(locked.pk))
            return "changed_since_export"
        archive, checksum = locked.offboarding_archive, locked.offboarding_archive_sha256
        with connection.cursor() as cursor:
            # Deferred checks pending in a caller's transaction run now: DROP refuses a table
            # with pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        clinic_delete(clinic=locked)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django's keys are, for a caller
    logger.info("clinic %s purged after offboarding; archive %s sha256 %s", clinic.slug, archive, checksum)
    return None


def archive_decrypt(*, name: str, destination: IO[bytes]) -> None:
    """Write the plaintext zip of the archive stored as `name` to `destination` (for archives
    whose clinic is gone; raises core.crypto.ArchiveCorrupt when it does not open)."""
    with _archive_storage().open(name, "rb") as stored:
        for chunk in ArchiveDecryptor(stored):
            destination.write(chunk)


def clinic_archive_open(*, clinic: Clinic, actor_id: Any) -> tuple[str, Iterator[bytes]]:
    """The clinic's export for an operator: a file name and the decrypted zip, chunk by chunk.

    The archive is verified first (`clinic_archive_problem`), so a download never ends in a
    truncated or altered zip.
    """
    if not clinic.offboarding_archive:
        raise ApplicationError(code=ErrorCode.ARCHIVE_NOT_READY, status_code=404, detail="No export archive yet.")
    problem = clinic_archive_problem(clinic=clinic)
    if problem == "archive_missing":
        raise ApplicationError(
            code=ErrorCode.ARCHIVE_MISSING, status_code=404, detail="The export archive is missing from storage."
        )
    if problem:
        raise ApplicationError(
            code=ErrorCode(problem), status_code=409, detail="The export archive failed verification; export it again."
        )
    stored = _archive_storage().open(clinic.offboarding_archive, "rb")
    try:
        decryptor = ArchiveDecryptor(stored)
    except BaseException:
        stored.close()
        raise

    def chunks() -> Iterator[bytes]:
        with stored:
            yield from decryptor

    logger.info("operator %s downloads the archive of clinic %s", actor_id, clinic.slug)
    filename = posixpath.basename(clinic.offboarding_archive).removesuffix(".enc")
    return filename, chunks()
