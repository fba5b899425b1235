"""Which clinics have periodic work, so the dispatchers send a task only to those (DESIGN.md §7).

- Reminders: `tenants.models.ClinicDue.next_due_at` and the clinic's `ClinicDueHint` rows, a
  PHI-free lower bound in the public schema on when the clinic next has a reminder due or an
  open delivery the sweep may need. Writers only insert hints (trigger, patients migration
  0015), so they never share a row or wait for each other; `clinic_next_due_recompute` sets
  `next_due_at` after each scan and deletes exactly the hints it accounted for (below).
- The outbox relay, alert evaluation and the summary roll: a cheap probe of every clinic
  schema in a few statements (an EXISTS per schema, UNION ALL, 100 schemas a statement),
  answered from a partial or ordinary index without a task, a broker round trip or a schema
  switch: about 0.12 ms per clinic (bench/scale.py), against about 5 ms for an empty scan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from patients.models import DeliveryStatus
from tenants.db import tenant_connection
from tenants.models import DISPATCH_STATUSES, Clinic, ClinicDue, ClinicDueHint

if TYPE_CHECKING:
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

PROBE_BATCH = 100  # schemas per probe statement: two relation locks each, held to its end

# The earliest instant the clinic's scan has anything to do: its next enabled reminder; a
# delivery being sent whose claim times out (the sweep requeues it); a delivery not yet sent,
# which a worker may claim any moment (so at most a claim timeout from now) and which expires
# once too late. Matches `reminders_dispatch_due` and `reminder_deliveries_sweep`.
_NEXT_DUE_SQL = """
SELECT LEAST(
    (SELECT min(next_fire_at) FROM patients_reminder
     WHERE next_fire_at IS NOT NULL AND enabled AND deleted_at IS NULL),
    (SELECT min(CASE WHEN status = %(sending)s
                     THEN coalesce(claimed_at, %(now)s) + %(claim)s * interval '1 second'
                     ELSE LEAST(%(now)s + %(claim)s * interval '1 second',
                                scheduled_for + %(lateness)s * interval '1 second') END)
     FROM patients_reminderdelivery WHERE status = %(pending)s OR status = %(sending)s)
)
"""


def clinic_next_due_recompute(*, now: datetime | None = None) -> datetime | None:
    """Set the current clinic's `next_due_at` from its schedule, after its scan; returns it.

    One transaction, READ COMMITTED (every statement its own snapshot), three steps:
    (0) lock the clinic's public `ClinicDue` row: only recomputes of the same clinic wait for
        each other (dispatcher against dispatcher); writers never touch this row;
    (1) read the ids of the clinic's hints;
    (2) read the schedule's minimum from the clinic's schema, a new snapshot taken after (1);
    (3) set `next_due_at` to it and delete exactly the hint ids read in (1).

    Why no reminder is lost: a hint is inserted in the same transaction as the reminder write it
    announces, so a hint read in (1) was committed before (1) began, and so was its reminder,
    which (2), a later snapshot, therefore sees (or a later state of it; a still earlier write
    has its own hint). A write committed after (1) has a hint (1) did not read, which (3) leaves
    in place: the dispatcher sees the clinic due again by that hint's time. (2) misses only
    writes committed after its snapshot, hence after (1). Two recomputes of one clinic are
    serialized by the lock in (0), so an older result never overwrites a newer one that
    deleted hints the older read did not cover.
    """
    from patients.reminders import CLAIM_TIMEOUT, max_lateness

    now = now or timezone.now()
    clinic_id = tenant_connection().tenant.pk
    with transaction.atomic():
        ClinicDue.objects.get_or_create(clinic_id=clinic_id)
        ClinicDue.objects.select_for_update().filter(clinic_id=clinic_id).values_list("pk").get()
        hints = list(ClinicDueHint.objects.filter(clinic_id=clinic_id).values_list("pk", flat=True))
        with connection.cursor() as cursor:
            cursor.execute(
                _NEXT_DUE_SQL,
                {
                    "now": now,
                    "claim": CLAIM_TIMEOUT.total_seconds(),
                    "lateness": max_lateness().total_seconds(),
                    "pending": DeliveryStatus.PENDING,
                    "sending": DeliveryStatus.SENDING,
                },
            )
            next_due: datetime | None = cursor.fetchone()[0]
            ClinicDue.objects.filter(clinic_id=clinic_id).update(next_due_at=next_due)
            _hints_delete(cursor, hints)
    return next_due


def _hints_delete(cursor: Any, ids: list[int]) -> None:
    if ids:  # one array parameter, however many hints piled up
        cursor.execute("DELETE FROM public.tenants_clinicduehint WHERE id = ANY(%s)", [ids])


def _hints_fold(clinic_id: UUID) -> None:
    """Fold a clinic's hints into its `next_due_at` (LEAST: only ever lowers it) and delete
    them, for a clinic the dispatcher does not scan: a suspended-then-active clinic keeps every
    reminder saved meanwhile, and its hints do not pile up. Same lock and order as above."""
    with transaction.atomic():
        ClinicDue.objects.get_or_create(clinic_id=clinic_id)
        ClinicDue.objects.select_for_update().filter(clinic_id=clinic_id).values_list("pk").get()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(array_agg(id), '{}'), min(at) FROM public.tenants_clinicduehint "
                "WHERE clinic_id = %s",
                [clinic_id],
            )
            ids, earliest = cursor.fetchone()
            if earliest is not None:
                cursor.execute(
                    "UPDATE public.tenants_clinicdue SET next_due_at = LEAST(next_due_at, %s) "
                    "WHERE clinic_id = %s",
                    [earliest, clinic_id],
                )
            _hints_delete(cursor, list(ids))


def clinic_due_bound(clinic_id: UUID) -> datetime | None:
    """The clinic's effective bound: the earlier of `next_due_at` and its hints (None: nothing
    scheduled). For tests and operators; the dispatcher asks `clinics_due` instead."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT LEAST((SELECT next_due_at FROM public.tenants_clinicdue WHERE clinic_id = %s),"
            "             (SELECT min(at) FROM public.tenants_clinicduehint WHERE clinic_id = %s))",
            [clinic_id, clinic_id],
        )
        bound: datetime | None = cursor.fetchone()[0]
    return bound


