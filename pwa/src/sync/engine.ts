// The sync engine (DESIGN.md §6): push the outbox in mutation_id order, then pull from the
// cursor. Plain TypeScript with no DOM: the app, the service worker and the unit tests drive it.
// What a result or a pulled change does to each table is in tables.ts (one adapter per table);
// this file routes by table name and handles the answers that concern the whole exchange:
//
//   200 push     per-mutation status: applied | merged | conflict | rejected | duplicate (the
//                original answer is used); ids up to last_mutation_id leave the outbox
//   409 mutation_gap     the server lost mutations (or never got them): the queued mutations
//                        it has not processed get consecutive ids from the one it expects
//                        (those below it keep theirs: it answers them as duplicates)
//   409 reset_required   the cursor is too old: download everything again; the last page
//                        removes what the server no longer has, except rows with unsynced
//                        changes, and only then is the new cursor kept. On a push, or on a
//                        full download that is refused too, it is this device's client id
//                        that is too old (the clinic was restored from a backup: a new sync
//                        epoch, and the server forgot what it had acknowledged since): the
//                        device becomes a new client, its queued mutations numbered again
//                        from 1, downloads everything, then sends them again (a change of a
//                        diary entry the restore took away goes as the whole entry)
//   426                  this build is too old: stop and offer the new version
//   401                  refresh once (ApiClient); if refused, or refused again after the
//                        refresh, ask to sign in again; the outbox is kept
//   network error        nothing is known: keep the outbox, resend the same ids later (the
//                        server answers `duplicate` for what it already applied)
import { ApiError, type ApiClient, NetworkError, SCHEMA_VERSION, SignInRequired } from "../api/client";
import type { MutationResult, PullResponse } from "../api/types";
import type { AppDB } from "../store/db";
import { clientId, metaDelete, metaGet, metaSet } from "../store/meta";
import { type Outcome, type ServerRecord, syncStores, TABLES } from "./tables";

export const PUSH_BATCH = 100;
export const PULL_LIMIT = 500;
/** 409 mutation_gap answers in a row before the round gives up (one renumbering fixes a gap). */
const MAX_GAPS = 3;
/** 409 reset_required answers in a row before the round gives up. */
const MAX_RESETS = 3;

export type SyncOutcome =
  | { status: "ok"; pushed: number; pulled: number }
  | { status: "offline" }
  /** The server answered that it is briefly unavailable (503, or a proxy's 502/504): nothing
   * was lost, the outbox keeps the work and the next round sends it. */
  | { status: "unavailable" }
  | { status: "sign_in_required" }
  /** The patient has no consent to the clinic's privacy notice (403 consent_required): the
   * server stores nothing new; the outbox keeps the work until the patient agrees (My data). */
  | { status: "consent_required" }
  | { status: "upgrade_required"; minSchemaVersion: number | undefined }
  | { status: "error"; detail: string };

export interface SyncOptions {
  /** Mutations per push (the server takes at most 500). */
  pushBatch?: number;
  /** Changes per pull page (the server sends at most 1000). */
  pullLimit?: number;
}

export class SyncEngine {
  private running: Promise<SyncOutcome> | undefined;
  private readonly pushBatch: number;
  private readonly pullLimit: number;

  constructor(
    private readonly db: AppDB,
    private readonly api: ApiClient,
    options: SyncOptions = {},
  ) {
    this.pushBatch = options.pushBatch ?? PUSH_BATCH;
    this.pullLimit = options.pullLimit ?? PULL_LIMIT;
  }

  /** One sync round; concurrent calls share the round already running. */
  sync(): Promise<SyncOutcome> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<SyncOutcome> {
    try {
      const pushed = await this.pushAll();
      const pulled = await this.pullAll();
      return { status: "ok", pushed, pulled };
    } catch (error) {
      if (error instanceof NetworkError) return { status: "offline" };
      if (error instanceof SignInRequired) return { status: "sign_in_required" };
      if (error instanceof ApiError && error.status === 401) return { status: "sign_in_required" };
      if (error instanceof ApiError && [502, 503, 504].includes(error.status)) return { status: "unavailable" };
      if (error instanceof ApiError && error.status === 403 && error.code === "consent_required") return { status: "consent_required" };
      if (error instanceof ApiError && error.status === 426) {
        return { status: "upgrade_required", minSchemaVersion: error.problem.min_schema_version };
      }
      return { status: "error", detail: error instanceof Error ? error.message : String(error) };
    }
  }

