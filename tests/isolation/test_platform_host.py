"""Every route and method of the platform host, for anonymous callers, a clinic user's token
and a platform operator."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import override_settings

from tests.isolation.matrix import PLATFORM_MATRIX, route_key
from tests.isolation.requests import PLATFORM_PATH_DEFAULTS, PLATFORM_REQUESTS, Req
from tests.isolation.world import SETUPS, World

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_isolation_only"
CASES = [
    pytest.param(key, persona, id=f"{key} as {persona}")
    for key, row in PLATFORM_MATRIX.items()
    for persona in row
]


@override_settings(BILLING_WEBHOOK_SECRET=WEBHOOK_SECRET)
@pytest.mark.parametrize(("key", "persona"), CASES)
def test_platform_host_route(world: World, key: str, persona: str) -> None:
    method, template = route_key(key).split(" ", 1)
    req = PLATFORM_REQUESTS.get(key, Req())
    expected = PLATFORM_MATRIX[key][persona]
    expected_status, expected_code = expected if isinstance(expected, tuple) else (expected, None)

    for name in req.builds:
        getattr(world, name)
    for name in req.setup:
        SETUPS[name](world, persona)
    path = template
    for param, value in {**PLATFORM_PATH_DEFAULTS, **req.path}.items():
        path = path.replace(f"{{{param}}}", str(world.resolve(value, persona)))
    body = world.resolve(req.body, persona)
    query = world.resolve(req.query, persona)
    client = world.platform_client(persona)

    if method == "GET":
        response = client.get(path, query or {})
    elif req.body is None:
        response = getattr(client, method.lower())(path)
    else:
        raw = json.dumps(body).encode()
        headers = {}
        if req.signed:
            at = int(time.time())
            digest = hmac.new(WEBHOOK_SECRET.encode(), f"{at}.".encode() + raw, hashlib.sha256).hexdigest()
            headers["HTTP_X_SIGNATURE"] = f"t={at},v1={digest}"
        response = getattr(client, method.lower())(path, raw, content_type="application/json", **headers)

    assert response.status_code == expected_status, response.content[:500]
    if expected_code is not None:
        assert response.json()["code"] == expected_code
