// Unsaved input of a form, kept in this tab's sessionStorage until it is saved: it survives the
// tab reloading for a new version, the screen being replaced while the patient signs in again,
// and leaving the screen. It never leaves the device, and it is wiped with everything else at
// sign-out and when another user signs in (Session.wipe), and by the server's Clear-Site-Data.

const KEY = "csu-drafts";

type Forms = Record<string, unknown>;

function read(): Forms {
  try {
    const raw = sessionStorage.getItem(KEY);
    const forms: unknown = raw ? JSON.parse(raw) : {};
    return typeof forms === "object" && forms !== null ? (forms as Forms) : {};
  } catch {
    return {}; // storage unavailable or unreadable: no drafts
  }
}

function write(forms: Forms): void {
  try {
    if (Object.keys(forms).length === 0) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, JSON.stringify(forms));
  } catch {
    // Full or unavailable: the form still holds the input while the screen is open.
  }
}

/** The draft of form `name`, if one was left unsaved. */
export function draftGet<T>(name: string): T | undefined {
  return read()[name] as T | undefined;
}

export function draftSet(name: string, value: unknown): void {
  write({ ...read(), [name]: value });
}

export function draftDrop(name: string): void {
  const forms = read();
  if (!(name in forms)) return;
  write(Object.fromEntries(Object.entries(forms).filter(([key]) => key !== name)));
}

export function draftsClear(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing to clear.
  }
}
