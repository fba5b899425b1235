// Dose logs: one tap records taken or skipped for a scheduled date. Insert-only on the server
// (DESIGN.md §5), so a change of mind is a new log; the latest log of a dose slot counts.
import type { AppDB, DoseRow } from "./db";
import { enqueue } from "./outbox";

export interface DoseInput {
  prescription: string;
  date: string;
  status: "taken" | "skipped";
  /** When it was taken (ISO time); null for skipped. */
  taken_at: string | null;
}

/** Log a dose: the row and its mutation in one transaction. */
export async function doseLog(db: AppDB, input: DoseInput): Promise<DoseRow> {
  return db.transaction("rw", db.doses, db.outbox, db.meta, async () => {
    const row: DoseRow = {
      id: crypto.randomUUID(),
      prescription: input.prescription,
      date: input.date,
      status: input.status,
      taken_at: input.status === "taken" ? input.taken_at : null,
      server_version: 0,
      rejected: null,
    };
    await db.doses.add(row);
    const fields: Record<string, unknown> = { prescription: row.prescription, date: row.date, status: row.status };
    if (row.taken_at) fields["taken_at"] = row.taken_at;
    await enqueue(db, "dose_log", row.id, "upsert", null, fields);
    return row;
  });
}

/** Logs for a prescription on a date, oldest first (the device's and the server's). */
export async function dosesOn(db: AppDB, date: string): Promise<DoseRow[]> {
  const rows = await db.doses.where("date").equals(date).toArray();
  return rows.sort((a, b) => (a.taken_at ?? "").localeCompare(b.taken_at ?? ""));
}

/** The latest date a prescription was taken (for injections every n days). */
export async function lastTaken(db: AppDB, prescription: string): Promise<string | undefined> {
  const rows = await db.doses.where("prescription").equals(prescription).toArray();
  return rows
    .filter((r) => r.status === "taken" && !r.rejected)
    .map((r) => r.date)
    .sort()
    .pop();
}
