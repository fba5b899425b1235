"""Back up one clinic's schema and restore it in place (issue 21, `clinic_backup` and
`clinic_restore`).

A restore never drops the live schema and never leaves a half-restored one serving traffic:

1. the dump (pg_dump custom format: `clinic_backup`'s of `clinic_<slug>` alone, or the nightly
   dump of the whole database, from which only that schema is taken) must hold the schema; it is
   replayed as plain SQL by `psql --single-transaction -v ON_ERROR_STOP=1` into a
   side schema `restore_new_<slug>`. pg_restore cannot rename a schema, so the SQL is rewritten:
   in the DDL sections every whole-word mention of the schema is renamed (pg_dump qualifies
   every name; the tenant functions find their schema through TG_TABLE_SCHEMA, never by name);
   in the data section only COPY headers and setval calls are, the rows are passed untouched.
   The first error rolls the whole replay back: no side schema is left;
2. the side schema is migrated if the dump is behind the code (a dump ahead of the code is
   refused);
3. one transaction renames `clinic_<slug>` to `restore_old_<slug>` and the side schema to
   `clinic_<slug>`, and lets the higher layers act in it (the patients app starts a new sync
   epoch: every device resets, DESIGN.md §6). It first locks the live schema's tables, so each
   transaction runs wholly in one schema: before the commit the old one, after it (having
   waited for the locks) the restored one;
4. the higher layers report the public rows that no longer match the restored schema
   (memberships, enrollments, seats) and repair them on request, and list the writes made after
   the backup that only `restore_old_<slug>` holds (kept for reconciliation, never dropped here).

This module is in the tenancy layer: it knows schemas, not patient records. The other apps plug
in through `restore_participant_register` (patients does so in its AppConfig.ready).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_exists

from core.models import OutboxMessage
from tenants.db import tenant_connection
from tenants.models import Clinic
from tenants.snapshot import _pg_dump_candidates, schema_migrate

logger = logging.getLogger(__name__)

RESTORE_OLD_PREFIX = "restore_old_"
RESTORE_NEW_PREFIX = "restore_new_"
# Serializes restores of one clinic (and never lets two swap at once); not the creation lock.
RESTORE_LOCK_KEY = 0x5245_5354  # "REST"
# How long the swap waits for the live schema's tables before giving up (nothing changed then).
SWAP_LOCK_TIMEOUT = "15s"


class RestoreError(Exception):
    """The restore stopped before the swap: the live schema is untouched."""


@dataclass(frozen=True)
class RestoreContext:
    """What a participant needs: the clinic, its live schema (now the restored one), the schema
    that was live before the swap, and the side schema's name during the restore."""

    clinic: Clinic
    schema: str
    old_schema: str


@dataclass(frozen=True)
class Finding:
    """A public row that no longer matches the restored schema, and what `--repair` does."""

    kind: str
    subject: str
    detail: str
    repaired: bool = False


@dataclass
class RestoreParticipant:
    """A higher layer's part in a restore.

    - `swapped(ctx)`: runs inside the swap transaction (e.g. the new sync epoch);
    - `after(ctx)`: once the swap committed (e.g. recompute what the schema's rows decide);
    - `findings(ctx, repair)`: the public rows out of step (repaired when `repair`);
    - `later_writes(ctx)`: per table, the rows `old_schema` holds that were written after the
      backup (the restored schema does not have them).
    """

    name: str
    swapped: Callable[[RestoreContext], None]
    after: Callable[[RestoreContext], None]
    findings: Callable[[RestoreContext, bool], list[Finding]]
    later_writes: Callable[[RestoreContext], dict[str, int]]


_participants: dict[str, RestoreParticipant] = {}


def restore_participant_register(participant: RestoreParticipant) -> None:
    _participants[participant.name] = participant


@dataclass
class RestoreReport:
    clinic: str
    schema: str
    old_schema: str
    migrated: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    later_writes: dict[str, int] = field(default_factory=dict)


def restore_old_schema_name(clinic: Clinic) -> str:
    return RESTORE_OLD_PREFIX + str(clinic.schema_name).removeprefix("clinic_")


