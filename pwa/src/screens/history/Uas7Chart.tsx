// Weekly UAS7 as the server scored it (GET /me/scores/uas7/): plain SVG over the activity bands,
// prorated weeks hollow, weeks without a score left as gaps (no line across them), and a
// table with the same numbers for screen readers.
import type { Uas7Week } from "../../api/types";
import { dateLocale, formatDay, type Key } from "../../i18n";
import { useApp } from "../context";

/** The activity bands (clinical-scores.md §2.3, Stull et al. 2017), as drawn: the zone of each
 * band reaches half a point past its whole-number limits. */
export const BANDS = [
  { band: "urticaria_free", from: 0, to: 0.5 },
  { band: "well_controlled", from: 0.5, to: 6.5 },
  { band: "mild", from: 6.5, to: 15.5 },
  { band: "moderate", from: 15.5, to: 27.5 },
  { band: "severe", from: 27.5, to: 42 },
] as const;

const W = 320;
const H = 230;
const LEFT = 24;
const RIGHT = 20;
const TOP = 22;
const BOTTOM = 38;
const MAX = 42;
const TICKS = [0, 6, 15, 27, 42];

const y = (value: number) => TOP + (H - TOP - BOTTOM) * (1 - value / MAX);

/** The catalogue key of a band the server named (null: no score, or a band this build does not know). */
export function bandKey(band: string | null): Key | null {
  return BANDS.some((b) => b.band === band) ? (`history.band.${band}` as Key) : null;
}

export function Uas7Chart({ weeks }: { weeks: Uas7Week[] }) {
  const { t, locale } = useApp();
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const short = (day: string) =>
    new Intl.DateTimeFormat(dateLocale(locale), { day: "numeric", month: "short", timeZone: "UTC" }).format(new Date(`${day}T12:00:00Z`));
  const x = (i: number) => (weeks.length > 1 ? LEFT + 10 + i * ((W - LEFT - RIGHT - 20) / (weeks.length - 1)) : W / 2);

  // Line segments only between consecutive weeks that both have a score.
  const segments: string[] = [];
  let current: string[] = [];
  weeks.forEach((week, i) => {
    if (week.uas7 === null) {
      if (current.length > 1) segments.push(current.join(" "));
      current = [];
      return;
    }
    current.push(`${current.length === 0 ? "M" : "L"}${x(i).toFixed(1)},${y(week.uas7).toFixed(1)}`);
  });
  if (current.length > 1) segments.push(current.join(" "));

  const first = weeks[0];
  const last = weeks[weeks.length - 1];
  const scored = weeks.filter((w) => w.uas7 !== null).length;
  const desc =
    first && last
      ? t("history.chart.desc", {
          from: formatDay(locale, first.start),
          to: formatDay(locale, last.end),
          scored,
          weeks: weeks.length,
        })
      : "";
  const method = (week: Uas7Week) => t(`history.method.${week.method}` as Key, { days: week.days_observed });

  return (
    <section class="history-section" aria-labelledby="chart-title">
      <h2 id="chart-title">{t("history.chart.title", { weeks: weeks.length })}</h2>
      <figure class="chart">
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="uas7-svg-title uas7-svg-desc" focusable="false">
          <title id="uas7-svg-title">{t("history.chart.title", { weeks: weeks.length })}</title>
          <desc id="uas7-svg-desc">{desc}</desc>
          {BANDS.map((b) => (
            <rect key={b.band} class={`zone ${b.band}`} x={LEFT} width={W - LEFT - RIGHT} y={y(b.to)} height={y(b.from) - y(b.to)} />
          ))}
          {TICKS.map((tick) => (
            <g key={tick}>
              <line class="grid" x1={LEFT} x2={W - RIGHT} y1={y(tick)} y2={y(tick)} />
              <text class="tick" x={LEFT - 4} y={y(tick) + 4} text-anchor="end">
                {tick}
              </text>
            </g>
          ))}
          {weeks.map((week, i) =>
            (weeks.length - 1 - i) % 4 === 0 ? (
              <text key={week.end} class="tick" x={x(i)} y={H - BOTTOM + 16} text-anchor="middle">
                {short(week.end)}
              </text>
            ) : null,
          )}
          <text class="axis" x={W - RIGHT} y={H - 4} text-anchor="end">
            {t("history.chart.xAxis")}
          </text>
          {segments.map((d) => (
            <path key={d} class="line" d={d} />
          ))}
          {weeks.map((week, i) =>
            week.uas7 === null ? (
              <text key={week.end} class="gap" x={x(i)} y={y(0) - 4} text-anchor="middle">
                ?
              </text>
            ) : (
              <g key={week.end}>
                <circle class={week.method === "prorated" ? "point prorated" : "point"} cx={x(i)} cy={y(week.uas7)} r={week.method === "prorated" ? 4.5 : 4} />
                <text class="value" x={x(i)} y={y(week.uas7) - 8} text-anchor="middle">
                  {number.format(week.uas7)}
                </text>
              </g>
            ),
          )}
        </svg>
        <figcaption>
          <ul class="legend" aria-label={t("history.legend")}>
            {BANDS.map((b) => (
              <li key={b.band}>
                <span class={`swatch zone ${b.band}`} aria-hidden="true" />
                {t(`history.band.${b.band}` as Key)}
              </li>
            ))}
            <li>
              <span class="marker" aria-hidden="true">●</span>
              {t("history.chart.complete")}
            </li>
            <li>
              <span class="marker" aria-hidden="true">○</span>
              {t("history.chart.prorated")}
            </li>
            <li>
              <span class="marker gap" aria-hidden="true">?</span>
              {t("history.chart.missing")}
            </li>
          </ul>
        </figcaption>
      </figure>
      <div class="visually-hidden">
      <table>
        <caption>{t("history.table.caption")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("history.table.week")}</th>
            <th scope="col">{t("history.table.uas7")}</th>
            <th scope="col">{t("history.table.method")}</th>
            <th scope="col">{t("history.table.band")}</th>
          </tr>
        </thead>
        <tbody>
          {weeks.map((week) => {
            const key = bandKey(week.band);
            return (
              <tr key={week.end}>
                <th scope="row">{t("history.week", { from: formatDay(locale, week.start, "short"), to: formatDay(locale, week.end, "short") })}</th>
                <td>{week.uas7 === null ? t("history.noScore") : number.format(week.uas7)}</td>
                <td>{method(week)}</td>
                <td>{key ? t(key) : "–"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      </div>
    </section>
  );
}
