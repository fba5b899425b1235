// IndexedDB schema (Dexie). Each clinic host is its own origin, so this database is per clinic.
// Versioned upgrades go below the last `.version(n)`, never by editing an old one.
import Dexie, { type EntityTable } from "dexie";

import type {
  PushMutation,
  ServerConflict,
  ServerDiaryRecord,
  ServerDoseRecord,
  ServerPrescriptionRecord,
  ServerQuestionnaireRecord,
  ServerReminderRecord,
} from "../api/types";

// The rows are the server's records (api/types.ts) plus the device's bookkeeping:
// `server_version` 0 for a record never on the server, a tombstone (`deleted`) until the
// server confirms a delete, and the server's refusal of the latest change (the row is kept and
// the reason shown).

export type Slot = ServerDiaryRecord["slot"];

/** Why the server refused a record's latest change. */
export interface Refusal {
  code: string;
  detail: string;
}

interface Bookkeeping {
  rejected?: Refusal | null;
}

/** A diary entry: day is a local date (YYYY-MM-DD), wheals and itch 0–3. */
export type DiaryEntry = Omit<ServerDiaryRecord, "deleted"> & Bookkeeping & { deleted: boolean };

/** A UCT/AAS response (editable); `score` stays null until the server has scored it. */
export type QuestionnaireRow = ServerQuestionnaireRecord & Bookkeeping & { deleted: boolean };

/** A dose log: insert-only (a correction is a new log). */
export type DoseRow = ServerDoseRecord & Bookkeeping;

/** A prescription, owned by the clinic (pulled, never pushed). */
export type PrescriptionRow = ServerPrescriptionRecord;

/** A reminder at a local wall-clock time (HH:MM) on some ISO weekdays (1 = Monday … 7 = Sunday). */
export type ReminderRow = Omit<ServerReminderRecord, "deleted"> & Bookkeeping & { deleted: boolean };

/** A server view kept for offline reading (GET /me/summary/, /me/medications/, …). */
export interface CachedView {
  key: string;
  value: unknown;
  fetched_at: string; // ISO time of the fetch
}

export type Table = PushMutation["table"];

/** One queued change (the outbox's rows are sent as they are). */
export type Mutation = PushMutation;

/** A conflict the server recorded (another device changed the same record), until seen. */
/** `server_version`: the version of the write that won; `client_id`: the device that wrote it
 * (both absent on rows kept before they were). */
export type Conflict = Omit<ServerConflict, "mutation_id" | "client_id" | "server_version"> & {
  server_version?: number;
  client_id?: string;
  seen: boolean;
};

export interface MetaRow {
  key: string;
  value: unknown;
}

export class AppDB extends Dexie {
  diary!: EntityTable<DiaryEntry, "id">;
  outbox!: EntityTable<Mutation, "mutation_id">;
  conflicts!: EntityTable<Conflict, "id">;
  meta!: EntityTable<MetaRow, "key">;
  questionnaires!: EntityTable<QuestionnaireRow, "id">;
  doses!: EntityTable<DoseRow, "id">;
  prescriptions!: EntityTable<PrescriptionRow, "id">;
  reminders!: EntityTable<ReminderRow, "id">;
  views!: EntityTable<CachedView, "key">;

  constructor(name = "csu-tracker") {
    // No auto-open: a connection closed under the page stays closed (closeWhenDeleted). The
    // database opens once, here; operations wait for it (a failure reaches each of them).
    super(name, { autoOpen: false });
    this.version(1).stores({
      diary: "id, day, [day+slot]",
      outbox: "mutation_id, id",
      conflicts: "id, record_id",
      meta: "key",
    });
    this.version(2).stores({
      questionnaires: "id, instrument, period_end",
      doses: "id, prescription, date",
      prescriptions: "id",
      reminders: "id",
      views: "key",
    });
    void this.open().catch(() => undefined);
  }
}

/**
 * The connection ends for good when another tab deletes the database (a sign-out), the browser
 * closes it (the logout answer's Clear-Site-Data) or a newer version upgrades it: with
 * auto-open off (AppDB), nothing this page still has in flight (a pull's cursor, a kept summary)
 * can reopen the database and write the signed-out patient's data into the new, empty one
 * (found by review: Dexie's default reopens it). `then` runs after (the page reloads).
 */
export function closeWhenDeleted(db: AppDB, then?: () => void): void {
  db.on("versionchange", () => {
    db.close();
    then?.();
    return false; // handlers run newest first: Dexie's own would keep auto-open on
  });
  db.on("close", () => then?.());
}
