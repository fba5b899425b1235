"""What makes an offboarding archive self-sufficient, and bringing a clinic back from one
(issue 21, part 3).

An archive (tenants.lifecycle.clinic_export) holds, besides the clinic schema's tables:
- `public/<table>.jsonl`: the clinic's rows in the public schema (the clinic and its hosts, its
  members' user rows, memberships, invitations, the subscription with its plan changes, usage
  records, invoices and their lines). The purge removes the memberships and the subscription
  with the clinic; users and invoices stay. A person's credentials are not clinic data and
  never leave in an archive: user rows go without their password hash (an imported user whose
  account was deleted meanwhile sets a password by reset), TOTP secrets and recovery codes stay
  with the user;
- `plaintext/<table>.<column>.jsonl`: every encrypted value, decrypted (`{"pk", "value"}`), so
  the archive opens with whatever key seals it, and not also with the keys of the day (the
  archive as a whole is sealed: tenants.lifecycle).

`clinic_import` builds the clinic back from it in one transaction: clinic row and hosts, a new
schema from the current template, every archived row (sync versions kept as they were), the
public rows, encrypted values re-encrypted under today's newest key, its invoices re-attached,
and a new sync epoch (devices reset and download again). Users that exist keep their row.

The public tables are named here (the archive must say exactly what it holds); a test checks
that every public table with a key to the clinic is either exported or knowingly left out.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import connection, transaction

from core import crypto
from core.errors import ApplicationError
from core.keys import encrypted_columns
from tenants.db import table_columns
from tenants.hooks import clinic_schema_created
from tenants.models import Clinic, ClinicStatus
from tenants.queues import clinic_queue_subscribe
from tenants.selectors import clinic_host_cache_clear
from tenants.services import schema_name_for_slug
from tenants.snapshot import SCHEMA_LOCK_KEY, schema_migrate, snapshot_current, snapshot_replay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublicTable:
    """One public table's rows of a clinic: `where` selects them (`%(clinic)s` is its id), and
    `on_import` is how they come back: `insert` (gone with the clinic), `keep` (insert only
    what is missing: rows that outlive the clinic, e.g. users), or `attach` (invoices)."""

    table: str
    where: str
    on_import: str = "insert"
    # What each row becomes in the archive (`t` is the row).
    select: str = "row_to_json(t)::text"


_MEMBERS = "SELECT user_id FROM accounts_membership WHERE clinic_id = %(clinic)s"
PUBLIC_TABLES = (
    PublicTable("tenants_clinic", "id = %(clinic)s"),
    PublicTable("tenants_domain", "tenant_id = %(clinic)s"),
    PublicTable(
        "accounts_user",
        f"id IN ({_MEMBERS})",
        on_import="keep",
        select="""(to_jsonb(t) || '{"password": "!"}'::jsonb)::text""",  # "!": no usable password
    ),
    PublicTable("accounts_membership", "clinic_id = %(clinic)s"),
    PublicTable("accounts_invitation", "clinic_id = %(clinic)s"),
    PublicTable("billing_subscription", "clinic_id = %(clinic)s"),
    PublicTable(
        "billing_planchange",
        "subscription_id IN (SELECT id FROM billing_subscription WHERE clinic_id = %(clinic)s)",
    ),
    PublicTable("billing_usagerecord", "clinic_id = %(clinic)s"),
    PublicTable("billing_invoice", "clinic_id = %(clinic)s", on_import="attach"),
    PublicTable(
        "billing_invoiceline",
        "invoice_id IN (SELECT id FROM billing_invoice WHERE clinic_id = %(clinic)s)",
        on_import="keep",
    ),
)
# Public tables with a key to the clinic that the archive leaves out, and why.
PUBLIC_TABLES_LEFT_OUT = {
    "tenants_clinicdue": "recomputed by the reminder dispatcher",
    "tenants_clinicduehint": "recomputed by the reminder dispatcher",
}


def _jsonl(cursor: Any) -> Iterator[bytes]:
    for (line,) in cursor:
        yield line.encode() + b"\n"


def public_rows_write(*, archive: zipfile.ZipFile, clinic: Clinic) -> dict[str, dict[str, Any]]:
    """Write the clinic's public rows into the archive; returns their manifest entries."""
    entries = {}
    for spec in PUBLIC_TABLES:
        digest, rows, buffer = hashlib.sha256(), 0, io.BytesIO()
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT {spec.select} FROM public."{spec.table}" t WHERE {spec.where} ORDER BY 1',  # noqa: S608
                {"clinic": clinic.pk},
            )
            for data in _jsonl(cursor):
                digest.update(data)
                buffer.write(data)
                rows += 1
        archive.writestr(f"public/{spec.table}.jsonl", buffer.getvalue())
        entries[spec.table] = {"rows": rows, "sha256": digest.hexdigest()}
    return entries


