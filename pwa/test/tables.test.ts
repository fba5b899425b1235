// The engine for every synced table: push results (applied, merged, conflict, rejected,
// duplicate) and pulls (upserts, deletes, pending fields kept, deletes win).
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { diaryEntryDelete, diaryEntryFor, diaryEntrySave } from "../src/store/diary";
import { doseLog } from "../src/store/doses";
import { metaGet } from "../src/store/meta";
import { questionnaireDelete, questionnaireSave, questionnairesOf } from "../src/store/questionnaires";
import { reminderDelete, reminderSave, remindersList } from "../src/store/reminders";
import { settingsGet, settingsRejected, settingsSave } from "../src/store/settings";
import { FakeServer } from "./fakeServer";
import { device, ENTRY, serverVisible, settle, visible } from "./helpers";

const UCT = { instrument: "uct" as const, answers: { items: [1, 2, 3, 4] }, period_end: "2026-11-28" };
const REMINDER = { kind: "diary" as const, local_time: "20:00", days_of_week: [1, 2, 3, 4, 5], prescription: null, enabled: true };

describe("diary entries (beyond sync.test.ts)", () => {
  it("a day created on two devices, changed again before the push: the second change reaches the winner through the alias", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const first = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 });
    await phone.engine.sync();
    const loser = await diaryEntrySave(tablet.db, { ...ENTRY, day: "2026-11-28", wheals: 2, itch: 2 });
    await diaryEntrySave(tablet.db, { ...ENTRY, day: "2026-11-28", wheals: 2, itch: 2, note: "after lunch" });
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok", pushed: 2 });
    expect(await tablet.db.diary.get(loser.id)).toBeUndefined();
    expect(await diaryEntryFor(tablet.db, "2026-11-28", "day")).toMatchObject({ id: first.id, wheals: 2, itch: 2, note: "after lunch" });
    await phone.engine.sync();
    expect(await visible(phone.db)).toEqual(serverVisible(server));
    expect(await visible(tablet.db)).toEqual(serverVisible(server));
    expect(server.aliases.get(loser.id)).toBe(first.id);
  });

  it("a pulled change of an entry this device is deleting keeps the tombstone; the delete then wins", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const saved = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 });
    await phone.engine.sync();
    await diaryEntryDelete(phone.db, saved.id);
    server.serverEdit(saved.id, { itch: 3 });
    await phone.engine["pullAll"]();
    expect(await phone.db.diary.get(saved.id)).toMatchObject({ deleted: true, itch: 3 });
    expect(await diaryEntryFor(phone.db, "2026-11-28", "day")).toBeUndefined();
    await phone.engine.sync();
    expect(await phone.db.diary.get(saved.id)).toBeUndefined();
    expect(server.liveEntries()).toEqual([]);
  });
});

