// One adapter per synced table: how a pulled record, a pulled delete, the server's answer to a
// pushed mutation and a full download's clean-up land in IndexedDB. The engine (engine.ts) only
// routes by table name; what differs between tables is said here, once.
//
// Rules shared by every table (DESIGN.md §6, reference/sync-protocol.md §3.4):
//   - the server's record wins for every field this device has no pending change of (those
//     stay as the device has them until the server answers their mutation);
//   - deletes win, also over pending local changes;
//   - a refused change is kept, marked with the server's reason (the screen shows it);
//   - a full download removes what the server no longer has, except rows with pending changes.
import type { Table as DexieTable } from "dexie";
import type { MutationStatus } from "../api/types";
import type {
  AppDB,
  DiaryEntry,
  DoseRow,
  Mutation,
  PrescriptionRow,
  QuestionnaireRow,
  Refusal,
  ReminderRow,
  Table as Pushable,
} from "../store/db";
import { settingsAcknowledged, settingsFromServer, settingsRefused } from "../store/settings";

/** A record as the pull (or a push answer) carries it: the table's fields and its version. */
export type ServerRecord = Record<string, unknown> & { id: string; server_version?: number | null; deleted?: boolean };

/** The server's answer to one mutation, with a `duplicate` already replaced by its original. */
export interface Outcome {
  status: MutationStatus;
  server_version?: number | null;
  record?: ServerRecord | null;
  /** The record the mutation reached when its id was merged into another (diary aliases). */
  record_id?: string;
  conflict_fields?: string[];
  reason?: { code: string; detail?: string; field?: string | null };
}

export interface TableSync {
  readonly table: string;
  /** The object stores it writes, besides `outbox` and `meta` (for the engine's transactions). */
  stores(db: AppDB): DexieTable[];
  /** A pulled upsert. */
  upsert(db: AppDB, record: ServerRecord): Promise<void>;
  /** A pulled delete (it wins over pending local changes). */
  remove(db: AppDB, id: string): Promise<void>;
  /** The server's answer to a pushed mutation (already out of the outbox). */
  result(db: AppDB, sent: Mutation, outcome: Outcome): Promise<void>;
  /** The end of a full download: drop what the server no longer has (`seen`: what it has). */
  sweep(db: AppDB, seen: ReadonlySet<string>): Promise<void>;
}

interface Pending {
  fields: Set<string>;
  deleted: boolean;
}

/** The changes of a record still queued (undefined: none). Call inside a transaction with outbox. */
async function pendingOf(db: AppDB, table: string, id: string): Promise<Pending | undefined> {
  const queued = await db.outbox.where("id").equals(id).filter((m) => m.table === table).toArray();
  if (queued.length === 0) return undefined;
  const pending: Pending = { fields: new Set(), deleted: false };
  for (const m of queued) {
    if (m.op === "delete") pending.deleted = true;
    for (const name of Object.keys(m.fields)) pending.fields.add(name);
  }
  return pending;
}

async function pendingIdsOf(db: AppDB, table: string): Promise<Set<string>> {
  const queued = await db.outbox.filter((m) => m.table === table).toArray();
  return new Set(queued.map((m) => m.id));
}

function reasonOf(outcome: Outcome): Refusal {
  return { code: outcome.reason?.code ?? "rejected", detail: outcome.reason?.detail ?? "" };
}

/** A replayed answer (`duplicate`) may be older than what the device already has. */
function newer(local: number, server: number | null | undefined): number {
  return typeof server === "number" && server > local ? server : local;
}

// --- Tables of records (a Dexie store keyed by the record's id) ---------------------------------

interface RecordRow {
  id: string;
  server_version: number;
  deleted?: boolean;
  rejected?: Refusal | null;
}

interface RecordSpec<Row extends RecordRow> {
  table: Pushable | "prescription";
  store(db: AppDB): DexieTable<Row, string, Row>;
  /** The local row for a server record (not deleted, not rejected). */
  fromServer(record: ServerRecord): Row;
  /** Pushed by the device (prescriptions are the clinic's: pulled only). */
  pushable: boolean;
  /** Deletes are kept as tombstones (`deleted: true`) until the server confirms them. */
  tombstones: boolean;
  /** Row fields that belong to a pending field (the server's score is for the server's answers). */
  together?: Record<string, string[]>;
  /** Before a server record is taken (the diary: another id for the same day gives way). */
  beforeTake?(db: AppDB, record: ServerRecord): Promise<void>;
}