def dispatchable_clinics() -> QuerySet[Clinic]:
    clinics: QuerySet[Clinic] = Clinic.objects.filter(status__in=DISPATCH_STATUSES).only(
        "schema_name", "slug"
    )
    return clinics


def clinics_due(*, now: datetime | None = None) -> list[Clinic]:
    """Dispatchable clinics whose next reminder work is due: `next_due_at` or a hint at or before
    now (one statement; each side an index range scan of what is due, not of every clinic)."""
    now = now or timezone.now()
    due = ClinicDue.objects.filter(next_due_at__lte=now).values("clinic_id")
    hinted = ClinicDueHint.objects.filter(at__lte=now).values("clinic_id")
    return list(dispatchable_clinics().filter(pk__in=due.union(hinted)))


def _quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


def schemas_where(schemas: Sequence[str], exists_sql: str, params: Sequence[Any] = ()) -> set[str]:
    """The schemas for which `exists_sql` (a SELECT with `{schema}` for the quoted schema and
    `%s` placeholders) returns a row: one statement per PROBE_BATCH schemas."""
    found: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(schemas), PROBE_BATCH):
            batch = schemas[start : start + PROBE_BATCH]
            parts = [
                f"SELECT %s WHERE EXISTS ({exists_sql.format(schema=_quoted(schema))})"  # noqa: S608 (schema names are ours)
                for schema in batch
            ]
            args: list[Any] = []
            for schema in batch:
                args += [schema, *params]
            cursor.execute(" UNION ALL ".join(parts), args)
            found.update(row[0] for row in cursor.fetchall())
    return found


