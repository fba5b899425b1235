import { reasonText } from "./errors";
import { useEffect, useRef, useState } from "preact/hooks";
import type { MedicationToday } from "../api/types";
import { localToday } from "../dates";
import { dateLocale, formatDay } from "../i18n";
import { doseLog } from "../store/doses";
import { metaGet } from "../store/meta";
import { viewRefresh } from "../store/views";
import { useApp } from "./context";
import { ageText } from "./medications/age";
import {
  changeTarget,
  currentPrescriptions,
  type DoseDay,
  doseDay,
  dueToday,
  localDateOf,
  type Log,
  mergeLogs,
  type NextInjection,
  nextInjection,
  type Rx,
} from "./medications/logic";
import "./Medications.css";

type T = ReturnType<typeof useApp>["t"];

interface Loaded {
  today: string;
  zone: string | undefined;
  rxs: Rx[];
  logs: Log[];
  /** ISO time of the kept view when the server could not be asked (offline); null when fresh. */
  keptAt: string | null;
  failed: boolean;
  /** Every prescription's name, also of those no longer current (for refused logs). */
  names: Map<string, string>;
}

function schedule(t: T, rx: Rx): string {
  const n = rx.value ?? 1;
  if (rx.kind === "n_per_day") {
    if (n === 1) return t("medications.schedule.daily1");
    if (n === 2) return t("medications.schedule.daily2");
    return t("medications.schedule.dailyN", { n });
  }
  if (rx.kind === "every_n_days") {
    if (n === 1) return t("medications.schedule.everyDay");
    if (n === 7) return t("medications.schedule.weekly");
    if (n % 7 === 0) return t("medications.schedule.everyWeeks", { weeks: n / 7, n });
    return t("medications.schedule.everyDays", { n });
  }
  return rx.kind === "prn" ? t("medications.schedule.prn") : t("medications.schedule.other");
}

function statusWord(t: T, status: "taken" | "skipped"): string {
  return t(status === "taken" ? "medications.taken" : "medications.skipped");
}

