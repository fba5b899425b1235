// My data's small rules as plain functions (unit-tested in Node): the export's file name, the
// time zones offered, the receipt's date in the patient's words.

/** csu-tracker-export-2026-11-30.json: the local date of the download. */
export function exportFileName(today: string): string {
  return `csu-tracker-export-${today}.json`;
}

/** The IANA zones this browser knows, with the saved and the device's zone always present. */
export function timeZones(known: readonly string[], ...always: (string | undefined)[]): string[] {
  const zones = new Set(known);
  for (const zone of always) if (zone) zones.add(zone);
  return [...zones].sort((a, b) => a.localeCompare(b));
}

export function supportedTimeZones(): string[] {
  const intl = Intl as typeof Intl & { supportedValuesOf?: (key: "timeZone") => string[] };
  return intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : [];
}

export function deviceTimeZone(): string | undefined {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined;
}

/** A server timestamp as a date and time in the patient's language and time zone. */
export function receiptDate(locale: string, iso: string, timeZone: string | undefined): string {
  const preferred = typeof navigator === "undefined" ? [] : navigator.languages;
  const tag = preferred.find((t) => t.toLowerCase().split("-")[0] === locale) ?? locale;
  return new Intl.DateTimeFormat(tag, { dateStyle: "long", timeStyle: "short", timeZone: timeZone || undefined }).format(new Date(iso));
}
