// An account made by joining cannot sign in again until its address is confirmed from the
// emailed link (valid 24 hours; the server answers `email_unverified` before). Until then the
// signed-in patient is told so, and either this notice or the sign-in screen can have the link
// sent again (POST /api/v1/auth/verify-email/resend/).
import { useEffect, useState } from "preact/hooks";
import { useApp } from "./context";
import { errorText } from "./errors";

/**
 * A button that asks for a new confirmation link for `email`, then says what the server's
 * answer can tell, which is never whether the address has an account (the answer is the same
 * for every address).
 */
export function ResendLink({ email, label }: { email: string; label: string }) {
  const { session, t } = useApp();
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const [error, setError] = useState("");

  async function send() {
    setBusy(true);
    setSent(false);
    setError("");
    try {
      await session.api.verifyEmailResend(email);
      setSent(true);
    } catch (e) {
      setError(errorText(e, t));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <button type="button" disabled={busy || !email} onClick={() => void send()}>
        {busy ? t("account.verify.sending") : label}
      </button>
      {sent && <p role="status">{t("account.verify.sent")}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </>
  );
}

/**
 * Shown to a signed-in patient whose address is not confirmed yet (`GET /api/v1/auth/me/`
 * `email_verified`), from the moment they join. Read again whenever the app comes back into
 * view (the link is opened from the mailbox, often in another tab), and gone once confirmed.
 * "Hide" hides it until the app is next opened: being locked out after signing out is worth
 * another reminder. Offline or without an answer it says nothing.
 */
export function VerifyEmailNotice() {
  const { session, t } = useApp();
  const [unconfirmed, setUnconfirmed] = useState<string | null>(null);
  const [hidden, setHidden] = useState(false);

  useEffect(() => {
    let mounted = true;
    let confirmed = false;
    async function check() {
      if (confirmed || document.visibilityState === "hidden") return;
      try {
        const me = await session.api.me();
        confirmed = me.email_verified;
        if (mounted) setUnconfirmed(me.email_verified ? null : me.user.email);
      } catch {
        // Offline, or the sign-in ended: the sync's own banners say so.
      }
    }
    void check();
    document.addEventListener("visibilitychange", check);
    return () => {
      mounted = false;
      document.removeEventListener("visibilitychange", check);
    };
  }, [session]);

  if (unconfirmed === null || hidden) return null;
  return (
    <div class="banner verify-email">
      <p role="status">{t("account.verify.notice", { email: unconfirmed })}</p>
      <ResendLink email={unconfirmed} label={t("account.verify.resend")} />{" "}
      <button type="button" class="link" onClick={() => setHidden(true)}>
        {t("account.verify.dismiss")}
      </button>
    </div>
  );
}
