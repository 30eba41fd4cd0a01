import { describe, expect, it } from "vitest";
import { ensureValidLanguage } from "./locale";

const fake = (language: string) => ({ language }) as unknown as Navigator;

describe("ensureValidLanguage", () => {
  it("replaces a POSIX locale name that Intl refuses", () => {
    const nav = fake("C");
    expect(() => new Intl.NumberFormat(nav.language)).toThrow(RangeError);
    ensureValidLanguage(nav);
    expect(nav.language).toBe("en-US");
  });

  it("keeps a real language tag", () => {
    const nav = fake("de-CH");
    ensureValidLanguage(nav);
    expect(nav.language).toBe("de-CH");
  });
});
