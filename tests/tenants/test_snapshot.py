"""A schema replayed from the snapshot is identical to one built by running the migrations."""

from __future__ import annotations

import pytest

from tenants.snapshot import (
    SCHEMA_PLACEHOLDER,
    schema_catalog,
    schema_migrate,
    snapshot_current,
    snapshot_replay,
    sql_from_dump,
)


@pytest.mark.django_db
def test_snapshot_schema_is_identical_to_a_migrated_one() -> None:
    snapshot = snapshot_current()
    assert snapshot is not None
    snapshot_replay(snapshot=snapshot, schema_name="zz_from_snapshot")
    schema_migrate("zz_from_migrations")

    replayed, migrated = schema_catalog("zz_from_snapshot"), schema_catalog("zz_from_migrations")
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
        "SET LOCAL statement_timeout = 0;",
        f"CREATE SCHEMA {placeholder};",
        f"CREATE TABLE {placeholder}.t (id bigint DEFAULT nextval('{placeholder}.t_id_seq'::regclass));",
        f"CREATE TABLE {placeholder}.u (t_id bigint REFERENCES {placeholder}.t(id), note text DEFAULT 'mytmpl.x');",
    ]
    assert statements == 4


def test_lines_inside_function_bodies_and_strings_are_kept_verbatim() -> None:
    body = [
        "CREATE FUNCTION tmpl.bump() RETURNS trigger LANGUAGE plpgsql AS $fn$",
        "BEGIN",
        "",
        "-- a comment inside the body",
        "SET version = version + 1;",
        "RETURN NEW;",
        "END;",
        "$fn$;",
        "INSERT INTO tmpl.notes VALUES ('first line",
        "-- not a comment: inside a string",
        "SET not a statement either');",
    ]
    sql, _ = sql_from_dump("\n".join(["CREATE SCHEMA tmpl;", *body]), "tmpl")
    lines = sql.splitlines()
    assert "" in lines and "-- a comment inside the body" in lines and "SET version = version + 1;" in lines
    assert "-- not a comment: inside a string" in lines and "SET not a statement either');" in lines


@pytest.mark.django_db
def test_every_clinic_schema_has_the_append_only_audit_trigger(clinic_a, clinic_b) -> None:  # noqa: ANN001
    from django.db import connection

    from tenants.models import Clinic

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.tgname = 'accesslog_append_only' AND c.relname = 'patients_accesslog'"
        )
        with_trigger = {row[0] for row in cursor.fetchall()}
    clinics = set(Clinic.objects.values_list("schema_name", flat=True))
    assert clinics and clinics <= with_trigger
