import { describe, expect, it } from "vitest";
import { dayScore, dayScores } from "../src/scores";

import vectors from "./fixtures/daily-uas.json";

// One set of vectors (clinical-scores.md §2.1–§2.2, DESIGN.md §5) for both rules:
// tests/patients/test_app_rule_vectors.py checks the same file against patients/scores.py
// `daily_uas`, so the device's display and the server's score cannot drift apart.
describe("dayScore (daily UAS, display only)", () => {
  it.each(vectors)("$why", ({ records, uas }) => {
    const halves = records.map(([slot, wheals, itch]) => ({ slot: slot as "day" | "am" | "pm", wheals: Number(wheals), itch: Number(itch) }));
    expect(dayScore(halves)).toBe(uas);
  });

  it("groups a diary by local date", () => {
    const scores = dayScores([
      { day: "2026-11-02", slot: "am", wheals: 2, itch: 2 },
      { day: "2026-11-01", slot: "day", wheals: 1, itch: 0 },
      { day: "2026-11-02", slot: "pm", wheals: 1, itch: 0 },
    ]);
    expect([...scores.entries()].sort()).toEqual([
      ["2026-11-01", 1],
      ["2026-11-02", 2.5],
    ]);
  });
});