describe("questionnaire responses", () => {
  it("round-trip: recorded, scored by the server, edited, deleted", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const saved = await questionnaireSave(phone.db, UCT);
    expect(saved.score).toBeNull(); // the device never scores
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 1 });
    expect(await phone.db.questionnaires.get(saved.id)).toMatchObject({ score: 10, server_version: server.questionnaires.get(saved.id)?.server_version, rejected: null });
    await tablet.engine.sync();
    expect(await questionnairesOf(tablet.db, "uct")).toMatchObject([{ id: saved.id, score: 10, answers: { items: [1, 2, 3, 4] } }]);

    await questionnaireSave(tablet.db, { ...UCT, id: saved.id, answers: { items: [0, 0, 0, 1] } });
    expect((await tablet.db.questionnaires.get(saved.id))?.score).toBeNull();
    await tablet.engine.sync();
    await phone.engine.sync();
    for (const d of [phone, tablet]) expect(await d.db.questionnaires.get(saved.id)).toMatchObject({ answers: { items: [0, 0, 0, 1] }, score: 1 });

    await questionnaireDelete(phone.db, saved.id);
    await settle(phone, tablet);
    expect(server.liveQuestionnaires()).toEqual([]);
    for (const d of [phone, tablet]) expect(await d.db.questionnaires.get(saved.id)).toBeUndefined();
  });

  it("keeps pending answers (with no score) when the pull brings the server's copy", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const saved = await questionnaireSave(phone.db, UCT);
    await phone.engine.sync();
    await questionnaireSave(phone.db, { ...UCT, id: saved.id, answers: { items: [4, 4, 4, 4] } });
    server.faults.push("drop_request"); // the push fails: the change stays pending
    await phone.engine.sync();
    await phone.engine["pullAll"]();
    expect(await phone.db.questionnaires.get(saved.id)).toMatchObject({ answers: { items: [4, 4, 4, 4] }, score: null });
    await phone.engine.sync();
    expect(await phone.db.questionnaires.get(saved.id)).toMatchObject({ answers: { items: [4, 4, 4, 4] }, score: 16 });
  });

  it("a refused response is kept with the reason, and a correction is sent whole", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const bad = await questionnaireSave(phone.db, { ...UCT, answers: { items: [1, 2, 9, 4] } });
    await phone.engine.sync();
    expect(await phone.db.outbox.count()).toBe(0);
    expect((await phone.db.questionnaires.get(bad.id))?.rejected).toEqual({ code: "validation_error", detail: "answers: 4 items 0–4." });
    await questionnaireSave(phone.db, { ...UCT, id: bad.id, answers: { items: [1, 2, 3, 4] } });
    const [resent] = await phone.db.outbox.toArray();
    expect(resent).toMatchObject({ base_version: null, fields: { instrument: "uct", answers: { items: [1, 2, 3, 4] } } });
    await phone.engine.sync();
    expect(await phone.db.questionnaires.get(bad.id)).toMatchObject({ rejected: null, score: 10 });
  });

  it("an edit of a response deleted elsewhere: the delete wins (conflict `deleted`)", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const saved = await questionnaireSave(phone.db, UCT);
    await phone.engine.sync();
    server.serverDeleteQuestionnaire(saved.id);
    await questionnaireSave(phone.db, { ...UCT, id: saved.id, answers: { items: [0, 0, 0, 0] } });
    // The push answers `conflict` (deleted) before the pull brings the delete.
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    const push = server.requestsTo("/api/v1/sync/push/").length;
    expect(push).toBe(2);
    expect(await phone.db.questionnaires.get(saved.id)).toBeUndefined();
    expect(await phone.db.outbox.count()).toBe(0);
    expect(server.liveQuestionnaires()).toEqual([]);
  });

  it("an edit of a response whose tombstone was purged: still deleted, never resurrected", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const saved = await questionnaireSave(phone.db, UCT);
    await settle(phone, tablet);
    await questionnaireDelete(phone.db, saved.id);
    await phone.engine.sync();
    server.purge();
    await questionnaireSave(tablet.db, { ...UCT, id: saved.id, answers: { items: [0, 0, 0, 0] } });
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok" }); // conflict, then reset_required
    expect(await tablet.db.questionnaires.count()).toBe(0);
    expect(server.questionnaires.size).toBe(0);
  });
});

