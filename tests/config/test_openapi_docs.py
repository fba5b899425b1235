"""The published API documentation serves its readers: each host documents its own API, every
operation has an audience tag, a summary, a description written for the API's user, real
examples and its error answers (issue 22). Failures name the operationId and what it lacks, so
whoever adds an endpoint knows what to add to `config.openapi.OPERATIONS`."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml
from django.conf import settings
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from config.openapi import AUDIENCES, DEVELOPER_NOTE_MARKERS, OPERATIONS, PROBLEM_SCHEMA_NAME
from core.problems import PROBLEM_CODES

URLCONFS = {"platform": "config.urls_public", "clinic": "config.urls_tenant"}
HOSTS = {"platform": "localhost", "clinic": "alpha.localhost"}
METHODS = ("get", "put", "post", "delete", "patch")
# Operations only the platform host serves (signup, operators, payment webhooks).
PLATFORM_ONLY = ("/api/v1/clinics/", "/api/v1/platform/", "/api/v1/billing/webhooks/")

# Operations that cannot answer a 4xx (no input, no sign-in, no throttle).
NO_CLIENT_ERRORS = {"v1_auth_csrf_retrieve"}

_SCHEMAS: dict[str, dict[str, Any]] = {}


def schema_of(host: str) -> dict[str, Any]:
    """The schema generated from the host's URLconf (cached: generation takes a second)."""
    if host not in _SCHEMAS:
        _SCHEMAS[host] = SchemaGenerator(urlconf=URLCONFS[host]).get_schema(request=None, public=True)
    return _SCHEMAS[host]


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


@pytest.mark.parametrize("host", ["platform", "clinic"])
def test_the_schema_is_valid_openapi(host: str) -> None:
    validate_schema(schema_of(host))


@pytest.mark.parametrize("host", ["platform", "clinic"])
def test_every_operation_has_a_registry_entry_a_tag_a_summary_and_a_description(host: str) -> None:
    problems = []
    for path, method, operation in operations(schema_of(host)):
        op_id = operation["operationId"]
        if op_id not in OPERATIONS:
            problems.append(f"{op_id} ({method.upper()} {path}) has no entry in config.openapi.OPERATIONS")
            continue
        if not operation.get("summary", "").strip():
            problems.append(f"operationId {op_id} lacks a summary")
        if "\n" in operation.get("summary", "") or len(operation.get("summary", "")) > 80:
            problems.append(f"operationId {op_id}: the summary must be one short line")
        tags = operation.get("tags", [])
        if len(tags) != 1 or tags[0] not in AUDIENCES:
            problems.append(f"operationId {op_id} lacks an audience tag (one of {AUDIENCES}), has {tags}")
        if not operation.get("description", "").strip():
            problems.append(f"operationId {op_id} lacks a description")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("host", ["platform", "clinic"])
def test_every_operation_documents_its_error_answers_as_problems(host: str) -> None:
    problems = []
    problem_ref = f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"
    for path, _method, operation in operations(schema_of(host)):
        op_id = operation["operationId"]
        errors = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
        if not any(status.startswith("4") for status in errors) and op_id not in NO_CLIENT_ERRORS:
            problems.append(f"operationId {op_id} lacks its error responses (no 4xx documented)")
        signed_in = bool(operation.get("security")) and {} not in operation["security"]
        if signed_in and "401" not in errors:
            problems.append(f"operationId {op_id} requires a sign-in but does not document 401")
        if "{" in path and "404" not in errors:
            problems.append(f"operationId {op_id} takes an id in its path but does not document 404")
        if "requestBody" in operation and "400" not in errors:
            problems.append(f"operationId {op_id} takes a body but does not document 400")
        for status, response in errors.items():
            content = response.get("content", {}).get("application/problem+json")
            if content is None or content["schema"] != {"$ref": problem_ref}:
                problems.append(f"operationId {op_id}: {status} is not an application/problem+json Problem")
                continue
            for code, example in content["examples"].items():
                if code not in PROBLEM_CODES:
                    problems.append(
                        f"operationId {op_id}: {status} code {code} has no meaning in core.problems"
                    )
                if example["value"]["status"] != int(status) or example["value"]["code"] != code:
                    problems.append(f"operationId {op_id}: the {status} example for {code} is inconsistent")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("host", ["platform", "clinic"])
