"""Every response, log line and audit row carries the request id, and audit rows the client's
address as the trusted proxy reports it (DESIGN.md §9, issue 14 finding 8)."""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from core.request_context import RequestIdLogFilter, current_request_context, request_context
from patients.audit import access_log_write, access_log_write_many
from patients.models import AccessLog, Patient
from tenants.models import Clinic
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

CADDY = "172.30.80.2"  # the proxy's fixed address in deploy/compose.yaml
ALICE_AT_HOME = "198.51.100.23"
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def behind_caddy(settings) -> None:  # noqa: ANN001
    settings.TRUSTED_PROXY_IPS = [CADDY]
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


@contextmanager
def console_log() -> Iterator[io.StringIO]:
    """What the console handler configured by LOGGING writes, while the block runs."""
    handler = next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(log_filter, RequestIdLogFilter) for log_filter in handler.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


# --- The response header ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/v1/clinics/slug-availability/?slug=abc", "/api/v1/nowhere/"]
)
def test_every_response_carries_a_generated_request_id(public_client: APIClient, path: str) -> None:
    first, second = public_client.get(path), public_client.get(path)
    assert GENERATED.fullmatch(first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_even_an_unknown_host_is_answered_with_a_request_id() -> None:
    response = host_client("nowhere.localhost").get("/api/v1/me/profile/")
    assert response.status_code == 404
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_the_proxys_request_id_is_echoed(behind_caddy: None, public_client: APIClient) -> None:
    request_id = str(uuid.uuid4())
    response = public_client.get("/healthz", REMOTE_ADDR=CADDY, HTTP_X_REQUEST_ID=request_id)
    assert response["X-Request-ID"] == request_id


def test_a_request_id_from_anyone_but_the_proxy_is_replaced(
    behind_caddy: None, public_client: APIClient
) -> None:
    response = public_client.get(
        "/healthz", REMOTE_ADDR="203.0.113.66", HTTP_X_REQUEST_ID="chosen-by-mallory"
    )
    assert GENERATED.fullmatch(response["X-Request-ID"])


@pytest.mark.parametrize("unsafe", ["", "x" * 65, "id with spaces", "<script>", "a\u00e9b", "-leading-dash"])
def test_an_unsafe_request_id_is_replaced(behind_caddy: None, public_client: APIClient, unsafe: str) -> None:
    response = public_client.get("/healthz", REMOTE_ADDR=CADDY, HTTP_X_REQUEST_ID=unsafe)
    assert GENERATED.fullmatch(response["X-Request-ID"])


# --- Log lines -----------------------------------------------------------------------------------


def test_every_log_line_of_a_request_carries_its_request_id(
    behind_caddy: None, client_a: APIClient, alice: User
) -> None:
    request_id = "caddy-req-0001"
    with console_log() as output:
        response = client_a.post(
            "/api/v1/auth/token/",
            {"email": alice.email, "password": "not alice's password"},
            format="json",
            REMOTE_ADDR=CADDY,
            HTTP_X_FORWARDED_FOR=ALICE_AT_HOME,
            HTTP_X_REQUEST_ID=request_id,
        )
    assert response.status_code == 401
    lines = output.getvalue().splitlines()
    assert len(lines) >= 2  # axes' failure and Django's "Unauthorized: /api/v1/auth/token/"
    assert all(f"[{request_id}]" in line for line in lines), lines
    assert any("Unauthorized: /api/v1/auth/token/" in line for line in lines)


def test_a_log_line_outside_a_request_carries_an_empty_request_id() -> None:
    with console_log() as output:
        logging.getLogger("csu.test").warning("a task ran")
    assert "[] csu.test: a task ran" in output.getvalue()
    assert current_request_context().request_id == ""


# --- Audit rows --------------------------------------------------------------------------------


def test_an_audit_row_behind_the_proxy_records_the_client_and_the_request_id(
    behind_caddy: None, alice_client: APIClient, alice_patient: Patient, clinic_a: Clinic
) -> None:
    request_id = str(uuid.uuid4())
    response = alice_client.post(
        "/api/v1/me/deletion-request/",
        {"reason": "moving abroad"},
        format="json",
        REMOTE_ADDR=CADDY,
        HTTP_X_FORWARDED_FOR=ALICE_AT_HOME,
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 202
    with tenant_context(clinic_a):
        row = AccessLog.objects.get(action="deletion.request", patient_id=alice_patient.pk)
    assert (row.ip, row.request_id) == (ALICE_AT_HOME, request_id)


def test_audit_writers_default_to_the_running_request(alice_patient: Patient, clinic_a: Clinic) -> None:
    with tenant_context(clinic_a), request_context(request_id="req-42", client_ip="2001:db8::7"):
        one = access_log_write(
            actor_id=alice_patient.user_id,
            actor_role="patient",
            action="test.read",
            patient_id=alice_patient.pk,
        )
        access_log_write_many(
            actor_id=alice_patient.user_id,
            actor_role="patient",
            action="test.list",
            patient_ids=[alice_patient.pk],
            object_type="Patient",
        )
        many = AccessLog.objects.get(action="test.list")
        # What a caller passes wins.
        explicit = access_log_write(
            actor_id=None,
            actor_role="",
            action="test.explicit",
            patient_id=alice_patient.pk,
            ip="192.0.2.9",
            request_id="given",
        )
    assert (one.ip, one.request_id) == ("2001:db8::7", "req-42")
    assert (many.ip, many.request_id) == ("2001:db8::7", "req-42")
    assert (explicit.ip, explicit.request_id) == ("192.0.2.9", "given")


def test_audit_rows_outside_a_request_have_no_address_or_request_id(
    alice_patient: Patient, clinic_a: Clinic
) -> None:
    with tenant_context(clinic_a):
        row = access_log_write(actor_id=None, actor_role="", action="task.read", patient_id=alice_patient.pk)
    assert (row.ip, row.request_id) == (None, "")
