"""Model-based test of the sync protocol (Hypothesis state machine, real API and database).

Two or three devices of one patient edit a few diary days offline, push and pull through a
flaky network (requests or responses lost, requests duplicated), page with tiny limits, and
the server occasionally purges tombstones. Invariants: once every device is back online they
all converge to the server's state; the server's state equals a plain-Python model that applies
each acknowledged mutation exactly once (per-field last arrival wins, delete wins); each
mutation id is applied once per device.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from accounts.models import Membership, User
from patients.models import DiaryEntry, Patient, SyncMutationResult
from patients.sync import tombstones_purge
from tenants.models import Clinic
from tests.conftest import authed_client

HEADERS = {"HTTP_X_SCHEMA_VERSION": "1"}
DAYS = 3
FIELDS = ("wheals", "itch", "note")


@dataclass
class Device:
    client_id: uuid.UUID
    next_mutation: int = 1
    outbox: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    records: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # id -> server copy (or {"deleted": True})
    versions: dict[str, int] = field(default_factory=dict)


class SyncMachine(RuleBasedStateMachine):
    @initialize(devices=st.integers(min_value=2, max_value=3))
    def setup(self, devices: int) -> None:
        self.clinic = Clinic.objects.get(slug="alpha")
        user = User.objects.create_user(f"model-{uuid.uuid4().hex[:8]}@example.com", "model passphrase 123")
        Membership.objects.create(user=user, clinic=self.clinic, role="patient")
        with tenant_context(self.clinic):
            self.patient = Patient.objects.create(user_id=user.pk, display_name="Model", timezone="UTC")
            self.today = self.patient.local_today()
        self.client = authed_client(user, self.clinic)
        # One id per diary day, as the PWA derives it (UUIDv5 of patient and date).
        self.ids = [
            str(uuid.uuid5(self.patient.pk, str(self.today - timedelta(days=d)))) for d in range(DAYS)
        ]
        self.devices = [Device(uuid.uuid4()) for _ in range(devices)]
        self.model: dict[str, dict[str, Any]] = {}  # id -> fields, or {"deleted": True}
        self.applied: set[tuple[uuid.UUID, int]] = set()

    # --- local, offline actions -------------------------------------------------------------

    @rule(
        device=st.integers(0, 2),
        day=st.integers(0, DAYS - 1),
        values=st.fixed_dictionaries(
            {},
            optional={
                "wheals": st.integers(0, 3),
                "itch": st.integers(0, 3),
                "note": st.sampled_from(["", "a", "b"]),
            },
        ),
    )
    def edit(self, device: int, day: int, values: dict[str, Any]) -> None:
        d = self.devices[device % len(self.devices)]
        record = self.ids[day]
        fields = dict(values)
        if record not in d.versions:  # the device does not know the record: send a full entry
            fields = {"wheals": 0, "itch": 0, "note": "", **fields}
        fields["day"] = str(self.today - timedelta(days=day))
        d.outbox.append(
            {
                "mutation_id": d.next_mutation,
                "table": "diary_entry",
                "id": record,
                "op": "upsert",
                "base_version": d.versions.get(record),
                "fields": fields,
            }
        )
        d.next_mutation += 1

    @rule(device=st.integers(0, 2), day=st.integers(0, DAYS - 1))
    def delete(self, device: int, day: int) -> None:
        d = self.devices[device % len(self.devices)]
        record = self.ids[day]
        d.outbox.append(
            {
                "mutation_id": d.next_mutation,
                "table": "diary_entry",
                "id": record,
                "op": "delete",
                "base_version": d.versions.get(record),
            }
        )
        d.next_mutation += 1

    # --- the network ---------------------------------------------------------------------------

    def _apply_to_model(self, device: Device, mutation: dict[str, Any], result: dict[str, Any]) -> None:
        key = (device.client_id, mutation["mutation_id"])
        assert key not in self.applied, "a mutation was applied twice"
        self.applied.add(key)
        record = mutation["id"]
        current = self.model.get(record)
        if result["status"] == "rejected":
            return
        if mutation["op"] == "delete":
            if current is not None:
                self.model[record] = {"deleted": True}
            return
        if current is not None and current.get("deleted"):
            assert result["status"] == "conflict"  # delete wins
            return
        fields = {k: v for k, v in mutation["fields"].items() if k in FIELDS}
        self.model[record] = {**(current or {}), **fields}  # per-field last arrival wins

    @rule(
        device=st.integers(0, 2),
        lose_request=st.booleans(),
        lose_response=st.booleans(),
        duplicate=st.booleans(),
    )
    def push(self, device: int, lose_request: bool, lose_response: bool, duplicate: bool) -> None:
        d = self.devices[device % len(self.devices)]
        if not d.outbox or lose_request:
            return
        body = {"client_id": str(d.client_id), "mutations": d.outbox}
        response = self.client.post("/api/v1/sync/push/", body, format="json", **HEADERS)
        assert response.status_code == 200, response.json()
        for mutation, result in zip(d.outbox, response.json()["results"], strict=True):
            if result["status"] != "duplicate":
                self._apply_to_model(d, mutation, result)
        if duplicate:
            again = self.client.post("/api/v1/sync/push/", body, format="json", **HEADERS).json()
            assert all(r["status"] == "duplicate" for r in again["results"])
        if not lose_response:
            acked = response.json()["last_mutation_id"]
            d.outbox = [m for m in d.outbox if m["mutation_id"] > acked]

    @rule(device=st.integers(0, 2), limit=st.integers(1, 3))
    def pull(self, device: int, limit: int) -> None:
        d = self.devices[device % len(self.devices)]
        while True:
            params = {
                "limit": limit,
                "client_id": str(d.client_id),
                **({"cursor": d.cursor} if d.cursor else {}),
            }
            response = self.client.get("/api/v1/sync/pull/", params, **HEADERS)
            if response.status_code == 409:
                assert response.json()["code"] == "reset_required"
                d.cursor, d.records, d.versions = None, {}, {}  # full resync
                continue
            assert response.status_code == 200, response.json()
            body = response.json()
            changes = body["changes"].get("diary_entry", {"upserted": [], "deleted": []})
            for row in changes["upserted"]:
                d.records[row["id"]] = {k: row[k] for k in FIELDS}
                d.versions[row["id"]] = row["server_version"]
            for record in changes["deleted"]:
                d.records[record] = {"deleted": True}
            d.outbox = [m for m in d.outbox if m["mutation_id"] > body["last_mutation_id"]]
            d.cursor = body["cursor"]
            if not body["has_more"]:
                return
        raise AssertionError("pull did not finish in 500 pages")

    @precondition(lambda self: hasattr(self, "clinic"))
    @rule()
    def purge(self) -> None:
        with tenant_context(self.clinic):
            tombstones_purge(now=timezone.now() + timedelta(days=365))
        for record, value in list(self.model.items()):
            if value.get("deleted"):
                del self.model[record]  # purged: as if never existed (and may be re-created)

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def each_mutation_is_stored_once(self) -> None:
        if not hasattr(self, "clinic"):
            return
        with tenant_context(self.clinic):
            stored = SyncMutationResult.objects.filter(client__patient=self.patient).count()
        assert stored == len(self.applied)

    def server_state(self) -> dict[str, dict[str, Any]]:
        with tenant_context(self.clinic):
            return {
                str(e.pk): (
                    {"deleted": True}
                    if e.deleted_at
                    else {"wheals": e.wheals, "itch": e.itch, "note": e.note}
                )
                for e in DiaryEntry.objects.filter(patient=self.patient)
            }

    def teardown(self) -> None:
        if not hasattr(self, "clinic"):
            return
        # Everyone comes back online: push everything (reliably), then pull everything.
        for index in range(len(self.devices)):
            self.push(index, lose_request=False, lose_response=False, duplicate=False)
            assert self.devices[index].outbox == [], "a reliable push left mutations unacknowledged"
        for index in range(len(self.devices)):
            self.pull(index, limit=2)
        server = self.server_state()
        assert server == self.model
        live = {k: v for k, v in server.items() if not v.get("deleted")}
        for d in self.devices:
            assert {k: v for k, v in d.records.items() if not v.get("deleted")} == live


@pytest.mark.django_db
@pytest.mark.slow
def test_sync_protocol_model() -> None:
    # All examples share the test's transaction, whose savepoints pile up (PostgreSQL slows
    # down past a few thousand subtransactions): a modest number of examples per run; the
    # shrink phase is skipped so a failure reports its steps at once.
    SyncMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    SyncMachine.TestCase().runTest()
