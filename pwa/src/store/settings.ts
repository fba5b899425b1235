// The patient's own settings (time zone, language, diary mode, quiet hours). Kept in `meta`
// (the diary reads the time zone and mode there) and pushed as the `patient_settings` record,
// whose id is the patient's id; the server merges per field like the diary.
import type { AppDB } from "./db";
import { metaDelete, metaGet, metaSet } from "./meta";
import { enqueue } from "./outbox";

export interface Settings {
  timezone: string | undefined;
  locale: string | undefined;
  diary_mode: "once" | "twice";
  quiet_hours_start: string | null;
  quiet_hours_end: string | null;
}

export type SettingsChange = Partial<Settings>;

/** Why the server refused the latest settings change (the refused values were put back). */
export interface SettingsRejection {
  code: string;
  detail: string;
  field: string | null;
  fields: string[];
}

export const SETTINGS_NAMES = ["timezone", "locale", "diary_mode", "quiet_hours_start", "quiet_hours_end"] as const;
const NAMES = SETTINGS_NAMES;
type Name = (typeof NAMES)[number];

export async function settingsGet(db: AppDB): Promise<Settings> {
  return {
    timezone: await metaGet<string>(db, "timezone"),
    locale: await metaGet<string>(db, "locale"),
    diary_mode: (await metaGet<"once" | "twice">(db, "diary_mode")) ?? "once",
    quiet_hours_start: (await metaGet<string | null>(db, "quiet_hours_start")) ?? null,
    quiet_hours_end: (await metaGet<string | null>(db, "quiet_hours_end")) ?? null,
  };
}

/** Settings fields with a change queued for the server (those stay as the device has them). */
export async function settingsPendingFields(db: AppDB): Promise<Set<string>> {
  const queued = await db.outbox.filter((m) => m.table === "patient_settings").toArray();
  return new Set(queued.flatMap((m) => Object.keys(m.fields)));
}

/**
 * The server's copy (a pull, or the profile after sign-in): kept, except the fields this device
 * changed and has not had acknowledged yet (the server merges those when they arrive). The
 * server's values are also kept apart, to put a refused change back.
 */
export async function settingsFromServer(
  db: AppDB,
  record: { id: string; server_version?: number | null } & Partial<Record<Name, unknown>>,
): Promise<void> {
  const pending = await settingsPendingFields(db);
  await metaSet(db, "patient_id", record.id);
  const server = (await metaGet<Partial<Record<Name, unknown>>>(db, "settings_server")) ?? {};
  for (const name of NAMES) {
    if (!(name in record)) continue;
    server[name] = record[name] ?? null;
    if (!pending.has(name)) await metaSet(db, name, record[name] ?? null);
  }
  await metaSet(db, "settings_server", server);
  if (typeof record.server_version === "number") await metaSet(db, "settings_version", record.server_version);
}

/** The server accepted (or merged) a settings change. */
export async function settingsAcknowledged(db: AppDB, serverVersion: number | null | undefined): Promise<void> {
  if (typeof serverVersion === "number") await metaSet(db, "settings_version", serverVersion);
  await metaDelete(db, "settings_rejected");
}

/**
 * The server refused a settings change: the device goes back to the server's values for the
 * refused fields (unless a later change of them is still queued) and keeps the reason to show.
 */
export async function settingsRefused(
  db: AppDB,
  fields: string[],
  reason: { code: string; detail?: string; field?: string | null },
): Promise<void> {
  const pending = await settingsPendingFields(db);
  const server = (await metaGet<Partial<Record<Name, unknown>>>(db, "settings_server")) ?? {};
  for (const name of NAMES) {
    if (fields.includes(name) && !pending.has(name) && name in server) await metaSet(db, name, server[name] ?? null);
  }
  const rejection: SettingsRejection = { code: reason.code, detail: reason.detail ?? "", field: reason.field ?? null, fields };
  await metaSet(db, "settings_rejected", rejection);
}

/** The reason the server refused the latest settings change, if it did. */
export async function settingsRejected(db: AppDB): Promise<SettingsRejection | undefined> {
  return metaGet<SettingsRejection>(db, "settings_rejected");
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
    await metaDelete(db, "settings_rejected");
    const base = (await metaGet<number>(db, "settings_version")) ?? 0;
    await enqueue(db, "patient_settings", patientId, "upsert", base, fields);
  });
}
