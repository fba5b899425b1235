// The one way a local change is queued: the record and its outbox mutation are written in ONE
// IndexedDB transaction by the caller (DESIGN.md §11); this only builds and adds the mutation.
import type { AppDB, Mutation, Table } from "./db";
import { takeMutationId } from "./meta";

/** Queue a mutation. Call inside a "rw" transaction that includes db.outbox and db.meta. */
export async function enqueue(
  db: AppDB,
  table: Table,
  id: string,
  op: "upsert" | "delete",
  baseVersion: number | null,
  fields: Record<string, unknown>,
): Promise<Mutation> {
  const mutation: Mutation = { mutation_id: await takeMutationId(db), table, id, op, base_version: baseVersion, fields };
  await db.outbox.add(mutation);
  return mutation;
}

/** Record ids with changes not yet acknowledged by the server. */
export async function pendingIds(db: AppDB): Promise<Set<string>> {
  const rows = await db.outbox.toArray();
  return new Set(rows.map((m) => m.id));
}

/** Whether a change of this record is still waiting for the server. Call inside the caller's
 * transaction (it must include db.outbox). */
export async function isQueued(db: AppDB, table: Table, id: string): Promise<boolean> {
  return (await db.outbox.where("id").equals(id).filter((m) => m.table === table).count()) > 0;
}

/**
 * A record the server never took: it has no server version and nothing of it is queued (its
 * creation was refused). A later save sends it whole again, as a new record.
 */
export async function neverAccepted(db: AppDB, table: Table, row: { id: string; server_version: number }): Promise<boolean> {
  return row.server_version === 0 && !(await isQueued(db, table, row.id));
}

export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
