// Server views kept for reading offline: the summary (UAS7, UCT, adherence, streak), today's
// medications, the questionnaire list. Fetched when online; the screen shows the kept copy,
// with its age, when not. The device never recomputes a clinical score the server owns.
import type { AppDB, CachedView } from "./db";

export type ViewKey = "summary" | "uas7" | "medications" | "questionnaires" | "push";

export async function viewGet<T>(db: AppDB, key: ViewKey): Promise<{ value: T; fetched_at: string } | undefined> {
  const row = await db.views.get(key);
  return row === undefined ? undefined : { value: row.value as T, fetched_at: row.fetched_at };
}

export async function viewPut(db: AppDB, key: ViewKey, value: unknown): Promise<CachedView> {
  const row: CachedView = { key, value, fetched_at: new Date().toISOString() };
  await db.views.put(row);
  return row;
}

/**
 * The kept copy at once (`onValue` may be called twice: kept, then fresh), refreshed from the
 * server when it answers. Resolves to the fresh value, or the kept one when offline.
 */
export async function viewRefresh<T>(
  db: AppDB,
  key: ViewKey,
  fetcher: () => Promise<T>,
  onValue: (value: T, fetchedAt: string, fresh: boolean) => void,
): Promise<void> {
  const kept = await viewGet<T>(db, key);
  if (kept) onValue(kept.value, kept.fetched_at, false);
  try {
    const value = await fetcher();
    const row = await viewPut(db, key, value);
    onValue(value, row.fetched_at, true);
  } catch (error) {
    if (!kept) throw error;
  }
}
