import { describe, expect, it } from "vitest";
import { diaryEntryDelete, diaryEntryFor, diaryEntrySave } from "../src/store/diary";
import { metaGet } from "../src/store/meta";
import { FakeServer } from "./fakeServer";
import { device, ENTRY } from "./helpers";

const DAY = "2026-11-28";

/** The day recorded (1/1) and synced on both devices; then each changes it offline, the phone's
 * arriving first. */
async function bothEdit(server: FakeServer, onPhone: { wheals: number; itch: number }, onTablet: { wheals: number; itch: number }) {
  const phone = await device(server);
  const tablet = await device(server);
  await diaryEntrySave(phone.db, { ...ENTRY, day: DAY, wheals: 1, itch: 1 });
  await phone.engine.sync();
  await tablet.engine.sync();
  await diaryEntrySave(phone.db, { ...ENTRY, day: DAY, ...onPhone });
  await diaryEntrySave(tablet.db, { ...ENTRY, day: DAY, ...onTablet });
  await phone.engine.sync();
  await tablet.engine.sync();
  await phone.engine.sync();
  return { phone, tablet };
}

describe("push", () => {
  it("applies the outbox and keeps the server's version", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    const saved = await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    expect(await alice.engine.sync()).toMatchObject({ status: "ok", pushed: 1 });
    expect(await alice.db.outbox.count()).toBe(0);
    expect(server.liveEntries()).toMatchObject([{ id: saved.id, wheals: 2, itch: 1 }]);
    expect((await alice.db.diary.get(saved.id))?.server_version).toBe(server.entries.get(saved.id)?.server_version);
  });

  it("keeps the outbox when offline and sends the same ids later", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    server.faults.push("drop_request");
    expect(await alice.engine.sync()).toEqual({ status: "offline" });
    expect(await alice.db.outbox.count()).toBe(1);
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.liveEntries()).toHaveLength(1);
  });

  it("replays after a lost response: the server answers duplicate and applies nothing twice", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    const saved = await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    server.faults.push("drop_response");
    expect(await alice.engine.sync()).toEqual({ status: "offline" });
    expect(server.applications).toBe(1);
    expect(await alice.db.outbox.count()).toBe(1);
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    const pushes = server.requests.filter((r) => r.path === "/api/v1/sync/push/");
    expect(pushes.map((r) => (r.body as { mutations: { mutation_id: number }[] }).mutations[0]?.mutation_id)).toEqual([1, 1]);
    expect(server.applications).toBe(1);
    expect(await alice.db.outbox.count()).toBe(0);
    expect((await alice.db.diary.get(saved.id))?.server_version).toBe(server.entries.get(saved.id)?.server_version);
  });

  it("drops what the pull says was processed when a push answer was lost", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    server.faults.push("drop_response");
    await alice.engine.sync();
    // A pull alone (e.g. another tab's engine) learns last_mutation_id = 1.
    await diaryEntrySave(alice.db, { ...ENTRY, day: "2026-11-29", wheals: 0, itch: 0 });
    await alice.engine.sync();
    expect(await alice.db.outbox.count()).toBe(0);
    expect(server.liveEntries()).toHaveLength(2);
    expect(server.applications).toBe(2);
  });

  it("resends from the id the server expects after 409 mutation_gap", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    // The server lost this device's history (restored from a backup): it expects 1 again.
    await alice.db.transaction("rw", alice.db.outbox, async () => {
      const [m] = await alice.db.outbox.toArray();
      await alice.db.outbox.clear();
      if (m) await alice.db.outbox.add({ ...m, mutation_id: 5 });
    });
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    const gap = server.requests.filter((r) => r.path === "/api/v1/sync/push/");
    expect(gap).toHaveLength(2);
    expect(server.liveEntries()).toHaveLength(1);
    expect(await metaGet(alice.db, "next_mutation_id")).toBe(2);
    await diaryEntrySave(alice.db, { ...ENTRY, day: "2026-11-29", wheals: 1, itch: 1 });
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.liveEntries()).toHaveLength(2);
  });

  it("keeps a rejected entry with the server's reason and unblocks the queue", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    const bad = await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 9, itch: 1 });
    await diaryEntrySave(alice.db, { ...ENTRY, day: "2026-11-29", wheals: 1, itch: 1 });
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    expect(await alice.db.outbox.count()).toBe(0);
    expect((await alice.db.diary.get(bad.id))?.rejected).toEqual({ code: "validation_error", detail: "wheals must be an integer 0–3." });
    expect(server.liveEntries().map((e) => e.day)).toEqual(["2026-11-29"]);
  });

  it("confirms a delete and forgets the tombstone", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    const saved = await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    await alice.engine.sync();
    await diaryEntryDelete(alice.db, saved.id);
    await alice.engine.sync();
    expect(server.liveEntries()).toEqual([]);
    expect(await alice.db.diary.get(saved.id)).toBeUndefined();
  });
});

