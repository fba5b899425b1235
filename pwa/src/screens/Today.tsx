import { useEffect, useRef, useState } from "preact/hooks";
import { localHour, localToday } from "../dates";
import { formatDay, type Key } from "../i18n";
import type { DiaryEntry, Slot } from "../store/db";
import { diaryEntryFor, diaryEntrySave, pendingIds } from "../store/diary";
import { metaGet } from "../store/meta";
import { useApp } from "./context";

const LEVELS = [0, 1, 2, 3] as const;

interface Form {
  wheals: number | null;
  itch: number | null;
  angioedema: boolean;
  note: string;
}

const EMPTY: Form = { wheals: null, itch: null, angioedema: false, note: "" };

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

/** Today's entry: reads from IndexedDB, saves there (with its outbox mutation) and shows at once. */
export function Today({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [mode, setMode] = useState<"once" | "twice">("once");
  const [day, setDay] = useState(() => localToday(undefined));
  const [slot, setSlot] = useState<Slot>("day");
  const [form, setForm] = useState<Form>(EMPTY);
  const [saved, setSaved] = useState<DiaryEntry | undefined>();
  const [pending, setPending] = useState(false);
  const [message, setMessage] = useState("");
  // Unsaved input is never replaced by a re-read (a sync finishing mid-entry, another tab).
  const dirty = useRef(false);
  const edit = (next: Form) => {
    dirty.current = true;
    setForm(next);
  };

  // Settings (diary mode, time zone) come from the device's copy.
  useEffect(() => {
    void (async () => {
      const zone = await metaGet<string>(session.db, "timezone");
      const diaryMode = (await metaGet<"once" | "twice">(session.db, "diary_mode")) ?? "once";
      setMode(diaryMode);
      setDay(localToday(zone));
      setSlot((current) => (diaryMode === "once" ? "day" : current === "day" ? (localHour(zone) < 12 ? "am" : "pm") : current));
    })();
  }, [session, revision]);

  // The stored entry for this day and slot (again after every sync or save).
  useEffect(() => {
    void (async () => {
      const entry = await diaryEntryFor(session.db, day, slot);
      setSaved(entry);
      setPending(entry ? (await pendingIds(session.db)).has(entry.id) : false);
      if (dirty.current) return;
      if (entry) setForm({ wheals: entry.wheals, itch: entry.itch, angioedema: entry.angioedema, note: entry.note });
      else setForm(EMPTY);
    })();
  }, [session, day, slot, revision]);

  // Another day or half-day: its own stored values.
  useEffect(() => {
    dirty.current = false;
  }, [day, slot]);

  async function save(event: Event) {
    event.preventDefault();
    if (form.wheals === null || form.itch === null) {
      setMessage(t("today.required"));
      return;
    }
    const entry = await diaryEntrySave(session.db, {
      day,
      slot,
      wheals: form.wheals,
      itch: form.itch,
      angioedema: form.angioedema,
      aas_items: null,
      note: form.note,
    });
    dirty.current = false;
    setSaved(entry);
    setPending(true);
    setMessage("");
    session.changed();
  }

  const twice = mode === "twice";
  const status = saved?.rejected
    ? t("today.rejected", { detail: saved.rejected.detail })
    : saved
      ? pending
        ? t("today.pending")
        : t("today.savedSynced")
      : "";

  return (
    <main id="main">
      <h1>{t("today.title")}</h1>
      <p class="date">{t("today.date", { date: formatDay(locale, day) })}</p>
      <form onSubmit={save} class="card">
        {twice && (
          <fieldset class="slots">
            <legend>{t("today.slot")}</legend>
            {(["am", "pm"] as const).map((s) => (
              <label class="option inline" key={s}>
                <input type="radio" name="slot" value={s} checked={slot === s} onChange={() => setSlot(s)} />
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
            <input type="radio" name="angioedema" value="no" checked={!form.angioedema} onChange={() => edit({ ...form, angioedema: false })} />
            <span>{t("today.angioedema.no")}</span>
          </label>
          <label class="option inline">
            <input type="radio" name="angioedema" value="yes" checked={form.angioedema} onChange={() => edit({ ...form, angioedema: true })} />
            <span>{t("today.angioedema.yes")}</span>
          </label>
        </fieldset>
        <label for="note">{t("today.note")}</label>
        <textarea id="note" name="note" rows={3} maxLength={2000} value={form.note} onInput={(e) => edit({ ...form, note: e.currentTarget.value })} />
        <button type="submit">{t("today.save")}</button>
        <div class="status" role="status" aria-live="polite">
          {message && <p class="error">{message}</p>}
          {saved && <p class="score">{t("today.score", { score: saved.wheals + saved.itch })}</p>}
          {status && <p>{status}</p>}
        </div>
      </form>
    </main>
  );
}
