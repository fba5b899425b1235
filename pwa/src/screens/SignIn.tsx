import { useState } from "preact/hooks";
import { ApiError } from "../api/client";
import { useApp } from "./context";
import { errorText } from "./errors";
import { asksForCode, OneTimeCode } from "./OneTimeCode";
import { ResendLink } from "./VerifyEmailNotice";

export function SignIn({ again }: { again: boolean }) {
  const { session, t, go } = useApp();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [askOtp, setAskOtp] = useState(0);
  const [error, setError] = useState("");
  // The password was right but the address is not confirmed: the link can be sent again.
  const [unconfirmed, setUnconfirmed] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError("");
    setUnconfirmed(false);
    try {
      await session.signIn(email.trim(), password, otp.trim() || undefined);
      go("today");
    } catch (e) {
      setError(errorText(e, t));
      if (asksForCode(e)) setAskOtp((n) => n + 1);
      setUnconfirmed(e instanceof ApiError && e.code === "email_unverified");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main">
      <h1>{t("signIn.title")}</h1>
      {again && <p class="notice" role="status">{t("signIn.again")}</p>}
      <form onSubmit={submit} class="card">
        <label for="email">{t("field.email")}</label>
        <input id="email" name="email" type="email" required autocomplete="username" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <label for="password">{t("field.password")}</label>
        <input id="password" name="password" type="password" required autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <OneTimeCode asked={askOtp} value={otp} onInput={setOtp} t={t} />
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{t("signIn.submit")}</button>
        {unconfirmed && <ResendLink key={email.trim()} email={email.trim()} label={t("account.verify.resendSignIn")} />}
      </form>
      <p><button type="button" class="link" onClick={() => go("enroll")}>{t("signIn.join")}</button></p>
    </main>
  );
}