describe("answers that stop the round", () => {
  it("426: asks for the new version and keeps the outbox", async () => {
    const server = new FakeServer();
    server.minSchemaVersion = 2;
    const alice = await device(server);
    await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    expect(await alice.engine.sync()).toEqual({ status: "upgrade_required", minSchemaVersion: 2 });
    expect(await alice.db.outbox.count()).toBe(1);
  });

  it("401: refreshes once, keeps the rotated refresh token and carries on", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    server.validAccess.clear(); // the access token expired
    await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    expect(await metaGet(alice.db, "refresh_token")).toBe("refresh-2");
    expect(server.liveEntries()).toHaveLength(1);
  });

  it("401 with a refused refresh: asks to sign in again without losing the outbox", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    server.validAccess.clear();
    server.refreshTokens.clear(); // signed out elsewhere
    await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    expect(await alice.engine.sync()).toEqual({ status: "sign_in_required" });
    expect(await alice.db.outbox.count()).toBe(1);
    expect(await alice.db.diary.count()).toBe(1);
  });
});

describe("pull", () => {
  it("brings the server's changes and deletes, and moves the cursor", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    const phone = await device(server);
    const saved = await diaryEntrySave(alice.db, { ...ENTRY, day: DAY, wheals: 2, itch: 1 });
    await alice.engine.sync();
    await phone.engine.sync();
    expect((await diaryEntryFor(phone.db, DAY, "day"))?.wheals).toBe(2);
    server.serverDelete(saved.id);
    await phone.engine.sync();
    expect(await diaryEntryFor(phone.db, DAY, "day")).toBeUndefined();
    expect(server.cursorVersion(await metaGet<string>(phone.db, "cursor"))).toBe(server.version);
  });

  it("409 reset_required: downloads everything again and keeps unsynced local writes", async () => {
    const server = new FakeServer();
    const alice = await device(server);
    const old = await diaryEntrySave(alice.db, { ...ENTRY, day: "2026-11-20", wheals: 1, itch: 1 });
    const kept = await diaryEntrySave(alice.db, { ...ENTRY, day: "2026-11-21", wheals: 1, itch: 1 });
    await alice.engine.sync();
    // The entry is deleted on the server and the tombstone purged before this device pulls.
    server.serverDelete(old.id);
    server.purge();
    await diaryEntrySave(alice.db, { ...ENTRY, day: "2026-11-22", wheals: 3, itch: 3 }); // unsynced
    server.faults.push("drop_request"); // the push fails: the write stays local for the pull
    await alice.engine.sync();
    // Pull only (as a follower tab would): reset, full download.
    await alice.engine["pullAll"]();
    expect(await alice.db.diary.get(old.id)).toBeUndefined();
    expect(await alice.db.diary.get(kept.id)).toBeDefined();
    expect((await diaryEntryFor(alice.db, "2026-11-22", "day"))?.wheals).toBe(3);
    expect(await alice.db.outbox.count()).toBe(1);
    expect(await alice.engine.sync()).toMatchObject({ status: "ok" });
    expect(server.liveEntries().map((e) => e.day).sort()).toEqual(["2026-11-21", "2026-11-22"]);
  });
});

