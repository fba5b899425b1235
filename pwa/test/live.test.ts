// The sync engine against the real server (patients/sync.py through gunicorn and PostgreSQL),
// for every synced table. Listed only when CSU_LIVE is set (vite.config.ts): tests/pwa/test_sync_engine_live.py
// starts a clinic of its own, enrolls a patient, signs them in on three devices and runs this
// file with the devices' tokens. The fake server of the other tests follows the real one; this
// checks that it does.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { ApiClient, type FetchLike } from "../src/api/client";
import { AppDB } from "../src/store/db";
import { diaryEntryFor, diaryEntrySave } from "../src/store/diary";
import { doseLog } from "../src/store/doses";
import { metaGet, metaSet } from "../src/store/meta";
import { questionnaireDelete, questionnaireSave } from "../src/store/questionnaires";
import { reminderDelete, reminderSave } from "../src/store/reminders";
import { settingsGet, settingsRejected, settingsSave } from "../src/store/settings";
import { SyncEngine } from "../src/sync/engine";
import { visible } from "./helpers";

interface Live {
  origin: string; // http://127.0.0.1:<port>
  host: string; // <clinic>.localhost:<port> (the clinic is chosen by the Host header)
  devices: { access: string; refresh: string }[];
  prescription: string;
}

const env = (globalThis as unknown as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const LIVE = env["CSU_LIVE"] ? (JSON.parse(env["CSU_LIVE"]) as Live) : undefined;

interface NodeHttp {
  request(
    url: string,
    options: { method: string; headers: Record<string, string> },
    callback: (res: {
      statusCode?: number;
      headers: Record<string, string | string[] | undefined>;
      on(event: "data", fn: (chunk: Uint8Array) => void): void;
      on(event: "end", fn: () => void): void;
    }) => void,
  ): { on(event: "error", fn: (e: Error) => void): void; end(body?: string): void };
}

/** fetch over node:http, with the clinic's Host header (Node's fetch will not send one). */
async function liveFetch(live: Live, faults: { next: "drop_response" | undefined }): Promise<FetchLike> {
  const http = (await import("node:http" as string)) as NodeHttp;
  return (input, init) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { Host: live.host };
      for (const [k, v] of Object.entries((init?.headers ?? {}) as Record<string, string>)) headers[k] = v;
      const request = http.request(input, { method: init?.method ?? "GET", headers }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          if (faults.next === "drop_response") {
            faults.next = undefined;
            reject(new TypeError("Failed to fetch (response lost)"));
            return;
          }
          const size = chunks.reduce((n, c) => n + c.length, 0);
          const body = new Uint8Array(size);
          let at = 0;
          for (const c of chunks) {
            body.set(c, at);
            at += c.length;
          }
          const status = res.statusCode ?? 0;
          resolve(new Response(status === 204 ? null : body, { status, headers: { "Content-Type": String(res.headers["content-type"] ?? "") } }));
        });
      });
      request.on("error", reject);
      request.end(init?.body === undefined || init.body === null ? undefined : String(init.body));
    });
}

async function liveDevice(live: Live, n: number) {
  const tokens = live.devices[n];
  if (tokens === undefined) throw new Error(`no tokens for device ${n}`);
  const db = new AppDB(`live-${n}-${Math.random()}`);
  await db.open();
  await metaSet(db, "refresh_token", tokens.refresh);
  const faults: { next: "drop_response" | undefined } = { next: undefined };
  const api = new ApiClient(await liveFetch(live, faults), {
    refreshToken: () => metaGet<string>(db, "refresh_token"),
    saveRefreshToken: (token) => metaSet(db, "refresh_token", token),
  }, live.origin);
  api.setAccessToken(tokens.access);
  return { db, api, faults, engine: new SyncEngine(db, api) };
}

const ok = { status: "ok" };

