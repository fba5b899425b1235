// Every string a patient sees comes from en.json / de.json; dates go through Intl.
import de from "./de.json";
import en from "./en.json";

export type Key = keyof typeof en;
export type Locale = "en" | "de";

const CATALOGS: Record<Locale, Record<Key, string>> = { en, de };

export function pickLocale(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const lang = tag.toLowerCase().split("-")[0];
    if (lang === "de" || lang === "en") return lang;
  }
  return "en";
}

export function translator(locale: Locale) {
  const catalog = CATALOGS[locale];
  return (key: Key, params: Record<string, string | number> = {}): string =>
    catalog[key].replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? `{${name}}`));
}

export function formatDay(locale: Locale, day: string): string {
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(Date.UTC(y ?? 2000, (m ?? 1) - 1, d ?? 1));
  return new Intl.DateTimeFormat(locale, { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }).format(date);
}
