"""The patient records' part in a clinic restore (tenants/restore.py, issue 21).

- In the swap transaction: a new sync epoch (every device's cursor and client id belong to the
  old one, so each resets and pushes what it still has queued as a new client), and the version
  counter never goes back: it continues from the higher of the restored and the replaced
  schema's, so a version a device saw before the restore is never reused for another change.
  Reminder deliveries made after the backup are carried over (no reminder twice for a date).
- After it: the public rows out of step with the restored schema (a patient membership without
  a patient row, a patient row without an active membership, a seat count that changed) and, on
  `repair`, the fix: the account link of a patient enrolled after the backup is carried over from
  the replaced schema (the patient row, its consents and its redeemed enrollment), a membership
  that links nothing is removed (the person can be enrolled again).
- The listing of the synced rows the replaced schema holds that the restored one lacks: rows
  with a version above the backup's (written after it), or still unstamped (a write that
  committed into the old schema while the swap ran).

Schema names here are the clinic's own (`clinic.schema_name` and `restore_old_<slug>`, made by
tenants/restore.py from a validated slug), never input.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction
from django_tenants.utils import schema_exists, tenant_context

from accounts.models import Membership, Role
from accounts.services import membership_cache_clear_now_and_on_commit
from tenants.db import table_columns
from tenants.restore import Finding, RestoreContext, RestoreParticipant

SYNCED_TABLES = (
    "patients_patient",
    "patients_diaryentry",
    "patients_questionnaireresponse",
    "patients_doselog",
    "patients_reminder",
    "patients_prescription",
    "patients_syncconflict",
)

_BACKUP_VERSION = "csu:restored_from_version="


def _one(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return None if row is None else row[0]


def restore_swapped(ctx: RestoreContext) -> None:
    """New epoch, and the counter continues past both histories. Runs in the swap transaction:
    the old state row is locked first, so a push still stamping in the old schema commits
    before the counter is read (its rows stay in the old schema, listed as later writes)."""
    old_version = _one(f'SELECT version FROM "{ctx.old_schema}".patients_syncstate FOR UPDATE')  # noqa: S608
    restored = int(_one(f'SELECT version FROM "{ctx.schema}".patients_syncstate FOR UPDATE'))  # noqa: S608
    with connection.cursor() as cursor:
        # The backup's version stays with the replaced schema: what is above it was written
        # after the backup (restore_later_writes), whenever the listing is asked for.
        cursor.execute(f"COMMENT ON SCHEMA \"{ctx.old_schema}\" IS '{_BACKUP_VERSION}{restored}'")
        cursor.execute(
            f'UPDATE "{ctx.schema}".patients_syncstate SET epoch = gen_random_uuid(), '  # noqa: S608
            "version = GREATEST(version, %s)",
            [int(old_version or 0)],
        )
        # Reminders delivered after the backup are not delivered again for the same local date:
        # their delivery rows (one per reminder and date) come back for the restored reminders.
        columns = ", ".join(f'"{c}"' for c in table_columns(ctx.schema, "patients_reminderdelivery"))
        cursor.execute(
            f'INSERT INTO "{ctx.schema}".patients_reminderdelivery ({columns}) '  # noqa: S608
            f'SELECT {columns} FROM "{ctx.old_schema}".patients_reminderdelivery o '
            f'WHERE EXISTS (SELECT 1 FROM "{ctx.schema}".patients_reminder r WHERE r.id = o.reminder_id) '
            f'AND EXISTS (SELECT 1 FROM "{ctx.schema}".patients_patient p WHERE p.id = o.patient_id) '
            "ON CONFLICT DO NOTHING"
        )


def restore_after(ctx: RestoreContext) -> None:
    """The restored reminders decide when the clinic is next due (public `ClinicDue`)."""
    from patients.due import clinic_next_due_recompute

    with tenant_context(ctx.clinic):
        clinic_next_due_recompute()



def _copy_rows(ctx: RestoreContext, table: str, where: str, params: list[Any], *, update: list[str]) -> int:
    """Copy rows of `table` from the replaced schema into the restored one (same columns: both
    are at the code's migrations); an existing row gets the `update` columns."""
    columns = table_columns(ctx.schema, table)
    names = ", ".join(f'"{c}"' for c in columns)
    conflict = (
        "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update) if update else "DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{ctx.schema}"."{table}" ({names}) SELECT {names} FROM "{ctx.old_schema}"."{table}" '  # noqa: S608
            f"WHERE {where} ON CONFLICT (id) {conflict}",
            params,
        )
        return int(cursor.rowcount)


def _patients_by_user(schema: str) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT user_id, id, status FROM "{schema}".patients_patient WHERE user_id IS NOT NULL'  # noqa: S608
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def _seats(schema: str) -> int:
    return int(_one(f'SELECT count(*) FROM "{schema}".patients_patient WHERE status = %s', ["active"]))  # noqa: S608


def restore_findings(ctx: RestoreContext, repair: bool) -> list[Finding]:
    """The public rows out of step with the restored schema; fixed when `repair`."""
    findings: list[Finding] = []
    has_old = schema_exists(ctx.old_schema)
    restored = _patients_by_user(ctx.schema)
    replaced = _patients_by_user(ctx.old_schema) if has_old else {}
    memberships = list(
        Membership.objects.filter(clinic=ctx.clinic, role=Role.PATIENT).values_list(
            "pk", "user_id", "is_active"
        )
    )
    active_users = {user_id for _, user_id, active in memberships if active}
    for membership_id, user_id, active in memberships:
        if not active or user_id in restored:
            continue
        if user_id in replaced:
            patient_id = replaced[user_id][0]
            detail = (
                f"patient membership {membership_id} (user {user_id}) has no patient row; the replaced "
                f"schema has it (patient {patient_id}, enrolled after the backup)"
            )
            if repair:
                with transaction.atomic():
                    _relink(ctx, patient_id)
                detail += ": account link carried over (patient row, consents, redeemed enrollment)"
            findings.append(Finding("membership_without_patient", str(user_id), detail, repaired=repair))
        else:
            detail = (
                f"patient membership {membership_id} (user {user_id}) links no patient row in either schema"
            )
            if repair:
                with transaction.atomic():
                    Membership.objects.filter(pk=membership_id).delete()
                    membership_cache_clear_now_and_on_commit(
                        user_id, [(ctx.clinic.schema_name, str(ctx.clinic.pk))]
                    )
                detail += ": membership removed (the person can be enrolled again)"
            findings.append(Finding("membership_without_patient", str(user_id), detail, repaired=repair))
    for user_id, (patient_id, status) in sorted(restored.items(), key=lambda item: str(item[0])):
        if user_id not in active_users and status == "active":
            findings.append(
                Finding(
                    "patient_without_membership",
                    str(user_id),
                    f"patient {patient_id} (user {user_id}) has no active membership: the account was removed "
                    "or deactivated after the backup (e.g. a deletion request); re-apply it by hand",
                )
            )
    if has_old:
        findings.extend(_enrollments_reopened(ctx, repair))
        before, after = _seats(ctx.old_schema), _seats(ctx.schema)
        if before != after:
            findings.append(
                Finding(
                    "seats",
                    ctx.clinic.slug,
                    f"{after} active patients (billed seats) in the restored schema, {before} before the restore",
                )
            )
    return findings


def _enrollments_reopened(ctx: RestoreContext, repair: bool) -> list[Finding]:
    """Codes redeemed after the backup are open again in the restored schema (or missing from
    it): whoever holds one could enrol with it. Repaired by revoking the restored copy (a code
    whose patient was carried over by `_relink` is already redeemed again)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT n.id, o.redeemed_by_id FROM "{ctx.old_schema}".patients_enrollment o '  # noqa: S608
            f'JOIN "{ctx.schema}".patients_enrollment n ON n.id = o.id '
            "WHERE o.redeemed_at IS NOT NULL AND n.redeemed_at IS NULL AND n.revoked_at IS NULL"
        )
        reopened = cursor.fetchall()
        findings = []
        for enrollment_id, user_id in reopened:
            detail = f"enrollment {enrollment_id} was redeemed after the backup (by user {user_id}) and is open again"
            if repair:
                cursor.execute(
                    f'UPDATE "{ctx.schema}".patients_enrollment SET revoked_at = now() WHERE id = %s',  # noqa: S608
                    [enrollment_id],
                )
                detail += ": revoked"
            findings.append(Finding("enrollment_reopened", str(enrollment_id), detail, repaired=repair))
        return findings


def _relink(ctx: RestoreContext, patient_id: uuid.UUID) -> None:
    """Carry a patient's account link over from the replaced schema: the patient row (or its
    user_id, when the restored row exists unlinked), consents, and the enrollment it redeemed.
    In the clinic's schema so the sync triggers stamp the rows like any write."""
    with tenant_context(ctx.clinic):
        exists = _one(f'SELECT 1 FROM "{ctx.schema}".patients_patient WHERE id = %s', [patient_id])  # noqa: S608
        if exists:
            with connection.cursor() as cursor:
                cursor.execute(
                    f'UPDATE "{ctx.schema}".patients_patient p SET user_id = o.user_id '  # noqa: S608
                    f'FROM "{ctx.old_schema}".patients_patient o WHERE p.id = o.id AND p.id = %s',
                    [patient_id],
                )
        else:
            _copy_rows(ctx, "patients_patient", "id = %s", [patient_id], update=[])
        _copy_rows(ctx, "patients_consent", "patient_id = %s", [patient_id], update=[])
        _copy_rows(
            ctx,
            "patients_enrollment",
            "patient_id = %s AND redeemed_at IS NOT NULL",
            [patient_id],
            update=["patient_id", "redeemed_at", "redeemed_by_id"],
        )


def restore_later_writes(ctx: RestoreContext) -> dict[str, int]:
    """Per synced table, the rows of the replaced schema written after the backup: a version
    above the backup's, or a pending marker (committed into the old schema during the swap)."""
    if not schema_exists(ctx.old_schema):
        return {}
    note = _one(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", [ctx.old_schema]
    )
    if not note or not str(note).startswith(_BACKUP_VERSION):
        return {}
    backup = int(str(note).removeprefix(_BACKUP_VERSION))
    counts = {}
    for table in SYNCED_TABLES:
        count = int(
            _one(
                f'SELECT count(*) FROM "{ctx.old_schema}"."{table}" WHERE server_version > %s OR server_version < 0',  # noqa: S608
                [backup],
            )
        )
        if count:
            counts[table] = count
    return counts


def restore_participant() -> RestoreParticipant:
    return RestoreParticipant(
        name="patients",
        swapped=restore_swapped,
        after=restore_after,
        findings=restore_findings,
        later_writes=restore_later_writes,
    )