describe("the engine against the live server", () => {
  it("every table: pushed, pulled, merged, refused, replayed, converged", async () => {
    if (LIVE === undefined) throw new Error("CSU_LIVE is not set: run tests/pwa/test_sync_engine_live.py.");
    const live = LIVE;
    const phone = await liveDevice(live, 0);
    const tablet = await liveDevice(live, 1);
    expect(await phone.engine.sync()).toMatchObject(ok);
    expect(await tablet.engine.sync()).toMatchObject(ok);
    const today = (await phone.api.profile()).today;
    const yesterday = new Date(Date.parse(`${today}T12:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    expect(await metaGet(phone.db, "patient_id")).toBeTruthy();
    expect(await phone.db.prescriptions.get(live.prescription)).toMatchObject({ dose: "10 mg" });

    // One change of every pushable table, offline, then one sync.
    const entry = await diaryEntrySave(phone.db, { day: today, slot: "day", wheals: 2, itch: 1, angioedema: false, aas_items: null, note: "hot day" });
    const uct = await questionnaireSave(phone.db, { instrument: "uct", answers: { items: [1, 2, 3, 4] }, period_end: today });
    const dose = await doseLog(phone.db, { prescription: live.prescription, date: today, status: "taken", taken_at: null });
    const reminder = await reminderSave(phone.db, { kind: "diary", local_time: "20:00", days_of_week: [1, 2, 3, 4, 5], prescription: null, enabled: true });
    await settingsSave(phone.db, { quiet_hours_start: "22:30" });
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 5 });
    expect(await phone.db.outbox.count()).toBe(0);
    expect(await phone.db.diary.get(entry.id)).toMatchObject({ rejected: null, note: "hot day" });
    expect((await phone.db.diary.get(entry.id))?.server_version).toBeGreaterThan(0);
    expect(await phone.db.questionnaires.get(uct.id)).toMatchObject({ rejected: null });
    expect((await phone.db.questionnaires.get(uct.id))?.score).toEqual(expect.any(Number)); // the server's score
    expect((await phone.db.doses.get(dose.id))?.taken_at).toBeTruthy(); // the server's time
    expect(await phone.db.reminders.get(reminder.id)).toMatchObject({ rejected: null, local_time: "20:00" });
    expect((await settingsGet(phone.db)).quiet_hours_start).toBe("22:30");
    expect(await tablet.engine.sync()).toMatchObject(ok);
    expect(await visible(tablet.db)).toEqual(await visible(phone.db));

    // Both devices change the same things offline: per-field merge, the overlaps recorded.
    await diaryEntrySave(phone.db, { day: today, slot: "day", wheals: 3, itch: 1, angioedema: false, aas_items: null, note: "hot day" });
    await diaryEntrySave(tablet.db, { day: today, slot: "day", wheals: 0, itch: 3, angioedema: false, aas_items: null, note: "hot day" });
    await reminderSave(phone.db, { kind: "diary", local_time: "07:15", days_of_week: [1, 2, 3, 4, 5], prescription: null, enabled: true }, reminder.id);
    await reminderSave(tablet.db, { kind: "diary", local_time: "09:45", days_of_week: [6, 7], prescription: null, enabled: true }, reminder.id);
    await settingsSave(phone.db, { quiet_hours_end: "06:00" });
    await settingsSave(tablet.db, { quiet_hours_end: "08:00", locale: "en" });
    // Two devices create the same (new) day offline with different ids.
    await diaryEntrySave(phone.db, { day: yesterday, slot: "day", wheals: 1, itch: 1, angioedema: false, aas_items: null, note: "" });
    await diaryEntrySave(tablet.db, { day: yesterday, slot: "day", wheals: 1, itch: 2, angioedema: false, aas_items: null, note: "" });
    for (const d of [phone, tablet, phone]) expect(await d.engine.sync()).toMatchObject(ok);
    const merged = await visible(phone.db);
    expect(merged.diary.find((e) => e.day === today)).toMatchObject({ wheals: 0, itch: 3 });
    expect(merged.diary.filter((e) => e.day === yesterday)).toMatchObject([{ itch: 2 }]);
    expect(merged.reminders.find((r) => r.id === reminder.id)).toMatchObject({ local_time: "09:45", days_of_week: [6, 7] });
    expect(merged.settings).toMatchObject({ quiet_hours_end: "08:00", locale: "en", quiet_hours_start: "22:30" });
    expect(await visible(tablet.db)).toEqual(merged);
    const tables = (await phone.db.conflicts.toArray()).map((c) => c.table).sort();
    expect(tables).toEqual(expect.arrayContaining(["diary_entry", "patient_settings", "reminder"]));

    // A lost push answer, then the same ids again: answered `duplicate`, applied once.
    const before = await phone.db.diary.count();
    await diaryEntrySave(phone.db, { day: yesterday, slot: "day", wheals: 2, itch: 2, angioedema: false, aas_items: null, note: "replayed" });
    phone.faults.next = "drop_response";
    expect(await phone.engine.sync()).toEqual({ status: "offline" });
    expect(await phone.db.outbox.count()).toBe(1);
    expect(await phone.engine.sync()).toMatchObject(ok);
    expect(await phone.db.outbox.count()).toBe(0);
    expect(await phone.db.diary.count()).toBe(before);
    expect(await diaryEntryFor(phone.db, yesterday, "day")).toMatchObject({ note: "replayed", wheals: 2, rejected: null });

    // Refusals: kept and marked (a record), put back (a setting), insert-only (a dose).
    const bad = await reminderSave(phone.db, { kind: "diary", local_time: "08:00", days_of_week: [9], prescription: null, enabled: true });
    await settingsSave(phone.db, { timezone: "Mars/Olympus" });
    const next = (await metaGet<number>(phone.db, "next_mutation_id")) ?? 1;
    await phone.db.outbox.add({ mutation_id: next, table: "dose_log", id: dose.id, op: "upsert", base_version: null, fields: { prescription: live.prescription, date: today, status: "skipped" } });
    await metaSet(phone.db, "next_mutation_id", next + 1);
    expect(await phone.engine.sync()).toMatchObject(ok);
    expect((await phone.db.reminders.get(bad.id))?.rejected?.code).toBe("validation_error");
    expect((await settingsGet(phone.db)).timezone).not.toBe("Mars/Olympus");
    expect((await settingsRejected(phone.db))?.field).toBe("timezone");
    expect((await phone.db.doses.get(dose.id))?.rejected?.code).toBe("immutable");
    await reminderDelete(phone.db, bad.id); // never on the server: goes quietly
    await phone.db.doses.update(dose.id, { rejected: null });

    // Delete wins: the tablet deletes what the phone changes.
    await reminderDelete(tablet.db, reminder.id);
    await questionnaireDelete(tablet.db, uct.id);
    await reminderSave(phone.db, { kind: "diary", local_time: "05:55", days_of_week: [6, 7], prescription: null, enabled: true }, reminder.id);
    await questionnaireSave(phone.db, { id: uct.id, instrument: "uct", answers: { items: [0, 0, 0, 0] }, period_end: today });
    expect(await tablet.engine.sync()).toMatchObject(ok);
    expect(await phone.engine.sync()).toMatchObject(ok);
    expect(await phone.db.reminders.get(reminder.id)).toBeUndefined();
    expect(await phone.db.questionnaires.get(uct.id)).toBeUndefined();

    // An expired access token: one refresh, the sync carries on.
    phone.api.setAccessToken("expired");
    expect(await phone.engine.sync()).toMatchObject(ok);
    expect(await tablet.engine.sync()).toMatchObject(ok);

    // A third device downloads everything: all three show the same.
    const laptop = await liveDevice(live, 2);
    expect(await laptop.engine.sync()).toMatchObject(ok);
    const expected = await visible(laptop.db);
    expect(expected.diary.length).toBe(2);
    expect(expected.doses).toHaveLength(1);
    expect(await visible(phone.db)).toEqual(expected);
    expect(await visible(tablet.db)).toEqual(expected);
    for (const d of [phone, tablet, laptop]) expect(await d.db.outbox.count()).toBe(0);
  }, 60_000);
});
