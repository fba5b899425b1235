// When the patient is due a UCT (issue 18: prompted every 4 weeks). DESIGN.md §5: the current
// UCT is one answered in the last 28 days; older results drive nothing. Only the 4-week UCT
// counts (the UCT7's recall is 7 days), as on the server's summary and the clinic's list.
import type { QuestionnaireResult } from "./api/types";
import type { AppDB } from "./store/db";
import { viewGet } from "./store/views";

/** Days a UCT stays current: one answered on day D is current through D + 27. */
export const UCT_CURRENT_DAYS = 28;

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/**
 * Whether a UCT is due on `today` (the patient's local date, YYYY-MM-DD), and the date of the last
 * one. It reads the device's responses (its own, also unsent, and those pulled) and the server's
 * list kept for offline reading, so a UCT answered on another device counts before it is pulled.
 * A response dated after `today` (a clock or time-zone change) is not counted.
 */
export async function uctDue(db: AppDB, today: string): Promise<{ due: boolean; lastDate: string | null }> {
  const dates: string[] = [];
  const deleted = new Set<string>();
  for (const row of await db.questionnaires.where("instrument").equals("uct").toArray()) {
    if (row.deleted) deleted.add(row.id);
    else if (row.period_end) dates.push(row.period_end);
  }
  const kept = await viewGet<QuestionnaireResult[]>(db, "questionnaires");
  for (const result of Array.isArray(kept?.value) ? kept.value : []) {
    if (result.instrument === "uct" && result.period_end && !deleted.has(result.id)) dates.push(result.period_end);
  }
  const lastDate = dates.filter((d) => d <= today).sort().pop() ?? null;
  return { due: lastDate === null || daysBetween(lastDate, today) >= UCT_CURRENT_DAYS, lastDate };
}