def plaintext_write(*, archive: zipfile.ZipFile, clinic: Clinic) -> dict[str, dict[str, int]]:
    """Write every encrypted value of the clinic's schema, decrypted; returns per column how
    many values were written and how many no configured key opened (those stay ciphertext)."""
    entries = {}
    schema = clinic.schema_name
    for column in encrypted_columns(tenant=True):
        pk = column.model._meta.pk.column
        where = f"\"{column.column}\" <> ''"
        written = unreadable = 0
        buffer = io.BytesIO()
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT "{pk}"::text, "{column.column}" FROM "{schema}"."{column.table}" '  # noqa: S608
                f"WHERE {where} ORDER BY 1"
            )
            for key, ciphertext in cursor:
                try:
                    value: str | None = crypto.decrypt(ciphertext)
                except crypto.InvalidToken:
                    value, unreadable = None, unreadable + 1
                buffer.write(
                    json.dumps({"pk": key, "value": value, "ciphertext": ciphertext}).encode() + b"\n"
                )
                written += 1
        name = f"{column.table}.{column.column}"
        archive.writestr(f"plaintext/{name}.jsonl", buffer.getvalue())
        entries[name] = {"rows": written, "unreadable": unreadable}
    return entries


# --- Import --------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    clinic: str
    schema: str
    tables: dict[str, int] = field(default_factory=dict)
    public: dict[str, int] = field(default_factory=dict)
    users_kept: int = 0  # users that outlived the clinic keep their row as it is now
    reencrypted: int = 0
    invoices_attached: int = 0
    skipped: list[str] = field(default_factory=list)  # tables and columns the code no longer has


class ImportRefused(Exception):
    """The archive cannot be imported (named reason); nothing was changed."""


def _read(archive: zipfile.ZipFile, name: str) -> list[str]:
    try:
        data = archive.read(name)
    except KeyError as exc:
        raise ImportRefused(f"the archive has no {name}") from exc
    return data.decode().splitlines()


def _checked(archive: zipfile.ZipFile, name: str, entry: dict[str, Any]) -> list[str]:
    data = archive.read(name) if name in archive.namelist() else b""
    if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data.splitlines()) != entry.get("rows"):
        raise ImportRefused(f"{name} does not match the manifest")
    return data.decode().splitlines()



def _insert(
    schema: str,
    table: str,
    lines: list[str],
    *,
    keep_existing: bool = False,
    where: str = "",
    dropped: list[str] | None = None,
) -> int:
    """Insert archived rows (JSON objects) into `schema.table`, batch by batch; columns the
    archive lacks take their database default, and archived columns the table no longer has
    are named in `dropped` (never silently). Names come from the catalog, quoted."""
    if not lines:
        return 0
    columns = table_columns(schema, table)
    archived = set(json.loads(lines[0]))
    shared = [column for column in columns if column in archived]
    if dropped is not None:
        dropped += [f"{table}.{column}" for column in sorted(archived - set(columns))]
    names = ", ".join(f'"{column}"' for column in shared)
    conflict = " ON CONFLICT DO NOTHING" if keep_existing else ""
    inserted = 0
    for start in range(0, len(lines), 1000):
        batch = "[" + ",".join(lines[start : start + 1000]) + "]"
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{schema}"."{table}" ({names}) SELECT {names} '  # noqa: S608
                f'FROM json_populate_recordset(NULL::"{schema}"."{table}", %s::json) r {where}{conflict}',
                [batch],
            )
            inserted += cursor.rowcount
    return inserted


