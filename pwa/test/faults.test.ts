// Every server answer and every network fault, with the outbox holding work of every table:
// duplicates answered with their original result, 409 mutation_gap, 409 reset_required, 426,
// 401 (refresh, refused refresh, refused again), lost requests and lost responses, paging.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { diaryEntryFor, diaryEntrySave } from "../src/store/diary";
import { doseLog } from "../src/store/doses";
import { metaGet } from "../src/store/meta";
import { questionnaireDelete, questionnaireSave } from "../src/store/questionnaires";
import { reminderDelete, reminderSave } from "../src/store/reminders";
import { settingsGet, settingsSave } from "../src/store/settings";
import { SyncEngine } from "../src/sync/engine";
import { FakeServer } from "./fakeServer";
import { type Device, device, ENTRY, serverVisible, settle, visible } from "./helpers";

const UCT = { instrument: "uct" as const, answers: { items: [1, 1, 1, 1] }, period_end: "2026-11-28" };
const REMINDER = { kind: "diary" as const, local_time: "20:00", days_of_week: [1, 2, 3, 4, 5, 6, 7], prescription: null, enabled: true };
const PUSH = "/api/v1/sync/push/";
const PULL = "/api/v1/sync/pull/";

/** One change of every pushable table, queued on `d` (which has synced once). */
async function workOfEveryTable(d: Device, prescription: string, day = "2026-11-28") {
  const diary = await diaryEntrySave(d.db, { ...ENTRY, day, wheals: 2, itch: 2 });
  const questionnaire = await questionnaireSave(d.db, UCT);
  const dose = await doseLog(d.db, { prescription, date: day, status: "taken", taken_at: `${day}T08:00:00Z` });
  const reminder = await reminderSave(d.db, REMINDER);
  await settingsSave(d.db, { quiet_hours_start: "23:30" });
  return { diary, questionnaire, dose, reminder };
}

/** Every local row carries the server's version of it. */
async function versionsMatch(d: Device, server: FakeServer): Promise<void> {
  for (const e of await d.db.diary.toArray()) expect(e.server_version).toBe(server.entries.get(e.id)?.server_version);
  for (const q of await d.db.questionnaires.toArray()) expect(q.server_version).toBe(server.questionnaires.get(q.id)?.server_version);
  for (const x of await d.db.doses.toArray()) expect(x.server_version).toBe(server.doses.get(x.id)?.server_version);
  for (const r of await d.db.reminders.toArray()) expect(r.server_version).toBe(server.reminders.get(r.id)?.server_version);
  expect(await metaGet(d.db, "settings_version")).toBe(server.settings.server_version);
}

function exactlyOnce(server: FakeServer): void {
  expect(new Set(server.effects).size).toBe(server.effects.length);
}

