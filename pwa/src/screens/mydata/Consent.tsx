import { useEffect, useState } from "preact/hooks";
import { NetworkError } from "../../api/client";
import type { ConsentState } from "../../api/types";
import { dateLocale } from "../../i18n";
import { errorText } from "../errors";
import { useApp } from "../context";

/**
 * The clinic's privacy notice and the patient's consent to it: read it, withdraw consent (the
 * clinic then stores nothing new of the patient's health: entries wait on this device), or
 * agree (again). What the server says counts; offline, the card says it cannot tell.
 */
export function Consent() {
  const { session, t, locale } = useApp();
  const [state, setState] = useState<ConsentState | undefined>();
  const [agreed, setAgreed] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);

  async function load(): Promise<void> {
    try {
      setState(await session.api.consent());
    } catch (error) {
      setMessage({ text: error instanceof NetworkError ? t("consent.offline") : errorText(error, t), error: true });
    }
  }

  useEffect(() => {
    void load();
  }, [session]);

  async function act(action: () => Promise<ConsentState>, done: string) {
    setBusy(true);
    setMessage(null);
    try {
      const next = await action();
      setState(next);
      setAgreed(false);
      setConfirming(false);
      setMessage({ text: done, error: false });
      session.changed(); // entries kept on this device while there was no consent go now
    } catch (error) {
      setMessage({ text: errorText(error, t), error: true });
      await load();
    } finally {
      setBusy(false);
    }
  }

  const when = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString(dateLocale(locale), { dateStyle: "long" }) : "");
  const text = state ? (state.notice.texts[locale] ?? state.notice.texts.en ?? "") : "";

  return (
    <section class="card" aria-labelledby="consent-title">
      <h2 id="consent-title">{t("consent.title")}</h2>
      {state?.status === "given" && (
        <p>{t("consent.given", { version: state.version ?? "", date: when(state.granted_at) })}</p>
      )}
      {state?.status === "none" && <p class="pending">{t("consent.none")}</p>}
      {state?.status === "withdrawn" && <p class="pending">{t("consent.withdrawn", { date: when(state.withdrawn_at) })}</p>}
      {state?.status === "outdated" && <p class="pending">{t("consent.outdated", { version: state.notice.version })}</p>}
      {state && (
        <details>
          <summary>{t("consent.read", { version: state.notice.version })}</summary>
          {text.split(/\n\s*\n/).filter((p) => p.trim()).map((p, i) => (
            <p key={i} class="notice-text">{p}</p>
          ))}
        </details>
      )}
      {state && state.status !== "given" && (
        <form onSubmit={(e) => { e.preventDefault(); void act(() => session.api.consentAccept(state.notice.version), t("consent.accepted")); }}>
          <label class="option" for="consent-agree">
            <input id="consent-agree" type="checkbox" checked={agreed} onChange={(e) => setAgreed(e.currentTarget.checked)} />
            <span>{t("consent.agree")}</span>
          </label>
          <button type="submit" disabled={busy || !agreed}>{t("consent.accept")}</button>
        </form>
      )}
      {state?.status === "given" && !confirming && (
        <button type="button" class="secondary" disabled={busy} onClick={() => setConfirming(true)}>{t("consent.withdraw")}</button>
      )}
      {state?.status === "given" && confirming && (
        <div class="actions">
          <p>{t("consent.withdrawConfirm")}</p>
          <button type="button" class="danger" disabled={busy} onClick={() => void act(() => session.api.consentWithdraw(), t("consent.withdrawDone"))}>
            {t("consent.withdrawYes")}
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => setConfirming(false)}>{t("consent.keep")}</button>
        </div>
      )}
      <div role="status" aria-live="polite" class="status">
        {message && <p class={message.error ? "error" : "receipt"}>{message.text}</p>}
      </div>
    </section>
  );
}
