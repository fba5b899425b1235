// Diary reads and writes. A write stores the entry and its outbox mutation in ONE IndexedDB
// transaction: either both are there or neither (DESIGN.md §11).
import type { AppDB, DiaryEntry, Mutation, Slot } from "./db";
import { takeMutationId } from "./meta";
import { neverAccepted } from "./outbox";

export { pendingIds } from "./outbox";

export interface DiaryInput {
  day: string;
  slot: Slot;
  wheals: number;
  itch: number;
  angioedema: boolean;
  aas_items: number[] | null;
  note: string;
  /** The version a change was based on, when older than the device's copy (Today's unsaved
   * input that met a newer entry); by default the copy's. */
  base_version?: number;
}

const EDITABLE = ["wheals", "itch", "angioedema", "aas_items", "note"] as const;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The live entry for a day and slot, if any. */
export async function diaryEntryFor(db: AppDB, day: string, slot: Slot): Promise<DiaryEntry | undefined> {
  const rows = await db.diary.where("[day+slot]").equals([day, slot]).toArray();
  return rows.find((r) => !r.deleted);
}

/** Live entries between two local dates (inclusive), oldest first. */
export async function diaryEntriesBetween(db: AppDB, from: string, to: string): Promise<DiaryEntry[]> {
  const rows = await db.diary.where("day").between(from, to, true, true).toArray();
  return rows.filter((r) => !r.deleted).sort((a, b) => (a.day + a.slot).localeCompare(b.day + b.slot));
}

/**
 * Record (or change) the entry for a day and slot. A new entry sends every field; a change
 * sends only the fields that changed, with the version it was based on, so the server merges
 * per field instead of overwriting another device's change with a stale value.
 */
export async function diaryEntrySave(db: AppDB, input: DiaryInput): Promise<DiaryEntry> {
  const aas = input.angioedema ? input.aas_items : null;
  return db.transaction("rw", db.diary, db.outbox, db.meta, async () => {
    const existing = await diaryEntryFor(db, input.day, input.slot);
    const entry: DiaryEntry = {
      id: existing?.id ?? crypto.randomUUID(),
      day: input.day,
      slot: input.slot,
      wheals: input.wheals,
      itch: input.itch,
      angioedema: input.angioedema,
      aas_items: aas,
      note: input.note,
      server_version: existing?.server_version ?? 0,
      deleted: false,
      rejected: null,
    };
    // An entry whose creation the server refused is sent whole again (a partial change of a
    // record the server does not have would be refused for the missing fields).
    const isNew = existing === undefined || (await neverAccepted(db, "diary_entry", existing));
    let fields: Record<string, unknown>;
    if (isNew) {
      fields = { day: entry.day, slot: entry.slot };
      for (const name of EDITABLE) fields[name] = entry[name];
    } else {
      fields = {};
      for (const name of EDITABLE) if (!same(existing[name], entry[name])) fields[name] = entry[name];
      if (Object.keys(fields).length === 0) return existing;
    }
    const mutation: Mutation = {
      mutation_id: await takeMutationId(db),
      table: "diary_entry",
      id: entry.id,
      op: "upsert",
      base_version: isNew ? null : (input.base_version ?? existing?.server_version ?? null),
      fields,
    };
    await db.diary.put(entry);
    await db.outbox.add(mutation);
    return entry;
  });
}

/** Delete the entry (a tombstone until the server confirms; deletes win on the server). */
export async function diaryEntryDelete(db: AppDB, id: string): Promise<void> {
  await db.transaction("rw", db.diary, db.outbox, db.meta, async () => {
    const existing = await db.diary.get(id);
    if (existing === undefined || existing.deleted) return;
    await db.diary.put({ ...existing, deleted: true });
    await db.outbox.add({
      mutation_id: await takeMutationId(db),
      table: "diary_entry",
      id,
      op: "delete",
      base_version: existing.server_version,
      fields: {},
    });
  });
}
