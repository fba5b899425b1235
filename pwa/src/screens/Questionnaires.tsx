import { reasonText } from "./errors";
import { useEffect, useRef, useState } from "preact/hooks";
import type { QuestionnaireResult } from "../api/types";
import { localToday } from "../dates";
import { formatDay, type Key } from "../i18n";
import { UCT_CURRENT_DAYS, uctDue } from "../questionnaireDue";
import type { QuestionnaireRow } from "../store/db";
import { metaGet } from "../store/meta";
import { questionnaireSave, questionnairesOf } from "../store/questionnaires";
import { viewRefresh } from "../store/views";
import { useApp } from "./context";
import { ageText } from "./medications/age";
import { addDays } from "./medications/logic";
import { missingQuestions, provisionalTotal, UCT_OPTIONS, UCT_QUESTIONS, type UctAnswers, uctHistory, type UctHistoryRow } from "./questionnaires/uct";
import "./Questionnaires.css";

const EMPTY: UctAnswers = [null, null, null, null];

interface Loaded {
  today: string;
  due: { due: boolean; lastDate: string | null };
  history: UctHistoryRow[];
  /** Today's response on this device (answering again changes it). */
  todays: QuestionnaireRow | undefined;
  todaysPending: boolean;
  keptAt: string | null;
}