/** Today's medications: the clinic's prescriptions, one tap per dose, and the next injections. */
export function Medications({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [data, setData] = useState<Loaded | null>(null);
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const loads = useRef(0);
  const seenNames = useRef(new Map<string, string>());

  async function readLocal(view: MedicationToday[], viewDay: string | null, keptAt: string | null, failed: boolean) {
    const db = session.db;
    const zone = await metaGet<string>(db, "timezone");
    const today = localToday(zone);
    const pulled = await db.prescriptions.toArray();
    const device = await db.doses.toArray();
    const pending = new Map((await db.outbox.toArray()).filter((m) => m.table === "dose_log").map((m) => [m.id, m.mutation_id]));
    const rxs = currentPrescriptions(pulled, view, today, viewDay === today);
    const logs = mergeLogs(device, viewDay === today ? view : [], pending);
    // Names: the catalogue's, from the medications view (current prescriptions only) and from the
    // views this screen saw before (a prescription since ended); else the medication's code.
    for (const m of view) seenNames.current.set(m.id, m.name);
    const byCode = new Map(view.map((m) => [m.medication, m.name]));
    const names = new Map<string, string>(
      pulled.map((p) => [p.id, seenNames.current.get(p.id) ?? byCode.get(p.medication) ?? (p.medication_name || p.medication)]),
    );
    for (const [id, name] of seenNames.current) names.set(id, name);
    return { today, zone, rxs, logs, keptAt, failed, names };
  }

  async function load() {
    const serial = ++loads.current;
    const db = session.db;
    const zone = await metaGet<string>(db, "timezone");
    let latest: { view: MedicationToday[]; fetchedAt: string; fresh: boolean } | null = null;
    let shown: Promise<void> = Promise.resolve();
    const show = (keptAt: boolean) => {
      const current = latest;
      if (current === null) return;
      shown = shown.then(async () => {
        const loaded = await readLocal(current.view, localDateOf(current.fetchedAt, zone), keptAt ? current.fetchedAt : null, false);
        if (serial === loads.current) setData(loaded);
      });
    };
    try {
      await viewRefresh<MedicationToday[]>(db, "medications", () => session.api.medications(), (value, fetchedAt, fresh) => {
        latest = { view: Array.isArray(value) ? value : [], fetchedAt, fresh };
        show(false);
      });
      // The server did not answer: the kept copy stays, with its age.
      if (latest !== null && !(latest as { fresh: boolean }).fresh) show(true);
    } catch {
      // Never fetched and offline: what the device itself knows (pulled prescriptions, own logs).
      const loaded = await readLocal([], null, null, true);
      if (serial === loads.current) setData(loaded);
    }
    await shown;
  }

  useEffect(() => {
    void load();
  }, [session, revision]);

  async function log(rx: Rx, status: "taken" | "skipped") {
    if (!data || busy) return;
    setBusy(true);
    try {
      await doseLog(session.db, {
        prescription: rx.id,
        date: data.today,
        status,
        taken_at: status === "taken" ? new Date().toISOString() : null,
      });
      setMessage(t("medications.logged", { name: rx.name, status: statusWord(t, status) }));
      // Shown at once from the device; the server's copy follows with the sync.
      const kept = await session.db.views.get("medications");
      const view = Array.isArray(kept?.value) ? (kept.value as MedicationToday[]) : [];
      const viewDay = kept ? localDateOf(kept.fetched_at, data.zone) : null;
      setData(await readLocal(view, viewDay, data.keptAt, data.failed));
      session.changed();
    } catch (error) {
      setMessage(t("medications.unsaved", { detail: error instanceof Error ? error.message : String(error) }));
    } finally {
      setBusy(false);
    }
  }

  if (data === null) {
    return (
      <main id="main" class="meds">
        <h1>{t("medications.title")}</h1>
      </main>
    );
  }

  const today = data.rxs.filter((rx) => rx.start <= data.today);
  const injections = data.rxs.filter((rx) => rx.kind === "every_n_days");
  const doseCards = today
    .map((rx) => ({ rx, due: dueToday(rx, data.logs, data.today) }))
    .filter(({ rx, due }) => due > 0 || rx.kind === "prn" || data.logs.some((l) => l.prescription === rx.id && l.date === data.today));

  // Refused logs not shown on one of today's cards (another day, or a prescription since ended).
  const onCards = new Set(doseCards.map((c) => c.rx.id));
  const refused = data.logs.filter((l) => l.rejected && !(l.date === data.today && onCards.has(l.prescription)));

  return (
    <main id="main" class="meds">
      <h1>{t("medications.title")}</h1>
      <p class="date">{t("medications.date", { date: formatDay(locale, data.today) })}</p>
      {data.keptAt && <p class="notice">{t("medications.kept", { age: ageText(locale, data.keptAt) })}</p>}
      {data.failed && data.rxs.length === 0 && <p class="notice">{t("medications.loadFailed")}</p>}
      {!data.failed && data.rxs.length === 0 && <p class="card empty">{t("medications.empty")}</p>}
      <p class="status live" role="status" aria-live="polite">
        {message}
      </p>

      {refused.length > 0 && (
        <section aria-labelledby="meds-refused" class="refused">
          <h2 id="meds-refused">{t("medications.refused")}</h2>
          <ul>
            {refused.map((log) => (
              <li class="error" key={log.id}>
                <strong>{data.names.get(log.prescription) ?? log.prescription}</strong>:{" "}
                {t("medications.rejected", {
                  status: statusWord(t, log.status),
                  date: formatDay(locale, log.date, "short"),
                  detail: reasonText(log.rejected, t),
                })}
              </li>
            ))}
          </ul>
        </section>
      )}

      {data.rxs.length > 0 && (
        <section aria-labelledby="meds-today">
          <h2 id="meds-today">{t("medications.today")}</h2>
          {doseCards.length === 0 && <p>{t("medications.noneToday")}</p>}
          {doseCards.map(({ rx, due }) => (
            <RxCard key={rx.id} rx={rx} due={due} logs={data.logs.filter((l) => l.prescription === rx.id && l.date === data.today)} zone={data.zone} busy={busy} onLog={log} />
          ))}
          {today
            .filter((rx) => !doseCards.some((c) => c.rx.id === rx.id))
            .map((rx) => (
              <article class="card rx rx-quiet" key={rx.id} aria-labelledby={`rx-${rx.id}`}>
                <h3 id={`rx-${rx.id}`}>{rx.name}</h3>
                <p class="plan">{rx.dose} · {schedule(t, rx)}</p>
                <p>{t("medications.noneToday")}</p>
              </article>
            ))}
        </section>
      )}

      {data.rxs.length > 0 && (
        <section aria-labelledby="meds-upcoming">
          <h2 id="meds-upcoming">{t("medications.upcoming")}</h2>
          {injections.length === 0 && <p>{t("medications.noUpcoming")}</p>}
          <ul class="upcoming">
            {injections.map((rx) => (
              <Upcoming key={rx.id} rx={rx} next={nextInjection(rx, data.logs, data.today)} />
            ))}
          </ul>
          {data.rxs
            .filter((rx) => rx.start > data.today && rx.kind !== "every_n_days")
            .map((rx) => (
              <p key={rx.id}>
                <strong>{rx.name}</strong> ({rx.dose} · {schedule(t, rx)}): {t("medications.starts", { date: formatDay(locale, rx.start) })}
              </p>
            ))}
        </section>
      )}
    </main>
  );
}

function RxCard(props: {
  rx: Rx;
  due: number;
  logs: Log[];
  zone: string | undefined;
  busy: boolean;
  onLog: (rx: Rx, status: "taken" | "skipped") => Promise<void>;
}) {
  const { t, locale } = useApp();
  const { rx, due, logs } = props;
  const heading = `rx-${rx.id}`;
  const prn = rx.kind === "prn";
  const day: DoseDay = doseDay(logs, prn ? 0 : due);
  const time = (iso: string) =>
    new Intl.DateTimeFormat(dateLocale(locale), { hour: "2-digit", minute: "2-digit", timeZone: props.zone || undefined }).format(new Date(iso));

  return (
    <article class="card rx" aria-labelledby={heading}>
      <h3 id={heading}>{rx.name}</h3>
      <p class="plan">
        {rx.dose} · {schedule(t, rx)}
      </p>
      {prn ? (
        <>
          <button type="button" aria-describedby={heading} disabled={props.busy} onClick={() => void props.onLog(rx, "taken")}>
            {t("medications.tookDose")}
          </button>
          {day.extra.length === 0 ? (
            <p class="muted">{t("medications.prnNone")}</p>
          ) : (
            <>
              <p class="muted">{t("medications.prnLogged")}</p>
              <ul class="doses">
                {[...day.extra].reverse().map((log) => (
                  <li key={log.id}>
                    <LogLine log={log} time={time} />
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      ) : (
        <>
          {rx.kind === "every_n_days" && <p class="due">{t("medications.injectionDue")}</p>}
          {due > 1 && (
            <p class="summary">{t("medications.summary", { taken: day.taken, n: due, skipped: day.skipped, open: day.open })}</p>
          )}
          <ol class="doses">
            {day.slots.map((slot, index) => {
              const label = due > 1 ? t("medications.dose", { k: index + 1, n: due }) : t("medications.doseOne");
              const describe = `${heading} ${heading}-${index}`;
              const firstOpen = slot.log === null && day.slots.findIndex((s) => s.log === null) === index;
              const changeTo: "taken" | "skipped" | null =
                day.open === 0 && slot.log
                  ? changeTarget(day.slots, slot.log.status) === slot
                    ? slot.log.status === "taken"
                      ? "skipped"
                      : "taken"
                    : null
                  : null;
              return (
                <li key={index} class={slot.log ? `dose ${slot.log.status}` : "dose open"}>
                  <span class="dose-label" id={`${heading}-${index}`}>
                    {label}
                  </span>
                  {slot.log ? (
                    <>
                      <LogLine log={slot.log} time={time} />
                      {slot.replaced.length > 0 && (
                        <span class="muted small">
                          {t("medications.changed", { status: statusWord(t, slot.replaced[slot.replaced.length - 1]?.status ?? "taken") })}
                        </span>
                      )}
                      {changeTo && (
                        <button type="button" class="secondary" aria-describedby={describe} disabled={props.busy} onClick={() => void props.onLog(rx, changeTo)}>
                          {t(changeTo === "taken" ? "medications.changeToTaken" : "medications.changeToSkipped")}
                        </button>
                      )}
                    </>
                  ) : firstOpen ? (
                    <span class="actions">
                      <button type="button" aria-describedby={describe} disabled={props.busy} onClick={() => void props.onLog(rx, "taken")}>
                        <span aria-hidden="true">✓ </span>
                        {t("medications.taken")}
                      </button>
                      <button type="button" class="secondary" aria-describedby={describe} disabled={props.busy} onClick={() => void props.onLog(rx, "skipped")}>
                        <span aria-hidden="true">✕ </span>
                        {t("medications.skipped")}
                      </button>
                    </span>
                  ) : null}
                </li>
              );
            })}
          </ol>
          {day.extra.length > 0 && <p class="muted small">{t("medications.extra", { count: day.extra.length })}</p>}
        </>
      )}
      {day.rejected.map((log) => (
        <p class="error" key={log.id}>
          {t("medications.rejected", {
            status: statusWord(t, log.status),
            date: formatDay(locale, log.date, "short"),
            detail: reasonText(log.rejected, t),
          })}
        </p>
      ))}
    </article>
  );
}

function LogLine({ log, time }: { log: Log; time: (iso: string) => string }) {
  const { t } = useApp();
  const text = log.status === "taken" ? (log.taken_at ? t("medications.takenAt", { time: time(log.taken_at) }) : t("medications.taken")) : t("medications.skipped");
  return (
    <span class={`log ${log.status}`}>
      <span aria-hidden="true" class="mark">{log.status === "taken" ? "✓" : "✕"}</span> {text}
      {log.pending && <span class="pending"> ({t("medications.pending")})</span>}
    </span>
  );
}

function Upcoming({ rx, next }: { rx: Rx; next: NextInjection }) {
  const { t, locale } = useApp();
  let when = "";
  let cls = "";
  if (next.days !== null) {
    if (next.days < 0) {
      when = t("medications.overdue", { days: -next.days });
      cls = "overdue";
    } else if (next.days === 0) {
      when = t("medications.dueToday");
      cls = "due-today";
    } else if (next.days === 1) when = t("medications.tomorrow");
    else when = t("medications.inDays", { days: next.days });
  }
  return (
    <li class={`card injection ${cls}`}>
      <strong>{rx.name}</strong>
      <span>
        {rx.dose} · {schedule(t, rx)}
      </span>
      {next.date === null ? (
        <span>{t("medications.nextUnknown")}</span>
      ) : (
        <span class="next">
          {cls === "overdue" && <span aria-hidden="true">⚠ </span>}
          {t("medications.next", { date: formatDay(locale, next.date) })} — <strong>{when}</strong>
        </span>
      )}
      <span class="muted">
        {next.lastTaken ? t("medications.lastTaken", { date: formatDay(locale, next.lastTaken) }) : t("medications.neverTaken")}
      </span>
    </li>
  );
}

