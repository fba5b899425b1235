import { describe, expect, it } from "vitest";
import { AppDB } from "../src/store/db";
import { diaryEntryDelete, diaryEntryFor, diaryEntrySave } from "../src/store/diary";
import { clientId } from "../src/store/meta";
import { ENTRY } from "./helpers";

async function freshDb(): Promise<AppDB> {
  const db = new AppDB(`store-${Math.random()}`);
  await db.open();
  return db;
}

describe("the store", () => {
  it("stores an entry and its outbox mutation together, with gap-free mutation ids", async () => {
    const db = await freshDb();
    await diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 2 });
    await diaryEntrySave(db, { ...ENTRY, day: "2026-11-29", wheals: 0, itch: 0 });
    const outbox = await db.outbox.orderBy("mutation_id").toArray();
    expect(outbox.map((m) => m.mutation_id)).toEqual([1, 2]);
    expect(outbox[0]).toMatchObject({
      table: "diary_entry",
      op: "upsert",
      base_version: null,
      fields: { day: "2026-11-28", slot: "day", wheals: 1, itch: 2, angioedema: false, aas_items: null, note: "" },
    });
    expect((await diaryEntryFor(db, "2026-11-28", "day"))?.wheals).toBe(1);
  });

  it("sends only the changed fields of an edit, based on the version it saw", async () => {
    const db = await freshDb();
    const first = await diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 2 });
    await db.diary.update(first.id, { server_version: 7 });
    await db.outbox.clear();
    await diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 3, itch: 2 });
    const [edit] = await db.outbox.toArray();
    expect(edit).toMatchObject({ id: first.id, base_version: 7, fields: { wheals: 3 } });
    // Saving the same values again queues nothing.
    await diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 3, itch: 2 });
    expect(await db.outbox.count()).toBe(1);
  });

  it("leaves neither the entry nor the mutation when the transaction fails", async () => {
    const db = await freshDb();
    await db.outbox.add({ mutation_id: 1, table: "diary_entry", id: "x", op: "delete", base_version: 0, fields: {} });
    // The counter still says 1: adding mutation 1 again fails, and the entry must not stay.
    await expect(diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 })).rejects.toThrow();
    expect(await db.diary.count()).toBe(0);
    expect(await db.outbox.count()).toBe(1);
  });

  it("drops aas items when there was no angioedema", async () => {
    const db = await freshDb();
    const entry = await diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1, aas_items: [1, 1, 1, 1, 1] });
    expect(entry.aas_items).toBeNull();
  });

  it("queues a delete as a tombstone", async () => {
    const db = await freshDb();
    const entry = await diaryEntrySave(db, { ...ENTRY, day: "2026-11-28", wheals: 1, itch: 1 });
    await diaryEntryDelete(db, entry.id);
    expect(await diaryEntryFor(db, "2026-11-28", "day")).toBeUndefined();
    expect((await db.outbox.toArray()).map((m) => m.op)).toEqual(["upsert", "delete"]);
  });

  it("keeps one client id per device", async () => {
    const db = await freshDb();
    const id = await clientId(db);
    expect(await clientId(db)).toBe(id);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
