// IndexedDB schema (Dexie). Each clinic host is its own origin, so this database is per clinic.
// Versioned upgrades go below the last `.version(n)`, never by editing an old one.
import Dexie, { type EntityTable } from "dexie";

export type Slot = "day" | "am" | "pm";

/** A diary entry as the device holds it: the server's fields plus sync bookkeeping. */
export interface DiaryEntry {
  id: string;
  day: string; // local date, YYYY-MM-DD
  slot: Slot;
  wheals: number; // 0–3
  itch: number; // 0–3
  angioedema: boolean;
  aas_items: number[] | null;
  note: string;
  /** The server's version of this record as last seen (0: never on the server). */
  server_version: number;
  deleted: boolean;
  /** Set when the server refused the latest change (the entry is kept, the reason shown). */
  rejected?: { code: string; detail: string } | null;
}

/** A UCT/AAS response as the device holds it (editable; deletes are tombstones until synced). */
export interface QuestionnaireRow {
  id: string;
  instrument: "uct" | "uct7" | "aas";
  answers: { items?: number[] | null; angioedema?: boolean };
  /** The server's score; null until the server has scored it (the app never re-scores). */
  score: number | null;
  period_end: string | null;
  server_version: number;
  deleted: boolean;
  rejected?: { code: string; detail: string } | null;
}

/** A dose log: insert-only (a correction is a new log). */
export interface DoseRow {
  id: string;
  prescription: string;
  date: string; // the scheduled local date, YYYY-MM-DD
  status: "taken" | "skipped";
  taken_at: string | null;
  server_version: number;
  rejected?: { code: string; detail: string } | null;
}

/** A prescription, owned by the clinic (pulled, never pushed). */
export interface PrescriptionRow {
  id: string;
  medication: string;
  /** The catalogue's name (pulled with the prescription); empty from an older server. */
  medication_name?: string;
  dose: string;
  frequency_kind: string;
  frequency_value: number | null;
  guideline_step: number;
  start: string;
  end: string | null;
  server_version: number;
}

/** A reminder at a local wall-clock time on some ISO weekdays. */
export interface ReminderRow {
  id: string;
  kind: "diary" | "medication" | "questionnaire";
  local_time: string; // HH:MM
  days_of_week: number[]; // ISO weekdays: 1 = Monday … 7 = Sunday
  prescription: string | null;
  enabled: boolean;
  server_version: number;
  deleted: boolean;
  rejected?: { code: string; detail: string } | null;
}

/** A server view kept for offline reading (GET /me/summary/, /me/medications/, …). */
export interface CachedView {
  key: string;
  value: unknown;
  fetched_at: string; // ISO time of the fetch
}

export type Table = "diary_entry" | "questionnaire_response" | "dose_log" | "reminder" | "patient_settings";

/** One queued change, sent in mutation_id order (gap-free per client_id). */
export interface Mutation {
  mutation_id: number;
  table: Table;
  id: string;
  op: "upsert" | "delete";
  base_version: number | null;
  fields: Record<string, unknown>;
}

/** A conflict the server recorded (another device changed the same entry). */
export interface Conflict {
  id: string;
  table: string;
  record_id: string;
  fields: string[];
  client_value: Record<string, unknown>;
  server_value: Record<string, unknown>;
  resolution: string;
  seen: boolean;
}

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
    super(name);
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
  }
}
