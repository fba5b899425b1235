"""The matrix names every route and method the URL resolver serves, and nothing else: a new route
(or a new method on a view) fails here until the matrix gives each persona its status."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from rest_framework import serializers

from tests.isolation.matrix import (
    NA,
    PLATFORM_MATRIX,
    PLATFORM_PERSONAS,
    TENANT_MATRIX,
    TENANT_PERSONAS,
    route_key,
)
from tests.isolation.requests import (
    PLATFORM_PATH_DEFAULTS,
    PLATFORM_REQUESTS,
    TENANT_PATH_DEFAULTS,
    TENANT_REQUESTS,
    Req,
)
from tests.isolation.routes import PUBLIC_URLCONF, TENANT_URLCONF, Route, routes

HOSTS = [
    pytest.param(TENANT_URLCONF, TENANT_MATRIX, TENANT_REQUESTS, TENANT_PATH_DEFAULTS, id="clinic-host"),
    pytest.param(
        PUBLIC_URLCONF, PLATFORM_MATRIX, PLATFORM_REQUESTS, PLATFORM_PATH_DEFAULTS, id="platform-host"
    ),
]
PATIENT_FIELDS = ("patient", "patient_id")


@pytest.mark.parametrize(("urlconf", "matrix", "requests", "defaults"), HOSTS)
def test_every_route_and_method_of_the_resolver_has_a_matrix_entry(
    urlconf: str, matrix: dict[str, Any], requests: dict[str, Req], defaults: dict[str, str]
) -> None:
    covered = {route_key(key) for key in matrix}
    missing = sorted(route.key for route in routes(urlconf) if route.key not in covered)
    assert missing == [], f"Routes without a persona matrix entry in tests/isolation/matrix.py: {missing}"


@pytest.mark.parametrize(("urlconf", "matrix", "requests", "defaults"), HOSTS)
def test_every_matrix_entry_names_a_route_that_exists(
    urlconf: str, matrix: dict[str, Any], requests: dict[str, Req], defaults: dict[str, str]
) -> None:
    served = {route.key for route in routes(urlconf)}
    stale = sorted(key for key in matrix if route_key(key) not in served)
    assert stale == [], f"Matrix entries for routes the resolver no longer serves: {stale}"
    orphans = sorted(set(requests) - set(matrix))
    assert orphans == [], f"Request specs without a matrix entry: {orphans}"


@pytest.mark.parametrize(("urlconf", "matrix", "requests", "defaults"), HOSTS)
def test_every_path_parameter_is_filled_from_the_world(
    urlconf: str, matrix: dict[str, Any], requests: dict[str, Req], defaults: dict[str, str]
) -> None:
    by_key = {route.key: route for route in routes(urlconf)}
    unfilled = sorted(
        (key, param)
        for key in matrix
        if route_key(key) in by_key  # a stale entry is reported by the test above
        for param in by_key[route_key(key)].params
        if param not in defaults and param not in requests.get(key, Req()).path
    )
    assert unfilled == []


def test_every_row_gives_every_persona_a_status() -> None:
    for matrix, personas in ((TENANT_MATRIX, TENANT_PERSONAS), (PLATFORM_MATRIX, PLATFORM_PERSONAS)):
        for key, row in matrix.items():
            assert tuple(row) == personas, key
            assert all(
                isinstance(s, int) or (isinstance(s, tuple) and len(s) == 2)
                for persona, s in row.items()
                if s is not NA
            ), key
            # Two shapes, both right: a row every persona is tried on, or one beta's admin on its
            # own host is not (the route names no alpha object there to try).
            assert [persona for persona, s in row.items() if s is NA] in ([], ["beta_admin_home"]), key


def test_beta_admin_on_its_own_host_is_tried_exactly_where_alphas_objects_are_named() -> None:
    by_key = {route.key: route for route in routes(TENANT_URLCONF)}
    wrong = sorted(
        key
        for key, row in TENANT_MATRIX.items()
        if route_key(key) in by_key
        and (row["beta_admin_home"] is not NA)
        != TENANT_REQUESTS.get(key, Req()).names_alpha_object(by_key[route_key(key)].params)
    )
    assert wrong == []


def _input_fields(serializer_class: type[serializers.BaseSerializer], prefix: str = "") -> set[str]:
    fields = set()
    for name, field in serializer_class().fields.items():  # type: ignore[attr-defined]
        fields.add(prefix + name)
        child = getattr(field, "child", field)
        if isinstance(child, serializers.BaseSerializer):
            fields |= _input_fields(type(child), f"{prefix}{name}.")
    return fields


def _patient_fields(route: Route) -> set[tuple[str, str]]:
    """(body|query, field) for every input field of the route that names a patient: the view's
    FilterSerializer reads a GET's query, its InputSerializer a write's body."""
    named = set()
    attr, where = ("FilterSerializer", "query") if route.method == "GET" else ("InputSerializer", "body")
    serializer_class = getattr(route.view, attr, None)
    if inspect.isclass(serializer_class) and issubclass(serializer_class, serializers.BaseSerializer):
        named |= {(where, f) for f in _input_fields(serializer_class) if f.split(".")[-1] in PATIENT_FIELDS}
    return named


def test_every_body_or_query_field_that_names_a_patient_has_a_case_naming_alice() -> None:
    """A patient id in a body or a query is a way to reach a patient, like a path: each one is
    tried by every persona with Alice's (or Uma's) record."""
    missing = []
    for route in routes(TENANT_URLCONF):
        for where, field in _patient_fields(route):
            cases = [req for key, req in TENANT_REQUESTS.items() if route_key(key) == route.key]
            if not any(
                (getattr(req, where) or {}).get(field) in ("{alice_patient_id}", "{uma_patient_id}")
                for req in cases
            ):
                missing.append((route.key, where, field))
    assert missing == []


def test_the_patient_fields_found_are_the_known_ones() -> None:
    """The introspection above sees the patient fields that exist today (it cannot pass vacuously)."""
    found = {(route.key, *field) for route in routes(TENANT_URLCONF) for field in _patient_fields(route)}
    assert {
        ("POST /api/v1/portal/enrollments/", "body", "patient_id"),
        ("POST /api/v1/admin/care-teams/", "body", "patient"),
        ("GET /api/v1/admin/care-teams/", "query", "patient"),
        ("GET /api/v1/portal/alerts/", "query", "patient"),
        ("GET /api/v1/portal/reports/", "query", "patient"),
        ("GET /api/v1/admin/access-log/", "query", "patient"),
    } <= found
