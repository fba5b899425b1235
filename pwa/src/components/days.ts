// Calendar arithmetic on local dates (YYYY-MM-DD strings, no time zone of their own), the
// clinic's late-entry window, and how another screen asks Today to open a given day.
import type { AppDB } from "../store/db";
import { metaGet } from "../store/meta";

/** The server's default window (tenants.Clinic.diary_late_entry_days) until the profile says. */
export const DEFAULT_LATE_DAYS = 7;

function toUtc(day: string): Date {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y ?? 2000, (m ?? 1) - 1, d ?? 1));
}

export function addDays(day: string, n: number): string {
  const date = toUtc(day);
  date.setUTCDate(date.getUTCDate() + n);
  return date.toISOString().slice(0, 10);
}

/** ISO weekday: 1 = Monday … 7 = Sunday. */
export function isoWeekday(day: string): number {
  return ((toUtc(day).getUTCDay() + 6) % 7) + 1;
}

export function isDay(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && toUtc(value).toISOString().slice(0, 10) === value;
}

/** The days a patient may still record or change: `lateDays` back up to today, never later. */
export interface LateWindow {
  min: string;
  max: string;
}

export function lateWindow(today: string, lateDays: number): LateWindow {
  return { min: addDays(today, -Math.max(0, lateDays)), max: today };
}

export function inWindow(window: LateWindow, day: string): boolean {
  return isDay(day) && day >= window.min && day <= window.max;
}

export async function lateDaysOf(db: AppDB): Promise<number> {
  const value = await metaGet<number>(db, "late_entry_days");
  return typeof value === "number" && value >= 0 ? value : DEFAULT_LATE_DAYS;
}

// --- Opening a given day on Today (History's calendar) ------------------------------------------

const REQUESTED = "csu-today-day";

/** Ask Today to open `day` next time it mounts (kept for this tab only, across a reload). */
export function requestDay(day: string): void {
  try {
    sessionStorage.setItem(REQUESTED, day);
  } catch {
    // Storage refused (private mode): Today opens today.
  }
}

/** The day another screen asked for, once. */
export function takeRequestedDay(): string | null {
  try {
    const day = sessionStorage.getItem(REQUESTED);
    sessionStorage.removeItem(REQUESTED);
    return day !== null && isDay(day) ? day : null;
  } catch {
    return null;
  }
}
