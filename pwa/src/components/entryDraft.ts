// A diary entry being typed (Today's form) and how unsaved input meets an entry saved since it
// began (another tab, another device): the patient's changes over the newer entry, field by
// field, the swelling answers item by item and together with their swelling "yes" (as the
// server merges: DESIGN.md §6, patients/sync/merge.py).

export interface Form {
  wheals: number | null;
  itch: number | null;
  angioedema: boolean;
  aas: (number | null)[];
  note: string;
}

export const NO_AAS: (number | null)[] = [null, null, null, null, null];
export const EMPTY: Form = { wheals: null, itch: null, angioedema: false, aas: NO_AAS, note: "" };

/** An unsaved entry: the form, the values it began from and the entry's version then. */
export interface Draft {
  form: Form;
  base: Form;
  version: number;
}

export type FormField = "wheals" | "itch" | "angioedema" | "aas" | "note";

export interface Rebased {
  form: Form;
  /** Fields both sides changed to different values: the patient's are shown (and win on Save). */
  both: FormField[];
}

/** The same values (forms are plain JSON). */
export const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The patient's changes (`draft` against `base`, what it began from) over `current`, the entry as
 * saved since. A field the patient left keeps the newer value; one they changed keeps theirs,
 * and is named in `both` when the other side changed it too. Swelling answers go item by item,
 * and a changed answer keeps its swelling "yes"; swelling "no" clears them.
 */
export function rebaseEntry(draft: Form, base: Form, current: Form): Rebased {
  const both: FormField[] = [];
  function pick<K extends "wheals" | "itch" | "note">(field: K): Form[K] {
    if (same(draft[field], base[field])) return current[field];
    if (!same(current[field], base[field]) && !same(current[field], draft[field])) both.push(field);
    return draft[field];
  }
  const wheals = pick("wheals");
  const itch = pick("itch");
  const note = pick("note");
  const mineAas = draft.aas.map((v, i) => v !== (base.aas[i] ?? null));
  const mineSwelling = draft.angioedema !== base.angioedema || mineAas.some(Boolean);
  const angioedema = mineSwelling ? draft.angioedema : current.angioedema;
  if (mineSwelling && current.angioedema !== base.angioedema && current.angioedema !== draft.angioedema) both.push("angioedema");
  let aas = NO_AAS;
  if (angioedema) {
    // Their answers where they have them, else the ones the patient saw.
    const theirs = (i: number) => (current.angioedema ? (current.aas[i] ?? null) : (base.aas[i] ?? null));
    aas = draft.aas.map((v, i) => (mineAas[i] ? v : theirs(i)));
    if (current.angioedema && mineAas.some((m, i) => m && current.aas[i] !== (base.aas[i] ?? null) && current.aas[i] !== draft.aas[i])) both.push("aas");
  } else if (current.angioedema && !same(current.aas, base.aas)) {
    both.push("aas"); // their new answers, cleared by the patient's "no"
  }
  return { form: { wheals, itch, angioedema, aas, note }, both };
}
