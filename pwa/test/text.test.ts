import { describe, expect, it } from "vitest";
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
