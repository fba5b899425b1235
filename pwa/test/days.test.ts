import { describe, expect, it } from "vitest";
import { addDays, inWindow, isDay, isoWeekday, lateWindow } from "../src/components/days";

describe("local-date arithmetic and the late-entry window", () => {
  it("adds days across months, years and leap days", () => {
    expect(addDays("2026-11-30", 1)).toBe("2026-12-01");
    expect(addDays("2027-01-01", -1)).toBe("2026-12-31");
    expect(addDays("2028-03-01", -1)).toBe("2028-02-29");
    expect(addDays("2026-11-30", -27)).toBe("2026-11-03");
  });

  it("numbers weekdays Monday 1 … Sunday 7", () => {
    expect(isoWeekday("2026-11-30")).toBe(1); // a Monday
    expect(isoWeekday("2026-11-29")).toBe(7);
  });

  it("accepts today back to `lateDays` days ago, never a future or impossible date", () => {
    const span = lateWindow("2026-11-30", 7);
    expect(span).toEqual({ min: "2026-11-23", max: "2026-11-30" });
    expect(inWindow(span, "2026-11-23")).toBe(true);
    expect(inWindow(span, "2026-11-22")).toBe(false);
    expect(inWindow(span, "2026-12-01")).toBe(false);
    expect(inWindow(span, "2026-11-31")).toBe(false);
    expect(isDay("2026-02-30")).toBe(false);
    expect(lateWindow("2026-11-30", 0)).toEqual({ min: "2026-11-30", max: "2026-11-30" });
  });
});