def _sequences_reset(schema: str, table: str) -> None:
    with connection.cursor() as cursor:
        for column in table_columns(schema, table):
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [f'"{schema}"."{table}"', column])
            (sequence,) = cursor.fetchone()
            if sequence:
                cursor.execute(
                    f'SELECT setval(%s, COALESCE(max("{column}"), 1), max("{column}") IS NOT NULL) '  # noqa: S608
                    f'FROM "{schema}"."{table}"',
                    [sequence],
                )


def _tenant_tables(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [schema],
        )
        return sorted(name for (name,) in cursor.fetchall())


def clinic_import(*, source: IO[bytes], status: str = ClinicStatus.ACTIVE) -> ImportReport:
    """Bring a purged clinic back from its archive's plaintext zip (`source`, seekable), in one
    transaction; raises ImportRefused (nothing changed) when the archive does not check out or
    its clinic (slug or schema) exists.

    The new schema comes from the current template; archived rows fill it (a column the
    archive lacks takes its default; a table the code no longer has is reported and skipped).
    Sync versions are kept (`csu.sync_skip_version`), and the clinic gets a new sync epoch
    (tenants.hooks.clinic_schema_created), so every device resets and downloads again.
    """
    with zipfile.ZipFile(source) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        if "public" not in manifest:
            raise ImportRefused("the archive predates self-sufficient archives (no public rows)")
        clinic_lines = _checked(archive, "public/tenants_clinic.jsonl", manifest["public"]["tenants_clinic"])
        if len(clinic_lines) != 1:
            raise ImportRefused("the archive names no single clinic")
        archived_clinic = json.loads(clinic_lines[0])
        slug, schema = archived_clinic["slug"], archived_clinic["schema_name"]
        try:  # names that reach SQL are checked, even in an archive sealed with our keys
            expected = schema_name_for_slug(slug)
        except ApplicationError as exc:
            raise ImportRefused(f"the archive's clinic address {slug!r} is not valid") from exc
        if schema != expected:
            raise ImportRefused(f"the archive's schema {schema!r} does not belong to its clinic {slug!r}")
        report = ImportReport(clinic=slug, schema=schema)
        snapshot = snapshot_current()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
                cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
                schema_taken = cursor.fetchone() is not None
            if (
                schema_taken
                or Clinic.objects.filter(slug=slug).exists()
                or Clinic.objects.filter(pk=archived_clinic["id"]).exists()
            ):
                raise ImportRefused(f"clinic {slug} exists; a clinic is imported only once it is gone")
            with connection.cursor() as cursor:
                # The archived rows keep their sync versions: the sync trigger stamps none.
                cursor.execute("SET LOCAL csu.sync_skip_version = 'on'")
                # Rows go in table by table: their foreign keys are checked at the end.
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            _insert("public", "tenants_clinic", clinic_lines)
            Clinic.objects.filter(pk=archived_clinic["id"]).update(
                status=ClinicStatus.PROVISIONING,
                offboarding_started_at=None,
                offboarding_archive="",
                offboarding_archive_sha256="",
            )
            if snapshot is not None:
                snapshot_replay(snapshot=snapshot, schema_name=schema)
            else:
                schema_migrate(schema)
            current = set(_tenant_tables(schema))
            for table, entry in sorted(manifest["tables"].items()):
                lines = _checked(archive, f"tables/{table}.jsonl", entry)
                if table == "django_migrations":
                    continue  # the schema is at the code's migration state
                if table not in current:
                    report.skipped.append(table)
                    continue
                with connection.cursor() as cursor:
                    # The template's seed rows give way to the archived ones.
                    cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{schema}"."{table}")')  # noqa: S608
                    if cursor.fetchone()[0]:
                        cursor.execute(f'DELETE FROM "{schema}"."{table}"')  # noqa: S608
                report.tables[table] = _insert(schema, table, lines, dropped=report.skipped)
                _sequences_reset(schema, table)
            for spec in PUBLIC_TABLES[1:]:
                lines = _checked(archive, f"public/{spec.table}.jsonl", manifest["public"][spec.table])
                if spec.on_import == "attach":
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f'UPDATE public."{spec.table}" SET clinic_id = %s '  # noqa: S608
                            "WHERE billed_clinic_id = %s AND clinic_id IS NULL",
                            [archived_clinic["id"], archived_clinic["id"]],
                        )
                        report.invoices_attached = cursor.rowcount
                    report.public[spec.table] = _insert("public", spec.table, lines, keep_existing=True)
                    continue
                where = ""
                if spec.table == "accounts_membership":
                    # Only for users there are (an address taken by someone else since is reported).
                    where = "WHERE EXISTS (SELECT 1 FROM public.accounts_user u WHERE u.id = r.user_id)"
                inserted = _insert(
                    "public",
                    spec.table,
                    lines,
                    keep_existing=spec.on_import == "keep",
                    where=where,
                    dropped=report.skipped,
                )
                report.public[spec.table] = inserted
                if spec.table == "accounts_user":
                    report.users_kept = len(lines) - inserted
                _sequences_reset("public", spec.table)
            report.reencrypted = _plaintext_restore(archive, schema=schema)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL csu.sync_skip_version = 'off'")
            clinic_schema_created(schema)  # e.g. a new sync epoch: devices reset
            Clinic.objects.filter(pk=archived_clinic["id"]).update(status=status)
            with connection.cursor() as cursor:
                # Django's foreign keys are deferred: check them here, not at a commit that
                # would fail after the report was made.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # a caller's transaction goes on as before
            missing = _members_missing(archived_clinic["id"], archive, manifest)
            if missing:
                report.skipped.append(
                    f"{missing} memberships (their user's address belongs to another account now)"
                )
    clinic = Clinic.objects.get(pk=archived_clinic["id"])
    transaction.on_commit(lambda: clinic_host_cache_clear(clinic=clinic))
    transaction.on_commit(lambda: clinic_queue_subscribe(schema))
    logger.info("clinic %s imported from its archive (%s tables)", slug, len(report.tables))
    return report


