import { reasonText } from "./errors";
import { useEffect, useRef, useState } from "preact/hooks";
import { addDays, DEFAULT_LATE_DAYS, inWindow, lateDaysOf, lateWindow, takeRequestedDay } from "../components/days";
import { localHour, localToday } from "../dates";
import { formatDay, type Key } from "../i18n";
import { dayScore } from "../scores";
import { printable } from "../text";
import type { DiaryEntry, Slot } from "../store/db";
import { diaryEntriesBetween, diaryEntryFor, diaryEntrySave, pendingIds } from "../store/diary";
import { type Draft, EMPTY, type Form, type FormField, NO_AAS, rebaseEntry, same } from "../components/entryDraft";
import { draftDrop, draftGet, draftNames, draftSet } from "../store/drafts";
import { metaGet, metaSet } from "../store/meta";
import { useApp } from "./context";
import "./Today.css";

const LEVELS = [0, 1, 2, 3] as const;
/** The five AAS items (Weller et al. 2013; clinical-scores.md §4.1), each scored 0–3. */
const AAS_ITEMS = [1, 2, 3, 4, 5] as const;


function formOf(entry: DiaryEntry): Form {
  const aas = entry.angioedema && entry.aas_items?.length === 5 ? [...entry.aas_items] : NO_AAS;
  return { wheals: entry.wheals, itch: entry.itch, angioedema: entry.angioedema, aas, note: entry.note };
}

// The clinic's window can change: the profile is asked once per page load (sign-in asks too).
let windowAsked = false;

function Scale(props: { name: string; legend: string; prefix: string; value: number | null; onChange: (v: number) => void }) {
  const { t } = useApp();
  return (
    <fieldset class="scale">
      <legend>{props.legend}</legend>
      {LEVELS.map((level) => (
        <label class="option" key={level}>
          <input type="radio" name={props.name} value={level} checked={props.value === level} onChange={() => props.onChange(level)} />
          <span class="level" aria-hidden="true">{level}</span>
          <span>{t(`${props.prefix}.${level}` as Key)}</span>
        </label>
      ))}
    </fieldset>
  );
}

/** Move the keyboard focus to the first option of an unanswered question. */
function focusFirst(name: string): void {
  document.querySelector<HTMLInputElement>(`input[name="${name}"]`)?.focus();
}

/** A day's entry (today, or an earlier day within the clinic's window): reads from IndexedDB,
 * saves there (with its outbox mutation) and shows at once. */
