import { useEffect, useMemo, useState } from "preact/hooks";
import { type Locale, translator } from "./i18n";
import { appLocale, LOCALE_KEY, type Session } from "./session";
import { metaGet } from "./store/meta";
import { settingsSave } from "./store/settings";
import type { SyncOutcome } from "./sync/engine";
import { localToday } from "./dates";
import { uctDue } from "./questionnaireDue";
import { Conflicts } from "./screens/Conflicts";
import { Ctx, MAIN_ROUTES, PATHS, type Route, routeFromPath } from "./screens/context";
import { Enroll } from "./screens/Enroll";
import { History } from "./screens/History";
import { Medications } from "./screens/Medications";
import { MyData } from "./screens/MyData";
import { Questionnaires } from "./screens/Questionnaires";
import { Reminders } from "./screens/Reminders";
import { SignIn } from "./screens/SignIn";
import { Today } from "./screens/Today";
import { VerifyEmailNotice } from "./screens/VerifyEmailNotice";

/** The code of an enrollment link (`/enroll#code=ABCD-EFGH`, kept across the redirect). */
function codeFromFragment(): string {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  return params.get("code") ?? "";
}

export function App({ session, updateReady }: { session: Session; updateReady: () => (() => void) | null }) {
  const [locale, setLocale] = useState<Locale>(appLocale);
  const t = useMemo(() => translator(locale), [locale]);
  const [code] = useState(codeFromFragment);
  const [route, setRoute] = useState<Route>(() => (code ? "enroll" : routeFromPath(location.pathname)));
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  const [outcome, setOutcome] = useState<SyncOutcome | null>(null);
  const [revision, setRevision] = useState(0);
  const [update, setUpdate] = useState<(() => void) | null>(null);

  useEffect(() => {
    if (code) history.replaceState(null, "", PATHS.enroll); // the code leaves the address bar
    document.documentElement.lang = locale;
  }, [code, locale]);

  useEffect(() => {
    const off = session.onChange((o) => {
      setOutcome(o);
      setRevision((r) => r + 1);
    });
    void session.isSignedIn().then(setSignedIn);
    const timer = window.setInterval(() => setUpdate(() => updateReady()), 2000);
    return () => {
      off();
      window.clearInterval(timer);
    };
  }, [session, updateReady]);

  useEffect(() => {
    void session.isSignedIn().then(setSignedIn);
    // Signed in, the app speaks the patient's language from the profile (changed on another
    // device, or before this browser), as the server's emails and notifications do.
    void metaGet<string>(session.db, "locale").then((profile) => {
      if ((profile === "en" || profile === "de") && profile !== localStorage.getItem(LOCALE_KEY)) {
        localStorage.setItem(LOCALE_KEY, profile);
        setLocale(profile);
      }
    });
  }, [session, revision]);

  // The UCT is asked every 4 weeks: a prompt on Today and a mark in the navigation when due.
  const [uctIsDue, setUctIsDue] = useState(false);
  useEffect(() => {
    void (async () => {
      if (!(await session.isSignedIn())) return;
      const zone = await metaGet<string>(session.db, "timezone");
      setUctIsDue((await uctDue(session.db, localToday(zone))).due);
    })();
  }, [session, revision, route]);

  function go(next: Route) {
    history.pushState(null, "", PATHS[next]);
    setRoute(next);
    void session.isSignedIn().then(setSignedIn);
  }

  useEffect(() => {
    const onPop = () => setRoute(routeFromPath(location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  /** The app's language at once; when signed in, the server's too (its emails and the
   * reminders' notifications follow it). My data saves it itself and reports a refusal there. */
  function changeLocale(next: Locale) {
    localStorage.setItem(LOCALE_KEY, next);
    setLocale(next);
    void (async () => {
      if (!(await session.isSignedIn()) || !(await metaGet<string>(session.db, "patient_id"))) return;
      try {
        await settingsSave(session.db, { locale: next });
        session.changed();
      } catch {
        // Unknown patient yet (first sync pending): the next sign-in sends the profile's locale.
      }
    })();
  }

  async function signOut() {
    // Send what waits first, where there is a connection; then say what signing out would lose.
    if ((await session.db.outbox.count()) > 0) await session.sync();
    const unsent = await session.db.outbox.count();
    const ended = session.lastOutcome?.status === "sign_in_required";
    const question = !unsent
      ? t("signOut.confirm")
      : ended
        ? t("signOut.confirmUnsentSignIn", { count: unsent })
        : unsent === 1
          ? t("signOut.confirmUnsentOne")
          : t("signOut.confirmUnsent", { count: unsent });
    if (!window.confirm(question)) return;
    await session.signOut();
    setSignedIn(false);
    go("signin");
  }

  if (signedIn === null) return null;
  const needsSignIn = !signedIn || outcome?.status === "sign_in_required";
  const screen = needsSignIn ? (route === "enroll" ? "enroll" : "signin") : route === "enroll" || route === "signin" ? "today" : route;
  // The tab's title names the screen (read first by a screen reader, shown in the task switcher).
  const heading = screen === "enroll" ? t("enroll.title") : screen === "signin" ? t("signIn.title") : t(`nav.${screen}`);
  document.title = `${heading} · ${t("app.title")}`;

  return (
    <Ctx.Provider value={{ session, locale, t, go, setLocale: changeLocale }}>
      <a class="skip" href="#main">{t("nav.skip")}</a>
      <header class="bar">
        <span class="brand">{t("app.title")}</span>
        <label class="lang">
          <span class="visually-hidden">{t("lang.label")}</span>
          <select value={locale} onChange={(e) => changeLocale(e.currentTarget.value as Locale)}>
            <option value="en">English</option>
            <option value="de">Deutsch</option>
          </select>
        </label>
        {/* Also when the sign-in has ended: whoever holds the device can still remove the diary. */}
        {signedIn && (
          <button type="button" class="link" onClick={() => void signOut()}>{t("nav.signOut")}</button>
        )}
      </header>
      {outcome?.status === "offline" && <p class="banner" role="status">{t("sync.offline")}</p>}
      {outcome?.status === "unavailable" && <p class="banner" role="status">{t("sync.unavailable")}</p>}
      {outcome?.status === "consent_required" && !needsSignIn && (
        <p class="banner" role="status">
          {t("error.code.consent_required")}{" "}
          {screen !== "mydata" && <button type="button" class="link" onClick={() => go("mydata")}>{t("consent.open")}</button>}
        </p>
      )}
      {(outcome?.status === "upgrade_required" || update) && (
        <p class="banner" role="status">
          {outcome?.status === "upgrade_required" ? t("sync.upgrade") : t("update.available")}{" "}
          <button type="button" onClick={() => (update ? update() : location.reload())}>{t("sync.reload")}</button>
        </p>
      )}
      {!needsSignIn && <Conflicts revision={revision} />}
      {!needsSignIn && <VerifyEmailNotice />}
      {screen === "enroll" && <Enroll initialCode={code} />}
      {screen === "signin" && <SignIn again={signedIn === true} />}
      {!needsSignIn && (
        <nav class="tabs" aria-label={t("nav.label")}>
          {MAIN_ROUTES.map((r) => (
            <a
              key={r}
              href={PATHS[r]}
              aria-current={screen === r ? "page" : undefined}
              onClick={(e) => {
                e.preventDefault();
                go(r);
              }}
            >
              {t(`nav.${r}`)}
              {r === "questionnaires" && uctIsDue && <span class="due"> {t("nav.due")}</span>}
            </a>
          ))}
        </nav>
      )}
      {screen === "today" && uctIsDue && (
        <p class="banner prompt" role="status">
          {t("uctPrompt.text")}{" "}
          <a
            href={PATHS.questionnaires}
            onClick={(e) => {
              e.preventDefault();
              go("questionnaires");
            }}
          >
            {t("uctPrompt.open")}
          </a>
        </p>
      )}
      {screen === "today" && <Today revision={revision} />}
      {screen === "history" && <History revision={revision} />}
      {screen === "medications" && <Medications revision={revision} />}
      {screen === "questionnaires" && <Questionnaires revision={revision} />}
      {screen === "reminders" && <Reminders revision={revision} />}
      {screen === "mydata" && <MyData revision={revision} />}
    </Ctx.Provider>
  );
}
