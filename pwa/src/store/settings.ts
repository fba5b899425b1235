// The patient's own settings (time zone, language, diary mode, quiet hours). Kept in `meta`
// (the diary reads the time zone and mode there) and pushed as the `patient_settings` record,
// whose id is the patient's id; the server merges per field like the diary.
import type { AppDB } from "./db";
import { metaGet, metaSet } from "./meta";
import { enqueue } from "./outbox";

export interface Settings {
  timezone: string | undefined;
  locale: string | undefined;
  diary_mode: "once" | "twice";
  quiet_hours_start: string | null;
  quiet_hours_end: string | null;
}

export type SettingsChange = Partial<Settings>;

const NAMES = ["timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"] as const;

export async function settingsGet(db: AppDB): Promise<Settings> {
  return {
    timezone: await metaGet<string>(db, "timezone"),
    locale: await metaGet<string>(db, "locale"),
    diary_mode: (await metaGet<"once" | "twice">(db, "diary_mode")) ?? "once",
    quiet_hours_start: (await metaGet<string | null>(db, "quiet_hours_start")) ?? null,
    quiet_hours_end: (await metaGet<string | null>(db, "quiet_hours_end")) ?? null,
  };
}

/** The server's copy (a pull, or the profile after sign-in): kept as is. */
export async function settingsFromServer(
  db: AppDB,
  record: { id: string; server_version?: number } & Partial<Record<(typeof NAMES)[number], unknown>>,
): Promise<void> {
  await metaSet(db, "patient_id", record.id);
  for (const name of NAMES) if (name in record) await metaSet(db, name, record[name] ?? null);
  if (typeof record.server_version === "number") await metaSet(db, "settings_version", record.server_version);
}

/** Change some settings: kept at once, queued for the server in the same transaction. */
export async function settingsSave(db: AppDB, change: SettingsChange): Promise<void> {
  await db.transaction("rw", db.meta, db.outbox, async () => {
    const patientId = await metaGet<string>(db, "patient_id");
    if (!patientId) throw new Error("The device does not know the patient yet: sync first.");
    const current = await settingsGet(db);
    const fields: Record<string, unknown> = {};
    for (const name of NAMES) {
      if (!(name in change) || change[name] === current[name]) continue;
      fields[name] = change[name];
      await metaSet(db, name, change[name]);
    }
    if (Object.keys(fields).length === 0) return;
    const base = (await metaGet<number>(db, "settings_version")) ?? 0;
    await enqueue(db, "patient_settings", patientId, "upsert", base, fields);
  });
}
