import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { MedicationToday } from "../src/api/types";
import {
  addDays,
  changeTarget,
  currentPrescriptions,
  doseDay,
  dueToday,
  type Log,
  mergeLogs,
  nextInjection,
  type Rx,
} from "../src/screens/medications/logic";
import { AppDB, type DoseRow, type PrescriptionRow } from "../src/store/db";
import { doseLog } from "../src/store/doses";

const TODAY = "2026-11-30";

function rx(over: Partial<Rx> = {}): Rx {
  return {
    id: "rx-1",
    medication: "cetirizine-10-x2",
    name: "Cetirizine 10 mg twice daily (up-dosed ×2)",
    dose: "10 mg",
    kind: "n_per_day",
    value: 2,
    start: "2026-10-01",
    end: null,
    serverDueToday: null,
    ...over,
  };
}

let serial = 0;
function log(status: "taken" | "skipped", over: Partial<Log> = {}): Log {
  serial++;
  return {
    id: `log-${serial}`,
    prescription: "rx-1",
    date: TODAY,
    status,
    taken_at: status === "taken" ? `2026-11-30T0${serial % 10}:00:00Z` : null,
    pending: false,
    rejected: null,
    order: [Number.MAX_SAFE_INTEGER, serial, Number.MAX_SAFE_INTEGER, ""],
    ...over,
  };
}

function view(over: Partial<MedicationToday> = {}): MedicationToday {
  return {
    id: "rx-1",
    medication: "cetirizine-10-x2",
    name: "Cetirizine 10 mg twice daily (up-dosed ×2)",
    dose: "10 mg",
    frequency_kind: "n_per_day",
    frequency_value: 2,
    guideline_step: 2,
    start: "2026-10-01",
    end: null,
    due_today: 2,
    logged_today: [],
    ...over,
  };
}

function deviceRow(over: Partial<DoseRow> = {}): DoseRow {
  return { id: "d-1", prescription: "rx-1", date: TODAY, status: "taken", taken_at: "2026-11-30T08:00:00Z", server_version: 0, rejected: null, ...over };
}

describe("today's doses", () => {
  it("fills the day's doses in the order they were logged", () => {
    const day = doseDay([log("taken"), log("skipped")], 2);
    expect(day.slots.map((s) => s.log?.status)).toEqual(["taken", "skipped"]);
    expect([day.taken, day.skipped, day.open]).toEqual([1, 1, 0]);
  });

  it("leaves doses open until logged", () => {
    const day = doseDay([log("taken")], 2);
    expect([day.taken, day.skipped, day.open]).toEqual([1, 0, 1]);
    expect(day.slots[1]?.log).toBeNull();
  });

  it("takes a change of mind as a new log that replaces the latest dose of the other status", () => {
    const skipped = log("skipped");
    const later = log("taken");
    const day = doseDay([skipped, later], 1);
    expect(day.slots[0]?.log).toBe(later);
    expect(day.slots[0]?.replaced).toEqual([skipped]);
    expect([day.taken, day.skipped, day.open]).toEqual([1, 0, 0]);
    // …and back again: the latest log counts.
    const again = doseDay([skipped, later, log("skipped")], 1);
    expect(again.slots[0]?.log?.status).toBe("skipped");
  });

  it("offers a change on the dose the rule applies it to", () => {
    const first = log("taken");
    const second = log("taken");
    const day = doseDay([first, second], 2);
    expect(changeTarget(day.slots, "taken")?.log).toBe(second);
    const changed = doseDay([first, second, log("skipped")], 2);
    expect(changed.slots.map((s) => s.log?.status)).toEqual(["taken", "skipped"]);
  });

  it("keeps logs beyond the day's doses as extras and rejected logs apart", () => {
    const refused = log("taken", { rejected: { code: "prescription_inactive", detail: "Not active." } });
    const day = doseDay([log("taken"), log("taken"), refused], 1);
    expect(day.taken).toBe(1);
    expect(day.extra).toHaveLength(1);
    expect(day.rejected).toEqual([refused]);
  });

  it("combines the server's logged_today and the device's logs, one per id, the device's copy first", () => {
    const served = { id: "d-1", prescription: "rx-1", date: TODAY, status: "taken" as const, taken_at: "2026-11-30T08:00:00Z" };
    const other = { id: "s-2", prescription: "rx-1", date: TODAY, status: "skipped" as const, taken_at: null };
    const logs = mergeLogs(
      [deviceRow({ id: "d-1", server_version: 5 }), deviceRow({ id: "d-3", status: "skipped", taken_at: null })],
      [view({ logged_today: [served, other] })],
      new Map([["d-3", 9]]),
    );
    expect(logs.map((l) => [l.id, l.pending])).toEqual([
      ["d-1", false],
      ["s-2", false],
      ["d-3", true],
    ]);
  });

  it("orders synced logs by server version and unsent ones by outbox order after them", () => {
    const logs = mergeLogs(
      [
        deviceRow({ id: "b", status: "skipped", taken_at: null }),
        deviceRow({ id: "a", server_version: 12 }),
        deviceRow({ id: "c", status: "taken" }),
        deviceRow({ id: "d", server_version: 7, status: "skipped", taken_at: null }),
      ],
      [],
      new Map([
        ["b", 4],
        ["c", 3],
      ]),
    );
    expect(logs.map((l) => l.id)).toEqual(["d", "a", "c", "b"]);
  });
});

