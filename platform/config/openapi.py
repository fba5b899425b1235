"""The API documentation: one registry entry per operation, applied to the generated schema.

The view docstrings are written for developers (why a lock, which design section); the
published schema is written for the API's users. So the schema takes nothing from the
docstrings: every operation's tag (its audience), summary, description, examples and error
answers come from `OPERATIONS` below, keyed by drf-spectacular's operationId, and
`postprocess_schema` (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) applies them.

Adding an endpoint: add its operationId here (`tests/config/test_openapi_docs.py` names every
operation that lacks an entry, a summary, a tag or its error answers). Errors every operation
shares are added by the hook: 401 where a sign-in is required, 429 everywhere (the default
throttles apply to every view), 503 while the database is unreachable.

Each host serves the schema of its own URLconf (`HostSchemaView`): the platform host
documents signup, operators and billing webhooks; a clinic host the clinic API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.codes import ErrorCode as E
from core.errors import status_title
from core.problems import PROBLEM_CODES, problem_type_uri

PROBLEM_SCHEMA_NAME = "Problem"

# Audience tags (their descriptions: SPECTACULAR_SETTINGS["TAGS"]).
PATIENT_APP = "Patient app"
SYNC = "Sync"
PORTAL = "Portal"
CLINIC_ADMIN = "Clinic admin"
AUTH = "Auth"
OPERATOR = "Platform operator"
BILLING = "Billing"
AUDIENCES = (PATIENT_APP, SYNC, PORTAL, CLINIC_ADMIN, AUTH, OPERATOR, BILLING)

# Markers of developer notes that must never reach the published schema.
DEVELOPER_NOTE_MARKERS = ("DESIGN.md", "HackSoft", "One operation per view", "§", "drf-spectacular")

Errors = Mapping[int, tuple[str, ...]]


@dataclass(frozen=True)
class Operation:
    """What the API's user reads about one operation."""

    tag: str
    summary: str
    description: str
    # Status → the problem codes it can carry (besides the shared 401/429/503 the hook adds).
    errors: Errors = field(default_factory=dict)
    request_example: Any = None
    response_example: Any = None


# --- Shared error sets, combined with `|` in the entries below -------------------------------

INVALID = {400: (E.VALIDATION_ERROR, E.PARSE_ERROR)}
STAFF_ONLY = {403: (E.PERMISSION_DENIED, E.MFA_REQUIRED)}
ADMIN_ONLY = {403: (E.PERMISSION_DENIED, E.MFA_REQUIRED)}
PATIENT_ONLY = {403: (E.PERMISSION_DENIED, E.NO_PATIENT_RECORD)}
OPERATOR_ONLY = {403: (E.PERMISSION_DENIED,)}
NOT_FOUND = {404: (E.NOT_FOUND,)}
CLINIC_WRITES = {403: (E.PERMISSION_DENIED, E.MFA_REQUIRED, E.CLINIC_SUSPENDED, E.CLINIC_OFFBOARDING)}


def _merge(*sets: Errors) -> dict[int, tuple[str, ...]]:
    """Union of error sets, per status, codes in first-seen order."""
    merged: dict[int, tuple[str, ...]] = {}
    for errors in sets:
        for status, codes in errors.items():
            merged[status] = tuple(dict.fromkeys((*merged.get(status, ()), *codes)))
    return merged


# --- The registry ------------------------------------------------------------------------------

OPERATIONS: dict[str, Operation] = {
    "v1_auth_csrf_retrieve": Operation(
        tag=AUTH,
        summary="Get a CSRF cookie for browser sign-in",
        description=(
            "Sets the `csrftoken` cookie. A browser client that signs in with a session "
            "(`/auth/login/`) sends the cookie's value back in the `X-CSRFToken` header on "
            "every unsafe request."
        ),
    ),
}

# Field descriptions by property name, applied to every schema component that has the field:
# the scales a client must know to send or read a value.
FIELD_DESCRIPTIONS: dict[str, str] = {}