def restore_side_schema_name(clinic: Clinic) -> str:
    return RESTORE_NEW_PREFIX + str(clinic.schema_name).removeprefix("clinic_")


# --- PostgreSQL client programs ------------------------------------------------------------------


def _client_candidates(program: str) -> Iterator[str]:
    """pg_restore/psql next to the pg_dump the platform uses (PG_DUMP_PATH, the embedded server's
    bin directory, PATH, Debian's versioned directories)."""
    if program == "pg_dump":
        yield from _pg_dump_candidates()
        return
    if settings.PG_DUMP_PATH:
        sibling = Path(settings.PG_DUMP_PATH).with_name(program)
        if sibling.exists():
            yield str(sibling)
    if settings.PG_BUNDLED_BIN_DIR and (Path(settings.PG_BUNDLED_BIN_DIR) / program).exists():
        yield str(Path(settings.PG_BUNDLED_BIN_DIR) / program)
    on_path = shutil.which(program)
    if on_path:
        yield on_path
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), reverse=True):
        yield str(candidate)


def _connection_args() -> tuple[list[str], dict[str, str]]:
    db = settings.DATABASES[DEFAULT_DB_ALIAS]
    args = [f"--dbname={db['NAME']}", f"--username={db['USER']}"]
    if db.get("HOST"):
        args.append(f"--host={db['HOST']}")
    if db.get("PORT"):
        args.append(f"--port={db['PORT']}")
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or ""), "PGCONNECT_TIMEOUT": "10"}
    return args, env


