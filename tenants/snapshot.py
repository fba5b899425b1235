"""Clinic schemas from a DDL snapshot of the migrated template schema (DESIGN.md §3).

Measured on PostgreSQL 15: running every migration costs ~320 ms per clinic and django-tenants'
`clone_schema` ~1,240 ms, while replaying the template's DDL in one round trip costs ~72 ms.
So the template schema (`TENANT_TEMPLATE_SCHEMA`) is kept migrated, its DDL and the rows its
migrations wrote (django_migrations, seeded catalogues) are captured once per migration state
with `pg_dump`, and new clinic schemas are created by replaying that text with the schema
renamed. When no snapshot matches the code's migrations and none can be captured (no usable
pg_dump, or inside a transaction), the new schema is migrated instead: same result, slower.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_exists

from tenants.db import tenant_connection
from tenants.models import SchemaSnapshot

logger = logging.getLogger(__name__)

SCHEMA_PLACEHOLDER = "__CSU_SCHEMA__"


class SnapshotUnavailable(Exception):
    """No pg_dump able to talk to this server, or the dump could not be taken."""


@cache
def migration_key() -> str:
    """Hash of every migration the running code defines (all apps: tenant schemas record all)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    nodes = sorted(f"{app}.{name}" for app, name in loader.graph.nodes)
    return hashlib.sha256("\n".join(nodes).encode()).hexdigest()


def schema_migrate(schema_name: str) -> None:
    """Run the tenant apps' migrations for one schema on the current connection.

    Works inside an open transaction (each migration becomes a savepoint), which is what lets
    the fallback path stay atomic with the clinic row.
    """
    if not schema_exists(schema_name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema_name}"')  # noqa: S608 (name validated)
    db = tenant_connection()
    previous = db.tenant
    db.set_schema(schema_name)
    try:
        executor = MigrationExecutor(connection)
        executor.loader.check_consistent_history(connection)
        targets = executor.loader.graph.leaf_nodes()
        plan = executor.migration_plan(targets)
        if plan:
            executor.migrate(targets, plan=plan)
    finally:
        db.set_tenant(previous)


def _pg_dump_candidates() -> Iterator[str]:
    if settings.PG_DUMP_PATH:
        yield settings.PG_DUMP_PATH
    bundled = Path(settings.PG_BUNDLED_BIN_DIR) / "pg_dump" if settings.PG_BUNDLED_BIN_DIR else None
    if bundled is not None and bundled.exists():
        yield str(bundled)
    on_path = shutil.which("pg_dump")
    if on_path:
        yield on_path
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), reverse=True):
        yield str(candidate)


