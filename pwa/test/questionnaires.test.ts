import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { QuestionnaireResult } from "../src/api/types";
import { uctDue } from "../src/questionnaireDue";
import { missingQuestions, provisionalTotal, uctHistory } from "../src/screens/questionnaires/uct";
import { AppDB, type QuestionnaireRow } from "../src/store/db";
import { questionnaireSave } from "../src/store/questionnaires";
import { viewPut } from "../src/store/views";

async function freshDb(): Promise<AppDB> {
  const db = new AppDB(`uct-${Math.random()}`);
  await db.open();
  return db;
}

function result(over: Partial<QuestionnaireResult> = {}): QuestionnaireResult {
  return {
    id: "s-1",
    instrument: "uct",
    answers: { items: [3, 3, 3, 3] },
    score: 12,
    category: "well_controlled",
    period_end: "2026-11-01",
    recorded_at: "2026-11-01T18:00:00Z",
    ...over,
  };
}

function row(over: Partial<QuestionnaireRow> = {}): QuestionnaireRow {
  return { id: "d-1", instrument: "uct", answers: { items: [4, 4, 4, 4] }, score: null, period_end: "2026-11-30", server_version: 0, deleted: false, rejected: null, ...over };
}

describe("uctDue", () => {
  it("is due when no UCT was ever answered", async () => {
    expect(await uctDue(await freshDb(), "2026-11-30")).toEqual({ due: true, lastDate: null });
  });

  it("is not due through 27 days after the last UCT and due from day 28 (DESIGN.md §5: current = last 28 days)", async () => {
    const db = await freshDb();
    await questionnaireSave(db, { instrument: "uct", answers: { items: [1, 2, 3, 4] }, period_end: "2026-11-02" });
    expect(await uctDue(db, "2026-11-29")).toEqual({ due: false, lastDate: "2026-11-02" });
    expect(await uctDue(db, "2026-11-30")).toEqual({ due: true, lastDate: "2026-11-02" });
  });

  it("counts the server's kept list (a UCT answered on another device) and only the 4-week UCT", async () => {
    const db = await freshDb();
    await questionnaireSave(db, { instrument: "uct7", answers: { items: [1, 1, 1, 1] }, period_end: "2026-11-29" });
    expect((await uctDue(db, "2026-11-30")).due).toBe(true);
    await viewPut(db, "questionnaires", [result({ period_end: "2026-11-10" })]);
    expect(await uctDue(db, "2026-11-30")).toEqual({ due: false, lastDate: "2026-11-10" });
  });

  it("ignores deleted responses, also in the kept list, and dates after today", async () => {
    const db = await freshDb();
    await db.questionnaires.put(row({ id: "s-1", period_end: "2026-11-20", deleted: true }));
    await viewPut(db, "questionnaires", [result({ id: "s-1", period_end: "2026-11-20" })]);
    await db.questionnaires.put(row({ id: "d-2", period_end: "2026-12-05" }));
    expect(await uctDue(db, "2026-11-30")).toEqual({ due: true, lastDate: null });
  });
});

describe("the UCT form", () => {
  it("names the questions still unanswered", () => {
    expect(missingQuestions([null, 2, null, 4])).toEqual([1, 3]);
    expect(missingQuestions([0, 0, 0, 0])).toEqual([]);
  });

  it("sums the answers as the provisional total only when all four are there", () => {
    expect(provisionalTotal([4, 3, 3, 2])).toBe(12);
    expect(provisionalTotal([4, 3, null, 2])).toBeNull();
  });

  it("saves instrument uct with the four items and the local date, in one transaction with its mutation", async () => {
    const db = await freshDb();
    const saved = await questionnaireSave(db, { instrument: "uct", answers: { items: [4, 3, 3, 2] }, period_end: "2026-11-30" });
    expect(saved.score).toBeNull(); // the server scores it
    const [mutation] = await db.outbox.toArray();
    expect(mutation).toMatchObject({
      table: "questionnaire_response",
      id: saved.id,
      op: "upsert",
      fields: { instrument: "uct", answers: { items: [4, 3, 3, 2] }, period_end: "2026-11-30" },
    });
  });
});

describe("the UCT history", () => {
  it("shows unsent answers with the provisional total and no category, the server's with its score and category", () => {
    const rows = uctHistory([row()], [result()], new Set(["d-1"]));
    expect(rows).toEqual([
      { id: "d-1", date: "2026-11-30", score: null, category: null, provisional: 16, pending: true, rejected: null },
      { id: "s-1", date: "2026-11-01", score: 12, category: "well_controlled", provisional: null, pending: false, rejected: null },
    ]);
  });

  it("takes the server's score and category for the answers they were computed from", () => {
    const synced = row({ id: "s-1", answers: { items: [3, 3, 3, 3] }, period_end: "2026-11-01", server_version: 9 });
    expect(uctHistory([synced], [result()], new Set())[0]).toMatchObject({ score: 12, category: "well_controlled" });
    // Changed on this device since: the server's category is for other answers.
    const changed = { ...synced, answers: { items: [4, 4, 4, 4] } };
    expect(uctHistory([changed], [result()], new Set(["s-1"]))[0]).toMatchObject({ score: null, category: null, provisional: 16 });
  });

  it("leaves out deleted responses and other instruments", () => {
    const rows = uctHistory([row({ id: "s-1", deleted: true })], [result(), result({ id: "s-2", instrument: "uct7" })], new Set());
    expect(rows).toEqual([]);
  });
});
