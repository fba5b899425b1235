// The one clinical rule the device applies itself, for display only: a day's UAS from the
// diary it holds (Today's "daily score", the History calendar). Weekly UAS7, its band, method
// and change always come from the server (GET /me/summary/, /me/scores/uas7/).
import type { Slot } from "./store/db";

export interface HalfDayScore {
  slot: Slot;
  wheals: number; // 0–3
  itch: number; // 0–3
}

/**
 * Daily UAS (0–6) = wheals (0–3) + itch (0–3) for one local date, as patients/scores.py
 * `daily_uas` decides it (clinical-scores.md §2.1–§2.2, DESIGN.md §5):
 * - once daily: the `day` record;
 * - twice daily (UAS7TD, ASSURE-CSU): the mean of the morning and evening scores; when only
 *   one half-day exists, that half is the day's score;
 * - nothing recorded: null (a day without an entry is not a 0).
 */
export function dayScore(records: readonly HalfDayScore[]): number | null {
  if (records.length === 0) return null;
  const whole = records.filter((r) => r.slot === "day");
  const chosen = whole.length > 0 ? whole.slice(-1) : records.filter((r) => r.slot === "am" || r.slot === "pm");
  if (chosen.length === 0) return null;
  const total = chosen.reduce((sum, r) => sum + r.wheals + r.itch, 0);
  return total / chosen.length;
}

/** The day scores of a list of entries (any order), by local date. */
export function dayScores(records: readonly (HalfDayScore & { day: string })[]): Map<string, number> {
  const byDay = new Map<string, HalfDayScore[]>();
  for (const record of records) byDay.set(record.day, [...(byDay.get(record.day) ?? []), record]);
  const out = new Map<string, number>();
  for (const [day, halves] of byDay) {
    const score = dayScore(halves);
    if (score !== null) out.set(day, score);
  }
  return out;
}