describe("prescriptions", () => {
  const pulled: PrescriptionRow = {
    id: "rx-2",
    medication: "omalizumab-300-q4w",
    dose: "300 mg",
    frequency_kind: "every_n_days",
    frequency_value: 28,
    guideline_step: 3,
    start: "2026-09-01",
    end: null,
    server_version: 4,
  };

  it("joins the pulled table and the server's view, names from the view", () => {
    const rxs = currentPrescriptions([pulled], [view(), view({ id: "rx-9", medication: "omalizumab-300-q4w", name: "Omalizumab 300 mg SC every 4 weeks" })], TODAY, true);
    expect(rxs.map((r) => [r.id, r.name])).toEqual([
      ["rx-2", "Omalizumab 300 mg SC every 4 weeks"],
      ["rx-1", "Cetirizine 10 mg twice daily (up-dosed ×2)"],
      ["rx-9", "Omalizumab 300 mg SC every 4 weeks"],
    ]);
    expect(rxs.find((r) => r.id === "rx-1")?.serverDueToday).toBe(2);
  });

  it("leaves out ended prescriptions and keeps those starting later", () => {
    const rxs = currentPrescriptions(
      [{ ...pulled, end: "2026-11-01" }, { ...pulled, id: "rx-3", start: "2026-12-05" }],
      [],
      TODAY,
      false,
    );
    expect(rxs.map((r) => r.id)).toEqual(["rx-3"]);
    expect(rxs[0]?.name).toBe("omalizumab-300-q4w"); // no view yet: the code until it is fetched
  });

  it("does not use the due count of a view fetched on another day", () => {
    expect(currentPrescriptions([], [view()], TODAY, false)[0]?.serverDueToday).toBeNull();
  });
});

describe("injections every n days", () => {
  const omalizumab = rx({ id: "rx-2", kind: "every_n_days", value: 28, start: "2026-09-01" });
  const taken = (date: string, over: Partial<Log> = {}) => log("taken", { prescription: "rx-2", date, ...over });

  it("is due 28 days after the last injection taken", () => {
    const logs = [taken("2026-10-05"), taken("2026-11-02")];
    expect(nextInjection(omalizumab, logs, TODAY)).toEqual({ date: "2026-11-30", days: 0, lastTaken: "2026-11-02" });
    expect(dueToday(omalizumab, logs, TODAY)).toBe(1);
  });

  it("shows days until the next one, and not due before", () => {
    const logs = [taken("2026-11-20")];
    expect(nextInjection(omalizumab, logs, TODAY)).toMatchObject({ date: "2026-12-18", days: 18 });
    expect(dueToday(omalizumab, logs, TODAY)).toBe(0);
  });

  it("shows an overdue injection as days past its date", () => {
    expect(nextInjection(omalizumab, [taken("2026-10-20")], TODAY)).toMatchObject({ date: "2026-11-17", days: -13 });
  });

  it("counts the latest log of a day (a skipped correction undoes a taken one) and never a rejected one", () => {
    const logs = [taken("2026-11-02"), taken("2026-11-20"), log("skipped", { prescription: "rx-2", date: "2026-11-20" }), taken("2026-11-25", { rejected: { code: "x", detail: "" } })];
    expect(nextInjection(omalizumab, logs, TODAY).lastTaken).toBe("2026-11-02");
  });

  it("is due today when none is on record (or on a later start), unless the server knows of one not pulled yet", () => {
    expect(nextInjection(omalizumab, [], TODAY)).toMatchObject({ date: TODAY, days: 0, lastTaken: null });
    expect(nextInjection({ ...omalizumab, start: "2026-12-03" }, [], TODAY)).toMatchObject({ date: "2026-12-03", days: 3 });
    const known = { ...omalizumab, serverDueToday: 0 };
    expect(nextInjection(known, [], TODAY)).toMatchObject({ date: null, days: null });
    expect(dueToday(known, [], TODAY)).toBe(0);
  });

  it("stays on today's card once logged today", () => {
    const logs = [taken(TODAY, { pending: true })];
    expect(dueToday({ ...omalizumab, serverDueToday: 0 }, logs, TODAY)).toBe(1);
    expect(nextInjection(omalizumab, logs, TODAY)).toMatchObject({ date: addDays(TODAY, 28), days: 28 });
  });
});

describe("logging a dose on the device", () => {
  it("stores the log and its mutation together; a change of mind is a new log", async () => {
    const db = new AppDB(`meds-${Math.random()}`);
    await db.open();
    const first = await doseLog(db, { prescription: "rx-1", date: TODAY, status: "taken", taken_at: "2026-11-30T08:00:00.000Z" });
    const second = await doseLog(db, { prescription: "rx-1", date: TODAY, status: "skipped", taken_at: "2026-11-30T08:01:00.000Z" });
    const outbox = await db.outbox.orderBy("mutation_id").toArray();
    expect(outbox.map((m) => [m.table, m.id, m.base_version])).toEqual([
      ["dose_log", first.id, null],
      ["dose_log", second.id, null],
    ]);
    expect(outbox[1]?.fields).toEqual({ prescription: "rx-1", date: TODAY, status: "skipped" });
    const logs = mergeLogs(await db.doses.toArray(), [], new Map(outbox.map((m) => [m.id, m.mutation_id])));
    const day = doseDay(logs, 1);
    expect(day.slots[0]?.log?.id).toBe(second.id);
    expect(day.slots[0]?.log?.pending).toBe(true);
  });
});
