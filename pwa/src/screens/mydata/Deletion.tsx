import { useState } from "preact/hooks";
import { NetworkError } from "../../api/client";
import { metaGet } from "../../store/meta";
import { errorText } from "../errors";
import { useApp } from "../context";
import { receiptDate } from "./logic";

/** Ask the clinic to delete the patient's data: what happens, an explicit confirmation, an
 * optional reason, then the server's receipt. */
export function Deletion() {
  const { session, t, locale } = useApp();
  const [reason, setReason] = useState("");
  const [confirmed, setConfirmed] = useState(false);
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);
  const [receipt, setReceipt] = useState<{ id: string; created_at: string } | null>(null);
  const [zone, setZone] = useState<string | undefined>();

  async function submit(event: Event) {
    event.preventDefault();
    if (!confirmed) {
      setProblem(t("deletion.needConfirm"));
      document.getElementById("deletion-confirm")?.focus();
      return;
    }
    setBusy(true);
    setProblem("");
    try {
      const answer = await session.api.deletionRequest(reason.trim());
      setZone(await metaGet<string>(session.db, "timezone"));
      setReceipt(answer);
    } catch (error) {
      setProblem(error instanceof NetworkError ? t("deletion.offline") : t("deletion.failed", { detail: errorText(error, t) }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="deletion-title">
      <h2 id="deletion-title">{t("deletion.title")}</h2>
      <p>{t("deletion.what")}</p>
      <ul class="steps">
        <li>{t("deletion.step1")}</li>
        <li>{t("deletion.step2")}</li>
        <li>{t("deletion.step3")}</li>
        <li>{t("deletion.step4")}</li>
      </ul>
      {receipt === null && (
        <form onSubmit={submit} noValidate class="deletion">
          <label for="deletion-reason">{t("deletion.reason")}</label>
          <textarea id="deletion-reason" rows={3} maxLength={2000} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          <label class="option">
            <input
              id="deletion-confirm"
              type="checkbox"
              checked={confirmed}
              onChange={(e) => setConfirmed(e.currentTarget.checked)}
              aria-describedby={problem ? "deletion-status" : undefined}
            />
            <span>{t("deletion.confirm")}</span>
          </label>
          <button type="submit" class="danger" disabled={busy}>{t("deletion.submit")}</button>
        </form>
      )}
      <div role="status" aria-live="polite" class="status" id="deletion-status">
        {busy && <p>{t("deletion.working")}</p>}
        {problem && <p class="error">{problem}</p>}
        {receipt && (
          <p class="receipt">{t("deletion.receipt", { date: receiptDate(locale, receipt.created_at, zone), id: receipt.id })}</p>
        )}
      </div>
    </section>
  );
}
