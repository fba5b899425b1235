"""A schema replayed from the snapshot is identical to one built by running the migrations."""

from __future__ import annotations

import pytest
from django.db import connection

from tenants.snapshot import (
    SCHEMA_PLACEHOLDER,
    schema_migrate,
    snapshot_current,
    snapshot_replay,
    sql_from_dump,
)

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


def catalog(schema: str) -> dict[str, list[tuple]]:
    described = {}
    with connection.cursor() as cursor:
        for part, sql in CATALOG_QUERIES.items():
            cursor.execute(sql.replace("{schema}", f'"{schema}"'), {"schema": schema})
            rows = [tuple(str(v).replace(schema, "<schema>") for v in row) for row in cursor.fetchall()]
            described[part] = sorted(rows)
    return described


@pytest.mark.django_db
def test_snapshot_schema_is_identical_to_a_migrated_one() -> None:
    snapshot = snapshot_current()
    assert snapshot is not None
    snapshot_replay(snapshot=snapshot, schema_name="zz_from_snapshot")
    schema_migrate("zz_from_migrations")

    replayed, migrated = catalog("zz_from_snapshot"), catalog("zz_from_migrations")
    assert replayed == migrated
    # Not vacuous: the comparison covered real objects of every kind.
    assert ("patients_accesslog", "r", "p") in replayed["tables"]
    assert any(name == "accesslog_append_only" for name, *_ in replayed["triggers"])
    assert any(name == "accesslog_patient_time" for name, *_ in replayed["indexes"])
    assert any(kind == "p" for _, kind, *_ in replayed["constraints"])
    assert ("patients", "0002_accesslog_append_only") in replayed["migrations"]


@pytest.mark.django_db
def test_replayed_schema_keeps_the_append_only_trigger_working(clinic_a) -> None:  # noqa: ANN001
    from django.db import DatabaseError, transaction
    from django_tenants.utils import tenant_context

    from patients.models import AccessLog

    with tenant_context(clinic_a):
        row = AccessLog.objects.create(action="read")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AccessLog.objects.filter(pk=row.pk).update(action="tampered")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AccessLog.objects.filter(pk=row.pk).delete()
        assert AccessLog.objects.get(pk=row.pk).action == "read"


def test_dump_rewrite_renames_every_qualified_name_and_drops_session_lines() -> None:
    dump = "\n".join(
        [
            "-- Name: x; Type: TABLE; Schema: tmpl",
            "\\restrict abc",
            "SET statement_timeout = 0;",
            "SELECT pg_catalog.set_config('search_path', '', false);",
            "CREATE SCHEMA tmpl;",
            "CREATE TABLE tmpl.t (id bigint DEFAULT nextval('tmpl.t_id_seq'::regclass));",
            "CREATE TABLE tmpl.u (t_id bigint REFERENCES tmpl.t(id), note text DEFAULT 'mytmpl.x');",
            "\\unrestrict abc",
        ]
    )
    sql, statements = sql_from_dump(dump, "tmpl")
    placeholder = f'"{SCHEMA_PLACEHOLDER}"'
    assert sql.splitlines() == [
        f"CREATE SCHEMA {placeholder};",
        f"CREATE TABLE {placeholder}.t (id bigint DEFAULT nextval('{placeholder}.t_id_seq'::regclass));",
        f"CREATE TABLE {placeholder}.u (t_id bigint REFERENCES {placeholder}.t(id), note text DEFAULT 'mytmpl.x');",
    ]
    assert statements == 3
