import { useEffect, useState } from "preact/hooks";
import { ApiError, NetworkError } from "../../api/client";
import type { Key } from "../../i18n";
import { type PushKept, pushDisable, pushEnable, pushRefreshConfig, PushRefused, type PushState, pushState } from "../../push";
import { viewGet } from "../../store/views";
import { errorText } from "../errors";
import { useApp } from "../context";

const STATE_TEXT: Record<PushState, Key> = {
  on: "push.state.on",
  off: "push.state.off",
  blocked: "push.state.blocked",
  unsupported: "push.state.unsupported",
  unconfigured: "push.state.unconfigured",
};

/** Web Push opt-in for this browser: on / off / blocked / not supported / not configured. */
export function PushOptIn() {
  const { session, t } = useApp();
  const [state, setState] = useState<PushState | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState("");

  async function refresh(online: boolean) {
    let shown = await pushState(session.db);
    if (online) {
      try {
        const key = await pushRefreshConfig(session.db, session.api);
        if (key === "" && shown === "off") shown = "unconfigured";
      } catch {
        // The server refused (e.g. signed out): the device's state stands.
      }
    } else {
      const kept = await viewGet<PushKept>(session.db, "push");
      if (kept?.value.vapid_public_key === "" && kept.fetched_at && shown === "off") shown = "unconfigured";
    }
    setState(shown);
  }

  useEffect(() => {
    void refresh(false).then(() => refresh(true));
  }, [session]);

  async function turnOn() {
    setBusy(true);
    setMessage("");
    try {
      await pushEnable(session.db, session.api);
      setMessage(t("push.turnedOn"));
    } catch (error) {
      if (error instanceof PushRefused) {
        if (error.reason === "dismissed") setMessage(t("push.dismissed"));
      } else if (error instanceof NetworkError) {
        setMessage(t("push.offline"));
      } else if (error instanceof ApiError) {
        setMessage(t("push.failed", { detail: errorText(error, t) }));
      } else {
        setMessage(t("push.failed", { detail: errorText(error, t) }));
      }
    } finally {
      await refresh(false);
      setBusy(false);
    }
  }

  async function turnOff() {
    setBusy(true);
    setMessage("");
    try {
      const told = await pushDisable(session.db, session.api);
      setMessage(t(told ? "push.turnedOff" : "push.turnedOffOffline"));
    } catch (error) {
      setMessage(errorText(error, t));
    } finally {
      await refresh(false);
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="push-title">
      <h2 id="push-title">{t("push.title")}</h2>
      <p class="hint">{t("push.intro")}</p>
      <div role="status" aria-live="polite" class="push-state">
        {state && <p class={`state state-${state}`}>{t(STATE_TEXT[state])}</p>}
        {message && <p>{message}</p>}
        {busy && <p>{t("push.working")}</p>}
      </div>
      {state === "off" && (
        <button type="button" disabled={busy} onClick={() => void turnOn()}>{t("push.turnOn")}</button>
      )}
      {state === "on" && (
        <button type="button" class="secondary" disabled={busy} onClick={() => void turnOff()}>{t("push.turnOff")}</button>
      )}
    </section>
  );
}