/** The UCT every 4 weeks: the four questions, the due state, and past results from the server. */
export function Questionnaires({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [data, setData] = useState<Loaded | null>(null);
  const [answers, setAnswers] = useState<UctAnswers>(EMPTY);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  // Unsaved answers are never replaced by a re-read (a sync finishing mid-answer, another tab).
  const dirty = useRef(false);
  const loads = useRef(0);

  async function readLocal(server: QuestionnaireResult[], keptAt: string | null): Promise<Loaded> {
    const db = session.db;
    const zone = await metaGet<string>(db, "timezone");
    const today = localToday(zone);
    const device = await db.questionnaires.where("instrument").equals("uct").toArray();
    const pending = new Set((await db.outbox.toArray()).filter((m) => m.table === "questionnaire_response").map((m) => m.id));
    const todays = (await questionnairesOf(db, "uct")).find((r) => r.period_end === today);
    return {
      today,
      due: await uctDue(db, today),
      history: uctHistory(device, server, pending),
      todays,
      todaysPending: todays ? pending.has(todays.id) : false,
      keptAt,
    };
  }

  async function load() {
    const serial = ++loads.current;
    let latest: { value: QuestionnaireResult[]; fetchedAt: string; fresh: boolean } | null = null;
    let shown: Promise<void> = Promise.resolve();
    const show = (kept: boolean) => {
      const current = latest;
      shown = shown.then(async () => {
        const loaded = await readLocal(current?.value ?? [], kept && current ? current.fetchedAt : null);
        if (serial !== loads.current) return;
        setData(loaded);
        if (!dirty.current) setAnswers(loaded.todays?.answers.items ? [...loaded.todays.answers.items] : EMPTY);
      });
    };
    try {
      await viewRefresh<QuestionnaireResult[]>(session.db, "questionnaires", () => session.api.questionnaires(), (value, fetchedAt, fresh) => {
        latest = { value: Array.isArray(value) ? value : [], fetchedAt, fresh };
        show(false);
      });
      if (latest !== null && !(latest as { fresh: boolean }).fresh) show(true);
    } catch {
      show(false); // never fetched and offline: the device's own responses
    }
    await shown;
  }

  useEffect(() => {
    void load();
  }, [session, revision]);

  function choose(question: number, value: number) {
    dirty.current = true;
    const next = [...answers];
    next[question - 1] = value;
    setAnswers(next);
    if (error && missingQuestions(next).length === 0) setError("");
  }

  async function save(event: Event) {
    event.preventDefault();
    if (!data || busy) return;
    const missing = missingQuestions(answers);
    if (missing.length > 0) {
      const list = missing.length === 1 ? String(missing[0]) : `${missing.slice(0, -1).join(", ")} ${t("uct.and")} ${missing[missing.length - 1]}`;
      setError(t(missing.length === 1 ? "uct.missingOne" : "uct.missingMany", { questions: list }));
      document.getElementById(`uct-q${missing[0]}-0`)?.focus();
      return;
    }
    setBusy(true);
    try {
      await questionnaireSave(session.db, {
        id: data.todays?.id,
        instrument: "uct",
        answers: { items: answers.map((a) => a ?? 0) },
        period_end: data.today,
      });
      dirty.current = false;
      setError("");
      setData(await readLocal(((await session.db.views.get("questionnaires"))?.value as QuestionnaireResult[] | undefined) ?? [], data.keptAt));
      session.changed();
    } catch (failure) {
      setError(t("uct.unsaved", { detail: failure instanceof Error ? failure.message : String(failure) }));
    } finally {
      setBusy(false);
    }
  }

  if (data === null) {
    return (
      <main id="main" class="uct">
        <h1>{t("questionnaires.title")}</h1>
      </main>
    );
  }

  const todays = data.todays;
  const shownRow = todays;
  const total = provisionalTotal(shownRow?.answers.items ?? null);
  const historyRow = shownRow ? data.history.find((h) => h.id === shownRow.id) : undefined;
  let status = "";
  if (shownRow?.rejected) status = t("uct.rejected", { detail: reasonText(shownRow.rejected, t) });
  else if (shownRow && data.todaysPending) status = t("uct.pending");
  else if (shownRow) status = t("uct.synced");

  return (
    <main id="main" class="uct">
      <h1>{t("questionnaires.title")}</h1>
      <DueNotice due={data.due} />
      {data.keptAt && <p class="notice">{t("uct.kept", { age: ageText(locale, data.keptAt) })}</p>}

      <form class="card" onSubmit={save} noValidate>
        <h2>{t("uct.title")}</h2>
        <p>{t("uct.intro")}</p>
        {todays && <p class="muted">{t("uct.editing")}</p>}
        {UCT_QUESTIONS.map((q) => (
          <fieldset key={q} class={`question${error && answers[q - 1] === null ? " missing" : ""}`} aria-invalid={error && answers[q - 1] === null ? "true" : undefined}>
            <legend>{t(`uct.q${q}` as Key)}</legend>
            {error && answers[q - 1] === null && <p class="error missing-note">{t("uct.answerThis")}</p>}
            {UCT_OPTIONS.map((value) => (
              <label class="option" key={value}>
                <input
                  type="radio"
                  id={`uct-q${q}-${value}`}
                  name={`uct-q${q}`}
                  value={value}
                  checked={answers[q - 1] === value}
                  onChange={() => choose(q, value)}
                />
                <span>{t(`uct.q${q}.${value}` as Key)}</span>
              </label>
            ))}
          </fieldset>
        ))}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {t(todays ? "uct.update" : "uct.save")}
        </button>
        <div class="status" role="status" aria-live="polite">
          {shownRow && historyRow?.score !== null && historyRow?.score !== undefined ? (
            <p class="score">
              {t("uct.score", { score: historyRow.score })}
              {historyRow.category ? ` · ${t(`uct.category.${historyRow.category}`)}` : ` · ${t("uct.categoryAfterSync")}`}
            </p>
          ) : (
            shownRow && total !== null && <p class="score">{t("uct.provisional", { total })}</p>
          )}
          {status && <p class={shownRow?.rejected ? "error" : undefined}>{status}</p>}
        </div>
      </form>

      <section aria-labelledby="uct-history">
        <h2 id="uct-history">{t("uct.history")}</h2>
        {data.history.length === 0 ? (
          <p>{t("uct.historyNone")}</p>
        ) : (
          <ul class="uct-history">
            {data.history.map((row) => (
              <li key={row.id}>
                <strong class="when">{formatDay(locale, row.date)}</strong>
                <span>
                  {t("uct.col.score")}:{" "}
                  {row.score !== null ? (
                    `${row.score} / 16`
                  ) : (
                    <>
                      {row.provisional !== null && <span>{t("uct.provisionalShort", { total: row.provisional })} · </span>}
                      <em>{t("uct.scoreAfterSync")}</em>
                    </>
                  )}
                  {row.pending && <span class="pending"> ({t("uct.notSent")})</span>}
                </span>
                <span>
                  {t("uct.col.category")}: {row.category ? t(`uct.category.${row.category}`) : <em>{t("uct.categoryAfterSync")}</em>}
                </span>
                {row.rejected && <span class="error">{t("uct.rejected", { detail: reasonText(row.rejected, t) })}</span>}
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}

function DueNotice({ due }: { due: { due: boolean; lastDate: string | null } }) {
  const { t, locale } = useApp();
  if (due.due) {
    return (
      <div class="due-notice" role="note">
        <p>
          <strong>
            <span aria-hidden="true">● </span>
            {t("uct.due")}
          </strong>
        </p>
        <p>{due.lastDate ? t("uct.dueSince", { date: formatDay(locale, due.lastDate) }) : t("uct.dueNever")}</p>
      </div>
    );
  }
  return (
    <p class="up-to-date">
      {t("uct.notDue", {
        date: formatDay(locale, due.lastDate ?? ""),
        next: formatDay(locale, addDays(due.lastDate ?? "", UCT_CURRENT_DAYS)),
      })}
    </p>
  );
}