def _pg_dump(schema_name: str) -> str:
    db = settings.DATABASES[DEFAULT_DB_ALIAS]
    args = [
        "--no-owner",
        "--no-privileges",
        "--no-comments",
        "--no-publications",
        "--no-subscriptions",
        "--no-security-labels",
        "--no-tablespaces",
        "--inserts",
        f"--schema={schema_name}",
        f"--dbname={db['NAME']}",
        f"--username={db['USER']}",
    ]
    if db.get("HOST"):
        args.append(f"--host={db['HOST']}")
    if db.get("PORT"):
        args.append(f"--port={db['PORT']}")
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or ""), "PGCONNECT_TIMEOUT": "10"}
    errors = []
    for binary in dict.fromkeys(_pg_dump_candidates()):
        result = subprocess.run(  # noqa: S603 (fixed argument list, no shell)
            [binary, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        if result.returncode == 0:
            return result.stdout
        errors.append(f"{binary}: {result.stderr.strip()[:300]}")
    raise SnapshotUnavailable("no usable pg_dump: " + " | ".join(errors or ["none found"]))


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_SEARCH_PATH_LINE = re.compile(r"^SELECT pg_catalog\.set_config\('search_path'")


def _statement_level_lines(dump: str) -> list[tuple[str, bool]]:
    """Each line with whether it starts at statement level (not inside a dollar-quoted body or
    a multi-line string literal), so only real top-level lines are ever rewritten or dropped."""
    out, dollar, in_string = [], None, False
    for line in dump.splitlines():
        top_level = dollar is None and not in_string
        out.append((line, top_level))
        if top_level and line.startswith("--"):
            continue
        position = 0
        while position < len(line):
            if dollar is not None:
                closing = line.find(dollar, position)
                if closing < 0:
                    break
                position, dollar = closing + len(dollar), None
            elif in_string:
                closing = line.find("'", position)
                if closing < 0:
                    break
                position, in_string = closing + 1, False  # '' re-opens at once: parity holds
            else:
                tag = _DOLLAR_TAG.search(line, position)
                quote = line.find("'", position)
                if tag and (quote < 0 or tag.start() < quote):
                    dollar, position = tag.group(0), tag.end()
                elif quote >= 0:
                    in_string, position = True, quote + 1
                else:
                    break
    return out


def sql_from_dump(dump: str, template: str) -> tuple[str, int]:
    """Turn a pg_dump of the template into replayable SQL for SCHEMA_PLACEHOLDER.

    pg_dump qualifies every name with the schema (it empties search_path), so renaming the
    qualifier renames every object. At statement level only: comments and psql meta-commands
    (`\\restrict`) are dropped, the search_path reset is dropped (the names are qualified, and
    the connection's own search path must survive the replay), and pg_dump's other session
    settings (e.g. check_function_bodies = false) become SET LOCAL, ending with the transaction.
    """
    kept = []
    for line, top_level in _statement_level_lines(dump):
        if top_level:
            if (
                not line.strip()
                or line.startswith("--")
                or line.startswith("\\")
                or _SEARCH_PATH_LINE.match(line)
            ):
                continue
            if line.startswith("SET "):
                line = "SET LOCAL " + line[len("SET ") :]
        kept.append(line)
    sql = "\n".join(kept)
    sql = re.sub(rf"(?<![\w\"]){re.escape(template)}\.", f'"{SCHEMA_PLACEHOLDER}".', sql)
    sql = re.sub(
        rf"^CREATE SCHEMA {re.escape(template)};$",
        f'CREATE SCHEMA "{SCHEMA_PLACEHOLDER}";',
        sql,
        flags=re.MULTILINE,
    )
    if re.search(rf"(?<![\w\"]){re.escape(template)}\b", sql):
        raise SnapshotUnavailable("template schema name left in the dump after renaming")
    if f'CREATE SCHEMA "{SCHEMA_PLACEHOLDER}";' not in sql:
        raise SnapshotUnavailable("dump does not create the schema")
    statements = sum(1 for line, top in _statement_level_lines(sql) if top and line.rstrip().endswith(";"))
    return sql, statements


CATALOG_QUERIES = {
    "tables": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    """,
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid),
               (SELECT count(*) FROM pg_attribute b
                WHERE b.attrelid = c.oid AND b.attnum > 0 AND NOT b.attisdropped AND b.attnum < a.attnum)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
    """,
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(schema)s",
    "constraints": """
        SELECT con.conname, con.contype::text, cl.relname, pg_get_constraintdef(con.oid),
               con.condeferrable, con.condeferred
        FROM pg_constraint con
        JOIN pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_class cl ON cl.oid = con.conrelid
        WHERE n.nspname = %(schema)s
    """,
    "triggers": """
        SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND NOT t.tgisinternal
    """,
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(schema)s
    """,
    "migrations": "SELECT app, name FROM {schema}.django_migrations",
}


def schema_catalog(schema: str) -> dict[str, list[tuple[str, ...]]]:
    """Tables, columns, indexes, constraints, triggers, functions and recorded migrations of a
    schema, with the schema's own name masked, for comparing two schemas."""
    described = {}
    with connection.cursor() as cursor:
        for part, sql in CATALOG_QUERIES.items():
            cursor.execute(sql.replace("{schema}", f'"{schema}"'), {"schema": schema})
            rows = [tuple(str(v).replace(schema, "<schema>") for v in row) for row in cursor.fetchall()]
            described[part] = sorted(rows)
    return described


def _verify_snapshot(sql: str, template: str) -> None:
    """Replay the snapshot into a scratch schema and compare its catalog with the template's;
    always rolled back. A snapshot that does not reproduce the template is never stored."""
    scratch = "tenant_snapshot_check"
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql.replace(SCHEMA_PLACEHOLDER, scratch))
            same = schema_catalog(scratch) == schema_catalog(template)
            transaction.set_rollback(True)
    except DatabaseError as exc:
        raise SnapshotUnavailable(f"snapshot does not replay: {exc}") from exc
    if not same:
        raise SnapshotUnavailable("snapshot replay differs from the template schema")


def _template_migrations_match(template: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{template}".django_migrations')  # noqa: S608
        applied = sorted(f"{app}.{name}" for app, name in cursor.fetchall())
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return applied == sorted(f"{app}.{name}" for app, name in loader.graph.nodes)


def snapshot_refresh() -> SchemaSnapshot:
    """Migrate the template schema and capture its snapshot for the current migration state.

    Must run outside a transaction: pg_dump reads committed state from another process. A
    session-level advisory lock (the key clinic creation takes) is held from the migration
    through the dump and the check, so nothing changes the template in between.
    """
    if connection.in_atomic_block:
        raise SnapshotUnavailable("cannot capture a snapshot inside a transaction")
    template = settings.TENANT_TEMPLATE_SCHEMA
    key = migration_key()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK_KEY])
    try:
        with transaction.atomic():
            schema_migrate(template)
        if not _template_migrations_match(template):
            raise SnapshotUnavailable("template migrations do not match the code's migrations")
        sql, statements = sql_from_dump(_pg_dump(template), template)
        _verify_snapshot(sql, template)
        snapshot, _ = SchemaSnapshot.objects.update_or_create(
            migration_key=key, defaults={"sql": sql, "statement_count": statements}
        )
        SchemaSnapshot.objects.exclude(migration_key=key).delete()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SCHEMA_LOCK_KEY])
    logger.info("Captured schema snapshot %s (%d statements)", key[:12], statements)
    return snapshot


def snapshot_current() -> SchemaSnapshot | None:
    return SchemaSnapshot.objects.filter(migration_key=migration_key()).first()


def snapshot_replay(*, snapshot: SchemaSnapshot, schema_name: str) -> None:
    """Create `schema_name` from the snapshot in one round trip, inside the caller's transaction."""
    sql = snapshot.sql.replace(SCHEMA_PLACEHOLDER, schema_name)
    # psycopg sends a parameterless execute with several statements as one simple query.
    with connection.cursor() as cursor:
        cursor.execute(sql)


# Key for pg_advisory_xact_lock serialising schema creation and template refreshes.
SCHEMA_LOCK_KEY = 0x0C5C11A1