describe("dose logs", () => {
  it("round-trip: logged offline, the server's time kept, seen by the other device", async () => {
    const server = new FakeServer();
    const rx = server.prescribe({ medication: "cetirizine" });
    const phone = await device(server);
    const tablet = await device(server);
    await settle(phone, tablet);
    expect(await phone.db.prescriptions.get(rx.id)).toMatchObject({ medication: "cetirizine", dose: "10 mg" });
    const taken = await doseLog(phone.db, { prescription: rx.id, date: "2026-11-28", status: "taken", taken_at: null });
    const skipped = await doseLog(phone.db, { prescription: rx.id, date: "2026-11-29", status: "skipped", taken_at: null });
    await settle(phone, tablet);
    expect(await phone.db.doses.get(taken.id)).toMatchObject({ taken_at: "2026-11-28T12:00:00+00:00", rejected: null });
    expect(await tablet.db.doses.get(skipped.id)).toMatchObject({ status: "skipped", taken_at: null });
    expect((await visible(tablet.db)).doses).toEqual(serverVisible(server).doses);
  });

  it("a log the server refuses is kept and marked (no such prescription, not active)", async () => {
    const server = new FakeServer();
    const rx = server.prescribe({ start: "2026-11-20" });
    const phone = await device(server);
    await phone.engine.sync();
    const unknown = await doseLog(phone.db, { prescription: crypto.randomUUID(), date: "2026-11-28", status: "taken", taken_at: null });
    const early = await doseLog(phone.db, { prescription: rx.id, date: "2026-11-10", status: "taken", taken_at: null });
    await phone.engine.sync();
    expect((await phone.db.doses.get(unknown.id))?.rejected).toEqual({ code: "not_found", detail: "No such prescription." });
    expect((await phone.db.doses.get(early.id))?.rejected?.code).toBe("prescription_inactive");
    expect(server.doses.size).toBe(0);
  });

  it("insert-only: a changed replay is refused as `immutable`, a delete as `insert_only`", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    await phone.engine.sync();
    const dose = await doseLog(phone.db, { prescription: rx.id, date: "2026-11-28", status: "taken", taken_at: "2026-11-28T08:00:00Z" });
    await phone.engine.sync();
    // A device that changed its log in place (an older build): the server never acknowledges it.
    const queue = async (op: "upsert" | "delete", fields: Record<string, unknown>) => {
      const next = (await metaGet<number>(phone.db, "next_mutation_id")) ?? 1;
      await phone.db.outbox.add({ mutation_id: next, table: "dose_log", id: dose.id, op, base_version: null, fields });
      await phone.db.meta.put({ key: "next_mutation_id", value: next + 1 });
    };
    await queue("upsert", { prescription: rx.id, date: "2026-11-28", status: "skipped" });
    await phone.engine["pushAll"]();
    expect((await phone.db.doses.get(dose.id))?.rejected?.code).toBe("immutable");
    await queue("delete", {});
    await phone.engine["pushAll"]();
    expect((await phone.db.doses.get(dose.id))?.rejected?.code).toBe("insert_only");
    expect(server.doses.get(dose.id)).toMatchObject({ status: "taken", taken_at: "2026-11-28T08:00:00Z" });
    // The same content again is no change: applied, the mark goes.
    await queue("upsert", { prescription: rx.id, date: "2026-11-28", status: "taken", taken_at: "2026-11-28T08:00:00Z" });
    await phone.engine.sync();
    expect(await phone.db.doses.get(dose.id)).toMatchObject({ status: "taken", rejected: null });
  });
});

describe("prescriptions (the clinic's)", () => {
  it("are pulled, updated and never pushed", async () => {
    const server = new FakeServer();
    const rx = server.prescribe({ medication: "m1", dose: "10 mg" });
    const phone = await device(server);
    await phone.engine.sync();
    server.prescribe({ id: rx.id, dose: "20 mg", end: "2026-12-31" });
    await phone.engine.sync();
    expect(await phone.db.prescriptions.get(rx.id)).toMatchObject({ dose: "20 mg", end: "2026-12-31", server_version: server.prescriptions.get(rx.id)?.server_version });
    expect(server.requestsTo("/api/v1/sync/push/")).toHaveLength(0);
  });
});