describe("duplicates: a lost push answer, then the same ids again", () => {
  it("every table: applied once, the original answers used", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    await phone.engine.sync();
    await workOfEveryTable(phone, rx.id);
    server.faults.push("drop_response");
    expect(await phone.engine.sync()).toEqual({ status: "offline" });
    expect(server.effects).toHaveLength(5);
    expect(await phone.db.outbox.count()).toBe(5);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 5 });
    const replay = server.requestsTo(PUSH)[1]?.body as { mutations: { mutation_id: number }[] };
    expect(replay.mutations.map((m) => m.mutation_id)).toEqual([1, 2, 3, 4, 5]);
    expect(server.effects).toHaveLength(5);
    exactlyOnce(server);
    expect(await phone.db.outbox.count()).toBe(0);
    await versionsMatch(phone, server);
    expect(await visible(phone.db)).toEqual(serverVisible(server));
  });

  it("the original answer is the one that counts: merged, conflict and rejected too", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const day = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-27", wheals: 1, itch: 1 });
    const gone = await reminderSave(phone.db, REMINDER);
    await settle(phone, tablet);
    await diaryEntrySave(tablet.db, { ...ENTRY, day: "2026-11-27", wheals: 3, itch: 1 });
    await tablet.engine.sync(); // the tablet changed wheals
    server.serverDeleteReminder(gone.id);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-27", wheals: 1, itch: 0 }); // merged
    await reminderSave(phone.db, { ...REMINDER, enabled: false }, gone.id); // conflict: deleted
    const bad = await reminderSave(phone.db, { ...REMINDER, local_time: "7 o'clock" }); // rejected
    server.faults.push("drop_response");
    await phone.engine.sync();
    await phone.engine["pushAll"]();
    const answers = (server.requestsTo(PUSH).at(-1)?.body as { mutations: unknown[] }).mutations;
    expect(answers).toHaveLength(3);
    expect(await phone.db.diary.get(day.id)).toMatchObject({ wheals: 3, itch: 0, server_version: server.entries.get(day.id)?.server_version });
    expect(await phone.db.reminders.get(gone.id)).toBeUndefined();
    expect((await phone.db.reminders.get(bad.id))?.rejected?.code).toBe("validation_error");
    exactlyOnce(server);
  });

  it("a duplicate whose first answer the server no longer has: the pull brings the record", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const entry = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 2, itch: 2 });
    server.faults.push("drop_response");
    await phone.engine.sync();
    for (const client of server.clients.values()) client.results.clear();
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect((await phone.db.diary.get(entry.id))?.server_version).toBe(server.entries.get(entry.id)?.server_version);
    expect(await phone.db.outbox.count()).toBe(0);
  });

  it("a lost answer in the middle of a multi-batch push", async () => {
    const server = new FakeServer();
    const phone = await device(server, { pushBatch: 10 });
    for (let i = 1; i <= 25; i++) {
      await diaryEntrySave(phone.db, { ...ENTRY, day: `2026-10-${String(i).padStart(2, "0")}`, wheals: i % 4, itch: 1 });
    }
    server.faults.push("ok", "drop_response");
    expect(await phone.engine.sync()).toEqual({ status: "offline" });
    expect(server.effects).toHaveLength(20);
    expect(await phone.db.outbox.count()).toBe(15);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 15 });
    const batches = server.requestsTo(PUSH).map((r) => (r.body as { mutations: { mutation_id: number }[] }).mutations.map((m) => m.mutation_id));
    expect(batches.map((b) => [b[0], b.at(-1)])).toEqual([[1, 10], [11, 20], [11, 20], [21, 25]]);
    expect(server.effects).toHaveLength(25);
    exactlyOnce(server);
    await versionsMatch(phone, server);
  });

  it("a write made while a push is in flight stays queued and goes in the same round", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const first = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 });
    let once = true;
    server.onRequest = async (path) => {
      if (path !== PUSH || !once) return;
      once = false;
      await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 2, itch: 1 }); // same entry
      await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-29", wheals: 3, itch: 3 }); // another
    };
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 3 });
    expect(server.requestsTo(PUSH)).toHaveLength(2);
    expect(await phone.db.outbox.count()).toBe(0);
    expect(await diaryEntryFor(phone.db, "2026-11-28", "day")).toMatchObject({ id: first.id, wheals: 2 });
    expect(server.entries.get(first.id)?.wheals).toBe(2);
    expect(await phone.db.conflicts.count()).toBe(0); // its own earlier write is no conflict
    await versionsMatch(phone, server);
  });

  it("two sync calls at once share one round", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 });
    const [a, b] = await Promise.all([phone.engine.sync(), phone.engine.sync()]);
    expect(a).toEqual(b);
    expect(server.requestsTo(PUSH)).toHaveLength(1);
  });
});

describe("lost requests", () => {
  it("a push that never arrives: nothing applied, the same ids sent again", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    await phone.engine.sync();
    await workOfEveryTable(phone, rx.id);
    server.faults.push("drop_request", "drop_request");
    expect(await phone.engine.sync()).toEqual({ status: "offline" });
    expect(await phone.engine.sync()).toEqual({ status: "offline" });
    expect(server.effects).toHaveLength(0);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 5 });
    const sent = server.requestsTo(PUSH).map((r) => (r.body as { mutations: { mutation_id: number }[] }).mutations[0]?.mutation_id);
    expect(sent).toEqual([1, 1, 1]);
    expect(server.effects).toHaveLength(5);
    await versionsMatch(phone, server);
  });

  it("a pull whose answer is lost: the cursor stays, the changes come next time", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    await settle(phone, tablet);
    const cursor = await metaGet<string>(tablet.db, "cursor");
    await questionnaireSave(phone.db, UCT);
    await phone.engine.sync();
    server.faults.push("drop_response");
    expect(await tablet.engine.sync()).toEqual({ status: "offline" });
    expect(await metaGet(tablet.db, "cursor")).toBe(cursor);
    expect(await tablet.db.questionnaires.count()).toBe(0);
    await tablet.engine.sync();
    expect(await tablet.db.questionnaires.count()).toBe(1);
  });
});

