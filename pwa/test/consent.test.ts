// Without consent to the clinic's privacy notice the server refuses every push (403
// consent_required): the engine says so (the app shows a banner leading to My data) and keeps
// the outbox; once the patient agrees, the next round sends everything.
import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { diaryEntrySave } from "../src/store/diary";
import { FakeServer } from "./fakeServer";
import { device, ENTRY } from "./helpers";

describe("a patient without consent", () => {
  it("keeps the outbox and reports consent_required, then sends it once they agree", async () => {
    const server = new FakeServer();
    let consented = false;
    const serve = server.fetch;
    server.fetch = async (input: string, init?: RequestInit) => {
      if (!consented && new URL(input, "http://clinic.test").pathname === "/api/v1/sync/push/") {
        const problem = { type: "about:blank", title: "Permission denied", status: 403, detail: "No consent.", code: "consent_required" };
        return new Response(JSON.stringify(problem), { status: 403, headers: { "Content-Type": "application/problem+json" } });
      }
      return serve(input, init);
    };
    const phone = await device(server);
    await diaryEntrySave(phone.db, { ...ENTRY, day: "2026-11-28", wheals: 2, itch: 1 });
    expect(await phone.engine.sync()).toEqual({ status: "consent_required" });
    expect(await phone.engine.sync()).toEqual({ status: "consent_required" });
    expect(await phone.db.outbox.count()).toBe(1);
    expect(server.entries.size).toBe(0);
    consented = true;
    expect(await phone.engine.sync()).toMatchObject({ status: "ok", pushed: 1 });
    expect(await phone.db.outbox.count()).toBe(0);
    expect([...server.entries.values()].map((e) => [e.day, e.wheals, e.itch])).toEqual([["2026-11-28", 2, 1]]);
  });
});
