// Small key/value state of the device: client_id, the mutation counter, the pull cursor, the
// refresh token and who is signed in. Read and written inside the caller's transaction.
import type { AppDB } from "./db";

export type MetaKey =
  | "client_id"
  | "next_mutation_id"
  | "cursor"
  | "refresh_token"
  | "user_id"
  | "diary_mode"
  | "timezone"
  | "locale"
  | "quiet_hours_start"
  | "quiet_hours_end"
  | "settings_version"
  | "settings_server"
  | "settings_rejected"
  | "patient_id"
  | "display_name"
  | "late_entry_days"
  /** Set when the device became a new client after a restore: the next full download sends
   * queued partial changes of records the server no longer has as whole records. */
  | "resend_whole";

export async function metaGet<T>(db: AppDB, key: MetaKey): Promise<T | undefined> {
  const row = await db.meta.get(key);
  return row === undefined ? undefined : (row.value as T);
}

export async function metaSet(db: AppDB, key: MetaKey, value: unknown): Promise<void> {
  await db.meta.put({ key, value });
}

export async function metaDelete(db: AppDB, key: MetaKey): Promise<void> {
  await db.meta.delete(key);
}

/** This device's id for the sync protocol, made once and kept in IndexedDB. */
export async function clientId(db: AppDB): Promise<string> {
  return db.transaction("rw", db.meta, async () => {
    const existing = await metaGet<string>(db, "client_id");
    if (existing) return existing;
    const id = crypto.randomUUID();
    await metaSet(db, "client_id", id);
    return id;
  });
}

/** The next mutation id (gap-free from 1). Call inside the transaction that queues it. */
export async function takeMutationId(db: AppDB): Promise<number> {
  const next = (await metaGet<number>(db, "next_mutation_id")) ?? 1;
  await metaSet(db, "next_mutation_id", next + 1);
  return next;
}
