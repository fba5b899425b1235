// The UCT as the screen handles it (plain functions, unit-tested in Node). Wording and scoring
// direction: reference/clinical-scores.md §3 — four items, five options each scored 0 (worst) to
// 4 (best), 4-week recall. The total is a plain sum (shown only as provisional until the server
// has scored it); the control category is always the server's.
import type { QuestionnaireResult } from "../../api/types";
import type { QuestionnaireRow, Refusal } from "../../store/db";

export const UCT_QUESTIONS = [1, 2, 3, 4] as const;
/** Option values in the order shown: 0 is the worst control, 4 the best. */
export const UCT_OPTIONS = [0, 1, 2, 3, 4] as const;

export type UctAnswers = (number | null)[];

/** Question numbers (1–4) without an answer. */
export function missingQuestions(answers: UctAnswers): number[] {
  return UCT_QUESTIONS.filter((q) => {
    const value = answers[q - 1];
    return value === null || value === undefined || !Number.isInteger(value) || value < 0 || value > 4;
  });
}

/** The plain sum of four answers (0–16), or null while any is missing. */
export function provisionalTotal(answers: UctAnswers | null | undefined): number | null {
  if (!answers || answers.length !== 4 || missingQuestions(answers).length > 0) return null;
  return answers.reduce<number>((sum, value) => sum + (value ?? 0), 0);
}

export type UctCategory = "complete_control" | "well_controlled" | "poorly_controlled";

export interface UctHistoryRow {
  id: string;
  date: string;
  /** The server's score; null until it has scored the answers this device holds. */
  score: number | null;
  /** The server's control category; null until known. */
  category: UctCategory | null;
  /** The sum of the answers, while the server's score is not known. */
  provisional: number | null;
  pending: boolean;
  rejected: Refusal | null;
}

function sameItems(a: QuestionnaireRow["answers"] | undefined, b: QuestionnaireResult["answers"] | undefined): boolean {
  return JSON.stringify(a?.items ?? null) === JSON.stringify(b?.items ?? null);
}

function isCategory(value: string | null | undefined): value is UctCategory {
  return value === "complete_control" || value === "well_controlled" || value === "poorly_controlled";
}

/**
 * Past UCTs, newest first: the device's responses (its own, also unsent, and pulled ones) and the
 * server's kept list, one per id. Unsent answers have no score yet; a server score and category
 * are shown only for the answers they were computed from.
 */
export function uctHistory(device: QuestionnaireRow[], server: QuestionnaireResult[], pending: Set<string>): UctHistoryRow[] {
  const rows = new Map<string, UctHistoryRow>();
  const deleted = new Set(device.filter((d) => d.deleted).map((d) => d.id));
  const fromServer = new Map(server.filter((s) => s.instrument === "uct").map((s) => [s.id, s]));
  for (const d of device) {
    if (d.deleted || d.instrument !== "uct" || !d.period_end) continue;
    const s = fromServer.get(d.id);
    const isPending = pending.has(d.id);
    const serverMatches = s !== undefined && sameItems(d.answers, s.answers);
    const score = isPending ? null : (d.score ?? (serverMatches ? s.score : null));
    const category = !isPending && serverMatches && s.score === score && isCategory(s.category) ? s.category : null;
    rows.set(d.id, {
      id: d.id,
      date: d.period_end,
      score,
      category,
      provisional: score === null ? provisionalTotal(d.answers.items ?? null) : null,
      pending: isPending,
      rejected: d.rejected ?? null,
    });
  }
  for (const s of fromServer.values()) {
    if (rows.has(s.id) || deleted.has(s.id)) continue;
    rows.set(s.id, {
      id: s.id,
      date: s.period_end,
      score: s.score,
      category: isCategory(s.category) ? s.category : null,
      provisional: null,
      pending: false,
      rejected: null,
    });
  }
  return [...rows.values()].sort((a, b) => b.date.localeCompare(a.date) || a.id.localeCompare(b.id));
}