def _filter(clinics: Iterable[Clinic], exists_sql: str, params: Sequence[Any] = ()) -> list[Clinic]:
    clinics = list(clinics)
    hits = schemas_where([c.schema_name for c in clinics], exists_sql, params)
    return [c for c in clinics if c.schema_name in hits]


def clinics_with_unsent_outbox(clinics: Iterable[Clinic], *, now: datetime | None = None) -> list[Clinic]:
    """Clinics whose outbox holds a message the relay would publish now (partial index
    `outbox_unsent`): a broker outage's leftovers get their relay without a scan everywhere."""
    from core.outbox import RELAY_GRACE

    cutoff = (now or timezone.now()) - RELAY_GRACE
    return _filter(
        clinics,
        "SELECT 1 FROM {schema}.core_outboxmessage WHERE sent_at IS NULL AND created_at <= %s",
        [cutoff],
    )


def clinics_with_active_patients(clinics: Iterable[Clinic]) -> list[Clinic]:
    """Clinics with a patient whose alerts are evaluated daily (`status = 'active'`)."""
    return _filter(clinics, "SELECT 1 FROM {schema}.patients_patient WHERE status = 'active'")


def clinics_with_stale_summaries(clinics: Iterable[Clinic], *, now: datetime | None = None) -> list[Clinic]:
    """Clinics with a summary row whose local date has ended (what `summaries_roll` takes)."""
    return _filter(
        clinics,
        "SELECT 1 FROM {schema}.patients_patientsummary WHERE stale_after <= %s",
        [now or timezone.now()],
    )


def clinics_needing_reminder_dispatch(*, now: datetime | None = None) -> list[Clinic]:
    """This minute's scans: clinics with a reminder or a delivery due, and clinics whose
    outbox a broker outage left unsent (the scan relays it)."""
    now = now or timezone.now()
    due = clinics_due(now=now)
    due_ids = {c.pk for c in due}
    relay = clinics_with_unsent_outbox(dispatchable_clinics().exclude(pk__in=due_ids), now=now)
    return due + relay


def clinic_due_reconcile_all(*, now: datetime | None = None) -> int:
    """The safety net (hourly): recompute every dispatchable clinic's next_due_at from its own
    schedule, with the same locking as after a scan (which deletes the hints it accounted for),
    then fold the hints of clinics the dispatcher does not scan and drop those of deleted
    clinics. So no hint outlives the reconcile after it: hints are bounded by about an hour of
    reminder writes (one per writing transaction, fewer after each scan). Returns how many
    clinics were recomputed."""
    from django_tenants.utils import tenant_context

    count = 0
    for clinic in dispatchable_clinics():
        try:
            with tenant_context(clinic):
                clinic_next_due_recompute(now=now)
            count += 1
        except DatabaseError:  # one broken schema must not stop the others
            logger.warning("next_due_at reconcile failed for a clinic", exc_info=True)
    # Folding only lowers, so a clinic that became dispatchable meanwhile is safe here too.
    others = set(
        ClinicDueHint.objects.exclude(clinic_id__in=dispatchable_clinics().values("pk")).values_list(
            "clinic_id", flat=True
        )
    )
    existing = set(Clinic.objects.filter(pk__in=others).values_list("pk", flat=True))
    for clinic_id in others:
        try:
            if clinic_id in existing:
                _hints_fold(clinic_id)
            else:
                ClinicDueHint.objects.filter(clinic_id=clinic_id).delete()
        except DatabaseError:
            logger.warning("next_due_at hint fold failed for a clinic", exc_info=True)
    return count


__all__ = [
    "clinic_due_bound",
    "clinic_due_reconcile_all",
    "clinic_next_due_recompute",
    "clinics_due",
    "clinics_needing_reminder_dispatch",
    "clinics_with_active_patients",
    "clinics_with_stale_summaries",
    "clinics_with_unsent_outbox",
    "dispatchable_clinics",
    "schemas_where",
]
