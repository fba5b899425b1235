// Unsaved input of a form, kept in this tab's sessionStorage until it is saved: it survives the
// tab reloading for a new version, the screen being replaced while the patient signs in again,
// and leaving the screen. It never leaves the device. It belongs to one user: another user's
// drafts are never read and go at the first look (another tab of the same browser may still
// hold them after a sign-in elsewhere; found by review), and Session.wipe and the server's
// Clear-Site-Data remove them at sign-out.

const KEY = "csu-drafts";

type Drafts = { user: string; forms: Record<string, unknown> };

function read(): Drafts | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    const drafts = raw ? (JSON.parse(raw) as Partial<Drafts>) : undefined;
    return typeof drafts?.user === "string" && typeof drafts.forms === "object" && drafts.forms !== null
      ? (drafts as Drafts)
      : undefined;
  } catch {
    return undefined; // storage unavailable or unreadable: no drafts
  }
}

function write(drafts: Drafts): void {
  try {
    if (Object.keys(drafts.forms).length === 0) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, JSON.stringify(drafts));
  } catch {
    // Full or unavailable: the form still holds the input while the screen is open.
  }
}

/** This user's drafts (another user's are removed). */
function mine(user: string): Record<string, unknown> {
  const drafts = read();
  if (drafts === undefined) return {};
  if (drafts.user !== user) {
    draftsClear();
    return {};
  }
  return drafts.forms;
}

/** The draft of form `name`, if `user` left one unsaved. */
export function draftGet<T>(user: string, name: string): T | undefined {
  return mine(user)[name] as T | undefined;
}

/** The names of `user`'s drafts that start with `prefix`. */
export function draftNames(user: string, prefix: string): string[] {
  return Object.keys(mine(user)).filter((name) => name.startsWith(prefix));
}

export function draftSet(user: string, name: string, value: unknown): void {
  write({ user, forms: { ...mine(user), [name]: value } });
}

export function draftDrop(user: string, name: string): void {
  const forms = mine(user);
  if (!(name in forms)) return;
  write({ user, forms: Object.fromEntries(Object.entries(forms).filter(([key]) => key !== name)) });
}

export function draftsClear(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing to clear.
  }
}