# Descriptions of schema components written for the API's user. Object components not listed
# here get no description: a serializer's docstring is a developer note.
COMPONENT_DESCRIPTIONS: dict[str, str] = {}


# --- The hook ----------------------------------------------------------------------------------

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_SHARED_AUTH_ERRORS: Errors = {401: ("not_authenticated", "authentication_failed", E.TOKEN_NOT_VALID)}
_SHARED_ERRORS: Errors = {429: ("throttled",), 503: (E.SERVICE_UNAVAILABLE,)}


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "An RFC 9457 problem. Switch on `code` (stable); `detail` is for people. A refused "
            "field is named in `errors`."
        ),
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "A page explaining the code."},
            "title": {"type": "string", "description": "The status in words."},
            "status": {"type": "integer", "description": "The HTTP status."},
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "code": {"type": "string", "description": "The stable machine-readable reason."},
            "errors": {
                "type": "object",
                "description": "Field name → messages, when a field was refused.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "retry_after": {"type": "integer", "description": "Seconds to wait (429)."},
        },
    }


def _error_response(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    examples = {
        str(code): {
            "summary": str(code),
            "value": {
                "type": problem_type_uri(str(code)),
                "title": status_title(status),
                "status": status,
                "detail": PROBLEM_CODES[str(code)].meaning if str(code) in PROBLEM_CODES else str(code),
                "code": str(code),
            },
        }
        for code in codes
    }
    return {
        "description": f"A problem with `code` {listed}.",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"},
                "examples": examples,
            }
        },
    }


def _set_example(content: dict[str, Any], example: Any) -> None:
    for media in content.values():
        media.pop("example", None)
        media["examples"] = {"example": {"summary": "Example", "value": example}}


def _apply(operation: dict[str, Any], entry: Operation) -> None:
    operation["tags"] = [entry.tag]
    operation["summary"] = entry.summary
    operation["description"] = entry.description
    if entry.request_example is not None and "requestBody" in operation:
        _set_example(operation["requestBody"].get("content", {}), entry.request_example)
    responses = operation.setdefault("responses", {})
    if entry.response_example is not None:
        for status, response in responses.items():
            if status.startswith("2") and "content" in response:
                _set_example(response["content"], entry.response_example)
    requires_sign_in = bool(operation.get("security")) and {} not in operation["security"]
    shared = _merge(_SHARED_AUTH_ERRORS if requires_sign_in else {}, _SHARED_ERRORS)
    for status, codes in _merge(entry.errors, shared).items():
        responses[str(status)] = _error_response(status, codes)


def postprocess_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Apply the registry. An operation without an entry keeps what drf-spectacular made of it,
    minus its docstring (the docs test names it, so its author adds the entry)."""
    for path_item in result.get("paths", {}).values():
        for method in _HTTP_METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            entry = OPERATIONS.get(operation.get("operationId", ""))
            if entry is None:
                operation.pop("description", None)
                continue
            _apply(operation, entry)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in schemas.items():
        if "enum" not in component:
            component.pop("description", None)
            if name in COMPONENT_DESCRIPTIONS:
                component["description"] = COMPONENT_DESCRIPTIONS[name]
        for prop_name, prop in component.get("properties", {}).items():
            if prop_name in FIELD_DESCRIPTIONS and isinstance(prop, dict):
                prop["description"] = FIELD_DESCRIPTIONS[prop_name]
    schemas[PROBLEM_SCHEMA_NAME] = _problem_schema()
    return result


class HostSchemaView(SpectacularAPIView):
    """The schema of the URLconf that serves this host (django-tenants sets `request.urlconf`:
    the platform's on the platform host, the clinic API's on a clinic host). drf-spectacular
    would otherwise enumerate ROOT_URLCONF on every host."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.urlconf = getattr(request, "urlconf", None) or settings.ROOT_URLCONF
        return super().get(request, *args, **kwargs)