export function Today({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [mode, setMode] = useState<"once" | "twice">("once");
  const [today, setToday] = useState(() => localToday(undefined));
  const [lateDays, setLateDays] = useState(DEFAULT_LATE_DAYS);
  // The day shown: one another screen asked for (History), else today.
  const [picked, setPicked] = useState<string | null>(takeRequestedDay);
  const [slot, setSlot] = useState<Slot>("day");
  const [form, setForm] = useState<Form>(EMPTY);
  const [saved, setSaved] = useState<DiaryEntry | undefined>();
  const [dayEntries, setDayEntries] = useState<DiaryEntry[]>([]);
  const [pending, setPending] = useState(false);
  const [message, setMessage] = useState("");
  const [dateError, setDateError] = useState("");
  // Unsaved input is never replaced by a re-read (a sync finishing mid-entry, another tab), and
  // is kept as a draft until saved (a reload for a new version, signing in again, midnight).
  const dirty = useRef(false);
  // What the unsaved input began from (the entry's values and version then).
  const began = useRef<{ base: Form; version: number }>({ base: EMPTY, version: 0 });
  const formRef = useRef(form);
  formRef.current = form;
  const [user, setUser] = useState<string | undefined>();
  // The entry changed elsewhere while unsaved input waited (saved, with the fields both sides
  // changed, or deleted): said until saved or discarded.
  const [elsewhere, setElsewhere] = useState<{ kind: "saved" | "deleted"; both: FormField[] } | null>(null);
  const [otherDrafts, setOtherDrafts] = useState<string[]>([]);
  const todayRef = useRef(today);
  todayRef.current = today;
  const settled = useRef(false);

  // The day's kind: as recorded (a day recorded before the clinic switched the diary mode keeps
  // its kind, as the server does), else the patient's mode.
  const dayKind: "once" | "twice" = dayEntries.some((e) => e.slot === "day")
    ? "once"
    : dayEntries.some((e) => e.slot === "am" || e.slot === "pm")
      ? "twice"
      : mode;
  const entrySlot: Slot = dayKind === "once" ? "day" : slot === "day" ? "am" : slot;

  const span = lateWindow(today, lateDays);
  const choices = Array.from({ length: Math.max(0, lateDays) + 1 }, (_, back) => addDays(today, -back));
  const day = picked !== null && inWindow(span, picked) ? picked : today;
  const draftName = `today:${day}:${entrySlot}`;
  const keep = (next: Form) => {
    if (user) draftSet(user, draftName, { form: next, ...began.current } satisfies Draft);
  };
  const edit = (next: Form) => {
    if (!dirty.current) began.current = { base: saved ? formOf(saved) : EMPTY, version: saved?.server_version ?? 0 };
    dirty.current = true;
    setForm(next);
    setMessage("");
    keep(next);
  };

  // Settings (diary mode, time zone, the clinic's window) come from the device's copy.
  useEffect(() => {
    void (async () => {
      const zone = await metaGet<string>(session.db, "timezone");
      const diaryMode = (await metaGet<"once" | "twice">(session.db, "diary_mode")) ?? "once";
      setUser(await metaGet<string>(session.db, "user_id"));
      setMode(diaryMode);
      const nextToday = localToday(zone);
      // Midnight while the patient is typing: the entry stays on the day it was begun for.
      const was = todayRef.current;
      if (settled.current && dirty.current && nextToday !== was) setPicked((p) => p ?? was);
      settled.current = true;
      setToday(nextToday);
      setLateDays(await lateDaysOf(session.db));
      setSlot((current) => (diaryMode === "once" ? "day" : current === "day" ? (localHour(zone) < 12 ? "am" : "pm") : current));
    })();
  }, [session, revision]);

  useEffect(() => {
    if (windowAsked || !navigator.onLine) return;
    windowAsked = true;
    void (async () => {
      try {
        const profile = await session.api.profile();
        if (typeof profile.late_entry_days === "number") {
          await metaSet(session.db, "late_entry_days", profile.late_entry_days);
          setLateDays(profile.late_entry_days);
        }
      } catch {
        windowAsked = false; // offline or signed out: the kept window stands, asked again later
      }
    })();
  }, [session]);

  // The stored entry for this day and slot, and the day's other half (again after every sync or save).
  // A read still running when the day or half-day changes is dropped: its answer is for the
  // other one (a sync finishing just after the patient switched to the evening, say).
  useEffect(() => {
    let current = true;
    void (async () => {
      const entries = await diaryEntriesBetween(session.db, day, day);
      const entry = await diaryEntryFor(session.db, day, entrySlot);
      const isPending = entry ? (await pendingIds(session.db)).has(entry.id) : false;
      if (!current) return;
      setDayEntries(entries);
      setSaved(entry);
      setPending(isPending);
      // Unsaved entries of other days (left before a reload, or past midnight): say so.
      const others = user ? draftNames(user, "today:").filter((n) => n !== draftName) : [];
      setOtherDrafts([...new Set(others.map((n) => n.split(":")[1] ?? ""))].filter((d) => d !== day && inWindow(span, d)).sort());
      const stored = entry ? formOf(entry) : EMPTY;
      let draft: Draft | undefined;
      if (dirty.current) {
        draft = { form: formRef.current, ...began.current };
      } else {
        const kept = user ? draftGet<Partial<Draft>>(user, draftName) : undefined;
        if (kept?.form && kept.base && typeof kept.version === "number") draft = kept as Draft;
      }
      if (draft === undefined) {
        setForm(stored);
        return;
      }
      dirty.current = true; // left unsaved earlier (or still being typed): still not saved
      if (entry === undefined && !same(draft.base, EMPTY)) {
        // Deleted elsewhere since the input began: the patient's values stay, to record again.
        began.current = { base: EMPTY, version: 0 };
        setForm(draft.form);
        setElsewhere({ kind: "deleted", both: [] });
        if (user) draftSet(user, draftName, { form: draft.form, ...began.current } satisfies Draft);
        return;
      }
      if (!same(draft.base, stored)) {
        // Saved elsewhere since the input began (another device, or another tab of this one):
        // the patient's changes over the newer entry. The version stays the one the input began
        // from, so the server records a field both changed as a conflict when this is saved.
        const { form: next, both } = rebaseEntry(draft.form, draft.base, stored);
        began.current = { base: stored, version: draft.version };
        setForm(next);
        setElsewhere((was) => ({ kind: "saved", both: [...new Set([...(was?.both ?? []), ...both])] }));
        if (user) draftSet(user, draftName, { form: next, ...began.current } satisfies Draft);
        return;
      }
      began.current = { base: draft.base, version: draft.version };
      setForm(draft.form);
    })();
    return () => {
      current = false;
    };
  }, [session, day, entrySlot, revision, user]);

  // Another day or half-day: its own stored values.
  useEffect(() => {
    dirty.current = false;
    setElsewhere(null);
  }, [day, entrySlot]);

  function pickDay(value: string) {
    if (value === "") return;
    if (value > span.max) {
      setDateError(t("today.dateFuture"));
      return;
    }
    if (!inWindow(span, value)) {
      setDateError(t("today.dateTooOld", { days: lateDays }));
      return;
    }
    setDateError("");
    setMessage("");
    setPicked(value === today ? null : value);
  }

  function discard() {
    if (user) draftDrop(user, draftName);
    dirty.current = false;
    setElsewhere(null);
    setForm(saved ? formOf(saved) : EMPTY);
    setMessage("");
  }

  function setAngioedema(yes: boolean) {
    // "No" clears the swelling answers; "yes" asks for them.
    edit({ ...form, angioedema: yes, aas: yes ? form.aas : NO_AAS });
  }

  async function save(event: Event) {
    event.preventDefault();
    if (form.wheals === null || form.itch === null) {
      setMessage(t("today.required"));
      focusFirst(form.wheals === null ? "wheals" : "itch");
      return;
    }
    const aas = form.angioedema ? form.aas : null;
    if (aas !== null && aas.some((v) => v === null)) {
      setMessage(t("aas.required"));
      focusFirst(`aas${aas.findIndex((v) => v === null) + 1}`);
      return;
    }
    if (!inWindow(span, day)) {
      setMessage(t("today.dateTooOld", { days: lateDays }));
      return;
    }
    const entry = await diaryEntrySave(session.db, {
      day,
      slot: entrySlot,
      wheals: form.wheals,
      itch: form.itch,
      angioedema: form.angioedema,
      aas_items: aas === null ? null : aas.map((v) => v ?? 0),
      note: printable(form.note),
      // Unsaved input that met a newer entry is sent against the version it began from: a field
      // both changed is then the server's to record as a conflict (shown on the other device).
      ...(elsewhere?.kind === "saved" ? { base_version: began.current.version } : {}),
    });
    dirty.current = false;
    if (user) draftDrop(user, draftName);
    setElsewhere(null);
    setSaved(entry);
    setDayEntries((entries) => [...entries.filter((e) => e.slot !== entry.slot), entry]);
    setPending(true);
    setMessage("");
    session.changed();
  }

  const twice = dayKind === "twice";
  const status = saved?.rejected
    ? t("today.rejected", { detail: reasonText(saved.rejected, t) })
    : saved
      ? pending
        ? t("today.pending")
        : t("today.savedSynced")
      : "";
  const score = dayScore(dayEntries);
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const am = dayEntries.find((e) => e.slot === "am");
  const pm = dayEntries.find((e) => e.slot === "pm");
  const halves =
    twice && score !== null
      ? am && pm
        ? t("today.score.both", { am: am.wheals + am.itch, pm: pm.wheals + pm.itch })
        : am
          ? t("today.score.amOnly")
          : pm
            ? t("today.score.pmOnly")
            : ""
      : "";

  return (
    <main id="main" class="today">
      <h1>{day === today ? t("today.title") : t("today.titleEarlier")}</h1>
      <p class="date">{t("today.date", { date: formatDay(locale, day) })}</p>
      <div class="day-pick">
        <label for="entry-day">{t("today.pickDate")}</label>
        <p class="hint" id="entry-day-hint">{t("today.pickDateHint", { days: lateDays })}</p>
        <div class="day-pick-row">
          {/* Only the days the clinic accepts are offered: today back to the window's first day. */}
          <select id="entry-day" value={day} aria-describedby="entry-day-hint" onChange={(e) => pickDay(e.currentTarget.value)}>
            {choices.map((choice, back) => (
              <option key={choice} value={choice}>
                {/* Short dates: an option cannot wrap, and a long one is cut off at 360 px. */}
                {back === 0
                  ? t("today.pick.today", { date: formatDay(locale, choice, "short") })
                  : back === 1
                    ? t("today.pick.yesterday", { date: formatDay(locale, choice, "short") })
                    : formatDay(locale, choice, "short")}
              </option>
            ))}
          </select>
          {day !== today && (
            <button type="button" class="secondary" onClick={() => pickDay(today)}>
              {t("today.backToToday")}
            </button>
          )}
        </div>
        {dateError && <p class="error" role="alert">{dateError}</p>}
        {otherDrafts.length > 0 && (
          <p class="notice drafts-elsewhere" role="status">
            {t("today.draftsElsewhere")}{" "}
            {otherDrafts.map((d) => (
              <button type="button" class="link" key={d} onClick={() => pickDay(d)}>
                {formatDay(locale, d, "short")}
              </button>
            ))}
          </p>
        )}
      </div>
      <form onSubmit={save} class="card">
        {dayKind !== mode && <p class="notice kind-note">{t(dayKind === "once" ? "today.kindWhole" : "today.kindHalves")}</p>}
        {twice && (
          <fieldset class="slots">
            <legend>{t("today.slot")}</legend>
            {(["am", "pm"] as const).map((s) => (
              <label class="option inline" key={s}>
                <input type="radio" name="slot" value={s} checked={entrySlot === s} onChange={() => setSlot(s)} />
                <span>{t(`today.slot.${s}`)}</span>
              </label>
            ))}
          </fieldset>
        )}
        <Scale
          name="wheals"
          legend={t(twice ? "today.wheals12" : "today.wheals")}
          prefix={twice ? "wheals12" : "wheals"}
          value={form.wheals}
          onChange={(wheals) => edit({ ...form, wheals })}
        />
        <Scale
          name="itch"
          legend={t(twice ? "today.itch12" : "today.itch")}
          prefix="itch"
          value={form.itch}
          onChange={(itch) => edit({ ...form, itch })}
        />
        <fieldset class="slots">
          <legend>{t("today.angioedema")}</legend>
          <label class="option inline">
            <input type="radio" name="angioedema" value="no" checked={!form.angioedema} onChange={() => setAngioedema(false)} />
            <span>{t("today.angioedema.no")}</span>
          </label>
          <label class="option inline">
            <input type="radio" name="angioedema" value="yes" checked={form.angioedema} onChange={() => setAngioedema(true)} />
            <span>{t("today.angioedema.yes")}</span>
          </label>
        </fieldset>
        {form.angioedema && (
          <section class="aas" aria-labelledby="aas-title">
            <h2 id="aas-title">{t("aas.title")}</h2>
            <p class="hint">{t("aas.intro")}</p>
            {AAS_ITEMS.map((item, index) => (
              <Scale
                key={item}
                name={`aas${item}`}
                legend={t(`aas.${item}` as Key)}
                prefix={`aas.${item}`}
                value={form.aas[index] ?? null}
                onChange={(value) => edit({ ...form, aas: form.aas.map((v, i) => (i === index ? value : v)) })}
              />
            ))}
          </section>
        )}
        <label for="note">{t("today.note")}</label>
        <textarea id="note" name="note" rows={3} maxLength={2000} value={form.note} onInput={(e) => edit({ ...form, note: e.currentTarget.value })} />
        <div class="actions">
          <button type="submit">{t("today.save")}</button>
          {dirty.current && (
            <button type="button" class="secondary" onClick={discard}>
              {t("today.discard")}
            </button>
          )}
        </div>
        <div class="status" role="status" aria-live="polite">
          {message && <p class="error">{message}</p>}
          {dirty.current ? (
            <>
              <p>{t("today.unsaved")}</p>
              {elsewhere && (
                <p class="notice">
                  {elsewhere.kind === "deleted" ? t("today.draftDeleted") : t("today.draftRebased")}
                  {elsewhere.both.length > 0 && (
                    <> {t("today.draftBoth", { fields: elsewhere.both.map((f) => t(`draftField.${f}`)).join(", ") })}</>
                  )}
                </p>
              )}
              {saved && score !== null && <p>{t("today.lastSaved", { score: number.format(score) })}</p>}
            </>
          ) : (
            <>
              {saved && score !== null && <p class="score">{t("today.score", { score: number.format(score) })}</p>}
              {saved && halves && <p>{halves}</p>}
              {status && <p>{status}</p>}
            </>
          )}
        </div>
      </form>
    </main>
  );
}
