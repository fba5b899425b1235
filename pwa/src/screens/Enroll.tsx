import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import type { PrivacyNotice } from "../api/types";
import { useApp } from "./context";
import { errorText } from "./errors";
import { asksForCode, OneTimeCode } from "./OneTimeCode";
import "./Enroll.css";

/**
 * Join from the clinic's link: the code comes from `#code=…`, the patient picks email and
 * password (or those of the account they already have: its one-time code is asked for when the
 * server asks), reads the clinic's privacy notice and agrees to it (the server stores no health
 * data without that consent, and records the version agreed to).
 */
export function Enroll({ initialCode }: { initialCode: string }) {
  const { session, t, go, locale } = useApp();
  const [code, setCode] = useState(initialCode);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [askOtp, setAskOtp] = useState(0);
  const [notice, setNotice] = useState<PrivacyNotice | undefined>();
  const [noticeError, setNoticeError] = useState("");
  const [agreed, setAgreed] = useState(false);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function loadNotice(): Promise<void> {
    setNoticeError("");
    try {
      setNotice(await session.api.privacyNotice());
    } catch (e) {
      setNoticeError(errorText(e, t));
    }
  }

  useEffect(() => {
    void loadNotice();
    // The notice is loaded once per visit of the screen; a newer one is fetched on refusal.
  }, [session]);

  async function submit(event: Event) {
    event.preventDefault();
    if (notice === undefined) return;
    setBusy(true);
    setError("");
    try {
      await session.enroll(code.trim(), email.trim(), password, notice.version, otp.trim() || undefined);
      go("today");
    } catch (e) {
      setError(errorText(e, t));
      // An existing account with a second factor joins with its code: ask for it now.
      if (asksForCode(e)) setAskOtp((n) => n + 1);
      if (e instanceof ApiError && e.code === "privacy_notice_outdated") {
        // The clinic published a new version meanwhile: show it, and ask for agreement again.
        setAgreed(false);
        await loadNotice();
      }
    } finally {
      setBusy(false);
    }
  }

  const text = notice ? (notice.texts[locale] ?? notice.texts.en ?? Object.values(notice.texts)[0] ?? "") : "";
  const paragraphs = text.split(/\n\s*\n/).filter((p) => p.trim());
  const describedBy = [error ? "enroll-error" : "", noticeError ? "notice-error" : ""].filter(Boolean).join(" ");

  return (
    <main id="main" class="enroll">
      <h1>{t("enroll.title")}</h1>
      <p>{t("enroll.intro")}</p>
      <form onSubmit={submit} class="card" aria-describedby={describedBy || undefined}>
        <label for="code">{t("enroll.code")}</label>
        <input id="code" name="code" required autocomplete="off" autocapitalize="characters" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
        <label for="email">{t("field.email")}</label>
        <input id="email" name="email" type="email" required autocomplete="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <label for="password">{t("field.password")}</label>
        <input id="password" name="password" type="password" required minLength={10} autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <OneTimeCode asked={askOtp} value={otp} onInput={setOtp} t={t} />
        {notice && (
          <section class="privacy-notice" aria-labelledby="notice-title" tabIndex={0}>
            <h2 id="notice-title">{t("enroll.notice.title", { clinic: notice.clinic, version: notice.version })}</h2>
            {paragraphs.map((p, i) => (
              <p key={i}>{p}</p>
            ))}
          </section>
        )}
        {!notice && !noticeError && <p role="status">{t("enroll.notice.loading")}</p>}
        {noticeError && (
          <p id="notice-error" class="error" role="alert">
            {t("enroll.notice.unavailable")} {noticeError}{" "}
            <button type="button" class="link" onClick={() => void loadNotice()}>{t("enroll.notice.retry")}</button>
          </p>
        )}
        <label class="agree" for="agree">
          <input id="agree" name="agree" type="checkbox" required disabled={!notice} checked={agreed} onChange={(e) => setAgreed(e.currentTarget.checked)} />
          <span>{t("enroll.notice.agree")}</span>
        </label>
        {error && <p id="enroll-error" class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy || !notice || !agreed}>{t("enroll.submit")}</button>
      </form>
      <p><button type="button" class="link" onClick={() => go("signin")}>{t("enroll.haveAccount")}</button></p>
    </main>
  );
}
