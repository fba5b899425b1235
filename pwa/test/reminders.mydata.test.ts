// My data's small rules: the export's file name, the time zones offered, the receipt's date.
import { describe, expect, it } from "vitest";
import { exportFileName, receiptDate, timeZones } from "../src/screens/mydata/logic";

describe("my data", () => {
  it("names the export after the local date", () => {
    expect(exportFileName("2026-11-30")).toBe("csu-tracker-export-2026-11-30.json");
  });

  it("offers the browser's zones, always with the saved and the device's zone, sorted", () => {
    expect(timeZones(["Europe/Berlin", "America/New_York"], "Europe/Kiev", undefined, "Europe/Berlin")).toEqual([
      "America/New_York",
      "Europe/Berlin",
      "Europe/Kiev",
    ]);
    expect(timeZones([], "UTC")).toEqual(["UTC"]);
  });

  it("shows the receipt's time in the patient's time zone and language", () => {
    expect(receiptDate("de", "2026-11-30T14:24:00Z", "Europe/Berlin")).toBe("30. November 2026 um 15:24");
    expect(receiptDate("en", "2026-11-30T23:30:00Z", "America/New_York")).toMatch(/^November 30, 2026 at 6:30\s?PM$/);
  });
});