  // --- Push -----------------------------------------------------------------------------------

  /** Push the outbox in batches, oldest first, until it is empty. */
  private async pushAll(): Promise<number> {
    let pushed = 0;
    let gaps = 0;
    let resets = 0;
    for (;;) {
      // After becoming a new client: download first, to learn which records the restored
      // server lacks (their queued partial changes are then sent whole).
      if (await metaGet<boolean>(this.db, "resend_whole")) await this.pullAll();
      const client = await clientId(this.db);
      const batch = await this.db.outbox.orderBy("mutation_id").limit(this.pushBatch).toArray();
      const first = batch[0];
      if (first === undefined) return pushed;
      let response;
      try {
        response = await this.api.push({ client_id: client, schema_version: SCHEMA_VERSION, mutations: batch });
      } catch (error) {
        if (isReset(error)) {
          if (++resets > MAX_RESETS) throw error;
          await this.becomeNewClient();
          continue;
        }
        if (error instanceof ApiError && error.status === 409 && error.code === "mutation_gap") {
          const expected = error.problem.expected;
          if (typeof expected !== "number" || ++gaps > MAX_GAPS) throw error;
          await this.renumberFrom(expected);
          continue;
        }
        throw error;
      }
      gaps = 0;
      await this.applyPushResults(response.results, response.last_mutation_id);
      pushed += batch.filter((m) => m.mutation_id <= response.last_mutation_id).length;
      // Every mutation the server processed has left the outbox; one it did not take would be
      // sent again and again.
      const next = await this.db.outbox.orderBy("mutation_id").first();
      if (next !== undefined && next.mutation_id <= first.mutation_id) {
        throw new Error(`The server did not take mutation ${first.mutation_id}.`);
      }
    }
  }

  /**
   * The server no longer knows this device's history (a restore started a new sync epoch): a
   * new client id, the queued mutations numbered again from 1 in their order, and no cursor.
   * What the server had acknowledged since the backup left the outbox already; it stays in
   * the clinic's restore_old schema for the clinic to reconcile, and the full download that
   * follows brings the restored records.
   */
  private async becomeNewClient(): Promise<void> {
    await this.db.transaction("rw", this.db.outbox, this.db.meta, async () => {
      const queued = await this.db.outbox.orderBy("mutation_id").toArray();
      await this.db.outbox.clear();
      let next = 1;
      for (const m of queued) await this.db.outbox.add({ ...m, mutation_id: next++ });
      await metaSet(this.db, "next_mutation_id", next);
      await metaSet(this.db, "client_id", crypto.randomUUID());
      await metaDelete(this.db, "cursor");
      await metaSet(this.db, "resend_whole", true);
    });
  }

  /**
   * At the end of the full download that follows becoming a new client: a queued change of a
   * diary entry the server does not have (written, acknowledged and then lost to the restore)
   * carries only the changed fields, which the server would refuse for a new entry. Its first
   * queued change is sent as the whole entry instead (the device's copy; the change's own
   * fields win), as a new record. Runs in the last page's transaction.
   */
  private async resendWhole(seen: ReadonlyMap<string, Set<string>>): Promise<void> {
    const known = seen.get("diary_entry") ?? new Set<string>();
    const queued = await this.db.outbox.orderBy("mutation_id").toArray();
    const done = new Set<string>();
    for (const m of queued) {
      if (m.table !== "diary_entry" || known.has(m.id) || done.has(m.id)) continue;
      done.add(m.id);
      if (m.op !== "upsert" || "day" in m.fields) continue; // a delete, or already whole
      const row = await this.db.diary.get(m.id);
      if (row === undefined) continue;
      const { day, slot, wheals, itch, angioedema, aas_items, note } = row;
      await this.db.outbox.put({ ...m, base_version: null, fields: { day, slot, wheals, itch, angioedema, aas_items, note, ...m.fields } });
    }
    await metaDelete(this.db, "resend_whole");
  }

  /**
   * The server expects `expected` next (it lost mutations, or never got them): the queued
   * mutations it has not processed get consecutive ids from there. Those below `expected` it
   * did process (it answers them as duplicates): they keep their ids, never applied twice.
   */
  private async renumberFrom(expected: number): Promise<void> {
    await this.db.transaction("rw", this.db.outbox, this.db.meta, async () => {
      const unseen = await this.db.outbox.where("mutation_id").aboveOrEqual(expected).sortBy("mutation_id");
      await this.db.outbox.bulkDelete(unseen.map((m) => m.mutation_id));
      let next = expected;
      for (const m of unseen) await this.db.outbox.add({ ...m, mutation_id: next++ });
      await metaSet(this.db, "next_mutation_id", next);
    });
  }