describe("reminders", () => {
  it("round-trip: added, changed, deleted; the tombstone goes once confirmed", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const saved = await reminderSave(phone.db, REMINDER);
    await settle(phone, tablet);
    expect(await remindersList(tablet.db)).toMatchObject([{ id: saved.id, local_time: "20:00", days_of_week: [1, 2, 3, 4, 5] }]);
    await reminderSave(tablet.db, { ...REMINDER, local_time: "21:30" }, saved.id);
    expect((await tablet.db.outbox.toArray())[0]).toMatchObject({ base_version: server.reminders.get(saved.id)?.server_version, fields: { local_time: "21:30" } });
    await settle(phone, tablet);
    expect((await phone.db.reminders.get(saved.id))?.local_time).toBe("21:30");
    await reminderDelete(phone.db, saved.id);
    expect(await remindersList(phone.db)).toEqual([]);
    await settle(phone, tablet);
    for (const d of [phone, tablet]) expect(await d.db.reminders.get(saved.id)).toBeUndefined();
    expect(server.reminders.get(saved.id)?.deleted).toBe(true);
  });

  it("a refused reminder is kept with the reason; the correction is sent whole; a delete of one the server never had goes quietly", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const bad = await reminderSave(phone.db, { ...REMINDER, days_of_week: [0] });
    await phone.engine.sync();
    expect((await phone.db.reminders.get(bad.id))?.rejected?.code).toBe("validation_error");
    await reminderSave(phone.db, { ...REMINDER, days_of_week: [6, 7] }, bad.id);
    expect((await phone.db.outbox.toArray())[0]).toMatchObject({ base_version: null, fields: { kind: "diary", local_time: "20:00", days_of_week: [6, 7] } });
    await phone.engine.sync();
    expect(await phone.db.reminders.get(bad.id)).toMatchObject({ rejected: null, days_of_week: [6, 7] });

    const never = await reminderSave(phone.db, { ...REMINDER, local_time: "25:00" });
    await phone.engine.sync();
    await reminderDelete(phone.db, never.id);
    await phone.engine.sync(); // not_found: nothing to delete on the server
    expect(await phone.db.reminders.get(never.id)).toBeUndefined();
    expect(await phone.db.outbox.count()).toBe(0);
  });

  it("two devices change the same reminder: merged per field, the overlap recorded, both converge", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const saved = await reminderSave(phone.db, REMINDER);
    await settle(phone, tablet);
    await reminderSave(phone.db, { ...REMINDER, local_time: "07:15", enabled: false }, saved.id);
    await reminderSave(tablet.db, { ...REMINDER, local_time: "09:45", days_of_week: [6, 7] }, saved.id);
    await phone.engine.sync();
    await tablet.engine.sync(); // merged: the record comes back in the answer
    expect(await tablet.db.reminders.get(saved.id)).toMatchObject({ local_time: "09:45", enabled: false, days_of_week: [6, 7] });
    await settle(phone, tablet);
    expect(server.reminders.get(saved.id)).toMatchObject({ local_time: "09:45", enabled: false, days_of_week: [6, 7] });
    for (const d of [phone, tablet]) {
      expect((await visible(d.db)).reminders).toEqual(serverVisible(server).reminders);
      expect(await d.db.conflicts.toArray()).toMatchObject([
        { table: "reminder", record_id: saved.id, fields: ["local_time"], client_value: { local_time: "09:45" }, server_value: { local_time: "07:15" }, seen: false },
      ]);
    }
  });

  it("a delete on one device wins over a change on the other", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const saved = await reminderSave(phone.db, REMINDER);
    await settle(phone, tablet);
    await reminderDelete(phone.db, saved.id);
    await reminderSave(tablet.db, { ...REMINDER, local_time: "06:00" }, saved.id);
    await phone.engine.sync();
    await tablet.engine.sync();
    await settle(phone, tablet);
    expect(server.liveReminders()).toEqual([]);
    for (const d of [phone, tablet]) {
      expect(await d.db.reminders.count()).toBe(0);
      expect(await d.db.outbox.count()).toBe(0);
    }
  });

  it("a pulled change keeps the fields this device has pending; a pulled delete wins over them", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const saved = await reminderSave(phone.db, REMINDER);
    await phone.engine.sync();
    await reminderSave(phone.db, { ...REMINDER, local_time: "06:30" }, saved.id);
    server.serverEditReminder(saved.id, { enabled: false, local_time: "18:00" });
    await phone.engine["pullAll"]();
    expect(await phone.db.reminders.get(saved.id)).toMatchObject({ local_time: "06:30", enabled: false });
    server.serverDeleteReminder(saved.id);
    await phone.engine["pullAll"]();
    expect(await phone.db.reminders.get(saved.id)).toBeUndefined();
    await phone.engine.sync(); // the pending change meets the delete: conflict, nothing comes back
    expect(await phone.db.reminders.get(saved.id)).toBeUndefined();
    expect(await phone.db.outbox.count()).toBe(0);
  });
});

