// Day by day: the three rates (percent, left axis) over runs started per day (bars, right axis).
import { lazy, Suspense, useEffect, useMemo, useState } from "react";
import uPlot from "uplot";
import { count, dayLabel, NONE, pct, type Series } from "./format";
import type { Summary } from "../api/types.gen";
import type { UPlotOptions } from "./UPlot";

// uPlot loads with the first chart, not with the screen.
const UPlot = lazy(() => import("./UPlot").then((m) => ({ default: m.UPlot })));
import "./metrics.css";

interface Colors {
  fg: string;
  muted: string;
  faint: string;
  border: string;
  accent: string;
  warn: string;
  ok: string;
}

function readColors(): Colors {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: v("--fg", "#1b1d22"),
    muted: v("--muted", "#5d6370"),
    faint: v("--faint", "#8b919c"),
    border: v("--border", "#e3e5e9"),
    accent: v("--accent", "#5466e0"),
    warn: v("--warn", "#c27c0e"),
    ok: v("--ok", "#1f9d55"),
  };
}

/** The theme's colors, read again whenever the `dark` class on <html> changes. */
function useThemeColors(): Colors {
  const [colors, setColors] = useState(readColors);
  useEffect(() => {
    const root = document.documentElement;
    const observer = new MutationObserver(() => setColors(readColors()));
    observer.observe(root, { attributes: true, attributeFilter: ["class"] });
    return () => observer.disconnect();
  }, []);
  return colors;
}

/** "#rrggbb" with an alpha, for canvas fills (canvas does not resolve CSS variables). */
function alpha(color: string, a: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return color;
  const [r, g, b] = [m[1], m[2], m[3]].map((h) => parseInt(h!, 16));
  return `rgba(${r}, ${g}, ${b}, ${a})`;
}

const DAY_S = 86_400;
const isoDay = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);

type Key = "promptSuccess" | "override" | "automation";
const LINES: { key: Key; label: string; color: keyof Colors; total: (s: Summary) => number | null }[] = [
  { key: "promptSuccess", label: "Prompt success", color: "accent", total: (s) => s.prompt_success.value },
  { key: "override", label: "Human override", color: "warn", total: (s) => s.human_override.value },
  { key: "automation", label: "Automation coverage", color: "ok", total: (s) => s.automation_coverage.value },
];

export function MetricsChart({ series, total, height = 220 }: { series: Series; total: Summary; height?: number }) {
  const colors = useThemeColors();
  const [hover, setHover] = useState<number | null>(null);

  const options = useMemo<UPlotOptions>(() => {
    const font = "11px Inter, ui-sans-serif, system-ui, sans-serif";
    const axis = { stroke: colors.muted, font, ticks: { show: false }, grid: { show: false } };
    return {
      legend: { show: false },
      padding: [8, 4, 0, 0],
      cursor: {
        y: false,
        drag: { x: false, y: false },
        points: { size: 7, width: 2 },
      },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: {
        // Half a day either side, so the first and last bars are whole.
        x: { time: true, range: (_u, min, max) => [min - DAY_S / 2, max + DAY_S / 2] },
        "%": { auto: false, range: [0, 100] },
        n: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.2))] },
      },
      axes: [
        {
          ...axis,
          size: 28,
          space: 64,
          incrs: [DAY_S, 2 * DAY_S, 7 * DAY_S, 14 * DAY_S, 28 * DAY_S],
          values: (_u, splits) => splits.map((s) => dayLabel(isoDay(s))),
        },
        {
          ...axis,
          scale: "%",
          size: 44,
          splits: () => [0, 25, 50, 75, 100],
          values: (_u, splits) => splits.map((s) => `${s}%`),
          grid: { show: true, stroke: colors.border, width: 1 },
        },
        {
          ...axis,
          scale: "n",
          side: 1,
          size: 44,
          incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000, 100_000],
          values: (_u, splits) => splits.map((s) => count(s)),
        },
      ],
      series: [
        {},
        {
          label: "Runs",
          scale: "n",
          fill: alpha(colors.faint, 0.28),
          stroke: alpha(colors.faint, 0.5),
          width: 0,
          paths: uPlot.paths.bars?.({ size: [0.6, 24], gap: 1 }),
          points: { show: false },
        },
        ...LINES.map((l) => ({
          label: l.label,
          scale: "%",
          stroke: colors[l.color],
          width: 2,
          spanGaps: true,
          points: { size: 4, fill: colors[l.color] },
        })),
      ],
      hooks: {
        setCursor: [(u: uPlot) => setHover(u.cursor.idx ?? null)],
      },
    };
  }, [colors]);

  const data = useMemo<uPlot.AlignedData>(
    () => [series.x, series.runs, series.promptSuccess, series.override, series.automation],
    [series],
  );

  const day = hover !== null ? series.days[hover] : undefined;
  const value = (key: Key) => {
    if (hover === null) return null;
    const v = series[key][hover];
    return v === null || v === undefined ? null : v / 100;
  };

  return (
    <div className="metrics-chart" data-testid="metrics-chart">
      <div className="mb-2 flex flex-wrap items-center gap-x-4 gap-y-1 text-[11.5px] text-muted" aria-live="polite">
        <span className="w-24 shrink-0 font-medium text-fg tabular-nums">{day ? dayLabel(day) : "Whole window"}</span>
        {LINES.map((l) => (
          <span key={l.key} className="flex items-center gap-1.5">
            <span className="h-0.5 w-3 rounded-full" style={{ background: colors[l.color] }} aria-hidden />
            {l.label}
            <span className="min-w-8 font-medium text-fg tabular-nums">{pct(day ? value(l.key) : l.total(total))}</span>
          </span>
        ))}
        <span className="flex items-center gap-1.5">
          <span className="size-2.5 rounded-sm" style={{ background: alpha(colors.faint, 0.4) }} aria-hidden />
          Runs started
          <span className="min-w-8 font-medium text-fg tabular-nums">
            {day && hover !== null ? count(series.runs[hover] ?? 0) : series.days.length ? count(total.runs_started) : NONE}
          </span>
        </span>
      </div>
      <Suspense fallback={<div style={{ height }} />}>
        <UPlot options={options} data={data} height={height} />
      </Suspense>
    </div>
  );
}
