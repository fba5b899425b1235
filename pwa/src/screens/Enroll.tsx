import { useState } from "preact/hooks";
import { useApp } from "./context";
import { errorText } from "./errors";

/** Join from the clinic's link: the code comes from `#code=…`, the patient picks email and password. */
export function Enroll({ initialCode }: { initialCode: string }) {
  const { session, t, go } = useApp();
  const [code, setCode] = useState(initialCode);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      await session.enroll(code.trim(), email.trim(), password, otp.trim() || undefined);
      go("today");
    } catch (e) {
      setError(errorText(e, t));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main">
      <h1>{t("enroll.title")}</h1>
      <p>{t("enroll.intro")}</p>
      <form onSubmit={submit} class="card" aria-describedby={error ? "enroll-error" : undefined}>
        <label for="code">{t("enroll.code")}</label>
        <input id="code" name="code" required autocomplete="off" autocapitalize="characters" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
        <label for="email">{t("field.email")}</label>
        <input id="email" name="email" type="email" required autocomplete="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <label for="password">{t("field.password")}</label>
        <input id="password" name="password" type="password" required minLength={10} autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <label for="otp">{t("field.otp")}</label>
        <input id="otp" name="otp" inputMode="numeric" autocomplete="one-time-code" value={otp} onInput={(e) => setOtp(e.currentTarget.value)} />
        {error && <p id="enroll-error" class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{t("enroll.submit")}</button>
      </form>
      <p><button type="button" class="link" onClick={() => go("signin")}>{t("enroll.haveAccount")}</button></p>
    </main>
  );
}