describe("409 mutation_gap", () => {
  it("the server forgot this device (restored from a backup): the outbox is renumbered from the id it expects", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    await phone.engine.sync();
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    await reminderSave(phone.db, REMINDER);
    await phone.engine.sync();
    server.clients.clear();
    const work = await workOfEveryTable(phone, rx.id);
    expect((await phone.db.outbox.orderBy("mutation_id").first())?.mutation_id).toBe(3);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    const [gap, resend] = server.requestsTo(PUSH).slice(-2).map((r) => (r.body as { mutations: { mutation_id: number }[] }).mutations.map((m) => m.mutation_id));
    expect(gap).toEqual([3, 4, 5, 6, 7]);
    expect(resend).toEqual([1, 2, 3, 4, 5]);
    expect(await metaGet(phone.db, "next_mutation_id")).toBe(6);
    expect(server.entries.get(work.diary.id)).toBeDefined();
    expect(server.doses.get(work.dose.id)).toBeDefined();
    await reminderDelete(phone.db, work.reminder.id);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.reminders.get(work.reminder.id)?.deleted).toBe(true);
    // 2 before, 5 renumbered, 1 delete (ids restart after the server's loss, so count effects).
    expect(server.effects).toHaveLength(8);
  });

  it("mutations the server did process keep their ids and are not applied twice", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    await questionnaireSave(phone.db, UCT);
    server.faults.push("drop_response"); // the server has 1 and 2; the device does not know
    await phone.engine.sync();
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-21", wheals: 1, itch: 1 });
    // A hole in the device's numbering (3 became 5): the server expects 3.
    await phone.db.transaction("rw", phone.db.outbox, phone.db.meta, async () => {
      const m = await phone.db.outbox.get(3);
      if (m === undefined) throw new Error("no mutation 3");
      await phone.db.outbox.delete(3);
      await phone.db.outbox.add({ ...m, mutation_id: 5 });
      await phone.db.meta.put({ key: "next_mutation_id", value: 6 });
    });
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    const batches = server.requestsTo(PUSH).map((r) => (r.body as { mutations: { mutation_id: number }[] }).mutations.map((m) => m.mutation_id));
    expect(batches.slice(1)).toEqual([[1, 2, 5], [1, 2, 3]]);
    expect(server.effects).toHaveLength(3);
    exactlyOnce(server);
    expect(server.liveEntries()).toHaveLength(2);
    expect(await metaGet(phone.db, "next_mutation_id")).toBe(4);
  });

  it("a gap that renumbering does not close stops the round instead of looping", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    const real = server.fetch;
    server.fetch = async (input, init) =>
      String(input).includes(PUSH)
        ? new Response(JSON.stringify({ status: 409, code: "mutation_gap", expected: 7 }), { status: 409 })
        : real(input, init);
    const gapped = await device(server);
    await diaryEntrySave(gapped.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    expect(await gapped.engine.sync()).toMatchObject({ status: "error" });
    expect(await gapped.db.outbox.count()).toBe(1);
  });
});

