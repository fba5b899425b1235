import { useEffect, useState } from "preact/hooks";
import type { Locale } from "../../i18n";
import { type SettingsRejection, settingsGet, settingsPendingFields, settingsRejected, settingsSave } from "../../store/settings";
import { errorText, reasonText } from "../errors";
import { useApp } from "../context";
import { deviceTimeZone, supportedTimeZones, timeZones } from "./logic";

const LANGUAGES: { value: Locale; name: string }[] = [
  { value: "en", name: "English" },
  { value: "de", name: "Deutsch" },
];

/** Language (the app at once, the server for emails and push) and time zone (diary dates). */
export function Preferences({ revision }: { revision: number }) {
  const { session, t, locale, setLocale } = useApp();
  const [saved, setSaved] = useState<string | undefined>();
  const [zone, setZone] = useState("");
  const [pending, setPending] = useState(false);
  const [rejected, setRejected] = useState<SettingsRejection | undefined>();
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const device = deviceTimeZone();

  useEffect(() => {
    void (async () => {
      const settings = await settingsGet(session.db);
      setSaved(settings.timezone);
      setZone((current) => current || settings.timezone || device || "");
      const queued = await settingsPendingFields(session.db);
      setPending(queued.has("timezone") || queued.has("locale"));
      const refusal = await settingsRejected(session.db);
      setRejected(refusal?.fields.some((f) => f === "timezone" || f === "locale") ? refusal : undefined);
    })();
  }, [session, revision, device]);

  async function save(change: { locale?: string; timezone?: string }, done: string): Promise<boolean> {
    try {
      await settingsSave(session.db, change);
    } catch (error) {
      setMessage({ text: t("prefs.failed", { detail: errorText(error, t) }), error: true });
      return false;
    }
    setMessage({ text: done, error: false });
    session.changed();
    return true;
  }

  async function changeLanguage(next: Locale) {
    setLocale(next); // the app at once; the server for emails and notifications
    await save({ locale: next }, "");
    setMessage(null);
  }

  async function saveZone(next: string) {
    if (!next) return;
    setZone(next);
    if (await save({ timezone: next }, t("prefs.timezoneSaved", { zone: next.replace(/_/g, " ") }))) setSaved(next);
  }

  const zones = timeZones(supportedTimeZones(), saved, device);
  return (
    <section class="card" aria-labelledby="prefs-title">
      <h2 id="prefs-title">{t("prefs.title")}</h2>
      <label for="prefs-language">{t("prefs.language")}</label>
      <select id="prefs-language" value={locale} onChange={(e) => void changeLanguage(e.currentTarget.value as Locale)}>
        {LANGUAGES.map((l) => (
          <option key={l.value} value={l.value} lang={l.value}>{l.name}</option>
        ))}
      </select>
      <form
        class="zone"
        onSubmit={(e) => {
          e.preventDefault();
          void saveZone(zone);
        }}
      >
        <label for="prefs-timezone">{t("prefs.timezone")}</label>
        <p class="hint" id="prefs-timezone-hint">{t("prefs.timezoneHint")}</p>
        <select id="prefs-timezone" value={zone} aria-describedby="prefs-timezone-hint" onChange={(e) => setZone(e.currentTarget.value)}>
          {zones.map((z) => (
            <option key={z} value={z}>{z.replace(/_/g, " ")}</option>
          ))}
        </select>
        <div class="actions">
          <button type="submit">{t("prefs.timezoneSave")}</button>
          {device && device !== saved && (
            <button type="button" class="secondary" onClick={() => void saveZone(device)}>{t("prefs.useDevice", { zone: device.replace(/_/g, " ") })}</button>
          )}
        </div>
      </form>
      <div role="status" aria-live="polite" class="status">
        {saved && <p>{t("prefs.timezoneCurrent", { zone: saved.replace(/_/g, " ") })}</p>}
        {device && device !== saved && <p>{t("prefs.timezoneDevice", { zone: device.replace(/_/g, " ") })}</p>}
        {message && message.text && <p class={message.error ? "error" : ""}>{message.text}</p>}
        {pending && <p class="pending">{t("prefs.pending")}</p>}
        {rejected && <p class="error">{t("prefs.rejected", { detail: reasonText(rejected, t) })}</p>}
      </div>
    </section>
  );
}