def _run(program: str, args: list[str], *, stdin: str | None = None, timeout: int = 3600) -> str:
    """Run the first candidate of `program` that works; RestoreError naming each failure."""
    errors = []
    for binary in dict.fromkeys(_client_candidates(program)):
        result = subprocess.run(  # noqa: S603 (fixed argument list, no shell)
            [binary, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode == 0:
            return result.stdout
        errors.append(f"{binary}: {result.stderr.strip()[-600:]}")
        if program == "psql":
            break  # psql ran the script (and rolled it back): another binary would do the same
    raise RestoreError(f"{program} failed: " + (" | ".join(errors) or "not found"))


# --- Backup --------------------------------------------------------------------------------------


def clinic_backup(*, clinic: Clinic, path: Path) -> Path:
    """pg_dump's custom format of the clinic's schema alone (what `clinic_restore` takes).

    No owners or privileges (the restoring role owns what it creates). The file is written next
    to `path` and moved into place once complete: a failed dump never leaves a truncated file
    under the expected name."""
    args, _ = _connection_args()
    partial = path.with_name(path.name + ".partial")
    try:
        _run(
            "pg_dump",
            [
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--schema={clinic.schema_name}",
                f"--file={partial}",
                *args,
            ],
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path


# --- Restore -------------------------------------------------------------------------------------


def _dump_schemas(dump: Path) -> set[str]:
    """The schemas the dump creates, from its table of contents."""
    toc = _run("pg_restore", ["--list", str(dump)])
    return {m.group(1) for m in re.finditer(r"^\d+; \d+ \d+ SCHEMA - (\S+)", toc, flags=re.MULTILINE)}


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w$\"]){re.escape(name)}(?![\w$])")


def restore_sql(*, sections: dict[str, str], schema: str, side: str) -> str:
    """The replay script: pg_restore's plain output of each section with `schema` renamed to
    `side` (see the module docstring), refused if a mention of `schema` would be left."""
    word = _word(schema)
    out: list[str] = []
    for section in ("pre-data", "data", "post-data"):
        text = sections[section]
        if section != "data":
            out.append(word.sub(side, text))
            continue
        in_copy = False
        for line in text.split("\n"):
            if in_copy:
                in_copy = line != "\\."
                out.append(line)
                continue
            if line.startswith("COPY ") and line.endswith(" FROM stdin;"):
                in_copy = True
            out.append(word.sub(side, line))
        if in_copy:
            raise RestoreError("the dump's data section ends inside a COPY block")
    script = "\n".join(out)
    outside_rows = re.sub(r"^COPY [^\n]* FROM stdin;\n.*?^\\\.$", "", script, flags=re.MULTILINE | re.DOTALL)
    if word.search(outside_rows):
        raise RestoreError(f"{schema} is still named in the replay script after renaming")
    return script


def _side_schema_load(clinic: Clinic, dump: Path, side: str, *, whole: bool) -> None:
    """Replay the clinic's schema from `dump` into `side`. From a dump of the whole database
    (the nightly backup), only that schema is taken (`--schema`), and since pg_restore then
    leaves out the CREATE SCHEMA, it is added here."""
    only = [f"--schema={clinic.schema_name}"] if whole else []
    sections = {
        section: _run(
            "pg_restore",
            ["--no-owner", "--no-privileges", *only, f"--section={section}", "--file=-", str(dump)],
        )
        for section in ("pre-data", "data", "post-data")
    }
    if whole:
        sections["pre-data"] = f"CREATE SCHEMA {clinic.schema_name};\n" + sections["pre-data"]
    script = restore_sql(sections=sections, schema=clinic.schema_name, side=side)
    args, _ = _connection_args()
    _run(
        "psql",
        ["--no-psqlrc", "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file=-", *args],
        stdin=script,
    )


def _side_schema_migrate(side: str) -> list[str]:
    """Migrate the side schema to the code's migrations; refuse a dump ahead of the code."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{side}".django_migrations')  # noqa: S608 (our name)
        applied = {f"{app}.{name}" for app, name in cursor.fetchall()}
    known = {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).graph.nodes}
    unknown = sorted(applied - known)
    if unknown:
        raise RestoreError(f"the dump is newer than this code (unknown migrations: {', '.join(unknown[:5])})")
    schema_migrate(side)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{side}".django_migrations')  # noqa: S608 (our name)
        after = {f"{app}.{name}" for app, name in cursor.fetchall()}
    return sorted(after - applied)


def clinic_restore(*, clinic: Clinic, dump: Path, repair: bool = False) -> RestoreReport:
    """Restore `clinic`'s schema from `dump` (see the module docstring for the steps).

    Raises RestoreError before the swap for any problem (the live schema is untouched and no
    side schema is left). A `restore_old_<slug>` from an earlier restore must be reconciled and
    dropped first: it is never overwritten."""
    if connection.in_atomic_block:
        raise RestoreError("clinic_restore runs its own transactions (psql, migrations, the swap)")
    schema = clinic.schema_name
    old = restore_old_schema_name(clinic)
    side = restore_side_schema_name(clinic)
    if not dump.is_file():
        raise RestoreError(f"no such dump file: {dump}")
    schemas = _dump_schemas(dump)
    if schema not in schemas:
        raise RestoreError(f"the dump does not hold the schema {schema} (it holds {len(schemas)} others)")
    if not schema_exists(schema):
        raise RestoreError(f"the clinic's schema {schema} does not exist (restore replaces a live schema)")
    if schema_exists(old):
        raise RestoreError(
            f"{old} exists from an earlier restore: reconcile it, then DROP SCHEMA {old} CASCADE"
        )
    tenant_connection().set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{side}" CASCADE')  # a crashed earlier attempt's leftovers
    ctx = RestoreContext(clinic=clinic, schema=schema, old_schema=old)
    try:
        _side_schema_load(clinic, dump, side, whole=schemas != {schema})
        migrated = _side_schema_migrate(side)
        tenant_connection().set_schema_to_public()
        _swap(ctx, side)
    except BaseException:
        tenant_connection().set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{side}" CASCADE')
        raise
    logger.info("Restored clinic schema %s (the previous one kept as %s)", schema, old)
    for participant in _participants.values():
        participant.after(ctx)
    tenant_connection().set_schema_to_public()
    report = clinic_restore_report(clinic=clinic, repair=repair)
    report.migrated = migrated
    return report


def _swap(ctx: RestoreContext, side: str) -> None:
    """The one transaction that puts the restored schema in place.

    Renaming a schema locks none of its tables, and a statement finds its tables by name when
    it starts: a transaction that spans the rename would write partly into the old schema and
    partly into the new one. So every table of the live schema is locked first (ACCESS
    EXCLUSIVE, waiting at most SWAP_LOCK_TIMEOUT): transactions already using them finish in the
    old schema, and statements that arrive meanwhile wait, then find their tables again by name
    (PostgreSQL looks a name up again after waiting for its lock) and run in the restored one.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RESTORE_LOCK_KEY])
        cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            [ctx.schema],
        )
        tables = [row[0] for row in cursor.fetchall()]
        try:
            for table in tables:
                cursor.execute(f'LOCK TABLE "{ctx.schema}"."{table}" IN ACCESS EXCLUSIVE MODE')
        except OperationalError as exc:  # lock_timeout, or chosen as a deadlock victim
            raise RestoreError(
                f"{ctx.schema} stayed busy for {SWAP_LOCK_TIMEOUT} (a long transaction?): run the restore again"
            ) from exc
        cursor.execute("SET LOCAL lock_timeout = 0")
        cursor.execute(f'ALTER SCHEMA "{ctx.schema}" RENAME TO "{ctx.old_schema}"')
        cursor.execute(f'ALTER SCHEMA "{side}" RENAME TO "{ctx.schema}"')
        # What the outbox published after the backup is not published again from the restored
        # rows (a reminder or an email sent twice).
        outbox = OutboxMessage._meta.db_table
        cursor.execute(
            f'UPDATE "{ctx.schema}"."{outbox}" n SET sent_at = o.sent_at FROM "{ctx.old_schema}"."{outbox}" o '  # noqa: S608
            "WHERE n.id = o.id AND n.sent_at IS NULL AND o.sent_at IS NOT NULL"
        )
        for participant in _participants.values():
            participant.swapped(ctx)


