// The sync engine (DESIGN.md §6): push the outbox in mutation_id order, then pull from the
// cursor. Plain TypeScript with no DOM: the app, the service worker and the unit tests drive it.
//
// Every server answer has one handling here:
//   200 push     per-mutation status: applied | merged | conflict | rejected | duplicate
//   409 mutation_gap     the server lost mutations (or never got them): renumber the outbox
//                        from the id it expects and resend
//   409 reset_required   the cursor is too old: download everything again, keeping unsynced
//                        local writes
//   426                  this build is too old: stop and offer the new version
//   401                  refresh once; if refused, ask to sign in again, outbox kept
//   network error        nothing is known: keep the outbox, resend the same ids later (the
//                        server answers `duplicate` for what it already applied)
import { ApiError, type ApiClient, NetworkError, SCHEMA_VERSION, SignInRequired } from "../api/client";
import type { MutationResult, PullResponse, ServerConflict, ServerDiaryRecord } from "../api/types";
import type { AppDB, DiaryEntry, Mutation } from "../store/db";
import { clientId, metaDelete, metaGet, metaSet } from "../store/meta";
import { settingsFromServer } from "../store/settings";

export const PUSH_BATCH = 100;
export const PULL_LIMIT = 500;

export type SyncOutcome =
  | { status: "ok"; pushed: number; pulled: number }
  | { status: "offline" }
  | { status: "sign_in_required" }
  | { status: "upgrade_required"; minSchemaVersion: number | undefined }
  | { status: "error"; detail: string };

export class SyncEngine {
  private running: Promise<SyncOutcome> | undefined;