def test_no_developer_note_reaches_the_schema(host: str) -> None:
    found = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary") and isinstance(value, str):
                    found.extend(
                        f"{where}: {marker!r}" for marker in DEVELOPER_NOTE_MARKERS if marker in value
                    )
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema_of(host), "")
    assert not found, "\n".join(found)


def test_every_registry_entry_is_an_operation_of_some_host() -> None:
    served = {op["operationId"] for host in URLCONFS for _, _, op in operations(schema_of(host))}
    assert sorted(set(OPERATIONS) - served) == []


def test_the_tags_are_declared_with_descriptions_in_the_settings() -> None:
    declared = {tag["name"]: tag.get("description", "") for tag in settings.SPECTACULAR_SETTINGS["TAGS"]}
    assert set(declared) == set(AUDIENCES)
    assert all(declared.values())
    # Each host lists the tags of its own operations, in the declared order.
    assert [tag["name"] for tag in schema_of("platform")["tags"]] == [
        "Clinic admin",
        "Auth",
        "Platform operator",
        "Billing",
    ]
    assert [tag["name"] for tag in schema_of("clinic")["tags"]] == [
        "Patient app",
        "Sync",
        "Portal",
        "Clinic admin",
        "Auth",
        "Billing",
    ]


def test_each_host_introduces_its_own_api_and_points_to_the_other() -> None:
    platform = schema_of("platform")["info"]["description"]
    clinic = schema_of("clinic")["info"]["description"]
    assert "POST /api/v1/clinics/" in platform and "<clinic>.<platform domain>/api/docs/" in platform
    assert "POST /api/v1/auth/token/" in clinic and "platform host's" in clinic
    assert "/problems/" in platform and "/problems/" in clinic


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable` in JSON Schema terms, so jsonschema can check the examples."""
    if isinstance(node, list):
        return [_as_json_schema(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _check(example: Any, schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    root = {"components": components, **schema}
    validator = jsonschema.Draft7Validator(root)
    return [
        f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(example)
    ]


@pytest.mark.parametrize("host", ["platform", "clinic"])
def test_examples_match_their_schemas_and_input_examples_send_only_known_fields(host: str) -> None:
    schema = schema_of(host)
    components = _as_json_schema(schema["components"])
    problems = []
    for _, _, operation in operations(schema):
        op_id = operation["operationId"]
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [
            (status, r.get("content", {})) for status, r in operation["responses"].items() if status[0] == "2"
        ]
        for where, content in bodies:
            media = content.get("application/json")
            if media is None or "examples" not in media:
                continue
            target = _as_json_schema(media["schema"])
            for name, entry in media["examples"].items():
                example = entry["value"]
                problems += [
                    f"operationId {op_id} {where} example {name!r}: {e}"
                    for e in _check(example, target, components)
                ]
                if where == "request" and "$ref" in media["schema"]:
                    ref = media["schema"]["$ref"].split("/")[-1]
                    unknown = sorted(set(example) - set(schema["components"]["schemas"][ref]["properties"]))
                    if unknown:
                        problems.append(f"operationId {op_id} request example sends unknown fields {unknown}")
    assert not problems, "\n".join(problems)


def test_every_operation_with_a_body_has_a_request_example() -> None:
    missing = [
        op["operationId"]
        for host in URLCONFS
        for _, _, op in operations(schema_of(host))
        if "requestBody" in op
        and "examples" not in next(iter(op["requestBody"]["content"].values()))
        and op["operationId"] in OPERATIONS
    ]
    assert missing == []


def test_the_prescription_example_names_a_medication_of_the_catalogue() -> None:
    from patients.models import Medication  # noqa: F401 (the model the catalogue migration fills)

    catalogue_migration = __import__(
        "patients.migrations.0004_medication_catalogue", fromlist=["CATALOGUE"]
    ).CATALOGUE
    codes = {row[0] for row in catalogue_migration}
    example = OPERATIONS["v1_portal_patients_prescriptions_create"].request_example
    assert example["medication"] in codes


def test_the_scales_are_documented_where_a_client_sends_them() -> None:
    schema = schema_of("clinic")
    diary = schema["paths"]["/api/v1/me/diary/{day}/"]["put"]["description"]
    for words in (
        "0 none",
        "fewer than 20 wheals",
        "20–50",
        "more than 50",
        "interferes with normal daily activity",
    ):
        assert words in diary
    entry = schema["components"]["schemas"]["DiaryEntryInputRequest"]["properties"]
    assert "0–3" in entry["wheals"]["description"] and "0–3" in entry["itch"]["description"]
    reminder = schema["components"]["schemas"]["ReminderListCreateInputRequest"]["properties"]
    assert "1 = Monday" in reminder["days_of_week"]["description"]
    questionnaire = schema["paths"]["/api/v1/me/questionnaires/{instrument}/"]["post"]["description"]
    assert all(name in questionnaire for name in ("`uct`", "`uct7`", "`aas`"))


# --- Each host serves its own schema ----------------------------------------------------------


def _fill(path: str) -> str:
    """A concrete URL for a templated path (ids are UUIDs, days dates, slots and slugs words)."""
    samples = {"day": "2026-11-30", "slot": "am", "slug": "alpha", "instrument": "uct"}
    return re.sub(
        r"\{(\w+)\}", lambda m: samples.get(m.group(1), "6f1d2c3b-4a59-4e8f-9b7a-1c2d3e4f5a6b"), path
    )


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["platform", "clinic"])
def test_each_host_serves_the_schema_of_its_own_urlconf(public_client, clinic_a, host: str) -> None:  # noqa: ANN001
    response = public_client.get("/api/schema/", HTTP_HOST=HOSTS[host])
    assert response.status_code == 200
    served = yaml.safe_load(response.content)
    assert set(served["paths"]) == set(schema_of(host)["paths"])
    unresolved = []
    for path in served["paths"]:
        try:
            match = resolve(_fill(path), urlconf=URLCONFS[host])
        except Resolver404:
            unresolved.append(path)
            continue
        assert match.route.startswith("api/"), path
    assert unresolved == []


@pytest.mark.django_db
def test_each_hosts_schema_is_generated_once_then_served_from_memory(
    public_client, clinic_a, monkeypatch
) -> None:  # noqa: ANN001
    import config.openapi

    monkeypatch.setattr(config.openapi, "_SERVED_SCHEMAS", {})
    generated: list[str] = []
    original = SchemaGenerator.get_schema

    def counting(self: SchemaGenerator, *args: Any, **kwargs: Any) -> Any:
        generated.append(str(self.urlconf))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counting)
    first = public_client.get("/api/schema/", HTTP_HOST="alpha.localhost")
    again = public_client.get("/api/schema/", HTTP_HOST="alpha.localhost")
    other_clinic = public_client.get("/api/schema/", HTTP_HOST="beta.localhost")
    platform = public_client.get("/api/schema/", HTTP_HOST="localhost")
    assert first.content == again.content == other_clinic.content != platform.content
    assert generated == ["config.urls_tenant", "config.urls_public"]


@pytest.mark.django_db
def test_platform_operations_appear_only_on_the_platform_host(public_client, clinic_a) -> None:  # noqa: ANN001
    platform = yaml.safe_load(public_client.get("/api/schema/", HTTP_HOST="localhost").content)["paths"]
    clinic = yaml.safe_load(public_client.get("/api/schema/", HTTP_HOST="alpha.localhost").content)["paths"]
    assert {"/api/v1/clinics/", "/api/v1/platform/auth/token/", "/api/v1/platform/clinics/"} <= set(platform)
    assert [path for path in clinic if path.startswith(PLATFORM_ONLY)] == []
    assert "/api/v1/me/diary/" in clinic and "/api/v1/me/diary/" not in platform
    assert "/api/v1/portal/patients/" not in platform


@pytest.mark.django_db
def test_the_served_schema_is_the_documented_one(public_client, clinic_a) -> None:  # noqa: ANN001
    served = yaml.safe_load(public_client.get("/api/schema/", HTTP_HOST="alpha.localhost").content)
    op = served["paths"]["/api/v1/portal/patients/{patient_id}/prescriptions/"]["post"]
    assert op["tags"] == ["Portal"]
    assert op["summary"] == "Prescribe a medication"
    assert "unknown_medication" in op["responses"]["400"]["content"]["application/problem+json"]["examples"]
    # JSON copy for a reader's convenience: the served text carries no developer note either.
    text = json.dumps(served)
    assert not [marker for marker in DEVELOPER_NOTE_MARKERS if marker in text]


def test_the_problem_schema_is_a_component() -> None:
    problem = copy.deepcopy(schema_of("platform")["components"]["schemas"][PROBLEM_SCHEMA_NAME])
    assert problem["required"] == ["type", "title", "status", "detail", "code"]
