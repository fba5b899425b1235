import { describe, expect, it } from "vitest";
import { dayScore, dayScores } from "../src/scores";

// Vectors from shared/reference/clinical-scores.md §2.1–§2.2 and DESIGN.md §5, the same ones
// tests/patients/test_scores.py checks against patients/scores.py `daily_uas`.
describe("dayScore (daily UAS, display only)", () => {
  it("once daily: wheals + itch of the day's record (§2.1: 0–6)", () => {
    expect(dayScore([{ slot: "day", wheals: 2, itch: 3 }])).toBe(5);
    expect(dayScore([{ slot: "day", wheals: 0, itch: 0 }])).toBe(0);
    expect(dayScore([{ slot: "day", wheals: 3, itch: 3 }])).toBe(6);
  });

  it("twice daily: the mean of morning and evening (§2.2, ASSURE-CSU), not one half's sum", () => {
    expect(dayScore([{ slot: "am", wheals: 3, itch: 3 }, { slot: "pm", wheals: 1, itch: 0 }])).toBe(3.5);
    expect(dayScore([{ slot: "pm", wheals: 1, itch: 1 }, { slot: "am", wheals: 2, itch: 1 }])).toBe(2.5);
    expect(dayScore([{ slot: "am", wheals: 0, itch: 0 }, { slot: "pm", wheals: 0, itch: 1 }])).toBe(0.5);
  });

  it("twice daily with one half-day only: that half is the day's score (§2.2 design choice)", () => {
    expect(dayScore([{ slot: "pm", wheals: 1, itch: 2 }])).toBe(3);
    expect(dayScore([{ slot: "am", wheals: 3, itch: 2 }])).toBe(5);
  });

  it("nothing recorded is no score, not 0", () => {
    expect(dayScore([])).toBeNull();
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
