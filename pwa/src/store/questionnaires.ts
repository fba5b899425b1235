// Questionnaire responses (UCT; AAS comes with the diary's angioedema answer). Editable:
// a re-save sends the new answers with the version it was based on; the server scores.
import type { AppDB, QuestionnaireRow } from "./db";
import { enqueue, neverAccepted, same } from "./outbox";

export interface QuestionnaireInput {
  /** Set to change an existing response; omitted for a new one. */
  id?: string;
  instrument: QuestionnaireRow["instrument"];
  answers: QuestionnaireRow["answers"];
  period_end: string;
}

export async function questionnaireSave(db: AppDB, input: QuestionnaireInput): Promise<QuestionnaireRow> {
  return db.transaction("rw", db.questionnaires, db.outbox, db.meta, async () => {
    // A deleted response is not brought back (the server's delete wins): saving records a new one.
    const found = input.id ? await db.questionnaires.get(input.id) : undefined;
    const existing = found?.deleted ? undefined : found;
    const row: QuestionnaireRow = {
      id: existing?.id ?? crypto.randomUUID(),
      // The instrument of a recorded response never changes (the server refuses it).
      instrument: existing?.instrument ?? input.instrument,
      answers: input.answers,
      score: existing && same(existing.answers, input.answers) ? existing.score : null,
      period_end: input.period_end,
      server_version: existing?.server_version ?? 0,
      deleted: false,
      rejected: null,
    };
    // A response whose recording the server refused is sent whole again, as a new one.
    if (existing === undefined || (await neverAccepted(db, "questionnaire_response", existing))) {
      await enqueue(db, "questionnaire_response", row.id, "upsert", null, {
        instrument: row.instrument,
        answers: row.answers,
        period_end: row.period_end,
      });
    } else {
      const fields: Record<string, unknown> = {};
      if (!same(existing.answers, row.answers)) fields["answers"] = row.answers;
      if (existing.period_end !== row.period_end) fields["period_end"] = row.period_end;
      if (Object.keys(fields).length === 0) return existing;
      await enqueue(db, "questionnaire_response", row.id, "upsert", existing.server_version, fields);
    }
    await db.questionnaires.put(row);
    return row;
  });
}

export async function questionnaireDelete(db: AppDB, id: string): Promise<void> {
  await db.transaction("rw", db.questionnaires, db.outbox, db.meta, async () => {
    const existing = await db.questionnaires.get(id);
    if (existing === undefined || existing.deleted) return;
    await db.questionnaires.put({ ...existing, deleted: true });
    await enqueue(db, "questionnaire_response", id, "delete", existing.server_version, {});
  });
}

/** Live responses of an instrument, newest period first. */
export async function questionnairesOf(db: AppDB, instrument: QuestionnaireRow["instrument"]): Promise<QuestionnaireRow[]> {
  const rows = await db.questionnaires.where("instrument").equals(instrument).toArray();
  return rows.filter((r) => !r.deleted).sort((a, b) => (b.period_end ?? "").localeCompare(a.period_end ?? ""));
}