function recordTable<Row extends RecordRow>(spec: RecordSpec<Row>): TableSync {
  /**
   * The server's record, except the fields this device has pending changes of (a pending
   * delete keeps the tombstone). A record under another id than the device's (two devices
   * created the same day) replaces the device's row once nothing of it is pending.
   */
  async function take(db: AppDB, record: ServerRecord, localId: string, fromPush: boolean): Promise<void> {
    const store = spec.store(db);
    if (record.id !== localId && (await pendingOf(db, spec.table, localId)) === undefined) await store.delete(localId);
    const current = await store.get(record.id);
    if (fromPush && current && typeof record.server_version === "number" && record.server_version < current.server_version) {
      return; // a replayed answer: the device already has a newer copy
    }
    await spec.beforeTake?.(db, record);
    const row = spec.fromServer(record);
    const pending = await pendingOf(db, spec.table, record.id);
    if (current && pending) {
      const kept = row as unknown as Record<string, unknown>;
      const local = current as unknown as Record<string, unknown>;
      for (const name of pending.fields) {
        for (const field of [name, ...(spec.together?.[name] ?? [])]) if (field in local) kept[field] = local[field];
      }
      if (pending.deleted && spec.tombstones) row.deleted = true;
    }
    await store.put(row);
  }

  async function acknowledge(db: AppDB, sent: Mutation, version: number | null | undefined): Promise<void> {
    const store = spec.store(db);
    const local = await store.get(sent.id);
    if (local === undefined) return;
    if (local.deleted && (await pendingOf(db, spec.table, sent.id)) === undefined) {
      await store.delete(sent.id); // a confirmed delete: the tombstone has done its work
      return;
    }
    await store.put({ ...local, server_version: newer(local.server_version, version), rejected: null });
  }

  return {
    table: spec.table,
    stores: (db) => [spec.store(db)],
    async upsert(db, record) {
      if (record.deleted) await spec.store(db).delete(record.id);
      else await take(db, record, record.id, false);
    },
    async remove(db, id) {
      await spec.store(db).delete(id);
    },
    async result(db, sent, outcome) {
      if (!spec.pushable) return;
      const store = spec.store(db);
      switch (outcome.status) {
        case "applied":
          await acknowledge(db, sent, outcome.server_version);
          return;
        case "merged":
        case "conflict": {
          const record = outcome.record ?? undefined;
          if (record?.deleted || outcome.reason?.code === "deleted") {
            // Deleted on the server (perhaps by another device): the delete wins.
            await store.delete(sent.id);
            if (record && record.id !== sent.id) await store.delete(record.id);
            return;
          }
          if (record) await take(db, record, sent.id, true);
          else await acknowledge(db, sent, outcome.server_version);
          return;
        }
        case "rejected": {
          const local = await store.get(sent.id);
          if (local === undefined) return;
          const pending = await pendingOf(db, spec.table, sent.id);
          if (sent.op === "delete" && spec.tombstones) {
            // The server has no such record: there is nothing left to delete.
            if (outcome.reason?.code === "not_found") {
              if (pending === undefined) await store.delete(sent.id);
              return;
            }
            await store.put({ ...local, deleted: pending?.deleted ?? false, rejected: reasonOf(outcome) });
            return;
          }
          await store.put({ ...local, rejected: reasonOf(outcome) });
          return;
        }
        default:
          return; // a duplicate whose first answer the server no longer has: the pull brings the record
      }
    },
    async sweep(db, seen) {
      const store = spec.store(db);
      const pending = await pendingIdsOf(db, spec.table);
      const rows = await store.toArray();
      // A refused new record (never on the server) stays: the screen shows why, the patient decides.
      const stale = rows.filter(
        (r) => !seen.has(r.id) && !pending.has(r.id) && !(r.rejected && r.server_version === 0),
      );
      await store.bulkDelete(stale.map((r) => r.id));
    },
  };
}

const str = (value: unknown): string => (value === undefined || value === null ? "" : String(value));
const strOrNull = (value: unknown): string | null => (value === undefined || value === null ? null : String(value));
const num = (value: unknown): number => (typeof value === "number" ? value : Number(value ?? 0));
const numOrNull = (value: unknown): number | null => (value === undefined || value === null ? null : num(value));

const diary = recordTable<DiaryEntry>({
  table: "diary_entry",
  store: (db) => db.diary as unknown as DexieTable<DiaryEntry, string, DiaryEntry>,
  pushable: true,
  tombstones: true,
  fromServer: (r) => ({
    id: r.id,
    day: str(r["day"]),
    slot: str(r["slot"]) as DiaryEntry["slot"],
    wheals: num(r["wheals"]),
    itch: num(r["itch"]),
    angioedema: Boolean(r["angioedema"]),
    aas_items: (r["aas_items"] as number[] | null | undefined) ?? null,
    note: str(r["note"]),
    server_version: num(r.server_version),
    deleted: false,
    rejected: null,
  }),
  async beforeTake(db, record) {
    // Another id for the same day and slot was merged into this one on the server: it goes,
    // unless it still has changes to send (they reach this record through the server's alias).
    const twins = await db.diary.where("[day+slot]").equals([str(record["day"]), str(record["slot"])]).toArray();
    for (const twin of twins) {
      if (twin.id !== record.id && (await pendingOf(db, "diary_entry", twin.id)) === undefined) await db.diary.delete(twin.id);
    }
  },
});

