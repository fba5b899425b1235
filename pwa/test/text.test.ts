import { describe, expect, it } from "vitest";
import { rebaseEntry } from "../src/components/entryDraft";
import { printable } from "../src/text";

describe("printable (the note as the server accepts it)", () => {
  it("drops C0, DEL and C1 control characters", () => {
    expect(printable("itchy\u0007 all\u0000 day\u007f\u0085\u009f")).toBe("itchy all day");
  });
  it("keeps tabs, line breaks and every other character", () => {
    const text = "line one\r\nline two\tend — Quaddeln 皮肤 \u202e 🙂";
    expect(printable(text)).toBe(text);
  });
});

describe("rebaseEntry (Today's unsaved entry over one saved since)", () => {
  const base = { wheals: 1, itch: 1, angioedema: true, aas: [2, 2, 2, 2, 2], note: "orig" };
  it("takes the other side's fields the patient left, and names the ones both changed", () => {
    const draft = { ...base, itch: 2, note: "phone note" };
    const current = { ...base, wheals: 3, note: "tablet note" };
    expect(rebaseEntry(draft, base, current)).toEqual({ form: { ...base, wheals: 3, itch: 2, note: "phone note" }, both: ["note"] });
  });
  it("merges swelling answers item by item, naming an item both changed", () => {
    const draft = { ...base, aas: [3, 2, 2, 2, 2] };
    const current = { ...base, aas: [2, 2, 0, 2, 2] };
    expect(rebaseEntry(draft, base, current).form.aas).toEqual([3, 2, 0, 2, 2]);
    const clash = rebaseEntry(draft, base, { ...base, aas: [1, 2, 2, 2, 2] });
    expect(clash).toMatchObject({ form: { aas: [3, 2, 2, 2, 2] }, both: ["aas"] });
  });
  it("a changed answer keeps its swelling yes over the other side's no (they win together)", () => {
    const draft = { ...base, aas: [3, 2, 2, 2, 2] };
    const current = { ...base, angioedema: false, aas: [null, null, null, null, null] };
    expect(rebaseEntry(draft, base, current)).toEqual({ form: { ...base, aas: [3, 2, 2, 2, 2] }, both: ["angioedema"] });
  });
  it("the patient's no clears answers the other side changed, and says so", () => {
    const draft = { ...base, angioedema: false, aas: [null, null, null, null, null] };
    const current = { ...base, aas: [0, 0, 0, 0, 0] };
    expect(rebaseEntry(draft, base, current)).toEqual({ form: { ...draft }, both: ["aas"] });
  });
});
