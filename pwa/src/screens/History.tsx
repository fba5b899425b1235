import { useEffect, useState } from "preact/hooks";
import type { Summary, Uas7Week } from "../api/types";
import { addDays, DEFAULT_LATE_DAYS, lateDaysOf, requestDay } from "../components/days";
import { localToday } from "../dates";
import { formatDay, type Key } from "../i18n";
import { dayScores } from "../scores";
import { diaryEntriesBetween } from "../store/diary";
import { metaGet } from "../store/meta";
import { viewRefresh } from "../store/views";
import { useApp } from "./context";
import { Calendar, CALENDAR_DAYS } from "./history/Calendar";
import { bandKey, Uas7Chart } from "./history/Uas7Chart";
import "./History.css";

const CHART_WEEKS = 12;

interface Kept<T> {
  value: T;
  fetchedAt: string;
  fresh: boolean;
}

/** History: four weeks of daily scores from the device, and the server's weekly UAS7. */
export function History({ revision }: { revision: number }) {
  const { session, t, locale, go } = useApp();
  const [today, setToday] = useState(() => localToday(undefined));
  const [lateDays, setLateDays] = useState(DEFAULT_LATE_DAYS);
  const [scores, setScores] = useState<Map<string, number>>(new Map());
  const [unsent, setUnsent] = useState(0);
  const [summary, setSummary] = useState<Kept<Summary> | null>(null);
  const [weeks, setWeeks] = useState<Kept<Uas7Week[]> | null>(null);
  const [loading, setLoading] = useState(true);

  // The device's diary (every revision: a save here or in another tab, a sync).
  useEffect(() => {
    void (async () => {
      const zone = await metaGet<string>(session.db, "timezone");
      const day = localToday(zone);
      setToday(day);
      setLateDays(await lateDaysOf(session.db));
      setScores(dayScores(await diaryEntriesBetween(session.db, addDays(day, -(CALENDAR_DAYS - 1)), day)));
      setUnsent(await session.db.outbox.filter((m) => m.table === "diary_entry").count());
    })();
  }, [session, revision]);

  // The server's figures: the kept copies at once, then fresh ones when the server answers.
  useEffect(() => {
    let live = true;
    void (async () => {
      let end: string | undefined;
      try {
        await viewRefresh<Summary>(session.db, "summary", () => session.api.summary(), (value, fetchedAt, fresh) => {
          end = value.uas7.end;
          if (live) setSummary({ value, fetchedAt, fresh });
        });
        // The chart ends with the summary's current week, so its last point is the same figure.
        await viewRefresh<Uas7Week[]>(
          session.db,
          "uas7",
          () => session.api.uas7Weeks(CHART_WEEKS, end),
          (value, fetchedAt, fresh) => {
            if (live) setWeeks({ value, fetchedAt, fresh });
          },
        );
      } catch {
        // Offline and nothing kept: the sections say the figures need a connection.
      } finally {
        if (live) setLoading(false);
      }
    })();
    return () => {
      live = false;
    };
  }, [session, revision]);

  function open(day: string) {
    requestDay(day);
    go("today");
  }

  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const time = (iso: string) =>
    new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
  const stale = !loading && summary !== null && !summary.fresh;

  return (
    <main id="main" class="history">
      <h1>{t("history.title")}</h1>
      <section class="history-section current" aria-labelledby="current-title">
        <h2 id="current-title">{t("history.current.title")}</h2>
        {summary ? <Current summary={summary.value} number={number} /> : <p>{loading ? t("history.loading") : t("history.needsConnection")}</p>}
        <div role="status" aria-live="polite" class="notes">
          {stale && summary && <p class="kept">{t("history.kept", { time: time(summary.fetchedAt) })}</p>}
          {unsent > 0 && <p class="kept">{t(new Intl.PluralRules(locale).select(unsent) === "one" ? "history.unsent.one" : "history.unsent.other", { count: unsent })}</p>}
        </div>
      </section>
      <Calendar today={today} scores={scores} lateDays={lateDays} onOpen={open} />
      {weeks && weeks.value.length > 0 ? (
        <Uas7Chart weeks={weeks.value} />
      ) : (
        <section class="history-section" aria-labelledby="chart-title">
          <h2 id="chart-title">{t("history.chart.title", { weeks: CHART_WEEKS })}</h2>
          <p>{loading ? t("history.loading") : t("history.needsConnection")}</p>
        </section>
      )}
    </main>
  );
}

function Current({ summary, number }: { summary: Summary; number: Intl.NumberFormat }) {
  const { t, locale } = useApp();
  const week = summary.uas7;
  const band = bandKey(week.band);
  const range = t("history.week", { from: formatDay(locale, week.start, "short"), to: formatDay(locale, week.end, "short") });
  const change = summary.change;
  const previous = summary.previous_uas7.uas7;
  return (
    <>
      <p class="big" data-uas7={week.uas7 ?? ""}>
        {week.uas7 === null ? (
          t("history.current.none")
        ) : (
          <>
            {t("history.current.value", { value: number.format(week.uas7) })}
            {band && <span class={`band-chip ${week.band ?? ""}`}>{t(band)}</span>}
          </>
        )}
      </p>
      <p>{range}</p>
      <p>{t(`history.method.${week.method}` as Key, { days: week.days_observed })}</p>
      {change !== null && previous !== null ? (
        <p>
          {t("history.change", {
            change: `${change > 0 ? "+" : change < 0 ? "−" : "±"}${number.format(Math.abs(change))}`,
            previous: number.format(previous),
          })}
          {summary.change_exceeds_mid && <strong class="mid"> {t("history.changeMid")}</strong>}
        </p>
      ) : (
        <p>{t("history.changeNone")}</p>
      )}
    </>
  );
}