  constructor(
    private readonly db: AppDB,
    private readonly api: ApiClient,
  ) {}

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
      if (error instanceof ApiError && error.status === 426) {
        return { status: "upgrade_required", minSchemaVersion: error.problem.min_schema_version };
      }
      return { status: "error", detail: error instanceof Error ? error.message : String(error) };
    }
  }

  // --- Push -----------------------------------------------------------------------------------

  private async pushAll(): Promise<number> {
    const client = await clientId(this.db);
    let pushed = 0;
    for (let attempts = 0; attempts < 1000; attempts++) {
      const batch = await this.db.outbox.orderBy("mutation_id").limit(PUSH_BATCH).toArray();
      if (batch.length === 0) return pushed;
      let response;
      try {
        response = await this.api.push({ client_id: client, schema_version: SCHEMA_VERSION, mutations: batch });
      } catch (error) {
        if (error instanceof ApiError && error.status === 409 && error.code === "mutation_gap") {
          const expected = error.problem.expected;
          if (typeof expected !== "number") throw error;
          await this.renumberFrom(expected);
          continue;
        }
        throw error;
      }
      await this.applyPushResults(response.results, response.last_mutation_id);
      pushed += batch.length;
    }
    throw new Error("The outbox did not drain.");
  }

  /** The server expects `expected` next: give the queued mutations consecutive ids from there. */
  private async renumberFrom(expected: number): Promise<void> {
    await this.db.transaction("rw", this.db.outbox, this.db.meta, async () => {
      const queued = await this.db.outbox.orderBy("mutation_id").toArray();
      await this.db.outbox.clear();
      let next = expected;
      for (const m of queued) await this.db.outbox.add({ ...m, mutation_id: next++ });
      await metaSet(this.db, "next_mutation_id", next);
    });
  }

  private async applyPushResults(results: MutationResult[], lastMutationId: number): Promise<void> {
    await this.db.transaction("rw", this.db.diary, this.db.outbox, async () => {
      for (const raw of results) {
        const sent = await this.db.outbox.get(raw.mutation_id);
        const result = raw.status === "duplicate" && raw.original ? { ...raw.original, mutation_id: raw.mutation_id } : raw;
        await this.db.outbox.delete(raw.mutation_id);
        if (sent === undefined || sent.table !== "diary_entry") continue;
        await this.applyDiaryResult(sent, result as MutationResult);
      }
      // Anything at or below the server's last id was processed, even if its result is missing.
      await this.db.outbox.where("mutation_id").belowOrEqual(lastMutationId).delete();
    });
  }

  private async applyDiaryResult(sent: Mutation, result: MutationResult): Promise<void> {
    const local = await this.db.diary.get(sent.id);
    const stillPending = (await this.db.outbox.where("id").equals(sent.id).count()) > 0;
    switch (result.status) {
      case "applied":
        if (local && typeof result.server_version === "number") {
          await this.db.diary.put({ ...local, server_version: result.server_version, rejected: null });
        }
        if (local?.deleted && !stillPending) await this.db.diary.delete(sent.id);
        return;
      case "merged":
      case "conflict":
        if (result.record) await this.takeServerRecord(result.record, sent.id, stillPending);
        return;
      case "rejected":
        if (local) {
          const reason = { code: result.reason?.code ?? "rejected", detail: result.reason?.detail ?? "" };
          await this.db.diary.put({ ...local, rejected: reason });
        }
        return;
      default:
        return;
    }
  }

  /**
   * The server's record wins for every field this device has no newer pending change to. A
   * record under another id (two devices created the same day) replaces the local one.
   */
  private async takeServerRecord(record: ServerDiaryRecord, localId: string, stillPending: boolean): Promise<void> {
    if (record.id !== localId && !stillPending) await this.db.diary.delete(localId);
    const pending = await this.pendingFields(record.id);
    const current = await this.db.diary.get(record.id);
    const merged: DiaryEntry = {
      id: record.id,
      day: record.day,
      slot: record.slot,
      wheals: record.wheals,
      itch: record.itch,
      angioedema: record.angioedema,
      aas_items: record.aas_items,
      note: record.note ?? "",
      server_version: record.server_version,
      deleted: Boolean(record.deleted),
      rejected: null,
      ...(current ? pending.pick(current) : {}),
    };
    await this.db.diary.put(merged);
  }

  private async pendingFields(id: string): Promise<{ pick(entry: DiaryEntry): Partial<DiaryEntry> }> {
    const queued = await this.db.outbox.where("id").equals(id).toArray();
    const names = new Set<string>();
    let deleted = false;
    for (const m of queued) {
      if (m.op === "delete") deleted = true;
      for (const name of Object.keys(m.fields)) names.add(name);
    }
    return {
      pick(entry: DiaryEntry): Partial<DiaryEntry> {
        const out: Record<string, unknown> = {};
        for (const name of names) out[name] = entry[name as keyof DiaryEntry];
        if (deleted) out["deleted"] = true;
        return out as Partial<DiaryEntry>;
      },
    };
  }

  // --- Pull -----------------------------------------------------------------------------------

  private async pullAll(): Promise<number> {
    try {
      return await this.pullPages(await metaGet<string>(this.db, "cursor"), false);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.code === "reset_required") {
        await metaDelete(this.db, "cursor");
        return await this.pullPages(undefined, true);
      }
      throw error;
    }
  }

  /** Page through the changes. A full download (`replace`) also removes local entries the
   * server no longer has, except those with unsynced changes. */
  private async pullPages(cursor: string | undefined, replace: boolean): Promise<number> {
    const client = await clientId(this.db);
    const seen = new Set<string>();
    let count = 0;
    for (;;) {
      const page = await this.api.pull({ cursor, limit: PULL_LIMIT, client_id: client });
      count += await this.applyPage(page, seen);
      cursor = page.cursor;
      if (!page.has_more) break;
    }
    await this.db.transaction("rw", this.db.diary, this.db.outbox, this.db.meta, async () => {
      if (replace) {
        const pending = new Set((await this.db.outbox.toArray()).map((m) => m.id));
        const stale = (await this.db.diary.toArray()).filter((e) => !seen.has(e.id) && !pending.has(e.id));
        await this.db.diary.bulkDelete(stale.map((e) => e.id));
      }
      await metaSet(this.db, "cursor", cursor);
    });
    return count;
  }

  private async applyPage(page: PullResponse, seen: Set<string>): Promise<number> {
    let count = 0;
    await this.db.transaction("rw", [this.db.diary, this.db.outbox, this.db.conflicts, this.db.meta], async () => {
      // The push answer may have been lost: what the server has processed leaves the outbox.
      await this.db.outbox.where("mutation_id").belowOrEqual(page.last_mutation_id).delete();
      const pending = new Set((await this.db.outbox.toArray()).map((m) => m.id));
      const diary = page.changes.diary_entry;
      for (const record of diary?.upserted ?? []) {
        seen.add(record.id);
        count++;
        // Another id for the same day and slot (merged on the server): the server's id wins.
        const twins = await this.db.diary.where("[day+slot]").equals([record.day, record.slot]).toArray();
        for (const twin of twins) if (twin.id !== record.id && !pending.has(twin.id)) await this.db.diary.delete(twin.id);
        await this.takeServerRecord(record, record.id, pending.has(record.id));
      }
      for (const id of diary?.deleted ?? []) {
        count++;
        // Deletes win (DESIGN.md §6), also over a pending local change.
        await this.db.diary.delete(id);
      }
      for (const conflict of page.changes.sync_conflict?.upserted ?? []) {
        count++;
        await this.storeConflict(conflict);
      }
      for (const settings of page.changes.patient_settings?.upserted ?? []) {
        await settingsFromServer(this.db, settings);
      }
    });
    return count;
  }

  private async storeConflict(conflict: ServerConflict): Promise<void> {
    const known = await this.db.conflicts.get(conflict.id);
    await this.db.conflicts.put({
      id: conflict.id,
      table: conflict.table,
      record_id: conflict.record_id,
      fields: conflict.fields,
      client_value: conflict.client_value,
      server_value: conflict.server_value,
      resolution: conflict.resolution,
      seen: known?.seen ?? false,
    });
  }
}
