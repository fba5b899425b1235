import { describe, expect, it } from "vitest";
import { draftRebase } from "../src/store/drafts";
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

describe("draftRebase (an unsaved entry over a newer saved one)", () => {
  it("keeps what the patient changed and takes everything else from the newer record", () => {
    const base = { wheals: 1, itch: 1, note: "", aas: [null, null] };
    const draft = { wheals: 1, itch: 3, note: "", aas: [null, null] };
    const current = { wheals: 0, itch: 0, note: "from the tablet", aas: [null, null] };
    expect(draftRebase(draft, base, current)).toEqual({ wheals: 0, itch: 3, note: "from the tablet", aas: [null, null] });
  });
  it("a field both changed keeps the patient's value (it is what they are about to save)", () => {
    expect(draftRebase({ wheals: 2 }, { wheals: 1 }, { wheals: 3 })).toEqual({ wheals: 2 });
  });
});