describe("409 reset_required", () => {
  /** A device with synced rows of every table, some of which the server then deletes and purges. */
  async function purgedWhileAway() {
    const server = new FakeServer();
    const rx = server.prescribe({ medication: "kept" });
    const phone = await device(server);
    await phone.engine.sync();
    const oldDay = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    const keptDay = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-21", wheals: 1, itch: 1 });
    const oldUct = await questionnaireSave(phone.db, UCT);
    const oldReminder = await reminderSave(phone.db, REMINDER);
    const keptReminder = await reminderSave(phone.db, { ...REMINDER, local_time: "08:00" });
    const keptDose = await doseLog(phone.db, { prescription: rx.id, date: "2026-11-21", status: "skipped", taken_at: null });
    await phone.engine.sync();
    // Rows the server no longer has: a prescription and a conflict only this device kept.
    await phone.db.prescriptions.put({ ...rx, id: crypto.randomUUID(), medication: "stale" });
    await phone.db.conflicts.put({ id: crypto.randomUUID(), table: "diary_entry", record_id: oldDay.id, fields: ["wheals"], client_value: {}, server_value: {}, resolution: "last_arrival_wins", seen: false });
    server.serverDelete(oldDay.id);
    server.serverDeleteQuestionnaire(oldUct.id);
    server.serverDeleteReminder(oldReminder.id);
    server.purge();
    return { server, rx, phone, oldDay, keptDay, oldUct, oldReminder, keptReminder, keptDose };
  }

  it("downloads every table again and keeps unsynced writes of every table", async () => {
    const { server, rx, phone, oldDay, keptDay, oldUct, oldReminder, keptReminder, keptDose } = await purgedWhileAway();
    // Unsynced work: a new day, a changed reminder, a new dose, a changed setting, a refused reminder.
    const newDay = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-22", wheals: 3, itch: 3 });
    await reminderSave(phone.db, { ...REMINDER, local_time: "09:00" }, keptReminder.id);
    const newDose = await doseLog(phone.db, { prescription: rx.id, date: "2026-11-22", status: "taken", taken_at: "2026-11-22T09:00:00Z" });
    await settingsSave(phone.db, { diary_mode: "twice" });
    const queued = await phone.db.outbox.count();
    server.faults.push("drop_request"); // the push fails: the writes stay local during the reset
    await phone.engine.sync();
    await phone.engine["pullAll"]();
    expect(server.requestsTo(PULL).slice(-2).map((r) => r.query.has("cursor"))).toEqual([true, false]);
    // Gone: what the server deleted and purged, and what it never had.
    expect(await phone.db.diary.get(oldDay.id)).toBeUndefined();
    expect(await phone.db.questionnaires.get(oldUct.id)).toBeUndefined();
    expect(await phone.db.reminders.get(oldReminder.id)).toBeUndefined();
    expect((await phone.db.prescriptions.toArray()).map((p) => p.medication)).toEqual(["kept"]);
    expect(await phone.db.conflicts.count()).toBe(0);
    // Kept: what the server has, and every unsynced write.
    expect(await phone.db.diary.get(keptDay.id)).toBeDefined();
    expect(await phone.db.doses.get(keptDose.id)).toBeDefined();
    expect(await phone.db.diary.get(newDay.id)).toMatchObject({ wheals: 3, server_version: 0 });
    expect((await phone.db.reminders.get(keptReminder.id))?.local_time).toBe("09:00");
    expect(await phone.db.doses.get(newDose.id)).toBeDefined();
    expect((await settingsGet(phone.db)).diary_mode).toBe("twice");
    expect(await phone.db.outbox.count()).toBe(queued);
    expect(server.cursorVersion(await metaGet<string>(phone.db, "cursor"))).toBe(server.version);

    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(await visible(phone.db)).toEqual(serverVisible(server));
    expect(server.settings.diary_mode).toBe("twice");
    exactlyOnce(server);
  });

  it("in one round: the outbox is pushed, then the reset downloads everything", async () => {
    const { server, phone, oldDay, keptReminder } = await purgedWhileAway();
    await reminderSave(phone.db, { ...REMINDER, local_time: "10:10" }, keptReminder.id);
    const refused = await reminderSave(phone.db, { ...REMINDER, local_time: "99:99" });
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(await phone.db.diary.get(oldDay.id)).toBeUndefined();
    expect(server.reminders.get(keptReminder.id)?.local_time).toBe("10:10");
    // A refused new reminder (never on the server) stays with its reason for the patient to fix.
    expect((await phone.db.reminders.get(refused.id))?.rejected?.code).toBe("validation_error");
    const local = await visible(phone.db);
    expect({ ...local, reminders: local.reminders.filter((r) => r.id !== refused.id) }).toEqual(serverVisible(server));
  });

  it("a restore (new epoch) in the middle of paging: everything again from the start", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server, { pullLimit: 2 });
    for (let i = 1; i <= 6; i++) await reminderSave(phone.db, { ...REMINDER, local_time: `0${i}:00` });
    await phone.engine.sync();
    await tablet.engine.sync();
    for (let i = 1; i <= 5; i++) await diaryEntrySave(phone.db, { ...ENTRY, day: `2026-11-0${i}`, wheals: 1, itch: 1 });
    await phone.engine.sync();
    let pulls = 0;
    server.onRequest = (path) => {
      if (path === PULL && ++pulls === 2) server.newEpoch();
    };
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok" });
    expect(await visible(tablet.db)).toEqual(serverVisible(server));
  });

  it("an interrupted full download starts again and still removes what the server no longer has", async () => {
    const { server, phone, oldDay } = await purgedWhileAway();
    const engine = new SyncEngine(phone.db, phone.api, { pullLimit: 2 });
    server.faults.push("ok", "ok", "drop_request"); // the old cursor (409), the first page, then offline
    expect(await engine.sync()).toEqual({ status: "offline" });
    expect(await metaGet(phone.db, "cursor")).toBeUndefined();
    expect(await engine.sync()).toMatchObject({ status: "ok" });
    expect(await phone.db.diary.get(oldDay.id)).toBeUndefined();
    expect(await visible(phone.db)).toEqual(serverVisible(server));
  });
});

