// The Reminders screen's rules as plain functions (unit-tested in Node): checking a reminder and
// quiet hours before they are saved (each message names its field), weekday names, and which
// prescriptions a medication reminder can name.
import type { MedicationToday } from "../../api/types";
import { dateLocale, type Locale } from "../../i18n";
import type { PrescriptionRow, ReminderRow } from "../../store/db";
import type { ReminderInput } from "../../store/reminders";

export const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7] as const; // ISO: 1 = Monday … 7 = Sunday

export type Kind = ReminderRow["kind"];

export interface ReminderDraft {
  local_time: string; // HH:MM, "" when not chosen
  days_of_week: number[];
  kind: Kind;
  prescription: string | null;
  enabled: boolean;
}

export type ReminderField = "local_time" | "days_of_week" | "prescription";

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;

/** The first problem of a draft, by field (null: it can be saved). */
export function reminderProblem(draft: ReminderDraft, prescriptionIds: readonly string[]): ReminderField | null {
  if (!TIME.test(draft.local_time)) return "local_time";
  if (draft.days_of_week.filter((d) => d >= 1 && d <= 7).length === 0) return "days_of_week";
  if (draft.kind === "medication" && (!draft.prescription || !prescriptionIds.includes(draft.prescription))) {
    return "prescription";
  }
  return null;
}

/** What reminderSave takes: only a medication reminder names a prescription (the server's rule). */
export function reminderInput(draft: ReminderDraft): ReminderInput {
  return {
    kind: draft.kind,
    local_time: draft.local_time,
    days_of_week: [...new Set(draft.days_of_week)].sort((a, b) => a - b),
    prescription: draft.kind === "medication" ? draft.prescription : null,
    enabled: draft.enabled,
  };
}

export type QuietProblem = "both" | "same" | null;

/** Quiet hours are both set or both empty, and not the same time. */
export function quietProblem(start: string, end: string): QuietProblem {
  if (Boolean(start) !== Boolean(end)) return "both";
  if (start && (!TIME.test(start) || !TIME.test(end))) return "both";
  if (start && start === end) return "same";
  return null;
}

/** ISO weekday names in the patient's language (2024-01-01 was a Monday). */
export function weekdayName(locale: string, day: number, style: "long" | "short" = "long"): string {
  const date = new Date(Date.UTC(2024, 0, day));
  return new Intl.DateTimeFormat(dateLocale(locale as Locale), { weekday: style, timeZone: "UTC" }).format(date);
}

/** "Mon, Wed, Fri"; null for every day (the caller says "Every day"). */
export function daysText(locale: string, days: readonly number[]): string | null {
  const sorted = [...new Set(days)].sort((a, b) => a - b);
  if (sorted.length === 7) return null;
  return sorted.map((d) => weekdayName(locale, d, "short")).join(", ");
}

/** The device's own variant of the app's language (en-GB: 24-hour clock), else the language. */
export function formatLocale(locale: string, preferred: readonly string[] = typeof navigator === "undefined" ? [] : navigator.languages): string {
  return preferred.find((tag) => tag.toLowerCase().split("-")[0] === locale) ?? locale;
}

/** A wall-clock time in the patient's language (14:05 / 2:05 PM), from HH:MM. */
export function timeText(locale: string, hhmm: string, preferred?: readonly string[]): string {
  const [h, m] = hhmm.split(":").map(Number);
  const date = new Date(Date.UTC(2024, 0, 1, h ?? 0, m ?? 0));
  const tag = formatLocale(locale, preferred);
  const cycle = new Intl.DateTimeFormat(tag, { hour: "numeric" }).resolvedOptions().hourCycle;
  const hour = cycle === "h23" || cycle === "h24" ? "2-digit" : "numeric"; // 07:15, but 7:15 AM
  return new Intl.DateTimeFormat(tag, { hour, minute: "2-digit", timeZone: "UTC" }).format(date);
}

export interface PrescriptionOption {
  id: string;
  label: string;
}

/** Prescriptions a reminder can name: not ended before today; named from the server's view. */
export function prescriptionOptions(
  rows: readonly PrescriptionRow[],
  view: readonly MedicationToday[] | undefined,
  today: string,
): PrescriptionOption[] {
  const names = new Map((view ?? []).map((m) => [m.id, m.name]));
  return rows
    .filter((rx) => rx.end === null || rx.end >= today)
    .map((rx) => ({ id: rx.id, label: [names.get(rx.id) ?? rx.medication, rx.dose].filter(Boolean).join(" – ") }))
    .sort((a, b) => a.label.localeCompare(b.label));
}

/** Whether a local HH:MM falls in quiet hours [start, end), which may wrap midnight (22:00–07:00);
 * the same rule as patients/schedule.py `in_quiet_hours` (a reminder then is not sent). */
export function inQuietHours(time: string, start: string | null, end: string | null): boolean {
  const at = time.slice(0, 5);
  if (!start || !end || start.slice(0, 5) === end.slice(0, 5)) return false;
  const [from, until] = [start.slice(0, 5), end.slice(0, 5)];
  return from < until ? from <= at && at < until : at >= from || at < until;
}
