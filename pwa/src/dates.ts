// Local calendar dates in the patient's time zone (DESIGN.md §5: the diary date is local).

export function localToday(timeZone: string | undefined, now = new Date()): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timeZone || undefined,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(now);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

export function localHour(timeZone: string | undefined, now = new Date()): number {
  return Number(
    new Intl.DateTimeFormat("en-GB", { timeZone: timeZone || undefined, hour: "2-digit", hour12: false }).format(now),
  );
}
