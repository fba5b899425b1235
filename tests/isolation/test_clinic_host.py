"""Every route and method of a clinic host, for every persona: the exact status, no trace of
Alice's data in an outsider's answer, none of her records changed by one, and the access log
rows DESIGN.md §9 asks for (an allowed row for her care team and her clinic's admin, a refused
row for a clinician outside the team and for the other clinic's admin)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.isolation.matrix import NA, TENANT_MATRIX, Status, route_key
from tests.isolation.requests import TENANT_PATH_DEFAULTS, TENANT_REQUESTS, Req
from tests.isolation.world import OUTSIDERS, SETUPS, World

pytestmark = pytest.mark.django_db

CASES = [
    pytest.param(key, persona, id=f"{key} as {persona}")
    for key, row in TENANT_MATRIX.items()
    for persona, status in row.items()
    if status is not NA
]


def status_and_code(expected: Status) -> tuple[int, str | None]:
    return expected if isinstance(expected, tuple) else (expected, None)


def send(client: Any, method: str, path: str, body: Any, query: dict[str, Any] | None) -> Any:
    call = getattr(client, method.lower())
    if method == "GET":
        return call(path, query or {})
    if query:
        path = f"{path}?{urlencode(query)}"
    return call(path, body, format="json") if body is not None else call(path)


def answer_at(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def fill_path(world: World, template: str, req: Req, persona: str) -> str:
    path = template
    for param, value in {**TENANT_PATH_DEFAULTS, **req.path}.items():
        if f"{{{param}}}" in template:
            path = path.replace(f"{{{param}}}", str(world.resolve(value, persona)))
    return path


ALPHA_MEMBERS = ("dave", "alice", "erin", "dr_bob", "carol")


@pytest.mark.parametrize(("key", "persona"), CASES)
def test_clinic_host_route(world: World, key: str, persona: str) -> None:
    method, template = route_key(key).split(" ", 1)
    req = TENANT_REQUESTS.get(key, Req())
    expected = TENANT_MATRIX[key][persona]
    assert expected is not NA
    expected_status, expected_code = status_and_code(expected)

    for name in req.builds:
        getattr(world, name)
    for name in req.setup:
        SETUPS[name](world, persona)
    path = fill_path(world, template, req, persona)
    params = tuple(re.findall(r"{(\w+)}", template))
    # Uma's record is protected where the case names it (her enrollment code is a credential:
    # whoever holds it may link an account to her record, by design).
    world.protect_uma = bool(req.placeholders(params) & {"uma_patient_id", "uma_enrollment_id"})
    body = world.resolve(req.body, persona)
    query = world.resolve(req.query, persona)
    client = world.client(persona)
    outsider = persona in OUTSIDERS
    before = world.snapshot() if outsider else None

    response = send(client, method, path, body, query)

    assert response.status_code == expected_status, response.content[:500]
    if expected_code is not None:
        assert response.json()["code"] == expected_code
    if persona in req.answer:
        dotted, value = req.answer[persona]
        assert answer_at(response.json(), dotted) == value, response.json()

    if outsider:
        content = response.content.decode(errors="replace")
        leaked = [marker for marker in world.leak_markers() if marker in content]
        assert leaked == [], f"{persona} was shown Alice's data: {leaked}"
        assert world.snapshot() == before, f"{persona} changed a protected patient's records"
        assert world.allowed_rows_naming(persona, world.protected_patient_ids()) == 0

    # A member refused by their role (or a missing second factor) is in the access log (§9).
    if expected_status == 403 and persona in ALPHA_MEMBERS and response.json()["code"] == "permission_denied":
        assert world.access_rows(world.clinic_a, persona, allowed=False, patient_id=None) >= 1, (
            "refusal not audited"
        )

    if req.audit_own and persona in ("alice", "dave") and expected_status < 300:
        own = world.alice_patient_id if persona == "alice" else world.dave_patient_id
        assert world.access_rows(world.clinic_a, persona, allowed=True, patient_id=own) == 1, "not audited"

    if req.audit is not None:
        patient_id = str(world.value(req.audit, persona))
        if persona in ("dr_bob", "carol") and expected_status < 300:
            assert world.access_rows(world.clinic_a, persona, allowed=True, patient_id=patient_id) >= 1, (
                "no allowed AccessLog row"
            )
        if persona == "erin" and expected_status == 404:
            assert world.access_rows(world.clinic_a, persona, allowed=False, patient_id=patient_id) == 1, (
                "no refused AccessLog row"
            )
        # Beta's schema has no such patient: the access function still records the refusal when
        # the patient's id is what was sent (an id of another object is simply not found there).
        if persona == "beta_admin_home" and expected_status == 404 and req.audit in req.placeholders(params):
            assert world.access_rows(world.clinic_b, persona, allowed=False, patient_id=None) == 1, (
                "no refused AccessLog row in beta's schema"
            )