describe("paging", () => {
  it("a delta pull over several pages keeps its place when the network drops", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server, { pullLimit: 3 });
    await settle(phone, tablet);
    for (let i = 1; i <= 4; i++) await reminderSave(phone.db, { ...REMINDER, local_time: `1${i}:00` });
    await phone.engine.sync();
    for (let i = 1; i <= 4; i++) await diaryEntrySave(phone.db, { ...ENTRY, day: `2026-11-0${i}`, wheals: 1, itch: 1 });
    await phone.engine.sync();
    const before = server.requestsTo(PULL).length;
    server.faults.push("ok", "drop_request");
    expect(await tablet.engine.sync()).toEqual({ status: "offline" });
    expect(await tablet.db.reminders.count()).toBe(3); // the first page is kept with its cursor
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok" });
    const cursors = server.requestsTo(PULL).slice(before).map((r) => r.query.get("cursor"));
    expect(cursors[2]).toBe(cursors[1]); // resumed from the page after the one kept
    expect(await visible(tablet.db)).toEqual(serverVisible(server));
  });

  it("a page boundary inside one version loses nothing", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server, { pullLimit: 3 });
    for (let i = 1; i <= 7; i++) await diaryEntrySave(phone.db, { ...ENTRY, day: `2026-11-0${i}`, wheals: 1, itch: 1 });
    await phone.engine.sync(); // one push: seven rows with one version
    expect(new Set(server.liveEntries().map((e) => e.server_version)).size).toBe(1);
    await tablet.engine.sync();
    expect(await tablet.db.diary.count()).toBe(7);
  });
});

describe("answers that stop the round", () => {
  it("426 on the pull: asks for the new version", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await phone.engine.sync();
    server.minSchemaVersion = 3;
    expect(await phone.engine.sync()).toEqual({ status: "upgrade_required", minSchemaVersion: 3 });
  });

  it("401 on the pull: refresh once and carry on", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    server.validAccess.clear();
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pulled: 1 });
    expect(await metaGet(phone.db, "refresh_token")).toBe("refresh-2");
    expect(server.requestsTo("/api/v1/auth/token/refresh/")).toHaveLength(1);
  });

  it("401, refresh refused: sign in again, the outbox of every table kept, then sent once", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    await phone.engine.sync();
    await workOfEveryTable(phone, rx.id);
    server.validAccess.clear();
    server.refreshTokens.clear();
    expect(await phone.engine.sync()).toEqual({ status: "sign_in_required" });
    expect(await phone.db.outbox.count()).toBe(5);
    expect(server.effects).toHaveLength(0);
    // Signed in again (new tokens): the same mutations go, once.
    server.validAccess.add("access-9");
    phone.api.setAccessToken("access-9");
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 5 });
    expect(server.effects).toHaveLength(5);
    await versionsMatch(phone, server);
  });

  it("401 on a sync and a screen's request at once: one refresh for both (a rotated token is never sent twice)", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 });
    server.validAccess.clear(); // the access token expired
    const [outcome, page] = await Promise.all([
      phone.engine.sync(),
      phone.api.pull({ limit: 10, client_id: crypto.randomUUID() }),
      phone.api.pull({ limit: 10, client_id: crypto.randomUUID() }),
    ]);
    expect(outcome).toMatchObject({ status: "ok" });
    expect(page.has_more).toBe(false);
    expect(server.requestsTo("/api/v1/auth/token/refresh/")).toHaveLength(1);
    expect(await metaGet(phone.db, "refresh_token")).toBe("refresh-2");
    // A request that met the 401 after another refreshed retries with the new token.
    server.validAccess.clear();
    server.validAccess.add("access-2");
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.requestsTo("/api/v1/auth/token/refresh/")).toHaveLength(1);
  });

  it("401 again after a refresh: sign in again, the outbox kept", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await questionnaireSave(phone.db, UCT);
    server.validAccess.clear();
    server.refreshGrantsAccess = false;
    expect(await phone.engine.sync()).toEqual({ status: "sign_in_required" });
    expect(await phone.db.outbox.count()).toBe(1);
    expect(await phone.db.questionnaires.count()).toBe(1);
  });

  it("a delete queued behind a refused create goes quietly", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const bad = await questionnaireSave(phone.db, { ...UCT, answers: { items: [7] } });
    await questionnaireDelete(phone.db, bad.id);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(await phone.db.questionnaires.get(bad.id)).toBeUndefined();
    expect(await phone.db.outbox.count()).toBe(0);
  });
});

describe("the server is briefly unavailable (503 service_unavailable)", () => {
  it("says so, keeps the outbox, and sends it all once the server is back", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    await phone.engine.sync();
    await workOfEveryTable(phone, rx.id);
    server.faults.push("unavailable");
    expect(await phone.engine.sync()).toEqual({ status: "unavailable" });
    expect(server.effects).toHaveLength(0);
    expect(await phone.db.outbox.count()).toBe(5);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 5 });
    exactlyOnce(server);
    expect(await phone.db.outbox.count()).toBe(0);
  });
});