def clinic_restore_report(*, clinic: Clinic, repair: bool = False) -> RestoreReport:
    """After a restore (the command's `--report`, any time later): the public rows out of step
    with the clinic's schema (repaired when `repair`) and the writes only `restore_old_<slug>`
    holds: per synced table, rows written after the backup (the participants); per other table
    with an `id`, rows whose id the restored schema lacks."""
    old = restore_old_schema_name(clinic)
    ctx = RestoreContext(clinic=clinic, schema=clinic.schema_name, old_schema=old)
    report = RestoreReport(clinic=clinic.slug, schema=clinic.schema_name, old_schema=old)
    tenant_connection().set_schema_to_public()
    for participant in _participants.values():
        report.findings.extend(participant.findings(ctx, repair))
        for table, count in participant.later_writes(ctx).items():
            report.later_writes[table] = report.later_writes.get(table, 0) + count
    if schema_exists(old):
        for table, count in _rows_absent(ctx, skip=set(report.later_writes) | _versioned_tables(ctx)).items():
            report.later_writes[table] = count
    tenant_connection().set_schema_to_public()
    return report


def _versioned_tables(ctx: RestoreContext) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s AND column_name = 'server_version'",
            [ctx.schema],
        )
        return {row[0] for row in cursor.fetchall()}


def _rows_absent(ctx: RestoreContext, *, skip: set[str]) -> dict[str, int]:
    """Per table with a UUID `id` in both schemas, the old schema's rows whose id the restored
    schema lacks (inserted after the backup; updates of such tables are not seen). Integer ids
    are left out: both schemas' sequences continue from the backup's, so they collide."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.table_name FROM information_schema.columns o JOIN information_schema.columns n "
            "ON n.table_name = o.table_name AND n.column_name = 'id' AND n.table_schema = %s "
            "JOIN information_schema.tables t ON t.table_schema = o.table_schema AND t.table_name = o.table_name "
            "AND t.table_type = 'BASE TABLE' "
            "WHERE o.table_schema = %s AND o.column_name = 'id' AND o.data_type = 'uuid' ORDER BY o.table_name",
            [ctx.schema, ctx.old_schema],
        )
        tables = [row[0] for row in cursor.fetchall() if row[0] not in skip]
        counts = {}
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{ctx.old_schema}"."{table}" o WHERE NOT EXISTS '  # noqa: S608 (catalog names)
                f'(SELECT 1 FROM "{ctx.schema}"."{table}" n WHERE n.id = o.id)'
            )
            count = int(cursor.fetchone()[0])
            if count:
                counts[table] = count
        return counts
