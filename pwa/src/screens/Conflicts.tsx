// Conflicts the server recorded (another device changed the same record): which record, and
// the value that counts now. Shown until the patient dismisses them (kept in IndexedDB), or until
// the record changes again: then the value named is no longer the one that counts.
import { useEffect, useState } from "preact/hooks";
import { formatDay, type Key } from "../i18n";
import type { Conflict } from "../store/db";
import { metaGet } from "../store/meta";
import { useApp } from "./context";

type Translate = ReturnType<typeof useApp>["t"];

const DIARY_FIELDS = ["wheals", "itch", "angioedema", "note", "aas_items"];

function diaryValue(t: Translate, field: string, value: unknown): string {
  if (!DIARY_FIELDS.includes(field)) return field;
  let shown: string;
  if (typeof value === "boolean") shown = t(value ? "today.angioedema.yes" : "today.angioedema.no");
  else if ((field === "wheals" || field === "itch") && typeof value === "number" && value >= 0 && value <= 3)
    shown = `${value} (${t(`${field}.${value}` as Key)})`; // the scale's own words
  else shown = String(value);
  return t(`conflict.${field}` as Key, { value: shown });
}

function otherValue(t: Translate, field: string, value: unknown): string {
  const key = `conflictField.${field}`;
  if (field === "enabled") return t(value ? "conflictField.enabled.on" : "conflictField.enabled.off");
  let shown = value === null || value === undefined || value === "" ? t("conflictField.none") : String(value);
  if ((field === "local_time" || field.startsWith("quiet_hours")) && /^\d\d:\d\d:\d\d$/.test(shown)) shown = shown.slice(0, 5);
  return key in KNOWN ? t(key as Key, { value: shown }) : field;
}

const KNOWN: Record<string, true> = Object.fromEntries(
  ["local_time", "days_of_week", "kind", "prescription", "timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"].map(
    (f) => [`conflictField.${f}`, true],
  ),
);

interface Shown {
  conflict: Conflict;
  text: string;
}

/** The banners; `revision` re-reads them after every sync. */
export function Conflicts({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [shown, setShown] = useState<Shown[]>([]);
  const [seen, setSeen] = useState(0);

  useEffect(() => {
    void (async () => {
      const unseen = (await session.db.conflicts.toArray()).filter((c) => !c.seen);
      const out: Shown[] = [];
      const settingsVersion = (await metaGet<number>(session.db, "settings_version")) ?? 0;
      const outdated: string[] = [];
      const changedSince = (version: number | null | undefined, conflict: Conflict) =>
        (version ?? 0) > (conflict.server_version ?? 0);
      for (const conflict of unseen) {
        const winning = Object.entries(conflict.client_value);
        if (conflict.table === "diary_entry") {
          const entry = await session.db.diary.get(conflict.record_id);
          if (!entry) continue;
          if (changedSince(entry.server_version, conflict)) {
            outdated.push(conflict.id);
            continue;
          }
          const value = winning.map(([f, v]) => diaryValue(t, f, v)).join(", ");
          out.push({ conflict, text: t("sync.conflict", { date: formatDay(locale, entry.day), value }) });
        } else if (conflict.table === "reminder") {
          const reminder = await session.db.reminders.get(conflict.record_id);
          if (reminder && !reminder.deleted && changedSince(reminder.server_version, conflict)) {
            outdated.push(conflict.id);
            continue;
          }
          const value = winning.map(([f, v]) => otherValue(t, f, v)).join(", ");
          out.push({
            conflict,
            text:
              !reminder || reminder.deleted
                ? t("conflictReminder.gone")
                : t("conflictReminder.text", { time: reminder.local_time.slice(0, 5), value }),
          });
        } else if (conflict.table === "patient_settings") {
          if (changedSince(settingsVersion, conflict)) {
            outdated.push(conflict.id);
            continue;
          }
          const value = winning.map(([f, v]) => otherValue(t, f, v)).join(", ");
          out.push({ conflict, text: t("conflictSettings.text", { value }) });
        }
      }
      // Changed again since (here or on another device): nothing left to tell.
      if (outdated.length) await session.db.conflicts.where("id").anyOf(outdated).modify({ seen: true });
      setShown(out);
    })();
  }, [session, revision, seen, t, locale]);

  async function dismiss(conflict: Conflict) {
    await session.db.conflicts.update(conflict.id, { seen: true });
    setSeen((n) => n + 1);
  }

  return (
    <>
      {shown.map(({ conflict, text }) => (
        <p class="banner conflict" role="status" key={conflict.id}>
          {text}{" "}
          <button type="button" onClick={() => void dismiss(conflict)}>
            {t("sync.dismiss")}
          </button>
        </p>
      ))}
    </>
  );
}
