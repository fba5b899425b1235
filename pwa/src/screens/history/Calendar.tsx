// Four weeks of daily UAS from the device's diary: weeks as rows (Monday to Sunday), each day's
// score written in its cell (colour only repeats it), days without an entry marked as such.
import { addDays, inWindow, isoWeekday, lateWindow } from "../../components/days";
import { dateLocale, formatDay } from "../../i18n";
import { useApp } from "../context";

export const CALENDAR_DAYS = 28;

/** The colour step of a daily UAS (0–6, halves in twice-daily mode). */
export function scoreLevel(score: number): 0 | 1 | 2 | 3 {
  if (score <= 0) return 0;
  if (score <= 2) return 1;
  if (score <= 4) return 2;
  return 3;
}

const LEVEL_KEYS = ["history.cal.level0", "history.cal.level1", "history.cal.level2", "history.cal.level3"] as const;

export function Calendar(props: {
  today: string;
  scores: Map<string, number>;
  lateDays: number;
  onOpen: (day: string) => void;
}) {
  const { t, locale } = useApp();
  const { today, scores, lateDays } = props;
  const span = lateWindow(today, lateDays);
  const first = addDays(today, -(CALENDAR_DAYS - 1));
  const gridStart = addDays(first, -(isoWeekday(first) - 1));
  const gridEnd = addDays(today, 7 - isoWeekday(today));
  const rows: string[][] = [];
  for (let day = gridStart; day <= gridEnd; day = addDays(day, 7)) {
    rows.push(Array.from({ length: 7 }, (_, i) => addDays(day, i)));
  }
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const weekday = (day: string, style: "short" | "long") =>
    new Intl.DateTimeFormat(dateLocale(locale), { weekday: style, timeZone: "UTC" }).format(new Date(`${day}T12:00:00Z`));
  const dayOfMonth = (day: string) => String(Number(day.slice(8, 10)));

  return (
    <section class="history-section" aria-labelledby="cal-title">
      <h2 id="cal-title">{t("history.cal.title")}</h2>
      <p class="hint">{t("history.cal.intro", { days: lateDays })}</p>
      <table class="cal">
        <caption class="visually-hidden">
          {t("history.cal.caption", { from: formatDay(locale, first), to: formatDay(locale, today) })}
        </caption>
        <thead>
          <tr>
            {(rows[0] ?? []).map((day) => (
              <th scope="col" key={day}>
                <abbr title={weekday(day, "long")}>{weekday(day, "short").slice(0, 2)}</abbr>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row[0]}>
              {row.map((day) => {
                if (day < first || day > today) return <td key={day} class="out" />;
                const score = scores.get(day);
                const text = score === undefined ? "–" : number.format(score);
                const cls = `day ${score === undefined ? "none" : `s${scoreLevel(score)}`}${day === today ? " today" : ""}`;
                const open = inWindow(span, day);
                // The name is the cell's own text with the words a screen reader needs around it.
                const content = (
                  <>
                    <span class="dom">{dayOfMonth(day)}</span>
                    <span class="visually-hidden">
                      {`. ${formatDay(locale, day)}${day === today ? ` (${t("history.cal.today")})` : ""}, ${score === undefined ? "" : t("history.cal.scoreWord")} `}
                    </span>
                    <span class="val">{text}</span>
                    <span class="visually-hidden">
                      {score === undefined ? ` ${t("history.cal.none")}.` : ` ${t("history.cal.ofSix")}.`}
                      {open ? ` ${t("history.cal.open")}` : ""}
                    </span>
                  </>
                );
                return (
                  <td key={day}>
                    {open ? (
                      <button type="button" class={cls} data-day={day} aria-current={day === today ? "date" : undefined} onClick={() => props.onOpen(day)}>
                        {content}
                      </button>
                    ) : (
                      <span class={cls} data-day={day}>
                        {content}
                      </span>
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <ul class="legend" aria-label={t("history.legend")}>
        {LEVEL_KEYS.map((key, level) => (
          <li key={key}>
            <span class={`swatch s${level}`} aria-hidden="true" />
            {t(key)}
          </li>
        ))}
        <li>
          <span class="swatch none" aria-hidden="true">–</span>
          {t("history.cal.none")}
        </li>
      </ul>
      <p class="hint">{t("history.cal.older", { days: lateDays })}</p>
    </section>
  );
}
