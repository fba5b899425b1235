import { useState } from "preact/hooks";
import type { Key } from "../../i18n";
import { useApp } from "../context";
import { type Kind, type PrescriptionOption, type ReminderDraft, type ReminderField, reminderProblem, WEEKDAYS, weekdayName } from "./logic";

const KINDS: Kind[] = ["diary", "medication", "questionnaire"];
const ERRORS: Record<ReminderField, Key> = {
  local_time: "reminders.error.time",
  days_of_week: "reminders.error.days",
  prescription: "reminders.error.prescription",
};

/** Add or change one reminder. Checks each field before saving; the message names the field. */
export function ReminderForm(props: {
  initial: ReminderDraft;
  editing: boolean;
  prescriptions: PrescriptionOption[];
  onSave: (draft: ReminderDraft) => Promise<void>;
  onCancel: () => void;
}) {
  const { t, locale } = useApp();
  const [draft, setDraftState] = useState<ReminderDraft>(props.initial);
  const [problem, setProblem] = useState<ReminderField | null>(null);
  const ids = props.prescriptions.map((p) => p.id);
  // A message goes as soon as its field is put right (the next one shows on saving).
  const setDraft = (next: ReminderDraft) => {
    setDraftState(next);
    if (problem && reminderProblem(next, ids) !== problem) setProblem(null);
  };
  const id = props.editing ? "edit" : "new";

  function toggleDay(day: number, on: boolean) {
    const days = on ? [...draft.days_of_week, day] : draft.days_of_week.filter((d) => d !== day);
    setDraft({ ...draft, days_of_week: days });
  }

  async function submit(event: Event) {
    event.preventDefault();
    const found = reminderProblem(draft, ids);
    setProblem(found);
    if (found) {
      document.getElementById(`${id}-${found}`)?.focus();
      return;
    }
    await props.onSave(draft);
  }

  const invalid = (field: ReminderField) => (problem === field ? { "aria-invalid": true, "aria-describedby": `${id}-error` } : {});

  return (
    <form class="card reminder-form" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>{t(props.editing ? "reminders.editTitle" : "reminders.addTitle")}</h3>
      <label for={`${id}-local_time`}>{t("reminders.field.time")}</label>
      <input
        id={`${id}-local_time`}
        type="time"
        required
        value={draft.local_time}
        onInput={(e) => setDraft({ ...draft, local_time: e.currentTarget.value })}
        {...invalid("local_time")}
      />
      <fieldset class="days" aria-describedby={problem === "days_of_week" ? `${id}-error` : undefined}>
        <legend>{t("reminders.field.days")}</legend>
        {WEEKDAYS.map((day, i) => (
          <label class="option day" key={day}>
            <input
              id={i === 0 ? `${id}-days_of_week` : undefined}
              type="checkbox"
              name="days"
              value={day}
              checked={draft.days_of_week.includes(day)}
              onChange={(e) => toggleDay(day, e.currentTarget.checked)}
            />
            <span>{weekdayName(locale, day)}</span>
          </label>
        ))}
      </fieldset>
      <fieldset class="kinds">
        <legend>{t("reminders.field.kind")}</legend>
        {KINDS.map((kind) => (
          <label class="option" key={kind}>
            <input type="radio" name={`${id}-kind`} value={kind} checked={draft.kind === kind} onChange={() => setDraft({ ...draft, kind })} />
            <span>{t(`reminders.kind.${kind}`)}</span>
          </label>
        ))}
      </fieldset>
      {draft.kind === "medication" &&
        (props.prescriptions.length === 0 ? (
          <p class="hint" id={`${id}-prescription`} tabIndex={-1}>{t("reminders.noPrescription")}</p>
        ) : (
          <>
            <label for={`${id}-prescription`}>{t("reminders.field.prescription")}</label>
            <select
              id={`${id}-prescription`}
              value={draft.prescription ?? ""}
              onChange={(e) => setDraft({ ...draft, prescription: e.currentTarget.value || null })}
              {...invalid("prescription")}
            >
              <option value="">—</option>
              {props.prescriptions.map((p) => (
                <option key={p.id} value={p.id}>{p.label}</option>
              ))}
            </select>
          </>
        ))}
      <label class="option">
        <input type="checkbox" checked={draft.enabled} onChange={(e) => setDraft({ ...draft, enabled: e.currentTarget.checked })} />
        <span>{t("reminders.field.enabled")}</span>
      </label>
      <div class="status" role="status" aria-live="polite" id={`${id}-error`}>
        {problem && <p class="error">{t(ERRORS[problem])}</p>}
      </div>
      <div class="actions">
        <button type="submit">{t("reminders.save")}</button>
        <button type="button" class="secondary" onClick={props.onCancel}>{t("reminders.cancel")}</button>
      </div>
    </form>
  );
}
