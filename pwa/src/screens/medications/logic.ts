// What the Medications screen shows, as plain functions (unit-tested in Node): which
// prescriptions are current, today's doses from the server's view and the device's logs, and
// the next date of an injection given every n days. Nothing here is a clinical score: adherence
// (PDC) is the server's.
import type { MedicationToday } from "../../api/types";
import type { DoseRow, PrescriptionRow, Refusal } from "../../store/db";

export type Kind = "n_per_day" | "every_n_days" | "prn" | "other";

/** A current prescription as the screen shows it (from the server's view and/or the pulled table). */
export interface Rx {
  id: string;
  medication: string;
  /** The catalogue's name when the server's view has told us; otherwise the medication code. */
  name: string;
  dose: string;
  kind: Kind;
  value: number | null;
  start: string;
  end: string | null;
  /** The server's view of today's due doses (only when the view is of today). */
  serverDueToday: number | null;
}

/** One dose log as the screen sees it, wherever it came from. */
export interface Log {
  id: string;
  prescription: string;
  date: string;
  status: "taken" | "skipped";
  taken_at: string | null;
  /** Not yet acknowledged by the server (still in the outbox). */
  pending: boolean;
  rejected: Refusal | null;
  /** Sort key: the order the logs were made in (see `orderLogs`). */
  order: [number, number, number, string];
}

const LAST = Number.MAX_SAFE_INTEGER;

export function kindOf(frequencyKind: string): Kind {
  return frequencyKind === "n_per_day" || frequencyKind === "every_n_days" || frequencyKind === "prn" ? frequencyKind : "other";
}

export function activeOn(rx: { start: string; end: string | null }, day: string): boolean {
  return rx.start <= day && (rx.end === null || day <= rx.end);
}

/**
 * Current prescriptions: the pulled table (the clinic's copy on the device) and the server's
 * kept view, one row per id. The view gives the name; a prescription only the table knows
 * shows its medication code until the view is fetched again.
 */
export function currentPrescriptions(
  pulled: PrescriptionRow[],
  view: MedicationToday[],
  today: string,
  viewIsToday: boolean,
): Rx[] {
  const byId = new Map<string, Rx>();
  const names = new Map<string, string>();
  for (const m of view) names.set(m.medication, m.name);
  for (const m of view) {
    byId.set(m.id, {
      id: m.id,
      medication: m.medication,
      name: m.name,
      dose: m.dose,
      kind: kindOf(m.frequency_kind),
      value: m.frequency_value,
      start: m.start,
      end: m.end,
      serverDueToday: viewIsToday ? m.due_today : null,
    });
  }
  for (const p of pulled) {
    // The pulled row is the newer word on dates and schedule (a prescription changed since the view).
    const known = byId.get(p.id);
    byId.set(p.id, {
      id: p.id,
      medication: p.medication,
      name: known?.name ?? names.get(p.medication) ?? (p.medication_name || p.medication),
      dose: p.dose,
      kind: kindOf(p.frequency_kind),
      value: p.frequency_value,
      start: p.start,
      end: p.end,
      serverDueToday: known?.serverDueToday ?? null,
    });
  }
  return [...byId.values()]
    .filter((rx) => activeOn(rx, today) || rx.start > today)
    .sort((a, b) => a.start.localeCompare(b.start) || a.name.localeCompare(b.name));
}

/**
 * All logs known for the patient's prescriptions: the device's (its own and those pulled from
 * the server) and the server view's `logged_today`, one per id (the device's copy wins: it knows
 * what is still pending and what was rejected). Ordered as they were made: the server's order
 * (the view lists by creation; versions are in commit order), then this device's unsent logs in
 * outbox order.
 */
export function mergeLogs(device: DoseRow[], view: MedicationToday[], pendingMutation: Map<string, number>): Log[] {
  const viewIndex = new Map<string, number>();
  const viewRows = new Map<string, MedicationToday["logged_today"][number]>();
  let index = 0;
  for (const m of view) {
    for (const d of m.logged_today) {
      viewIndex.set(d.id, index++);
      viewRows.set(d.id, d);
    }
  }
  const out = new Map<string, Log>();
  for (const d of device) {
    const mutation = pendingMutation.get(d.id);
    out.set(d.id, {
      id: d.id,
      prescription: d.prescription,
      date: d.date,
      status: d.status,
      taken_at: d.taken_at,
      pending: mutation !== undefined,
      rejected: d.rejected ?? null,
      order: [viewIndex.get(d.id) ?? LAST, d.server_version > 0 ? d.server_version : LAST, mutation ?? LAST, d.taken_at ?? ""],
    });
  }
  for (const [id, d] of viewRows) {
    if (out.has(id)) continue;
    out.set(id, {
      id,
      prescription: d.prescription,
      date: d.date,
      status: d.status,
      taken_at: d.taken_at,
      pending: false,
      rejected: null,
      order: [viewIndex.get(id) ?? LAST, LAST, LAST, d.taken_at ?? ""],
    });
  }
  return orderLogs([...out.values()]);
}

export function orderLogs(logs: Log[]): Log[] {
  return [...logs].sort((a, b) => {
    for (let i = 0; i < 3; i++) {
      const x = a.order[i] as number;
      const y = b.order[i] as number;
      if (x !== y) return x - y;
    }
    return a.order[3].localeCompare(b.order[3]) || a.id.localeCompare(b.id);
  });
}

