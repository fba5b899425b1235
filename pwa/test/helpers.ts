import { ApiClient } from "../src/api/client";
import { AppDB } from "../src/store/db";
import { metaGet, metaSet } from "../src/store/meta";
import { SyncEngine, type SyncOptions } from "../src/sync/engine";
import { FakeServer } from "./fakeServer";

let serial = 0;

/** A device: its own IndexedDB, API client and sync engine, talking to `server`. */
export async function device(server: FakeServer, options: SyncOptions = {}) {
  const db = new AppDB(`test-${++serial}-${Math.random()}`);
  await db.open();
  await metaSet(db, "refresh_token", "refresh-1");
  const api = new ApiClient(server.fetch, {
    refreshToken: () => metaGet<string>(db, "refresh_token"),
    saveRefreshToken: (token) => metaSet(db, "refresh_token", token),
  });
  api.setAccessToken("access-1");
  return { db, api, engine: new SyncEngine(db, api, options) };
}

export const ENTRY = { slot: "day" as const, angioedema: false, aas_items: null, note: "" };

export type Device = Awaited<ReturnType<typeof device>>;

/** What the patient sees on a device: live records of every table and the settings. */
export async function visible(db: AppDB) {
  const byId = <T extends { id: string }>(rows: T[]) => [...rows].sort((a, b) => a.id.localeCompare(b.id));
  const diary = (await db.diary.toArray()).filter((e) => !e.deleted);
  const questionnaires = (await db.questionnaires.toArray()).filter((q) => !q.deleted);
  const reminders = (await db.reminders.toArray()).filter((r) => !r.deleted);
  return {
    diary: byId(diary.map(({ id, day, slot, wheals, itch, angioedema, aas_items, note }) => ({ id, day, slot, wheals, itch, angioedema, aas_items, note }))),
    questionnaires: byId(questionnaires.map(({ id, instrument, answers, score, period_end }) => ({ id, instrument, answers, score, period_end }))),
    doses: byId((await db.doses.toArray()).map(({ id, prescription, date, status, taken_at }) => ({ id, prescription, date, status, taken_at }))),
    prescriptions: byId((await db.prescriptions.toArray()).map((p) => ({ ...p, server_version: undefined }))),
    reminders: byId(reminders.map(({ id, kind, local_time, days_of_week, prescription, enabled }) => ({ id, kind, local_time, days_of_week, prescription, enabled }))),
    settings: {
      timezone: await metaGet(db, "timezone"),
      locale: await metaGet(db, "locale"),
      diary_mode: await metaGet(db, "diary_mode"),
      quiet_hours_start: await metaGet(db, "quiet_hours_start"),
      quiet_hours_end: await metaGet(db, "quiet_hours_end"),
    },
    conflicts: (await db.conflicts.toArray()).map((c) => c.id).sort(),
  };
}

/** The same view of the server's state. */
export function serverVisible(server: FakeServer) {
  const byId = <T extends { id: string }>(rows: T[]) => [...rows].sort((a, b) => a.id.localeCompare(b.id));
  const s = server.settings;
  return {
    diary: byId(server.liveEntries().map(({ id, day, slot, wheals, itch, angioedema, aas_items, note }) => ({ id, day, slot, wheals, itch, angioedema, aas_items, note }))),
    questionnaires: byId(server.liveQuestionnaires().map(({ id, instrument, answers, score, period_end }) => ({ id, instrument, answers, score, period_end }))),
    doses: byId([...server.doses.values()].map(({ id, prescription, date, status, taken_at }) => ({ id, prescription, date, status, taken_at }))),
    prescriptions: byId([...server.prescriptions.values()].map((p) => ({ ...p, server_version: undefined }))),
    reminders: byId(server.liveReminders().map(({ id, kind, local_time, days_of_week, prescription, enabled }) => ({ id, kind, local_time, days_of_week, prescription, enabled }))),
    settings: {
      timezone: s.timezone,
      locale: s.locale,
      diary_mode: s.diary_mode,
      quiet_hours_start: s.quiet_hours_start,
      quiet_hours_end: s.quiet_hours_end,
    },
    conflicts: [...server.conflicts.keys()].sort(),
  };
}

/** Every device online until nothing is left to send and each has pulled the last change. */
export async function settle(...devices: Device[]): Promise<void> {
  for (let round = 0; round < 5; round++) {
    for (const d of devices) {
      const outcome = await d.engine.sync();
      if (outcome.status !== "ok") throw new Error(`sync: ${JSON.stringify(outcome)}`);
    }
    let queued = 0;
    for (const d of devices) queued += await d.db.outbox.count();
    if (queued === 0) break;
  }
  for (const d of devices) await d.engine.sync();
}

/** A small seeded random generator (mulberry32), so a failing run can be replayed. */
export function seeded(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number): number => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error("nothing to pick");
      return item;
    },
  };
}
