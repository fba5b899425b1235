// A restore of the clinic from a backup (issue 21): a new sync epoch on the server, which forgot
// what it acknowledged since the backup. Every device gets 409 reset_required (never
// mutation_gap), becomes a new client, sends what it still had queued, numbered from 1, and
// downloads everything: it converges to the restored state plus its own re-sent writes.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { diaryEntrySave } from "../src/store/diary";
import { metaGet } from "../src/store/meta";
import { reminderSave } from "../src/store/reminders";
import { FakeServer } from "./fakeServer";
import { device, ENTRY, serverVisible, visible } from "./helpers";

const PUSH = "/api/v1/sync/push/";
const PULL = "/api/v1/sync/pull/";
const REMINDER = { kind: "diary" as const, local_time: "20:00", days_of_week: [1, 2, 3, 4, 5, 6, 7], prescription: null, enabled: true };

type Pushed = { client_id: string; mutations: { mutation_id: number }[] };

describe("restore (new sync epoch)", () => {
  it("devices that wrote before and after the backup converge to the restored state plus their queued writes", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    // Before the backup.
    const kept = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    await phone.engine.sync();
    const keptReminder = await reminderSave(tablet.db, REMINDER);
    await tablet.engine.sync();
    const backup = server.backup();
    // After it: acknowledged writes the restore will take away.
    const lost = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-21", wheals: 2, itch: 2 });
    await phone.engine.sync();
    await reminderSave(tablet.db, { ...REMINDER, local_time: "08:00" });
    await tablet.engine.sync();
    const phoneClient = await metaGet<string>(phone.db, "client_id");
    // Queued on the phone and never sent.
    const queued = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-22", wheals: 3, itch: 0 });
    expect(await phone.db.outbox.count()).toBe(1);

    server.restore(backup);

    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    const pushes = server.requestsTo(PUSH).slice(-2).map((r) => r.body as Pushed);
    // The old client is refused (its next id would be a gap forever); the new one starts at 1.
    expect(pushes[0]?.client_id).toBe(phoneClient);
    expect(pushes[0]?.mutations.map((m) => m.mutation_id)).toEqual([3]);
    expect(pushes[1]?.client_id).not.toBe(phoneClient);
    expect(pushes[1]?.mutations.map((m) => m.mutation_id)).toEqual([1]);
    expect(await metaGet<string>(phone.db, "client_id")).toBe(pushes[1]?.client_id);
    expect(await metaGet<number>(phone.db, "next_mutation_id")).toBe(2);
    expect(await phone.db.outbox.count()).toBe(0);
    expect(server.liveEntries().map((e) => e.id).sort()).toEqual([kept.id, queued.id].sort());
    expect(await phone.db.diary.get(lost.id)).toBeUndefined();
    expect(await visible(phone.db)).toEqual(serverVisible(server));

    // The tablet only pulls: its cursor, then its client id, are of the old epoch.
    const tabletClient = await metaGet<string>(tablet.db, "client_id");
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok" });
    expect(await metaGet<string>(tablet.db, "client_id")).not.toBe(tabletClient);
    expect(server.requestsTo(PULL).slice(-3).map((r) => [r.query.has("cursor"), r.query.get("client_id") === tabletClient])).toEqual([
      [true, true],
      [false, true],
      [false, false],
    ]);
    expect((await tablet.db.reminders.toArray()).map((r) => r.id)).toEqual([keptReminder.id]);
    expect(await visible(tablet.db)).toEqual(serverVisible(server));

    // Life goes on: both write again, in the new epoch, and agree.
    await diaryEntrySave(tablet.db, { ...ENTRY, day: "2026-11-23", wheals: 0, itch: 0 });
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok" });
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(await visible(phone.db)).toEqual(serverVisible(server));
    expect(await visible(tablet.db)).toEqual(serverVisible(server));
  });

  it("a queued change of an entry the restore took away is sent as the whole entry", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    await phone.engine.sync();
    const backup = server.backup();
    const entry = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-21", wheals: 1, itch: 1, note: "after the backup" });
    await phone.engine.sync(); // acknowledged, then lost to the restore
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-21", wheals: 3, itch: 1, note: "after the backup" });
    const queued = await phone.db.outbox.toArray();
    expect(queued.map((m) => Object.keys(m.fields))).toEqual([["wheals"]]);
    server.restore(backup);
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.entries.get(entry.id)).toMatchObject({ day: "2026-11-21", wheals: 3, itch: 1, note: "after the backup" });
    const sent = server.requestsTo(PUSH).at(-1)?.body as { mutations: { base_version: number | null; fields: Record<string, unknown> }[] };
    expect(sent.mutations[0]).toMatchObject({ base_version: null, fields: { day: "2026-11-21", slot: "day", wheals: 3 } });
    expect(await metaGet(phone.db, "resend_whole")).toBeUndefined();
    expect(await visible(phone.db)).toEqual(serverVisible(server));
    expect(await tablet.engine.sync()).toMatchObject({ status: "ok" });
    expect(await visible(tablet.db)).toEqual(serverVisible(server));
  });

  it("a write made while the reset runs keeps its place after the re-sent ones", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    await phone.engine.sync();
    const backup = server.backup();
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-21", wheals: 1, itch: 1 });
    await phone.engine.sync();
    const first = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-22", wheals: 2, itch: 2 });
    server.restore(backup);
    let later: { id: string } | undefined;
    server.onRequest = async (path) => {
      if (path === PUSH && later === undefined) later = await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-23", wheals: 3, itch: 3 });
    };
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    server.onRequest = undefined;
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.entries.get(first.id)?.wheals).toBe(2);
    expect(later && server.entries.get(later.id)?.wheals).toBe(3);
    expect(await phone.db.outbox.count()).toBe(0);
    expect(await visible(phone.db)).toEqual(serverVisible(server));
  });

  it("an unreadable cursor (a rotated key) downloads everything again with the same client", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    await phone.engine.sync();
    const client = await metaGet<string>(phone.db, "client_id");
    await phone.db.meta.put({ key: "cursor", value: "%%%unreadable%%%" });
    expect(await phone.engine.sync()).toMatchObject({ status: "ok" });
    expect(await metaGet<string>(phone.db, "client_id")).toBe(client);
    expect(await visible(phone.db)).toEqual(serverVisible(server));
  });
});