describe("two devices editing the same day", () => {
  it("created offline on both: merged into one entry, the conflict recorded, both converge", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: DAY, wheals: 1, itch: 1 });
    await diaryEntrySave(tablet.db, { ...ENTRY, day: DAY, wheals: 3, itch: 1 });
    await phone.engine.sync();
    await tablet.engine.sync();
    await phone.engine.sync();
    expect(server.liveEntries()).toHaveLength(1);
    const [winner] = server.liveEntries();
    expect(winner?.wheals).toBe(3); // last arrival wins, per field
    for (const d of [phone, tablet]) {
      const live = (await d.db.diary.toArray()).filter((e) => !e.deleted);
      expect(live).toMatchObject([{ id: winner?.id, wheals: 3, itch: 1 }]);
      expect(await d.db.outbox.count()).toBe(0);
      expect(await d.db.conflicts.toArray()).toMatchObject([
        { record_id: winner?.id, fields: ["wheals"], client_value: { wheals: 3 }, server_value: { wheals: 1 }, seen: false },
      ]);
    }
  });

  it("a device signing in later does not replay the conflict as news; a later edit ends it everywhere", async () => {
    const server = new FakeServer();
    const { phone, tablet } = await bothEdit(server, { wheals: 2, itch: 1 }, { wheals: 3, itch: 1 });
    for (const d of [phone, tablet]) expect(await d.db.conflicts.toArray()).toMatchObject([{ seen: false }]);
    // A new phone downloads everything: the conflict is history there.
    const later = await device(server);
    await later.engine.sync();
    const [kept] = await later.db.conflicts.toArray();
    expect(kept).toMatchObject({ fields: ["wheals"], seen: true });
    // The conflict names the version of the write that won: the entry is at that version until
    // it changes again (the banner then has nothing true to say: Conflicts.tsx).
    const entry = await diaryEntryFor(phone.db, DAY, "day");
    expect(kept?.server_version).toBe(entry?.server_version);
    await diaryEntrySave(phone.db, { ...ENTRY, day: DAY, wheals: 0, itch: 0 });
    await phone.engine.sync();
    await tablet.engine.sync();
    const [conflict] = await tablet.db.conflicts.toArray();
    expect((await diaryEntryFor(tablet.db, DAY, "day"))?.server_version).toBeGreaterThan(conflict?.server_version ?? Infinity);
  });

  it("different fields edited offline: both changes kept, no conflict", async () => {
    const server = new FakeServer();
    const { phone, tablet } = await bothEdit(server, { wheals: 2, itch: 1 }, { wheals: 1, itch: 3 });
    for (const d of [phone, tablet]) {
      expect(await diaryEntryFor(d.db, DAY, "day")).toMatchObject({ wheals: 2, itch: 3 });
      expect(await d.db.conflicts.count()).toBe(0);
    }
    expect(server.liveEntries()).toMatchObject([{ wheals: 2, itch: 3 }]);
  });

  it("a delete on one device wins over an edit on the other", async () => {
    const server = new FakeServer();
    const phone = await device(server);
    const tablet = await device(server);
    const saved = await diaryEntrySave(phone.db, { ...ENTRY, day: DAY, wheals: 1, itch: 1 });
    await phone.engine.sync();
    await tablet.engine.sync();
    await diaryEntryDelete(phone.db, saved.id);
    await diaryEntrySave(tablet.db, { ...ENTRY, day: DAY, wheals: 3, itch: 3 });
    await phone.engine.sync();
    await tablet.engine.sync();
    expect(server.liveEntries()).toEqual([]);
    expect(await diaryEntryFor(tablet.db, DAY, "day")).toBeUndefined();
    expect(await tablet.db.outbox.count()).toBe(0);
  });
});
