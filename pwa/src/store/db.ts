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

export type Table = "diary_entry";

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

  constructor(name = "csu-tracker") {
    super(name);
    this.version(1).stores({
      diary: "id, day, [day+slot]",
      outbox: "mutation_id, id",
      conflicts: "id, record_id",
      meta: "key",
    });
  }
}
