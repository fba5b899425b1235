/**
 * Free text without the control characters the server refuses in it (platform/core/text.py:
 * C0 except tab and line breaks, DEL, C1), which pasted text can carry: one stray character
 * would have the whole day's entry refused (found by review).
 */
export function printable(text: string): string {
  return Array.from(text)
    .filter((c) => {
      const n = c.codePointAt(0) ?? 0;
      return !((n < 0x20 && n !== 0x09 && n !== 0x0a && n !== 0x0d) || (n >= 0x7f && n <= 0x9f));
    })
    .join("");
}
