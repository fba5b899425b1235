"""Clinic creation: slug rules, snapshot replay, atomicity and concurrency."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_exists

from core.errors import ApplicationError
from tenants import services
from tenants.models import Clinic, ClinicStatus, Domain, SchemaSnapshot
from tenants.services import clinic_create, clinic_delete, schema_name_for_slug
from tenants.snapshot import migration_key, snapshot_current


@pytest.mark.parametrize("slug", ["abc", "derm-clinic-1", "a" * 40, "x2y"])
def test_valid_slugs_derive_a_prefixed_schema_name(slug: str) -> None:
    assert schema_name_for_slug(slug) == "clinic_" + slug.replace("-", "_")


@pytest.mark.parametrize(
    "slug",
    ["", "ab", "a" * 41, "1abc", "-abc", "Abc", "ab_c", "ab c", "abc;drop", "ábc", "abc\n", "a.bc"],
)
def test_invalid_slugs_are_refused_naming_the_field(slug: str) -> None:
    with pytest.raises(ApplicationError) as error:
        schema_name_for_slug(slug)
    assert (error.value.code, error.value.field, error.value.status_code) == ("invalid_slug", "slug", 400)


@pytest.mark.parametrize("slug", ["www", "api", "admin", "static", "public", "platform", "abc-", "ab--c"])
def test_reserved_slugs_are_refused(slug: str) -> None:
    with pytest.raises(ApplicationError) as error:
        schema_name_for_slug(slug)
    assert (error.value.code, error.value.field) == ("reserved_slug", "slug")


@pytest.mark.django_db
def test_clinic_is_created_from_the_snapshot_with_domain_and_active_status() -> None:
    assert snapshot_current() is not None, "migrate should have captured the template snapshot"
    with mock.patch.object(services, "schema_migrate", side_effect=AssertionError("migrations used")):
        clinic = clinic_create(slug="gamma", name="  Gamma Clinic ", timezone="Pacific/Kiritimati")
    assert (clinic.schema_name, clinic.name, clinic.status) == ("clinic_gamma", "Gamma Clinic", "active")
    assert list(Domain.objects.filter(tenant=clinic).values_list("domain", "is_primary")) == [
        ("gamma.localhost", True)
    ]
    assert schema_exists("clinic_gamma")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clinic_gamma.django_migrations")
        (recorded,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM tenant_template.django_migrations")
        (template_recorded,) = cursor.fetchone()
    assert recorded == template_recorded > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"name": ""}, "invalid_name", "name"),
        ({"name": "x" * 201}, "invalid_name", "name"),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone", "timezone"),
        ({"slug": "Bad Slug"}, "invalid_slug", "slug"),
    ],
)
def test_invalid_input_creates_nothing(kwargs: dict, code: str, field: str) -> None:
    args = {"slug": "delta", "name": "Delta", "timezone": "UTC", **kwargs}
    with pytest.raises(ApplicationError) as error:
        clinic_create(**args)
    assert (error.value.code, error.value.field) == (code, field)
    assert not Clinic.objects.filter(slug="delta").exists()
    assert not schema_exists("clinic_delta")


@pytest.mark.django_db
def test_taken_slug_is_a_409(clinic_a: Clinic) -> None:
    with pytest.raises(ApplicationError) as error:
        clinic_create(slug="alpha", name="Another Alpha")
    assert (error.value.code, error.value.status_code, error.value.field) == ("slug_taken", 409, "slug")


@pytest.mark.django_db
def test_without_a_matching_snapshot_the_schema_is_migrated_instead() -> None:
    SchemaSnapshot.objects.all().delete()  # rolled back with the test
    clinic = clinic_create(slug="epsilon", name="Epsilon")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('clinic_epsilon.patients_accesslog') IS NOT NULL")
        assert cursor.fetchone() == (True,)
    assert clinic.status == ClinicStatus.ACTIVE


def test_failure_after_the_schema_exists_leaves_nothing_behind(committed_db: None) -> None:
    real_replay = services.snapshot_replay

    def replay_then_fail(**kwargs: object) -> None:
        real_replay(**kwargs)
        assert schema_exists("clinic_zeta")  # the schema existed inside the transaction
        raise RuntimeError("injected failure after schema creation")

    with mock.patch.object(services, "snapshot_replay", side_effect=replay_then_fail):
        with pytest.raises(RuntimeError, match="injected"):
            clinic_create(slug="zeta", name="Zeta")
    assert not Clinic.objects.filter(slug="zeta").exists()
    assert not Domain.objects.filter(domain="zeta.localhost").exists()
    assert not schema_exists("clinic_zeta")


def test_concurrent_creates_of_one_slug_make_exactly_one_clinic(committed_db: None) -> None:
    barrier = threading.Barrier(2)
    results: list[str] = []

    def create() -> None:
        try:
            barrier.wait(timeout=10)
            clinic_create(slug="eta-race", name="Eta")
            results.append("created")
        except ApplicationError as exc:
            results.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert sorted(results) == ["created", "slug_taken"]
        assert Clinic.objects.filter(slug="eta-race").count() == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'clinic_eta%%'")
            assert cursor.fetchone() == (1,)
    finally:
        for clinic in Clinic.objects.filter(slug="eta-race"):
            clinic_delete(clinic=clinic)
    assert not schema_exists("clinic_eta_race")


def test_migration_key_names_every_migration_the_code_has() -> None:
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    assert ("patients", "0002_accesslog_append_only") in graph.nodes
    assert len(migration_key()) == 64
