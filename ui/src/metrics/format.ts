// The metrics screen's pure logic: number formats, the day-by-day series with its gaps filled,
// and drift across the selection's versions. Tested with tables in format.test.ts.
import { duration } from "../inbox/sla";
import type { BlueprintMetrics, Drift, MetricsReport, Ratio, VersionMetrics } from "../api/types.gen";

export const NONE = "—";

/** The window choices of the header; the value is the API's `since`. */
export const WINDOWS = [
  { value: "7d", label: "7 days", days: 7 },
  { value: "30d", label: "30 days", days: 30 },
  { value: "90d", label: "90 days", days: 90 },
] as const;
export type WindowValue = (typeof WINDOWS)[number]["value"];
export const DEFAULT_WINDOW: WindowValue = "30d";

export function windowOf(value: string | null): (typeof WINDOWS)[number] {
  return WINDOWS.find((w) => w.value === value) ?? WINDOWS[1];
}

/** "42%" with no decimals, "—" when there is no data. */
export function pct(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  return `${Math.round(value * 100)}%`;
}

export function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** "12 of 40 prompt steps", or "no prompt steps" for an empty window. */
export function fraction(r: Ratio, noun: string): string {
  if (r.den <= 0) return `no ${noun}`;
  return `${count(r.num)} of ${count(r.den)} ${noun}`;
}

/** "45s", "3h 20m", "2d 4h", "—" (the inbox's `duration` from a minute up). */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return NONE;
  if (ms < 1000) return "<1s";
  if (ms < 60_000) return `${Math.floor(ms / 1000)}s`;
  return duration(ms);
}

export function formatPsi(psi: number | null | undefined): string {
  if (psi === null || psi === undefined || !Number.isFinite(psi)) return NONE;
  return psi.toFixed(2);
}

export function shortVersion(version: string): string {
  return version.slice(0, 8);
}

const DAY_MS = 86_400_000;

function dayMs(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** "Nov 20" for a UTC day "2026-11-20" (the counters' days are UTC). */
export function dayLabel(day: string): string {
  const ms = dayMs(day);
  if (Number.isNaN(ms)) return day;
  return new Date(ms).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}

/** "Nov 1 – Nov 30, 2026" */
export function rangeLabel(since: string, until: string): string {
  const year = until.slice(0, 4);
  return since === until ? `${dayLabel(since)}, ${year}` : `${dayLabel(since)} – ${dayLabel(until)}, ${year}`;
}

export interface Series {
  days: string[];
  /** Unix seconds of each day's start (UTC), uPlot's x values. */
  x: number[];
  runs: number[];
  /** Rates in percent; null where the day had nothing to divide by. */
  promptSuccess: (number | null)[];
  override: (number | null)[];
  automation: (number | null)[];
}

const asPct = (r: Ratio) => (r.value === null ? null : r.value * 100);

/** Every day of the window, days without activity included (0 runs, no rates). */
export function fillSeries(report: Pick<MetricsReport, "since" | "until" | "series">): Series {
  const byDay = new Map(report.series.map((d) => [d.day, d.summary]));
  const out: Series = { days: [], x: [], runs: [], promptSuccess: [], override: [], automation: [] };
  const start = dayMs(report.since);
  const end = dayMs(report.until);
  if (Number.isNaN(start) || Number.isNaN(end)) return out;
  for (let ms = start; ms <= end && out.days.length < 3660; ms += DAY_MS) {
    const day = new Date(ms).toISOString().slice(0, 10);
    const s = byDay.get(day);
    out.days.push(day);
    out.x.push(ms / 1000);
    out.runs.push(s?.runs_started ?? 0);
    out.promptSuccess.push(s ? asPct(s.prompt_success) : null);
    out.override.push(s ? asPct(s.human_override) : null);
    out.automation.push(s ? asPct(s.automation_coverage) : null);
  }
  return out;
}

export interface SelectionDrift {
  /** The largest index among the versions, null when none had enough data. */
  index: number | null;
  flagged: number;
  versions: number;
  threshold: number;
  /** The version with the largest index. */
  top: { blueprint: BlueprintMetrics; version: VersionMetrics } | null;
}

export function selectionDrift(blueprints: BlueprintMetrics[]): SelectionDrift {
  const out: SelectionDrift = { index: null, flagged: 0, versions: 0, threshold: 0.25, top: null };
  for (const b of blueprints) {
    out.threshold = b.drift.threshold;
    for (const v of b.versions) {
      out.versions += 1;
      if (v.drift.flagged) out.flagged += 1;
      if (v.drift.index !== null && (out.index === null || v.drift.index > out.index)) {
        out.index = v.drift.index;
        out.top = { blueprint: b, version: v };
      }
    }
  }
  return out;
}

const COMPONENTS: Record<string, string> = {
  decisions: "Decision mix",
  tags: "Tag mix",
  output_length: "Output length",
  prompt_failures: "Prompt failures",
};

export function componentLabel(name: string): string {
  return COMPONENTS[name] ?? name.replace(/_/g, " ");
}

/** One line per component: "Decision mix: 0.31 (412 → 96)" or "… too few observations". */
export function driftLines(drift: Drift): string[] {
  return drift.components.map((c) => {
    const n = `baseline ${count(c.baseline_n)}, recent ${count(c.recent_n)}`;
    return c.psi === null
      ? `${componentLabel(c.name)}: too few observations (${n})`
      : `${componentLabel(c.name)}: PSI ${formatPsi(c.psi)} (${n})`;
  });
}

export function driftTitle(drift: Drift): string {
  const head =
    drift.index === null
      ? "Drift: too few observations to compare"
      : `Drift index ${formatPsi(drift.index)}${drift.flagged ? ` — at or above ${formatPsi(drift.threshold)}, flagged` : ""}`;
  return [head, ...driftLines(drift)].join("\n");
}

export const DEFINITIONS = {
  prompt:
    "Prompt success rate: prompt steps that produced a valid output from the first agent, first try, with no repair and no fallback / all prompt steps.",
  override:
    "Human override: human decisions that edited or rejected / all human decisions (policy and SLA decisions are not human).",
  automation: "Automation coverage: finished runs with no human decision, vote or retry / finished runs.",
  latency:
    "Decision latency: task created → final decision, median (p50) and 95th percentile, with the share of decided tasks that were escalated and the share that breached their SLA.",
  drift:
    "Process drift index: the largest population-stability index (PSI) among decision mix, tag mix, output length and prompt failures, the recent days against the baseline days before them. 0.25 or more is flagged.",
} as const;
