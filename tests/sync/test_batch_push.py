"""The push's fast path (patients/sync/batch.py): a batch of plain diary and dose upserts is
checked at once and applied set-based, and gives exactly what one mutation at a time gives —
rows, versions, statuses, idempotency records, conflicts. A group with one mutation it does not
handle falls back, with the exact per-mutation statuses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.models import OutboxMessage
from patients import services
from patients.models import (
    DiaryEntry,
    DoseLog,
    Patient,
    Prescription,
    SyncAlias,
    SyncClient,
    SyncConflict,
    SyncMutationResult,
)
from patients.summary import ALERTS_EVALUATE_TASK
from patients.sync import batch, push, sync_push, sync_stamp_now
from tenants.models import Clinic
from tests.factories import PrescriptionFactory

pytestmark = pytest.mark.django_db

DEVICE = uuid.UUID("00000000-0000-4000-8000-00000000d001")


class _Undo(Exception):
    pass


@contextmanager
def undone() -> Iterator[None]:
    """Run a block and roll it back (a savepoint): the next run starts from the same state,
    the clinic's version counter included."""
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


@contextmanager
def slow_path_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setattr(push, "batch_apply", lambda *args, **kwargs: {})
        yield


def spy_fast(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The mutation ids the fast path applied, across pushes."""
    seen: list[int] = []
    real = batch.batch_apply

    def recording(*args: Any, **kwargs: Any) -> dict[int, dict[str, Any]]:
        applied = real(*args, **kwargs)
        seen.extend(applied)
        return applied

    monkeypatch.setattr(push, "batch_apply", recording)
    return seen


def state(patient: Patient) -> dict[str, Any]:
    """Everything a push writes, without what differs by nature between two runs (timestamps,
    ciphertexts, random conflict ids)."""
    return {
        "diary": sorted(
            (
                str(e.pk),
                e.day,
                e.slot,
                e.wheals,
                e.itch,
                e.angioedema,
                e.aas_items,
                e.note,
                e.deleted_at is None,
                e.server_version,
                sorted(e.field_versions.items()),
            )
            for e in DiaryEntry.objects.filter(patient=patient)
        ),
        "doses": sorted(
            (
                str(d.pk),
                str(d.prescription_id),
                d.scheduled_date,
                d.status,
                d.taken_at is None,
                d.server_version,
            )
            for d in DoseLog.objects.filter(patient=patient)
        ),
        "results": sorted(
            (r.mutation_id, r.result) for r in SyncMutationResult.objects.filter(client__patient=patient)
        ),
        "clients": sorted(
            (str(c.pk), c.last_mutation_id) for c in SyncClient.objects.filter(patient=patient)
        ),
        "conflicts": sorted(
            (
                str(c.record_id),
                c.mutation_id,
                c.fields,
                str(c.client_value),
                str(c.server_value),
                c.resolution,
            )
            for c in SyncConflict.objects.filter(patient=patient)
        ),
        "aliases": sorted(
            (str(a.alias_id), str(a.record_id)) for a in SyncAlias.objects.filter(patient=patient)
        ),
    }


def diary(mid: int, record: uuid.UUID, day: date, base: int | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "mutation_id": mid,
        "table": "diary_entry",
        "id": record,
        "op": "upsert",
        "base_version": base,
        "fields": {"day": str(day), **fields},
    }


def dose(
    mid: int, record: uuid.UUID, rx: uuid.UUID, day: date, status: str = "taken", **extra: Any
) -> dict[str, Any]:
    return {
        "mutation_id": mid,
        "table": "dose_log",
        "id": record,
        "op": "upsert",
        "base_version": None,
        "fields": {"prescription": str(rx), "date": str(day), "status": status, **extra},
    }


def push_once(
    patient: Patient, mutations: list[dict[str, Any]], client_id: uuid.UUID = DEVICE
) -> list[dict[str, Any]]:
    return sync_push(
        patient=patient, user_id=patient.user_id or uuid.uuid4(), client_id=client_id, mutations=mutations
    ).results


@pytest.fixture
def world(alice_patient: Patient, clinic_a: Clinic) -> Iterator[dict[str, Any]]:
    """Alice with a running prescription and an ended one, three diary days her device pushed,
    one day another writer (the REST API) recorded, and a dose her device logged."""
    with tenant_context(clinic_a):
        today = alice_patient.local_today()
        rx = PrescriptionFactory(patient=alice_patient, start=today - timedelta(days=30))
        ended = PrescriptionFactory(
            patient=alice_patient, start=today - timedelta(days=30), end=today - timedelta(days=5)
        )
        own = [uuid.uuid5(DEVICE, f"own-{k}") for k in range(3)]
        first = [
            diary(k + 1, own[k], today - timedelta(days=k + 1), wheals=1, itch=1, note="n") for k in range(3)
        ]
        first.append(dose(4, uuid.uuid5(DEVICE, "dose-0"), rx.pk, today))
        assert [r["status"] for r in push_once(alice_patient, first)] == ["applied"] * 4
        other, _ = services.diary_entry_record(
            patient=alice_patient, day=today - timedelta(days=4), slot="day", wheals=2, itch=2
        )
        sync_stamp_now(fresh=True)  # as its commit would: a version of its own, not the push's
        yield {
            "patient": alice_patient,
            "today": today,
            "rx": rx.pk,
            "ended": ended.pk,
            "own": own,
            "other": other.pk,
            "versions": {e.pk: e.server_version for e in DiaryEntry.objects.filter(patient=alice_patient)},
            "dose0": uuid.uuid5(DEVICE, "dose-0"),
        }


@st.composite
def mutation(draw: st.DrawFn, w: dict[str, Any]) -> dict[str, Any]:
    """Mostly what the fast path takes (a batch of them reaches it), each choice sometimes
    something it must refuse or hand over: a day out of the window, an ended or unknown
    prescription, a note the serializer refuses, AAS rules, another writer's change, a natural
    key taken, a replayed dose, a delete."""
    today: date = w["today"]

    def odd(*choices: Any) -> Any:
        """The first choice 7 times in 8, else one of the others."""
        return choices[0] if draw(st.integers(0, 7)) < 7 else draw(st.sampled_from(choices[1:]))

    kind = draw(st.sampled_from(["dose", "new_day", "edit", "dose"]))
    kind = odd(kind, "delete")
    if kind == "dose":
        record = odd(draw(st.uuids(version=4)), w["dose0"])
        rx = odd(w["rx"], w["ended"], uuid.UUID(int=7))
        offset = odd(draw(st.integers(0, 7)), -1, 8, 6)
        status = draw(st.sampled_from(["taken", "skipped"]))
        extra = odd({}, {"taken_at": None}, {"taken_at": datetime(2026, 1, 2, 8, 0, tzinfo=UTC).isoformat()})
        return dose(0, record, rx, today - timedelta(days=offset), status, **extra)
    if kind == "delete":
        record = draw(st.sampled_from([*w["own"], w["other"]]))
        return {"mutation_id": 0, "table": "diary_entry", "id": record, "op": "delete", "base_version": None}
    fields: dict[str, Any] = {"wheals": draw(st.integers(0, 3)), "itch": draw(st.integers(0, 3))}
    fields = odd(fields, {}, {"itch": 2}, {"wheals": 1})
    fields.update(
        odd(
            {}, {"note": "a"}, {"note": "  spaced  "}, {"note": ""}, {"note": "nul\x00"}, {"note": "x" * 2001}
        )
    )
    fields.update(
        odd(
            {},
            {"angioedema": True, "aas_items": [1, 0, 2, 3, 1]},
            {"aas_items": [1, 0, 2, 3, 1]},
            {"angioedema": True},
            {"angioedema": False},
            {"angioedema": False, "aas_items": [1, 1, 1, 1, 1]},
            {"aas_items": None},
            {"aas_items": [4, 0, 0, 0, 0]},
        )
    )
    fields.update(odd({}, {"slot": "day"}, {"slot": "am"}))
    if kind == "new_day":
        day = today - timedelta(days=odd(draw(st.sampled_from([0, 5, 6, 7])), 4, 1, -1, 8))
        return diary(0, draw(st.uuids(version=4)), day, **fields)
    index = draw(st.integers(0, 3))  # the device's own days; 3: another writer's
    record = [*w["own"], w["other"]][index]
    base = draw(st.sampled_from([w["versions"][record], w["versions"][record], None, 0]))
    return diary(0, record, today - timedelta(days=index + 1), base, **fields)


@pytest.mark.slow
def test_fast_path_matches_one_mutation_at_a_time(
    world: dict[str, Any], clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Property: for any batch, the fast path (with its fallbacks) writes the same rows,
    versions, field versions, results, conflicts and aliases as the per-mutation path."""
    patient = world["patient"]
    fast_seen = spy_fast(monkeypatch)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(mutation(world), min_size=1, max_size=8))
    def check(batch_: list[dict[str, Any]]) -> None:
        mutations = [{**m, "mutation_id": 5 + i} for i, m in enumerate(batch_)]
        with tenant_context(clinic_a):
            with undone(), slow_path_only(monkeypatch):
                slow_results = push_once(patient, [dict(m) for m in mutations])
                slow_state = state(patient)
            with undone():
                fast_results = push_once(patient, [dict(m) for m in mutations])
                fast_state = state(patient)
        assert fast_results == slow_results
        assert fast_state == slow_state

    check()
    assert fast_seen, "no example reached the fast path"


