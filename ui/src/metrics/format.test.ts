import { describe, expect, it } from "vitest";
import { drift, invoice, onboarding, ratio, report, summary } from "./fixtures";
import { dayLabel, driftLines, fillSeries, formatDuration, formatPsi, fraction, pct, rangeLabel, selectionDrift, windowOf } from "./format";

describe("formats", () => {
  it("percentages have no decimals and — for no data", () => {
    const cases: [number | null, string][] = [[null, "—"], [0, "0%"], [0.004, "0%"], [0.875, "88%"], [1, "100%"], [Number.NaN, "—"]];
    for (const [v, want] of cases) expect(pct(v)).toBe(want);
  });

  it("fractions say what was counted", () => {
    expect(fraction(ratio(12, 40), "prompt steps")).toBe("12 of 40 prompt steps");
    expect(fraction(ratio(1200, 4000), "runs")).toBe("1,200 of 4,000 runs");
    expect(fraction(ratio(0, 0), "human decisions")).toBe("no human decisions");
  });

  it("durations from seconds to days", () => {
    const cases: [number | null, string][] = [
      [null, "—"],
      [400, "<1s"],
      [45_400, "45s"],
      [60_000, "1m"],
      [12_000_000, "3h 20m"],
      [104_400_000, "1d 5h"],
    ];
    for (const [ms, want] of cases) expect(formatDuration(ms)).toBe(want);
  });

  it("drift indexes and days", () => {
    expect(formatPsi(0.4123)).toBe("0.41");
    expect(formatPsi(null)).toBe("—");
    expect(dayLabel("2026-11-05")).toBe("Nov 5");
    expect(rangeLabel("2026-11-01", "2026-11-30")).toBe("Nov 1 – Nov 30, 2026");
    expect(windowOf("7d").days).toBe(7);
    expect(windowOf("forever").value).toBe("30d");
  });
});

describe("fillSeries", () => {
  it("has every day of the window, with no rates where nothing happened", () => {
    const s = fillSeries(report({ since: "2026-11-01", until: "2026-11-05" }));
    expect(s.days).toEqual(["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]);
    expect(s.x[1]! - s.x[0]!).toBe(86_400);
    expect(s.x[0]).toBe(Date.UTC(2026, 10, 1) / 1000);
    expect(s.runs).toEqual([0, 60, 0, 0, 4]);
    expect(s.promptSuccess).toEqual([null, 87, null, null, null]);
    expect(s.override).toEqual([null, 30, null, null, null]);
  });

  it("is empty for a window it cannot read", () => {
    expect(fillSeries({ since: "?", until: "2026-11-05", series: [] }).days).toEqual([]);
  });
});

describe("selectionDrift", () => {
  it("takes the largest index among the versions and counts the flagged ones", () => {
    const d = selectionDrift([invoice, onboarding]);
    expect(d).toMatchObject({ index: 0.41, flagged: 1, versions: 3, threshold: 0.25 });
    expect(d.top?.version.version).toBe(invoice.versions[0]!.version);
  });

  it("has no index when no version had enough data", () => {
    expect(selectionDrift([onboarding])).toMatchObject({ index: null, flagged: 0, versions: 1, top: null });
    expect(selectionDrift([])).toMatchObject({ index: null, versions: 0 });
  });

  it("explains each component", () => {
    expect(driftLines(drift(0.3))).toEqual([
      "Decision mix: PSI 0.30 (baseline 412, recent 96)",
      "Tag mix: too few observations (baseline 4, recent 1)",
      "Output length: PSI 0.03 (baseline 380, recent 90)",
      "Prompt failures: PSI 0.01 (baseline 380, recent 90)",
    ]);
    expect(summary().prompt_success.value).toBeNull();
  });
});