/** A dose of the day: resolved by a log, or still open. */
export interface DoseSlot {
  log: Log | null;
  /** The logs this one replaced (a change of mind), oldest first. */
  replaced: Log[];
}

export interface DoseDay {
  slots: DoseSlot[];
  taken: number;
  skipped: number;
  open: number;
  /** Logs beyond the day's doses with nothing to change (e.g. from two devices). */
  extra: Log[];
  /** Logs the server refused: not counted, shown with the reason. */
  rejected: Log[];
}

/**
 * The day's doses of one prescription from its logs in the order they were made. Dose logs are
 * insert-only, so a change of mind is a new log: a log resolves the first open dose; when no dose
 * is open it replaces the latest dose logged with the other status (taken ↔ skipped); otherwise
 * it is an extra. The screen offers a change only where that rule puts it, so what the patient
 * taps is what this shows, on every device.
 */
export function doseDay(logs: Log[], due: number): DoseDay {
  const slots: DoseSlot[] = Array.from({ length: Math.max(0, due) }, () => ({ log: null, replaced: [] }));
  const extra: Log[] = [];
  const rejected: Log[] = [];
  for (const log of orderLogs(logs)) {
    if (log.rejected) {
      rejected.push(log);
      continue;
    }
    const open = slots.find((s) => s.log === null);
    if (open) {
      open.log = log;
      continue;
    }
    const target = changeTarget(slots, log.status === "taken" ? "skipped" : "taken");
    if (target) {
      if (target.log) target.replaced.push(target.log);
      target.log = log;
    } else {
      extra.push(log);
    }
  }
  const taken = slots.filter((s) => s.log?.status === "taken").length;
  const skipped = slots.filter((s) => s.log?.status === "skipped").length;
  return { slots, taken, skipped, open: slots.length - taken - skipped, extra, rejected };
}

/** The dose a change to the other status applies to: the latest logged with `status`. */
export function changeTarget(slots: DoseSlot[], status: "taken" | "skipped"): DoseSlot | undefined {
  let best: DoseSlot | undefined;
  for (const slot of slots) {
    if (slot.log?.status !== status) continue;
    if (!best || compareLogs(best.log as Log, slot.log) < 0) best = slot;
  }
  return best;
}

function compareLogs(a: Log, b: Log): number {
  const sorted = orderLogs([a, b]);
  return sorted[0] === a ? -1 : 1;
}

/** The day's effective status of an injection (the latest log of that date counts). */
function takenDates(logs: Log[], prescription: string, before?: string): string[] {
  const latest = new Map<string, Log>();
  for (const log of orderLogs(logs)) {
    if (log.prescription !== prescription || log.rejected) continue;
    if (before !== undefined && log.date >= before) continue;
    latest.set(log.date, log);
  }
  return [...latest.values()].filter((l) => l.status === "taken").map((l) => l.date).sort();
}

export function addDays(day: string, days: number): string {
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(Date.UTC(y ?? 2000, (m ?? 1) - 1, (d ?? 1) + days));
  return date.toISOString().slice(0, 10);
}

export function daysBetween(from: string, to: string): number {
  const ms = Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`);
  return Math.round(ms / 86_400_000);
}

/** How many doses of a prescription are due today (n a day; an injection when its date has come). */
export function dueToday(rx: Rx, logs: Log[], today: string): number {
  if (!activeOn(rx, today)) return 0;
  if (rx.kind === "n_per_day") return rx.value ?? 1;
  if (rx.kind !== "every_n_days") return 0;
  const loggedToday = logs.some((l) => l.prescription === rx.id && l.date === today && !l.rejected);
  if (loggedToday) return 1;
  const last = takenDates(logs, rx.id, today).pop();
  const deviceDue = last === undefined || daysBetween(last, today) >= (rx.value ?? 1);
  // The server has every device's logs: when it says not due, an injection is on record that
  // this device has not pulled yet (this device's unsent logs are already in `last`).
  return deviceDue && rx.serverDueToday !== 0 ? 1 : 0;
}

export interface NextInjection {
  /** The next date, or null when unknown (the server knows of an injection this device has not pulled). */
  date: string | null;
  /** Days from today (negative: overdue). */
  days: number | null;
  lastTaken: string | null;
}

/**
 * The next injection of an every-n-days prescription: the last injection taken + n days (from the
 * device's logs, its own and the pulled ones, and the server view's logs of today), not before the
 * prescription starts. With no injection on record it is due today (or on a later start).
 */
export function nextInjection(rx: Rx, logs: Log[], today: string): NextInjection {
  const n = rx.value ?? 1;
  const last = takenDates(logs, rx.id).pop() ?? null;
  // None on record here: due from the start, but never shown as overdue since then (the
  // device may not have pulled an injection given before the app was installed).
  let date: string | null = last !== null ? addDays(last, n) : rx.start > today ? rx.start : today;
  if (date < rx.start) date = rx.start;
  // The server says not due today although this device would: it has an injection on record
  // that this device has not pulled yet, so the date is not known here.
  if (rx.serverDueToday === 0 && date <= today) date = null;
  if (date !== null && rx.end !== null && date > rx.end) date = null;
  return { date, days: date === null ? null : daysBetween(today, date), lastTaken: last };
}

/** The local date of an ISO time in the patient's time zone. */
export function localDateOf(iso: string, timeZone: string | undefined): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timeZone || undefined,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(new Date(iso));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}
