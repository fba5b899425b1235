// Every string a patient sees comes from the catalogues here; dates go through Intl.
// One catalogue per area (common: en.json/de.json; each screen its own *.en.json/*.de.json),
// merged below. German must have every English key: the type check refuses a missing one.
import accountDe from "./account.de.json";
import accountEn from "./account.en.json";
import conflictsDe from "./conflicts.de.json";
import conflictsEn from "./conflicts.en.json";
import de from "./de.json";
import errorsDe from "./errors.de.json";
import errorsEn from "./errors.en.json";
import en from "./en.json";
import historyDe from "./history.de.json";
import historyEn from "./history.en.json";
import medicationsDe from "./medications.de.json";
import medicationsEn from "./medications.en.json";
import mydataDe from "./mydata.de.json";
import mydataEn from "./mydata.en.json";
import questionnairesDe from "./questionnaires.de.json";
import questionnairesEn from "./questionnaires.en.json";
import remindersDe from "./reminders.de.json";
import remindersEn from "./reminders.en.json";

const EN = { ...en, ...errorsEn, ...conflictsEn, ...historyEn, ...medicationsEn, ...questionnairesEn, ...remindersEn, ...mydataEn, ...accountEn };

export type Key = keyof typeof EN;
export type Locale = "en" | "de";
export const LOCALES: readonly Locale[] = ["en", "de"];

const DE: Record<Key, string> = { ...de, ...errorsDe, ...conflictsDe, ...historyDe, ...medicationsDe, ...questionnairesDe, ...remindersDe, ...mydataDe, ...accountDe };
const CATALOGS: Record<Locale, Record<Key, string>> = { en: EN, de: DE };

export function pickLocale(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const lang = tag.toLowerCase().split("-")[0];
    if (lang === "de" || lang === "en") return lang;
  }
  return "en";
}

/** Whether the catalogues have this key (for keys built from a server's code). */
export function isKey(key: string): key is Key {
  return Object.prototype.hasOwnProperty.call(EN, key);
}

export function translator(locale: Locale) {
  const catalog = CATALOGS[locale];
  return (key: Key, params: Record<string, string | number> = {}): string =>
    catalog[key].replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? `{${name}}`));
}

/**
 * The tag for formatting dates and numbers: the browser's own regional variant of the app's
 * language (en-GB writes "30 November 2026", en-US "November 30, 2026"), else the language.
 */
export function dateLocale(locale: Locale): string {
  const preferred = typeof navigator === "undefined" ? [] : (navigator.languages ?? [navigator.language]);
  return preferred.find((tag) => tag.toLowerCase().split("-")[0] === locale) ?? locale;
}

export function formatDay(locale: Locale, day: string, style: "long" | "short" = "long"): string {
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(Date.UTC(y ?? 2000, (m ?? 1) - 1, d ?? 1));
  const options: Intl.DateTimeFormatOptions =
    style === "long"
      ? { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }
      : { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" };
  return new Intl.DateTimeFormat(dateLocale(locale), options).format(date);
}