describe("settings", () => {
  it("come with the first pull and a change is acknowledged with the server's version", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await phone.engine.sync();
    expect(await metaGet(phone.db, "patient_id")).toBe(server.patientId);
    expect(await settingsGet(phone.db)).toMatchObject({ timezone: "Europe/Berlin", locale: "de", diary_mode: "once" });
    await settingsSave(phone.db, { diary_mode: "twice", quiet_hours_start: "23:00" });
    expect((await phone.db.outbox.toArray())[0]).toMatchObject({ table: "patient_settings", id: server.patientId, base_version: 1 });
    await phone.engine["pushAll"]();
    expect(await metaGet(phone.db, "settings_version")).toBe(server.settings.server_version);
    expect(server.settings).toMatchObject({ diary_mode: "twice", quiet_hours_start: "23:00" });
  });

  it("a refused change is put back to the server's value and the reason kept", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await phone.engine.sync();
    await settingsSave(phone.db, { timezone: "Mars/Olympus", locale: "en" });
    expect((await settingsGet(phone.db)).timezone).toBe("Mars/Olympus");
    await phone.engine.sync();
    expect(await settingsGet(phone.db)).toMatchObject({ timezone: "Europe/Berlin", locale: "de" });
    expect(await settingsRejected(phone.db)).toMatchObject({ code: "validation_error", field: "timezone" });
    await settingsSave(phone.db, { locale: "en" });
    await phone.engine.sync();
    expect(await settingsRejected(phone.db)).toBeUndefined();
    expect(server.settings.locale).toBe("en");
  });

  it("two devices change settings offline: merged per field, the same field recorded as a conflict, both converge", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    await settle(phone, tablet);
    await settingsSave(phone.db, { timezone: "Europe/Vienna", quiet_hours_start: "21:00" });
    await settingsSave(tablet.db, { timezone: "Europe/Zurich", diary_mode: "twice" });
    await phone.engine.sync();
    // Before its push, the tablet's pending fields survive the phone's change arriving by pull.
    await tablet.engine["pullAll"]();
    expect(await settingsGet(tablet.db)).toMatchObject({ timezone: "Europe/Zurich", diary_mode: "twice", quiet_hours_start: "21:00" });
    await settle(phone, tablet);
    expect(server.settings).toMatchObject({ timezone: "Europe/Zurich", diary_mode: "twice", quiet_hours_start: "21:00" });
    for (const d of [phone, tablet]) {
      expect((await visible(d.db)).settings).toEqual(serverVisible(server).settings);
      expect(await d.db.conflicts.toArray()).toMatchObject([
        { table: "patient_settings", fields: ["timezone"], client_value: { timezone: "Europe/Zurich" }, server_value: { timezone: "Europe/Vienna" } },
      ]);
    }
  });
});

describe("every table at once", () => {
  it("one outbox with every table, pushed in order and seen the same on another device", async () => {
    const server = new FakeServer();
    const rx = server.prescribe();
    const phone = await device(server);
    const tablet = await device(server);
    await settle(phone, tablet);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 2, itch: 1 });
    await questionnaireSave(phone.db, UCT);
    await doseLog(phone.db, { prescription: rx.id, date: "2026-11-28", status: "taken", taken_at: "2026-11-28T08:00:00Z" });
    await reminderSave(phone.db, { ...REMINDER, kind: "medication", prescription: rx.id });
    await settingsSave(phone.db, { quiet_hours_end: "06:30" });
    const sent = (await phone.db.outbox.orderBy("mutation_id").toArray()).map((m) => [m.mutation_id, m.table]);
    expect(sent).toEqual([[1, "diary_entry"], [2, "questionnaire_response"], [3, "dose_log"], [4, "reminder"], [5, "patient_settings"]]);
    await settle(phone, tablet);
    const expected = serverVisible(server);
    expect(expected.diary).toHaveLength(1);
    expect(expected.reminders).toHaveLength(1);
    expect(await visible(phone.db)).toEqual(expected);
    expect(await visible(tablet.db)).toEqual(expected);
  });
});
