"""Push: a device's batch of mutations, idempotent and gap-free: the common batch set-based in one
savepoint (batch.py), any other one mutation at a time, each in its savepoint."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DataError, transaction

from core.errors import ApplicationError, ErrorCode
from patients import services
from patients.models import Patient, SyncClient, SyncMutationResult, SyncState
from patients.sync.apply import _apply
from patients.sync.batch import batch_apply
from patients.sync.cursor import sync_reset_required
from patients.sync.merge import Rejected, _jsonable, _rejection
from patients.sync.tables import MAX_BATCH
from patients.sync.versions import _patient_sync_lock, _pending_marker, sync_stamp_now

logger = logging.getLogger("patients.sync")


@dataclass(frozen=True)
class PushResult:
    last_mutation_id: int
    results: list[dict[str, Any]]


def sync_push(
    *,
    patient: Patient,
    user_id: uuid.UUID,
    client_id: uuid.UUID,
    mutations: list[dict[str, Any]],
    late_days: int = 7,
) -> PushResult:
    """Apply a batch of a device's mutations in one transaction.

    Mutation ids are per client and gap-free: ids already applied answer `duplicate` with the
    original result; a gap refuses the whole batch (409 `mutation_gap`, nothing applied). A client
    of an older sync epoch (the clinic was restored), or one the server does not know that starts
    past mutation 1, gets 409 `reset_required` instead: its acknowledged history is gone. A batch
    of plain diary and dose upserts is checked at once and applied set-based in one savepoint;
    any other batch runs each mutation in its savepoint: a bad record is `rejected` (and still
    counts as processed), never a 4xx for the batch. Both give the same rows and statuses. `last_mutation_id` is stored with the effects.
    """
    if len(mutations) > MAX_BATCH:
        raise ApplicationError(
            code=ErrorCode.BATCH_TOO_LARGE, status_code=413, detail=f"At most {MAX_BATCH} mutations per push."
        )
    with transaction.atomic(), services.changes_batched():
        _patient_sync_lock(patient)
        # The request loaded the patient before taking the lock: a settings change (time zone,
        # diary mode) committed in between must decide this batch's date and slot checks.
        patient.refresh_from_db(fields=["timezone", "diary_mode", "status"])
        # Deletes and merges change the summary too: it is recomputed once, as the batch ends.
        services.patient_changed(patient)
        epoch = SyncState.objects.values_list("epoch", flat=True).get()
        client, created = SyncClient.objects.select_for_update().get_or_create(
            client_id=client_id, defaults={"user_id": user_id, "patient": patient, "epoch": epoch}
        )
        if not created and client.patient_id != patient.pk:
            raise ApplicationError(
                code=ErrorCode.CLIENT_NOT_YOURS,
                status_code=403,
                detail="This client id belongs to another account.",
            )
        if not created and client.epoch != epoch:
            raise sync_reset_required()
        if created and mutations and mutations[0]["mutation_id"] > 1:
            # A client the server does not know that has already had mutations acknowledged:
            # it registered in an epoch a restore removed. Resuming would be a gap forever
            # (the acknowledged mutations left the device's outbox): it must reset.
            raise sync_reset_required()
        expected = client.last_mutation_id + 1
        for m in mutations:
            if m["mutation_id"] >= expected:
                if m["mutation_id"] != expected:
                    raise ApplicationError(
                        code=ErrorCode.MUTATION_GAP,
                        status_code=409,
                        detail=f"Expected mutation {expected} next.",
                        extra={"expected": expected},
                    )
                expected += 1
        stored = {
            r.mutation_id: r.result
            for r in SyncMutationResult.objects.filter(
                client=client,
                mutation_id__in=[
                    m["mutation_id"] for m in mutations if m["mutation_id"] <= client.last_mutation_id
                ],
            )
        }
        # Plain diary and dose upserts are checked at once and applied set-based, a table's
        # group in one savepoint; any mutation that group does not handle sends the group one
        # mutation at a time, in order, as every other mutation (batch.py).
        ids = [m["mutation_id"] for m in mutations]
        fast = (
            batch_apply(
                patient,
                client,
                [m for m in mutations if m["mutation_id"] > client.last_mutation_id],
                late_days,
            )
            if ids == sorted(set(ids))
            else {}
        )
        results, new_results = [], []
        for m in mutations:
            if m["mutation_id"] <= client.last_mutation_id:
                results.append(
                    {
                        "mutation_id": m["mutation_id"],
                        "status": "duplicate",
                        "original": stored.get(m["mutation_id"]),
                    }
                )
                continue
            if m["mutation_id"] in fast:
                result = fast[m["mutation_id"]]
            else:
                result = {"mutation_id": m["mutation_id"], **_apply_one(patient, client, m, late_days)}
            client.last_mutation_id = m["mutation_id"]
            results.append(result)
            new_results.append(result)
        # The batch is applied; only now the clinic's version (and its lock, to commit).
        version = sync_stamp_now(fresh=True)
        # A result still carrying the transaction's marker is a write of this push; any other
        # version it names (a delete-wins conflict names the deleter's) is not this device's.
        marker = _pending_marker()
        written = {id(r) for r in new_results if r.get("server_version") == marker}
        if version is not None:
            for result in new_results:
                for holder in (result, result.get("record") or {}):
                    if holder.get("server_version") == marker:
                        holder["server_version"] = version
        # One JSON-ready copy of each result serves both the stored record and the answer.
        answers = [_jsonable(r) for r in results]
        fresh = {id(r) for r in new_results}
        SyncMutationResult.objects.bulk_create(
            SyncMutationResult(
                client=client,
                mutation_id=a["mutation_id"],
                result=a,
                written_version=version if id(r) in written else None,
            )
            for r, a in zip(results, answers, strict=True)
            if id(r) in fresh
        )
        client.save(update_fields=["last_mutation_id", "last_seen_at"])
        return PushResult(client.last_mutation_id, answers)


def _apply_one(patient: Patient, client: SyncClient, m: dict[str, Any], late_days: int) -> dict[str, Any]:
    """One mutation in its savepoint. Any failure, whatever raised it, refuses this mutation
    alone and undoes its effects: a push never answers 5xx because of its content."""
    try:
        with transaction.atomic():
            return _apply(patient, client, m, late_days)
    except (Rejected, ApplicationError) as exc:
        return _rejection(exc)
    except DataError:
        logger.warning("Sync mutation refused by the database (%s)", m["table"])
        return _rejection(Rejected(ErrorCode.INVALID_VALUE, "A value could not be stored."))
    except Exception:
        # Never the details (they may quote the record); the savepoint undid the mutation.
        logger.exception("Sync mutation failed (%s)", m["table"])
        return _rejection(Rejected(ErrorCode.INVALID_VALUE, "This change could not be applied."))