def _members_missing(clinic_id: str, archive: zipfile.ZipFile, manifest: dict[str, Any]) -> int:
    archived = len(_read(archive, "public/accounts_membership.jsonl"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.accounts_membership WHERE clinic_id = %s", [clinic_id])
        (present,) = cursor.fetchone()
    return max(archived - int(present), 0)


def _plaintext_restore(archive: zipfile.ZipFile, *, schema: str) -> int:
    """Encrypt every archived plaintext under today's newest key, where the row still holds the
    archived ciphertext (rows that outlived the clinic keep what they have now)."""
    changed = 0
    for column in encrypted_columns(tenant=True):
        name = f"plaintext/{column.table}.{column.column}.jsonl"
        if name not in archive.namelist():
            continue
        pk = column.model._meta.pk.column
        for line in archive.read(name).decode().splitlines():
            entry = json.loads(line)
            if entry["value"] is None:
                continue  # no key opened it at export: the ciphertext stays
            with connection.cursor() as cursor:
                cursor.execute(
                    f'UPDATE "{schema}"."{column.table}" SET "{column.column}" = %s '  # noqa: S608
                    f'WHERE "{pk}"::text = %s AND "{column.column}" = %s',
                    [crypto.encrypt(entry["value"]), entry["pk"], entry["ciphertext"]],
                )
                changed += cursor.rowcount
    return changed


__all__ = [
    "PUBLIC_TABLES",
    "PUBLIC_TABLES_LEFT_OUT",
    "ImportRefused",
    "ImportReport",
    "clinic_import",
    "plaintext_write",
    "public_rows_write",
]