const questionnaires = recordTable<QuestionnaireRow>({
  table: "questionnaire_response",
  store: (db) => db.questionnaires as unknown as DexieTable<QuestionnaireRow, string, QuestionnaireRow>,
  pushable: true,
  tombstones: true,
  // The device never scores: while its answers are pending, the score stays unknown (null).
  together: { answers: ["score"] },
  fromServer: (r) => ({
    id: r.id,
    instrument: str(r["instrument"]) as QuestionnaireRow["instrument"],
    answers: (r["answers"] as QuestionnaireRow["answers"] | undefined) ?? {},
    score: numOrNull(r["score"]),
    period_end: strOrNull(r["period_end"]),
    server_version: num(r.server_version),
    deleted: false,
    rejected: null,
  }),
});

const doses = recordTable<DoseRow>({
  table: "dose_log",
  store: (db) => db.doses as unknown as DexieTable<DoseRow, string, DoseRow>,
  pushable: true,
  tombstones: false, // insert-only: a refused change (`immutable`, `insert_only`) is marked, never applied
  fromServer: (r) => ({
    id: r.id,
    prescription: str(r["prescription"]),
    date: str(r["date"]),
    status: str(r["status"]) as DoseRow["status"],
    taken_at: strOrNull(r["taken_at"]),
    server_version: num(r.server_version),
    rejected: null,
  }),
});

const prescriptions = recordTable<PrescriptionRow>({
  table: "prescription",
  store: (db) => db.prescriptions as unknown as DexieTable<PrescriptionRow, string, PrescriptionRow>,
  pushable: false,
  tombstones: false,
  fromServer: (r) => ({
    id: r.id,
    medication: str(r["medication"]),
    medication_name: str(r["medication_name"]),
    dose: str(r["dose"]),
    frequency_kind: str(r["frequency_kind"]),
    frequency_value: numOrNull(r["frequency_value"]),
    guideline_step: num(r["guideline_step"]),
    start: str(r["start"]),
    end: strOrNull(r["end"]),
    server_version: num(r.server_version),
  }),
});

const reminders = recordTable<ReminderRow>({
  table: "reminder",
  store: (db) => db.reminders as unknown as DexieTable<ReminderRow, string, ReminderRow>,
  pushable: true,
  tombstones: true,
  fromServer: (r) => ({
    id: r.id,
    kind: str(r["kind"]) as ReminderRow["kind"],
    local_time: str(r["local_time"]).slice(0, 5),
    days_of_week: Array.isArray(r["days_of_week"]) ? (r["days_of_week"] as number[]).map(Number) : [],
    prescription: strOrNull(r["prescription"]),
    enabled: Boolean(r["enabled"]),
    server_version: num(r.server_version),
    deleted: false,
    rejected: null,
  }),
});

// --- The patient's settings (one record, kept in meta) ------------------------------------------

const settings: TableSync = {
  table: "patient_settings",
  stores: () => [],
  async upsert(db, record) {
    await settingsFromServer(db, record);
  },
  async remove() {
    // The patient's settings are never deleted.
  },
  async result(db, sent, outcome) {
    switch (outcome.status) {
      case "applied":
      case "merged":
        // Another device's changes to other fields come with the pull.
        await settingsAcknowledged(db, outcome.server_version);
        return;
      case "rejected":
        await settingsRefused(db, Object.keys(sent.fields), outcome.reason ?? { code: "rejected" });
        return;
      default:
        return;
    }
  },
  async sweep() {
    // One record, always there.
  },
};

// --- Conflicts the server recorded (pulled only) ------------------------------------------------

const conflicts: TableSync = {
  table: "sync_conflict",
  stores: (db) => [db.conflicts],
  async upsert(db, record) {
    const known = await db.conflicts.get(record.id);
    await db.conflicts.put({
      id: record.id,
      table: str(record["table"]),
      record_id: str(record["record_id"]),
      fields: (record["fields"] as string[] | undefined) ?? [],
      client_value: (record["client_value"] as Record<string, unknown> | undefined) ?? {},
      server_value: (record["server_value"] as Record<string, unknown> | undefined) ?? {},
      resolution: str(record["resolution"]),
      server_version: typeof record["server_version"] === "number" ? record["server_version"] : undefined,
      client_id: typeof record["client_id"] === "string" ? record["client_id"] : undefined,
      seen: known?.seen ?? false,
    });
  },
  async remove(db, id) {
    await db.conflicts.delete(id);
  },
  async result() {
    // Never pushed.
  },
  async sweep(db, seen) {
    const stale = (await db.conflicts.toArray()).filter((c) => !seen.has(c.id));
    await db.conflicts.bulkDelete(stale.map((c) => c.id));
  },
};

/** Every table the server syncs, by its wire name. */
export const TABLES: ReadonlyMap<string, TableSync> = new Map(
  [diary, questionnaires, doses, prescriptions, reminders, settings, conflicts].map((t) => [t.table, t]),
);

/** Every object store a sync transaction may write. */
export function syncStores(db: AppDB): DexieTable[] {
  const stores = new Set<DexieTable>([db.outbox, db.meta]);
  for (const t of TABLES.values()) for (const s of t.stores(db)) stores.add(s);
  return [...stores];
}