  private async applyPushResults(results: MutationResult[], lastMutationId: number): Promise<void> {
    await this.db.transaction("rw", syncStores(this.db), async () => {
      for (const raw of results) {
        const sent = await this.db.outbox.get(raw.mutation_id);
        if (sent === undefined) continue;
        await this.db.outbox.delete(raw.mutation_id);
        await TABLES.get(sent.table)?.result(this.db, sent, outcomeOf(raw));
      }
      // Anything at or below the server's last id was processed, even if its result is missing.
      await this.db.outbox.where("mutation_id").belowOrEqual(lastMutationId).delete();
    });
  }

  // --- Pull -----------------------------------------------------------------------------------

  private async pullAll(): Promise<number> {
    for (let resets = 0; ; resets++) {
      const cursor = await metaGet<string>(this.db, "cursor");
      try {
        return await this.pullPages(cursor);
      } catch (error) {
        if (isReset(error) && resets < MAX_RESETS) {
          // The cursor is too old (tombstones purged, or the server restored): download
          // everything. Refused without a cursor too: the client id is of an older epoch.
          if (cursor === undefined) await this.becomeNewClient();
          else await metaDelete(this.db, "cursor");
          continue;
        }
        throw error;
      }
    }
  }

  /**
   * Page through the changes from `cursor`. Each page is applied in one transaction with the
   * cursor that follows it. Without a cursor this is a full download: the cursor is kept only
   * with the last page, which also removes what the server no longer has (except rows with
   * unsynced changes), so an interrupted download starts again from the beginning.
   */
  private async pullPages(cursor: string | undefined): Promise<number> {
    const client = await clientId(this.db);
    const full = cursor === undefined;
    const seen = new Map<string, Set<string>>();
    let count = 0;
    for (;;) {
      const page = await this.api.pull({ cursor, limit: this.pullLimit, client_id: client });
      const last = !page.has_more;
      count += await this.applyPage(page, seen, full && !last ? undefined : page.cursor, full && last);
      cursor = page.cursor;
      if (!last) continue;
      // A device downloading everything (a first sign-in, a reset) took part in none of the
      // conflicts it finds but those its own writes just won: the others are history, not news
      // to show (later ones are).
      if (full) await this.db.conflicts.filter((c) => c.client_id !== client).modify({ seen: true });
      return count;
    }
  }

  private async applyPage(
    page: PullResponse,
    seen: Map<string, Set<string>>,
    cursor: string | undefined,
    sweep: boolean,
  ): Promise<number> {
    let count = 0;
    await this.db.transaction("rw", syncStores(this.db), async () => {
      // The push answer may have been lost: what the server has processed leaves the outbox
      // (its fields are no longer pending, so the server's values below are taken).
      await this.db.outbox.where("mutation_id").belowOrEqual(page.last_mutation_id).delete();
      for (const [table, changes] of Object.entries(page.changes)) {
        const adapter = TABLES.get(table);
        if (adapter === undefined || changes === undefined) continue; // a table this build does not know
        const ids = seen.get(table) ?? new Set<string>();
        seen.set(table, ids);
        for (const record of changes.upserted as ServerRecord[]) {
          count++;
          ids.add(record.id);
          await adapter.upsert(this.db, record);
        }
        for (const id of changes.deleted) {
          count++;
          await adapter.remove(this.db, id);
        }
      }
      if (sweep) for (const adapter of TABLES.values()) await adapter.sweep(this.db, seen.get(adapter.table) ?? new Set());
      if (sweep && (await metaGet<boolean>(this.db, "resend_whole"))) await this.resendWhole(seen);
      if (cursor !== undefined) await metaSet(this.db, "cursor", cursor);
    });
    return count;
  }
}

function isReset(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 409 && error.code === "reset_required";
}

/** A `duplicate` is handled as the answer the mutation got the first time. */
function outcomeOf(raw: MutationResult): Outcome {
  if (raw.status === "duplicate") return raw.original ? (raw.original as unknown as Outcome) : { status: "duplicate" };
  return raw as unknown as Outcome;
}
