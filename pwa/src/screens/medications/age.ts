// How old a kept copy of a server view is, in the patient's words (Intl, no catalogue needed).
import type { Locale } from "../../i18n";

export function ageText(locale: Locale, fetchedAt: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(fetchedAt) - now) / 1000);
  const format = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return format.format(0, "minute");
  if (abs < 3600) return format.format(Math.round(seconds / 60), "minute");
  if (abs < 86_400) return format.format(Math.round(seconds / 3600), "hour");
  return format.format(Math.round(seconds / 86_400), "day");
}
