import { reasonText } from "./errors";
import { useEffect, useState } from "preact/hooks";
import { localToday } from "../dates";
import type { MedicationToday } from "../api/types";
import type { ReminderRow } from "../store/db";
import { metaGet } from "../store/meta";
import { pendingIds } from "../store/outbox";
import { reminderDelete, reminderSave, remindersList } from "../store/reminders";
import { viewGet, viewRefresh } from "../store/views";
import { useApp } from "./context";
import { settingsGet } from "../store/settings";
import { daysText, inQuietHours, type PrescriptionOption, prescriptionOptions, type ReminderDraft, reminderInput, timeText } from "./reminders/logic";
import { PushOptIn } from "./reminders/PushOptIn";
import { QuietHours } from "./reminders/QuietHours";
import { ReminderForm } from "./reminders/ReminderForm";
import "./Reminders.css";

const NEW: ReminderDraft = { local_time: "", days_of_week: [1, 2, 3, 4, 5, 6, 7], kind: "diary", prescription: null, enabled: true };

/** The patient's reminders (from IndexedDB, changed there with their outbox mutation), quiet
 * hours and this browser's notifications. */
export function Reminders({ revision }: { revision: number }) {
  const { session, t, locale } = useApp();
  const [rows, setRows] = useState<ReminderRow[]>([]);
  const [pending, setPending] = useState<Set<string>>(new Set());
  const [prescriptions, setPrescriptions] = useState<PrescriptionOption[]>([]);
  // Every prescription's name, ended ones too (a reminder may still name one).
  const [names, setNames] = useState<PrescriptionOption[]>([]);
  const [editing, setEditing] = useState<string | "new" | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  const [quiet, setQuiet] = useState<{ start: string | null; end: string | null }>({ start: null, end: null });

  useEffect(() => {
    void (async () => {
      setRows(await remindersList(session.db));
      setPending(await pendingIds(session.db));
      const settings = await settingsGet(session.db);
      setQuiet({ start: settings.quiet_hours_start, end: settings.quiet_hours_end });
      const zone = await metaGet<string>(session.db, "timezone");
      const view = await viewGet<MedicationToday[]>(session.db, "medications");
      const rows = await session.db.prescriptions.toArray();
      setPrescriptions(prescriptionOptions(rows, view?.value, localToday(zone)));
      setNames(prescriptionOptions(rows, view?.value, ""));
    })();
  }, [session, revision]);

  // The medicines' names come from the server's view (kept for offline); fetched once here.
  useEffect(() => {
    void (async () => {
      const zone = await metaGet<string>(session.db, "timezone");
      const rows = await session.db.prescriptions.toArray();
      await viewRefresh<MedicationToday[]>(session.db, "medications", () => session.api.medications(), (value) => {
        setPrescriptions(prescriptionOptions(rows, value, localToday(zone)));
        setNames(prescriptionOptions(rows, value, ""));
      }).catch(() => undefined); // offline with nothing kept: the medicines' codes are shown
    })();
  }, [session]);

  const nameOf = (id: string | null) => names.find((p) => p.id === id)?.label;

  function kindText(row: ReminderRow): string {
    if (row.kind !== "medication") return t(`reminders.kind.${row.kind}`);
    const name = nameOf(row.prescription);
    return name ? t("reminders.kind.medicationOf", { name }) : t("reminders.kind.medication");
  }

  async function save(draft: ReminderDraft, id?: string) {
    await reminderSave(session.db, reminderInput(draft), id);
    setEditing(null);
    setMessage(t("reminders.saved"));
    setRows(await remindersList(session.db));
    setPending(await pendingIds(session.db));
    session.changed();
    document.getElementById("reminders-title")?.focus();
  }

  async function remove(id: string) {
    await reminderDelete(session.db, id);
    setConfirming(null);
    setMessage(t("reminders.deleted"));
    setRows(await remindersList(session.db));
    session.changed();
    document.getElementById("reminders-title")?.focus();
  }

  const draftOf = (row: ReminderRow): ReminderDraft => ({
    local_time: row.local_time,
    days_of_week: row.days_of_week,
    kind: row.kind,
    prescription: row.prescription,
    enabled: row.enabled,
  });

  return (
    <main id="main" class="reminders">
      <h1>{t("reminders.title")}</h1>
      <p class="hint">{t("reminders.intro")}</p>
      <section aria-labelledby="reminders-title">
        <h2 id="reminders-title" tabIndex={-1}>{t("reminders.list")}</h2>
        <div role="status" aria-live="polite" class="status">{message && <p>{message}</p>}</div>
        {rows.length === 0 && <p>{t("reminders.none")}</p>}
        <ul class="reminder-list">
          {rows.map((row) => {
            const time = timeText(locale, row.local_time);
            return (
              <li key={row.id} class={`card reminder${row.enabled ? "" : " is-off"}`}>
                {editing === row.id ? (
                  <ReminderForm
                    initial={draftOf(row)}
                    editing
                    prescriptions={prescriptions}
                    onSave={(draft) => save(draft, row.id)}
                    onCancel={() => setEditing(null)}
                  />
                ) : (
                  <>
                    <p class="when">
                      <strong>{time}</strong> · {daysText(locale, row.days_of_week) ?? t("reminders.everyDay")}
                    </p>
                    <p class="what">
                      {kindText(row)} · <span class={row.enabled ? "on" : "off"}>{t(row.enabled ? "reminders.on" : "reminders.off")}</span>
                    </p>
                    {row.enabled && inQuietHours(row.local_time, quiet.start, quiet.end) && (
                      <p class="pending">{t("reminders.inQuietHours")}</p>
                    )}
                    {row.rejected ? (
                      <p class="error">{t("reminders.rejected", { detail: reasonText(row.rejected, t) })}</p>
                    ) : pending.has(row.id) ? (
                      <p class="pending">{t("reminders.pending")}</p>
                    ) : null}
                    {confirming === row.id ? (
                      <div class="confirm" role="group" aria-labelledby={`confirm-${row.id}`}>
                        <p id={`confirm-${row.id}`}>{t("reminders.delete.confirm", { time })}</p>
                        <div class="actions">
                          <button type="button" class="danger" onClick={() => void remove(row.id)}>{t("reminders.delete.yes")}</button>
                          <button type="button" class="secondary" onClick={() => setConfirming(null)}>{t("reminders.cancel")}</button>
                        </div>
                      </div>
                    ) : (
                      <div class="actions">
                        <button type="button" class="secondary" aria-label={t("reminders.edit.label", { time })} onClick={() => { setEditing(row.id); setMessage(""); }}>
                          {t("reminders.edit")}
                        </button>
                        <button type="button" class="secondary" aria-label={t("reminders.delete.label", { time })} onClick={() => setConfirming(row.id)}>
                          {t("reminders.delete")}
                        </button>
                      </div>
                    )}
                  </>
                )}
              </li>
            );
          })}
        </ul>
        {editing === "new" ? (
          <ReminderForm initial={NEW} editing={false} prescriptions={prescriptions} onSave={(draft) => save(draft)} onCancel={() => setEditing(null)} />
        ) : (
          <button type="button" onClick={() => { setEditing("new"); setMessage(""); }}>{t("reminders.add")}</button>
        )}
      </section>
      <QuietHours revision={revision} />
      <PushOptIn />
    </main>
  );
}
