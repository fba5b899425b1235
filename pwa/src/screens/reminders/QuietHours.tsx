import { useEffect, useRef, useState } from "preact/hooks";
import { type SettingsRejection, settingsGet, settingsPendingFields, settingsRejected, settingsSave } from "../../store/settings";
import { errorText, reasonText } from "../errors";
import { useApp } from "../context";
import { type QuietProblem, quietProblem, timeText } from "./logic";

/** Quiet hours (local HH:MM, both or neither): kept on the device and sent as patient settings. */
export function QuietHours({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [saved, setSaved] = useState<{ start: string | null; end: string | null }>({ start: null, end: null });
  const [pending, setPending] = useState(false);
  const [rejected, setRejected] = useState<SettingsRejection | undefined>();
  const [problem, setProblem] = useState<QuietProblem>(null);
  const [message, setMessage] = useState("");
  const dirty = useRef(false);

  useEffect(() => {
    void (async () => {
      const settings = await settingsGet(session.db);
      setSaved({ start: settings.quiet_hours_start, end: settings.quiet_hours_end });
      const queued = await settingsPendingFields(session.db);
      setPending(queued.has("quiet_hours_start") || queued.has("quiet_hours_end"));
      const refusal = await settingsRejected(session.db);
      setRejected(refusal?.fields.some((f) => f.startsWith("quiet_hours")) ? refusal : undefined);
      if (dirty.current) return;
      setStart(settings.quiet_hours_start ?? "");
      setEnd(settings.quiet_hours_end ?? "");
    })();
  }, [session, revision]);

  async function save(next: { start: string; end: string }) {
    const found = quietProblem(next.start, next.end);
    setProblem(found);
    setMessage("");
    if (found) {
      document.getElementById(next.start ? "quiet-end" : "quiet-start")?.focus();
      return;
    }
    try {
      await settingsSave(session.db, { quiet_hours_start: next.start || null, quiet_hours_end: next.end || null });
    } catch (error) {
      setMessage(errorText(error, t));
      return;
    }
    dirty.current = false;
    setStart(next.start);
    setEnd(next.end);
    setSaved({ start: next.start || null, end: next.end || null });
    setMessage(t(next.start ? "quiet.saved" : "quiet.cleared"));
    session.changed();
  }

  const invalid = problem ? { "aria-invalid": true, "aria-describedby": "quiet-status" } : {};
  return (
    <section class="card" aria-labelledby="quiet-title">
      <h2 id="quiet-title">{t("quiet.title")}</h2>
      <p class="hint">{t("quiet.intro")}</p>
      <form
        class="quiet"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void save({ start, end });
        }}
      >
        <div class="times">
          <div>
            <label for="quiet-start">{t("quiet.start")}</label>
            <input id="quiet-start" type="time" value={start} onInput={(e) => { dirty.current = true; setStart(e.currentTarget.value); }} {...invalid} />
          </div>
          <div>
            <label for="quiet-end">{t("quiet.end")}</label>
            <input id="quiet-end" type="time" value={end} onInput={(e) => { dirty.current = true; setEnd(e.currentTarget.value); }} {...invalid} />
          </div>
        </div>
        <div class="actions">
          <button type="submit">{t("quiet.save")}</button>
          {(saved.start || start || end) && (
            <button type="button" class="secondary" onClick={() => void save({ start: "", end: "" })}>{t("quiet.clear")}</button>
          )}
        </div>
      </form>
      <div class="status" role="status" aria-live="polite" id="quiet-status">
        {problem && <p class="error">{t(problem === "same" ? "quiet.error.same" : "quiet.error.both")}</p>}
        {message && <p>{message}</p>}
        <p>
          {saved.start && saved.end
            ? t("quiet.current", { start: timeText(locale, saved.start), end: timeText(locale, saved.end) })
            : t("quiet.currentNone")}
        </p>
        {pending && <p class="pending">{t("quiet.pending")}</p>}
        {rejected && <p class="error">{t("quiet.rejected", { detail: reasonText(rejected, t) })}</p>}
      </div>
    </section>
  );
}
