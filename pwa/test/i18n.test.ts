// The catalogues are merged by spreading (src/i18n/index.ts): a key defined in two area files
// would silently take one file's text on another screen. Each key lives in one file, and German
// has exactly the English keys.
import { describe, expect, it } from "vitest";

const FILES = import.meta.glob<Record<string, string>>("../src/i18n/*.json", { eager: true, import: "default" });

function catalogues(lang: "en" | "de"): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  for (const [path, catalogue] of Object.entries(FILES)) {
    const file = path.split("/").pop() ?? path;
    if (file !== `${lang}.json` && !file.endsWith(`.${lang}.json`)) continue;
    for (const key of Object.keys(catalogue)) owners.set(key, [...(owners.get(key) ?? []), file]);
  }
  return owners;
}

describe("message catalogues", () => {
  it.each(["en", "de"] as const)("%s: every key is defined in one file only", (lang) => {
    expect(catalogues(lang).size).toBeGreaterThan(100);
    const twice = [...catalogues(lang)].filter(([, files]) => files.length > 1);
    expect(twice).toEqual([]);
  });

  it("German has the English keys, no more and no fewer", () => {
    expect([...catalogues("de").keys()].sort()).toEqual([...catalogues("en").keys()].sort());
  });
});
