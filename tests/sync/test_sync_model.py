"""Model-based test of the sync protocol (Hypothesis state machine, real API and database).

Two or three devices of one patient edit a few diary days and one reminder offline, push and
pull through a flaky network (requests or responses lost, requests duplicated), page with tiny
limits and interleave pages with pushes, and the server occasionally purges tombstones. The
patient also writes through the REST diary API in between. Some devices create a day under an
id of their own (a natural-key collision, merged into the day's entry), some send poison (NUL,
over-long text). Invariants: once every device is back online they all converge to the
server's state; the server's state equals a plain-Python model that applies each acknowledged
mutation exactly once (per-field last arrival wins, delete wins, also after a purge, a merged
id reaches its winner); each mutation id is applied once per device; every page of a pull
session acknowledges the same mutations; no push answers anything but 200.
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
from patients.models import DiaryEntry, Reminder, SyncMutationResult
from patients.sync import tombstones_purge
from tenants.models import Clinic
from tests.conftest import authed_client
from tests.factories import PatientFactory

HEADERS = {"HTTP_X_SCHEMA_VERSION": "1"}
DAYS = 3
FIELDS = ("wheals", "itch", "note")
REMINDER_FIELDS = ("local_time", "enabled")
POISON = [
    {"note": "itchy\x00"},
    {"note": "x" * 2001},
    {"mood\x00": 1},
    {"wheals": 1, "itch": 1, "aas_items": [1, 1, 1, 1, 1], "angioedema": False},
]


@dataclass
class Device:
    client_id: uuid.UUID
    ids: dict[int, str]  # day index -> the id this device uses for that day
    next_mutation: int = 1
    outbox: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    session_lm: int | None = None  # last_mutation_id of the open pull session's first page
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> server copy
    versions: dict[str, int] = field(default_factory=dict)
    reminder: dict[str, Any] | None = None
    reminder_version: int | None = None
    poison: set[int] = field(default_factory=set)  # mutation ids that must be rejected


class SyncMachine(RuleBasedStateMachine):
    @initialize(devices=st.integers(min_value=2, max_value=3))
    def setup(self, devices: int) -> None:
        self.clinic = Clinic.objects.get(slug="alpha")
        user = User.objects.create_user(f"model-{uuid.uuid4().hex[:8]}@example.com", "model passphrase 123")
        Membership.objects.create(user=user, clinic=self.clinic, role="patient")
        with tenant_context(self.clinic):
            self.patient = PatientFactory(user_id=user.pk, display_name="Model", timezone="UTC")
            self.today = self.patient.local_today()
        self.client = authed_client(user, self.clinic)
        # One id per diary day, as the PWA derives it (UUIDv5 of patient and date).
        self.ids = {
            d: str(uuid.uuid5(self.patient.pk, str(self.today - timedelta(days=d)))) for d in range(DAYS)
        }
        self.reminder_id = str(uuid.uuid5(self.patient.pk, "reminder"))
        self.devices = [Device(uuid.uuid4(), dict(self.ids)) for _ in range(devices)]
        # The model: every id the server ever held -> {"day": d, "fields": {...} | None (deleted)}
        self.model: dict[str, dict[str, Any]] = {}
        self.alias: dict[str, str] = {}
        self.reminder: dict[str, Any] | None = None  # None: never created; {"deleted": True}
        self.applied: set[tuple[uuid.UUID, int]] = set()

    # --- local, offline actions -------------------------------------------------------------

    def _queue(self, d: Device, mutation: dict[str, Any]) -> None:
        d.outbox.append({"mutation_id": d.next_mutation, **mutation})
        d.next_mutation += 1

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
        record = d.ids[day]
        fields = dict(values)
        if record not in d.versions:  # the device does not know the record: send a full entry
            fields = {"wheals": 0, "itch": 0, "note": "", **fields}
        fields["day"] = str(self.today - timedelta(days=day))
        self._queue(
            d,
            {
                "table": "diary_entry",
                "id": record,
                "op": "upsert",
                "base_version": d.versions.get(record),
                "fields": fields,
            },
        )

    @rule(device=st.integers(0, 2), day=st.integers(0, DAYS - 1), wheals=st.integers(0, 3))
    def create_under_own_id(self, device: int, day: int, wheals: int) -> None:
        """A device that does not derive ids: the day may already exist under another id."""
        d = self.devices[device % len(self.devices)]
        d.ids[day] = str(uuid.uuid4())
        self.edit(device, day, {"wheals": wheals, "itch": 1})

    @rule(device=st.integers(0, 2), day=st.integers(0, DAYS - 1))
    def delete(self, device: int, day: int) -> None:
        d = self.devices[device % len(self.devices)]
        record = d.ids[day]
        self._queue(
            d,
            {
                "table": "diary_entry",
                "id": record,
                "op": "delete",
                "base_version": d.versions.get(record),
            },
        )

    @rule(device=st.integers(0, 2), day=st.integers(0, DAYS - 1), poison=st.sampled_from(POISON))
    def poison(self, device: int, day: int, poison: dict[str, Any]) -> None:
        d = self.devices[device % len(self.devices)]
        d.poison.add(d.next_mutation)
        fields = {"wheals": 1, "itch": 1, **poison, "day": str(self.today - timedelta(days=day))}
        self._queue(
            d,
            {
                "table": "diary_entry",
                "id": d.ids[day],
                "op": "upsert",
                "base_version": None,
                "fields": fields,
            },
        )

    @rule(
        device=st.integers(0, 2),
        values=st.fixed_dictionaries(
            {}, optional={"local_time": st.sampled_from(["08:00", "21:30"]), "enabled": st.booleans()}
        ),
    )
    def edit_reminder(self, device: int, values: dict[str, Any]) -> None:
        d = self.devices[device % len(self.devices)]
        fields = dict(values)
        if d.reminder_version is None:
            fields = {"kind": "diary", "local_time": "09:00", "enabled": True, **fields}
        self._queue(
            d,
            {
                "table": "reminder",
                "id": self.reminder_id,
                "op": "upsert",
                "base_version": d.reminder_version,
                "fields": fields,
            },
        )

    @rule(device=st.integers(0, 2))
    def delete_reminder(self, device: int) -> None:
        d = self.devices[device % len(self.devices)]
        self._queue(
            d,
            {"table": "reminder", "id": self.reminder_id, "op": "delete", "base_version": d.reminder_version},
        )

    # --- the patient's REST writes, between the devices' pushes and pulls -----------------------

    def _live_on(self, day: int) -> str | None:
        return next((r for r, v in self.model.items() if v["day"] == day and v["fields"] is not None), None)

    @precondition(lambda self: hasattr(self, "clinic"))
    @rule(day=st.integers(0, DAYS - 1), wheals=st.integers(0, 3), itch=st.integers(0, 3))
    def rest_put(self, day: int, wheals: int, itch: int) -> None:
        when = self.today - timedelta(days=day)
        body = {"wheals": wheals, "itch": itch, "note": "rest"}
        response = self.client.put(f"/api/v1/me/diary/{when}/", body, format="json")
        live = self._live_on(day)
        assert response.status_code == (201 if live is None else 200), response.json()
        record = response.json()["id"]
        if live is not None:
            assert record == live  # a replaced entry keeps its id
        self.model[record] = {"day": day, "fields": {"wheals": wheals, "itch": itch, "note": "rest"}}

    @precondition(lambda self: hasattr(self, "clinic"))
    @rule(day=st.integers(0, DAYS - 1))
    def rest_delete(self, day: int) -> None:
        response = self.client.delete(f"/api/v1/me/diary/{self.today - timedelta(days=day)}/")
        live = self._live_on(day)
        assert response.status_code == (404 if live is None else 204), response.content
        if live is not None:
            self.model[live]["fields"] = None

    # --- the network ---------------------------------------------------------------------------

    def _apply_diary(self, mutation: dict[str, Any], status: str, poison: bool) -> None:
        if poison:
            assert status == "rejected"
            return
        record = self.alias.get(mutation["id"], mutation["id"])
        current = self.model.get(record)
        if mutation["op"] == "delete":
            assert status == "applied"
            if current is not None:
                current["fields"] = None
            return
        day = next(k for k in range(DAYS) if str(self.today - timedelta(days=k)) == mutation["fields"]["day"])
        fields = {k: v for k, v in mutation["fields"].items() if k in FIELDS}
        if current is None:
            live = self._live_on(day)
            if live is not None:  # a natural-key collision: merged into the day's entry
                assert status == "merged"
                self.alias[mutation["id"]] = live
                self.model[live]["fields"] = {**self.model[live]["fields"], **fields}
            else:
                assert status == "applied"
                self.model[record] = {"day": day, "fields": fields}
            return
        if current["fields"] is None:
            assert status == "conflict"  # delete wins, also after the tombstone was purged
            return
        # Both are right here: "merged" when another writer changed the record after this
        # device's base version, which the model does not track (lost responses leave even the
        # device unsure). The fields are last-arrival-wins either way, which is what is checked.
        assert status in ("applied", "merged")
        current["fields"] = {**current["fields"], **fields}  # per-field last arrival wins

    def _apply_reminder(self, mutation: dict[str, Any], status: str) -> None:
        if mutation["op"] == "delete":
            if self.reminder is None:
                assert status == "rejected"
            else:
                assert status == "applied"
                self.reminder = {"deleted": True}
            return
        if self.reminder is not None and self.reminder.get("deleted"):
            assert status == "conflict"
            return
        if self.reminder is None and "kind" not in mutation["fields"]:
            assert status == "rejected"  # a patch of a reminder the server never had
            return
        assert status in ("applied", "merged")  # as for the diary: the model keeps no versions
        fields = {k: v for k, v in mutation["fields"].items() if k in REMINDER_FIELDS}
        self.reminder = {**(self.reminder or {}), **fields}

    def _apply_to_model(self, device: Device, mutation: dict[str, Any], result: dict[str, Any]) -> None:
        key = (device.client_id, mutation["mutation_id"])
        assert key not in self.applied, "a mutation was applied twice"
        self.applied.add(key)
        if mutation["table"] == "reminder":
            self._apply_reminder(mutation, result["status"])
        else:
            self._apply_diary(mutation, result["status"], mutation["mutation_id"] in device.poison)

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

    def _pull_page(self, d: Device, limit: int) -> bool:
        """One page of the device's pull session; True when the session is complete."""
        params = {"limit": limit, "client_id": str(d.client_id), **({"cursor": d.cursor} if d.cursor else {})}
        response = self.client.get("/api/v1/sync/pull/", params, **HEADERS)
        if response.status_code == 409:
            assert response.json()["code"] == "reset_required"
            d.cursor, d.records, d.versions, d.session_lm = None, {}, {}, None  # full resync
            d.reminder, d.reminder_version = None, None
            return False
        assert response.status_code == 200, response.json()
        body = response.json()
        # Every page of a session acknowledges what the session's first snapshot saw: a push
        # applied since is not acknowledged before its rows can arrive.
        if d.session_lm is None:
            d.session_lm = body["last_mutation_id"]
        assert body["last_mutation_id"] == d.session_lm, (
            "a page acknowledged a push its session does not bring"
        )
        changes = body["changes"].get("diary_entry", {"upserted": [], "deleted": []})
        for row in changes["upserted"]:
            d.records[row["id"]] = {k: row[k] for k in FIELDS}
            d.versions[row["id"]] = row["server_version"]
        for record in changes["deleted"]:
            d.records[record] = {"deleted": True}
        reminders = body["changes"].get("reminder", {"upserted": [], "deleted": []})
        for row in reminders["upserted"]:
            d.reminder, d.reminder_version = {k: row[k] for k in REMINDER_FIELDS}, row["server_version"]
        if reminders["deleted"]:
            d.reminder = {"deleted": True}
        d.outbox = [m for m in d.outbox if m["mutation_id"] > body["last_mutation_id"]]
        d.cursor = body["cursor"]
        if not body["has_more"]:
            d.session_lm = None
            return True
        return False

    @rule(device=st.integers(0, 2), limit=st.integers(1, 3))
    def pull(self, device: int, limit: int) -> None:
        d = self.devices[device % len(self.devices)]
        for _ in range(500):
            if self._pull_page(d, limit):
                return
        raise AssertionError("pull did not finish in 500 pages")

    @rule(device=st.integers(0, 2))
    def pull_one_page(self, device: int) -> None:
        """One page of size 1, leaving the session open for pushes to race it."""
        self._pull_page(self.devices[device % len(self.devices)], 1)

    @precondition(lambda self: hasattr(self, "clinic"))
    @rule()
    def purge(self) -> None:
        with tenant_context(self.clinic):
            tombstones_purge(now=timezone.now() + timedelta(days=365))
        # The model keeps the deleted ids: a purged entry stays deleted for a stale device.

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
            self.pull(index, limit=2)  # finishes a session left open by pull_one_page
            self.pull(index, limit=2)  # a session that starts after every write
        server = self.server_state()
        live = {k: v for k, v in server.items() if not v.get("deleted")}
        assert live == {k: v["fields"] for k, v in self.model.items() if v["fields"] is not None}
        # Deleted stays deleted: a tombstone, or purged.
        assert all(
            server.get(k, {"deleted": True}) == {"deleted": True}
            for k, v in self.model.items()
            if v["fields"] is None
        )
        for d in self.devices:
            assert {k: v for k, v in d.records.items() if not v.get("deleted")} == live
        with tenant_context(self.clinic):
            reminder = Reminder.objects.filter(pk=self.reminder_id).first()
        if self.reminder is None:
            assert reminder is None
        elif self.reminder.get("deleted"):
            assert reminder is not None and reminder.deleted_at is not None
        else:
            assert reminder is not None and reminder.deleted_at is None
            saved = {"local_time": reminder.local_time.strftime("%H:%M"), "enabled": reminder.enabled}
            assert saved == {
                k: self.reminder.get(k, {"local_time": "09:00", "enabled": True}[k]) for k in REMINDER_FIELDS
            }
            for d in self.devices:
                assert d.reminder == saved


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
