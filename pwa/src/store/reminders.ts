// Reminders: add, change (only the changed fields, with the base version, so the server merges
// per field) and delete (a tombstone until the server confirms; deletes win).
import type { AppDB, ReminderRow } from "./db";
import { enqueue, neverAccepted, same } from "./outbox";

export interface ReminderInput {
  kind: ReminderRow["kind"];
  local_time: string;
  days_of_week: number[];
  prescription: string | null;
  enabled: boolean;
}

const FIELDS = ["kind", "local_time", "days_of_week", "prescription", "enabled"] as const;

export async function reminderSave(db: AppDB, input: ReminderInput, id?: string): Promise<ReminderRow> {
  return db.transaction("rw", db.reminders, db.outbox, db.meta, async () => {
    // A deleted reminder is not brought back (the server's delete wins): saving makes a new one.
    const found = id ? await db.reminders.get(id) : undefined;
    const existing = found?.deleted ? undefined : found;
    const row: ReminderRow = {
      id: existing?.id ?? crypto.randomUUID(),
      ...input,
      days_of_week: [...input.days_of_week].sort((a, b) => a - b),
      server_version: existing?.server_version ?? 0,
      deleted: false,
      rejected: null,
    };
    // A reminder whose creation the server refused is sent whole again, as a new one.
    const isNew = existing === undefined || (await neverAccepted(db, "reminder", existing));
    const fields: Record<string, unknown> = {};
    for (const name of FIELDS) if (isNew || !same(existing?.[name], row[name])) fields[name] = row[name];
    if (existing !== undefined && !isNew && Object.keys(fields).length === 0) return existing;
    await db.reminders.put(row);
    await enqueue(db, "reminder", row.id, "upsert", isNew ? null : (existing?.server_version ?? null), fields);
    return row;
  });
}

export async function reminderDelete(db: AppDB, id: string): Promise<void> {
  await db.transaction("rw", db.reminders, db.outbox, db.meta, async () => {
    const existing = await db.reminders.get(id);
    if (existing === undefined || existing.deleted) return;
    await db.reminders.put({ ...existing, deleted: true });
    await enqueue(db, "reminder", id, "delete", existing.server_version, {});
  });
}

/** Live reminders by time of day. */
export async function remindersList(db: AppDB): Promise<ReminderRow[]> {
  const rows = await db.reminders.toArray();
  return rows.filter((r) => !r.deleted).sort((a, b) => a.local_time.localeCompare(b.local_time));
}
