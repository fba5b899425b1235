import { useState } from "preact/hooks";
import { NetworkError } from "../../api/client";
import { localToday } from "../../dates";
import { metaGet } from "../../store/meta";
import { errorText } from "../errors";
import { useApp } from "../context";
import { exportFileName } from "./logic";

/** Right of access: the server's export document, offered as a file (Blob + object URL). */
export function Export() {
  const { session, t } = useApp();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);

  async function download() {
    setBusy(true);
    setMessage({ text: t("export.working"), error: false });
    try {
      const text = await session.api.exportDocument();
      const file = exportFileName(localToday(await metaGet<string>(session.db, "timezone")));
      const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      const link = document.createElement("a");
      link.href = url;
      link.download = file;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setMessage({ text: t("export.done", { file }), error: false });
    } catch (error) {
      setMessage({
        text: error instanceof NetworkError ? t("export.offline") : t("export.failed", { detail: errorText(error, t) }),
        error: true,
      });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="export-title">
      <h2 id="export-title">{t("export.title")}</h2>
      <p class="hint">{t("export.intro")}</p>
      <button type="button" disabled={busy} onClick={() => void download()}>{t("export.button")}</button>
      <div role="status" aria-live="polite" class="status">
        {message && <p class={message.error ? "error" : ""}>{message.text}</p>}
      </div>
    </section>
  );
}