def clean_batch(w: dict[str, Any], first_id: int = 5) -> list[dict[str, Any]]:
    """500 mutations as the PWA sends them: 3 edits of the device's own days, 4 new days,
    and 493 doses of the last week."""
    today = w["today"]
    out = [
        diary(0, w["own"][k], today - timedelta(days=k + 1), w["versions"][w["own"][k]], wheals=3)
        for k in range(3)
    ]
    out += [
        diary(0, uuid.uuid4(), today - timedelta(days=5 + k), wheals=k % 4, itch=1, note="ok")
        for k in range(2)
    ]
    out += [diary(0, uuid.uuid4(), today - timedelta(days=k), wheals=0, itch=0) for k in (0,)]
    out += [diary(0, uuid.uuid4(), today - timedelta(days=7), wheals=0, itch=0)]
    out += [dose(0, uuid.uuid4(), w["rx"], today - timedelta(days=k % 7)) for k in range(500 - len(out))]
    return [{**m, "mutation_id": first_id + i} for i, m in enumerate(out)]


def test_a_clean_batch_of_500_takes_the_fast_path_in_a_bounded_number_of_queries(
    world: dict[str, Any], clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, mutations = world["patient"], clean_batch(world)
    with tenant_context(clinic_a):
        with undone(), slow_path_only(monkeypatch), CaptureQueriesContext(connection) as slow_queries:
            slow = push_once(patient, mutations)
        alerts = OutboxMessage.objects.filter(
            task_name=ALERTS_EVALUATE_TASK, kwargs__patient_id=str(patient.pk)
        )
        alerts_before = alerts.count()
        fast_seen = spy_fast(monkeypatch)
        with CaptureQueriesContext(connection) as fast_queries:
            fast = push_once(patient, mutations)
        assert fast == slow
        assert {r["status"] for r in fast} == {"applied"}
        assert sorted(fast_seen) == [m["mutation_id"] for m in mutations]
        # Setup (lock, client, ids), per table: its checks, its one statement; stamping, the
        # results, the summary and the alert outbox once. The per-mutation path needs ~10 per mutation.
        assert len(fast_queries) <= 40, len(fast_queries)
        assert len(slow_queries) > 2000
        assert DoseLog.objects.filter(patient=patient).count() == 1 + 493
        assert alerts.count() == alerts_before + 1  # the summary and its alert check: once per push


def test_one_bad_dose_sends_its_group_one_at_a_time_with_exact_statuses(
    world: dict[str, Any], clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, today = world["patient"], world["today"]
    mutations = clean_batch(world)[:20]
    bad = mutations[10]["mutation_id"]
    mutations[10] = dose(bad, uuid.uuid4(), world["rx"], today + timedelta(days=1))  # tomorrow
    with tenant_context(clinic_a):
        with undone(), slow_path_only(monkeypatch):
            slow = push_once(patient, mutations)
            slow_state = state(patient)
        fast_seen = spy_fast(monkeypatch)
        fast = push_once(patient, mutations)
        assert fast == slow
        assert state(patient) == slow_state
    # The diary group still went fast; the dose group, with its bad dose, one at a time.
    assert sorted(fast_seen) == [m["mutation_id"] for m in mutations if m["table"] == "diary_entry"]
    assert [r["status"] for r in fast] == ["applied"] * 10 + ["rejected"] + ["applied"] * 9
    assert fast[10] == {
        "mutation_id": bad,
        "status": "rejected",
        "reason": {
            "code": "dose_future_date",
            "detail": f"{today + timedelta(days=1)} is in the future in your time zone (Europe/Berlin).",
            "field": "date",
        },
    }


def test_a_natural_key_merge_in_the_batch_falls_back_and_merges_as_before(
    world: dict[str, Any], clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new id for a day the server already has (another writer's): the diary group runs one
    at a time, so the merge, its alias and its conflict are exactly the per-mutation path's."""
    patient, today = world["patient"], world["today"]
    newcomer = uuid.uuid4()
    mutations = [
        diary(5, uuid.uuid4(), today - timedelta(days=6), wheals=1, itch=1),
        diary(6, newcomer, today - timedelta(days=4), wheals=0, itch=3),
        dose(7, uuid.uuid4(), world["rx"], today),
    ]
    with tenant_context(clinic_a):
        with undone(), slow_path_only(monkeypatch):
            slow = push_once(patient, mutations)
            slow_state = state(patient)
        fast_seen = spy_fast(monkeypatch)
        fast = push_once(patient, mutations)
        assert fast == slow
        assert state(patient) == slow_state
        assert SyncAlias.objects.get(alias_id=newcomer).record_id == world["other"]
    assert fast_seen == [7]
    assert [r["status"] for r in fast] == ["applied", "merged", "applied"]


def test_a_replayed_batch_answers_duplicate_with_the_fast_paths_results(
    world: dict[str, Any], clinic_a: Clinic
) -> None:
    patient = world["patient"]
    mutations = clean_batch(world)[:30]
    with tenant_context(clinic_a):
        first = push_once(patient, mutations)
        again = push_once(patient, mutations)
        assert [r["status"] for r in again] == ["duplicate"] * 30
        assert [r["original"] for r in again] == first
        assert Prescription.objects.filter(patient=patient).count() == 2


def test_an_edit_over_another_writers_change_falls_back_and_merges_as_before(
    world: dict[str, Any], clinic_a: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device edits a day another writer recorded, from base 0: a field-level merge with a
    recorded conflict, which only the per-mutation path writes."""
    patient, today = world["patient"], world["today"]
    mutations = [
        diary(5, world["own"][0], today - timedelta(days=1), world["versions"][world["own"][0]], itch=3),
        diary(6, world["other"], today - timedelta(days=4), 0, wheals=0),
    ]
    with tenant_context(clinic_a):
        with undone(), slow_path_only(monkeypatch):
            slow = push_once(patient, mutations)
            slow_state = state(patient)
        fast_seen = spy_fast(monkeypatch)
        fast = push_once(patient, mutations)
        assert fast == slow
        assert state(patient) == slow_state
        assert list(SyncConflict.objects.values_list("record_id", "fields")) == [(world["other"], ["wheals"])]
    assert fast_seen == []
    assert [r["status"] for r in fast] == ["applied", "merged"]
