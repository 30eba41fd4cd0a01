// Metrics: the five ProcessOps numbers for a window and a process, day by day, per blueprint
// and version, each explainable down to the runs behind it.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { BarChart3, ChevronRight, Loader2 } from "lucide-react";
import { useMemo, useState, type ReactNode } from "react";
import { Link, useSearchParams } from "react-router";
import { api } from "../api/client";
import { Badge, Button, EmptyState, ErrorState, inputClass, PageHeader } from "../components/ui";
import { BreakdownTable } from "./BreakdownTable";
import { CARDS, DrillPanel, type Card, type DrillTarget } from "./DrillPanel";
import {
  count,
  dayLabel,
  DEFAULT_WINDOW,
  fillSeries,
  formatDuration,
  formatPsi,
  fraction,
  pct,
  rangeLabel,
  selectionDrift,
  WINDOWS,
  windowOf,
} from "./format";
import { MetricsChart } from "./MetricsChart";
import type { MetricsReport } from "../api/types.gen";

export function MetricsPage() {
  const [params, setParams] = useSearchParams();
  const win = windowOf(params.get("since"));
  const blueprint = params.get("blueprint") ?? "";
  const [drill, setDrill] = useState<DrillTarget | null>(null);

  const setParam = (key: "since" | "blueprint", value: string) => {
    const next = new URLSearchParams(params);
    if (value && !(key === "since" && value === DEFAULT_WINDOW)) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };

  const report = useQuery({
    queryKey: ["metrics", { since: win.value, blueprint }],
    queryFn: () => api.metrics({ since: win.value, blueprint: blueprint || undefined }),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints, staleTime: 60_000 });

  const names = useMemo(() => {
    const m = new Map<string, string>();
    for (const b of blueprints.data ?? []) m.set(b.id, b.name);
    for (const b of report.data?.blueprints ?? []) if (b.name && !m.has(b.blueprint)) m.set(b.blueprint, b.name);
    return m;
  }, [blueprints.data, report.data]);
  const nameOf = (id: string) => names.get(id) ?? id;
  const current = useMemo(() => new Map(blueprints.data?.map((b) => [b.id, b.version])), [blueprints.data]);
  // Every process to filter by: the project's, those with runs in the window, and the chosen one.
  const processes = useMemo(() => {
    const ids = new Set<string>([...(blueprints.data ?? []).map((b) => b.id), ...(report.data?.blueprints ?? []).map((b) => b.blueprint)]);
    if (blueprint) ids.add(blueprint);
    return [...ids].sort((a, b) => (names.get(a) ?? a).localeCompare(names.get(b) ?? b));
  }, [blueprints.data, report.data, blueprint, names]);

  const data = report.data;
  const windowLabel = `Last ${win.label}`;

  return (
    <>
      <PageHeader title="Metrics">
        {data && (
          <span className="hidden text-xs text-muted tabular-nums lg:inline" data-testid="metrics-range">
            {rangeLabel(data.since, data.until)}
          </span>
        )}
        {report.isPlaceholderData && <Loader2 className="size-3.5 animate-spin text-faint" aria-label="Refreshing" />}
        <div role="radiogroup" aria-label="Window" className="flex h-8 items-center rounded-md bg-sunken p-0.5">
          {WINDOWS.map((w) => (
            <button
              key={w.value}
              type="button"
              role="radio"
              aria-checked={w.value === win.value}
              onClick={() => setParam("since", w.value)}
              data-testid={`metrics-window-${w.value}`}
              className={clsx(
                "h-7 rounded px-2.5 text-xs transition-colors",
                w.value === win.value ? "bg-panel font-medium text-fg shadow-sm" : "text-muted hover:text-fg",
              )}
            >
              {w === WINDOWS[0] ? `Last ${w.label}` : w.label}
            </button>
          ))}
        </div>
        <div className="w-52">
          <select
            aria-label="Process"
            className={clsx(inputClass, "h-8 py-1")}
            value={blueprint}
            onChange={(e) => setParam("blueprint", e.target.value)}
            data-testid="metrics-process"
          >
            <option value="">All processes</option>
            {processes.map((id) => (
              <option key={id} value={id}>
                {nameOf(id)}
              </option>
            ))}
          </select>
        </div>
      </PageHeader>
      <div className="min-h-0 flex-1 overflow-auto">
        {report.isPending ? (
          <Skeleton />
        ) : report.isError && !data ? (
          <div className="p-1">
            <ErrorState error={report.error} />
            <div className="px-4">
              <Button size="sm" onClick={() => void report.refetch()}>
                Try again
              </Button>
            </div>
          </div>
        ) : data && data.blueprints.length === 0 ? (
          <EmptyState
            icon={<BarChart3 className="size-7" />}
            title={`No runs${blueprint ? ` of ${nameOf(blueprint)}` : ""} in the last ${win.label}.`}
          >
            Start one from{" "}
            <Link to="/blueprints" className="text-accent hover:underline">
              Blueprints
            </Link>
            {win.value !== "90d" ? (
              <>
                , or{" "}
                <button type="button" className="text-accent hover:underline" onClick={() => setParam("since", "90d")}>
                  widen the window
                </button>
                .
              </>
            ) : (
              ", or widen the window."
            )}
          </EmptyState>
        ) : data ? (
          <Dashboard
            report={data}
            selected={blueprint}
            stale={report.isPlaceholderData}
            nameOf={nameOf}
            currentVersion={(id) => current.get(id)}
            onDrill={setDrill}
          />
        ) : null}
      </div>
      {drill && data && (
        <DrillPanel
          key={`${drill.card}/${drill.blueprint}/${drill.version}`}
          target={drill}
          since={win.value}
          windowLabel={windowLabel}
          blueprints={data.blueprints}
          nameOf={nameOf}
          onClose={() => setDrill(null)}
        />
      )}
    </>
  );
}

function Dashboard({
  report,
  selected,
  stale,
  nameOf,
  currentVersion,
  onDrill,
}: {
  report: MetricsReport;
  selected: string;
  stale: boolean;
  nameOf: (id: string) => string;
  currentVersion: (id: string) => string | undefined;
  onDrill: (target: DrillTarget) => void;
}) {
  const series = useMemo(() => fillSeries(report), [report]);
  const drift = useMemo(() => selectionDrift(report.blueprints), [report.blueprints]);
  const t = report.total;
  const e = t.escalation;
  // The cards explain the selection: every process, or the one chosen.
  const open = (card: Card) => onDrill({ card, blueprint: selected || null, version: null });

  return (
    <div className={clsx("@container flex flex-col gap-4 p-5 transition-opacity", stale && "opacity-60")}>
      <section aria-label="Key metrics" className="grid grid-cols-2 gap-3 @3xl:grid-cols-6 @6xl:grid-cols-5">
        <Kpi
          id="prompt"
          value={pct(t.prompt_success.value)}
          fraction={fraction(t.prompt_success, "prompt steps")}
          detail={
            t.prompts.repaired + t.prompts.fallback + t.prompts.attention + t.prompts.failed > 0
              ? `${count(t.prompts.repaired)} repaired · ${count(t.prompts.fallback)} fallback · ${count(t.prompts.attention + t.prompts.failed)} failed`
              : null
          }
          onClick={() => open("prompt")}
        />
        <Kpi
          id="override"
          value={pct(t.human_override.value)}
          fraction={fraction(t.human_override, "human decisions")}
          detail={t.edit_distance === null ? null : `edited: ${pct(t.edit_distance)} of the draft changed on average`}
          onClick={() => open("override")}
        />
        <Kpi
          id="automation"
          value={pct(t.automation_coverage.value)}
          fraction={fraction(t.automation_coverage, "finished runs")}
          detail={t.auto_approved_reviews > 0 ? `${count(t.auto_approved_reviews)} ${t.auto_approved_reviews === 1 ? "review" : "reviews"} approved by policy` : null}
          onClick={() => open("automation")}
        />
        <Kpi
          id="latency"
          value={formatDuration(e.p50_ms)}
          unit="p50"
          fraction={`p95 ${formatDuration(e.p95_ms)} · ${e.decided > 0 ? `${count(e.decided)} decided` : "none decided"}`}
          detail={`${pct(e.escalated.value)} escalated · ${pct(e.breached.value)} breached SLA`}
          onClick={() => open("latency")}
        />
        <Kpi
          id="drift"
          value={formatPsi(drift.index)}
          tone={drift.flagged > 0 ? "warn" : undefined}
          badge={drift.flagged > 0 ? <Badge tone="warn">{drift.flagged} flagged</Badge> : null}
          fraction={
            drift.versions === 0
              ? "no versions"
              : `${drift.flagged} of ${drift.versions} version${drift.versions === 1 ? "" : "s"} flagged`
          }
          detail={
            drift.top
              ? `largest: ${drift.top.blueprint.name ?? nameOf(drift.top.blueprint.blueprint)} ${drift.top.version.version.slice(0, 8)}`
              : "too few observations to compare"
          }
          onClick={() => open("drift")}
        />
      </section>

      <section aria-labelledby="metrics-daily" className="rounded-lg border border-border bg-panel p-4 pb-3">
        <div className="mb-3 flex items-baseline gap-2">
          <h2 id="metrics-daily" className="text-[13px] font-semibold">
            Day by day
          </h2>
          <span className="text-xs text-faint">rates in %, runs started per day (UTC)</span>
        </div>
        <MetricsChart series={series} total={t} />
      </section>

      <section aria-labelledby="metrics-breakdown" className="rounded-lg border border-border bg-panel">
        <div className="flex items-baseline gap-2 border-b border-border px-4 py-3">
          <h2 id="metrics-breakdown" className="text-[13px] font-semibold">
            By process and version
          </h2>
          <span className="text-xs text-faint">
            drift compares {rangeLabel(report.recent_since, report.until)} with the baseline from{" "}
            {dayLabel(report.baseline_since)} · click a number for its runs
          </span>
        </div>
        <div className="overflow-x-auto">
          <BreakdownTable blueprints={report.blueprints} currentVersion={currentVersion} onDrill={onDrill} />
        </div>
      </section>
    </div>
  );
}

function Kpi({
  id,
  value,
  unit,
  fraction,
  detail,
  tone,
  badge,
  onClick,
}: {
  id: Card;
  value: string;
  unit?: string;
  fraction: string;
  detail?: string | null;
  tone?: "warn";
  badge?: ReactNode;
  onClick: () => void;
}) {
  const card = CARDS[id];
  return (
    <button
      type="button"
      onClick={onClick}
      title={`${card.help}\n\n${id === "drift" ? "Click for each version's components." : "Click for the runs behind the number."}`}
      aria-haspopup="dialog"
      data-testid={`kpi-${id}`}
      className={clsx(
        "group flex min-w-0 flex-col items-start rounded-lg border bg-panel px-4 py-3 text-left transition-colors",
        SPAN[ORDER.indexOf(id)],
        tone === "warn" ? "border-warn/50 bg-warn/[0.04] hover:border-warn" : "border-border hover:border-accent/40",
      )}
    >
      <span className="flex w-full items-center gap-1.5 text-xs font-medium text-muted">
        {card.title}
        {badge}
        <ChevronRight className="ml-auto size-3.5 text-faint opacity-0 transition-opacity group-hover:opacity-100" aria-hidden />
      </span>
      <span className="mt-2 flex items-baseline gap-1.5">
        <span
          data-testid="kpi-value"
          className={clsx("text-[26px] leading-none font-semibold tracking-tight tabular-nums", tone === "warn" && "text-warn")}
        >
          {value}
        </span>
        {unit && <span className="text-xs text-faint">{unit}</span>}
      </span>
      <span data-testid="kpi-fraction" className="mt-2 w-full text-xs text-muted tabular-nums">
        {fraction}
      </span>
      <span className="mt-0.5 w-full text-[11.5px] leading-snug text-faint">{detail ?? "\u00a0"}</span>
    </button>
  );
}

// Three cards over two in a mid-size pane, five in a row in a wide one (container queries).
const SPAN = ["@3xl:col-span-2", "@3xl:col-span-2", "@3xl:col-span-2", "@3xl:col-span-3", "@3xl:col-span-3"].map((c) => `${c} @6xl:col-span-1`);
const ORDER: Card[] = ["prompt", "override", "automation", "latency", "drift"];

function Skeleton() {
  const bar = "animate-pulse rounded bg-sunken";
  return (
    <div className="@container flex flex-col gap-4 p-5" role="status" aria-label="Loading metrics">
      <div className="grid grid-cols-2 gap-3 @3xl:grid-cols-6 @6xl:grid-cols-5">
        {Array.from({ length: 5 }, (_, i) => (
          <div key={i} className={clsx("flex flex-col gap-2.5 rounded-lg border border-border bg-panel px-4 py-3", SPAN[i])}>
            <div className={clsx(bar, "h-3 w-24")} />
            <div className={clsx(bar, "h-6 w-16")} />
            <div className={clsx(bar, "h-3 w-32")} />
            <div className={clsx(bar, "h-3 w-20")} />
          </div>
        ))}
      </div>
      <div className="rounded-lg border border-border bg-panel p-4">
        <div className={clsx(bar, "mb-3 h-3 w-28")} />
        <div className={clsx(bar, "h-[220px] w-full")} />
      </div>
      <div className="flex flex-col gap-2 rounded-lg border border-border bg-panel p-4">
        {Array.from({ length: 4 }, (_, i) => (
          <div key={i} className={clsx(bar, "h-4 w-full")} />
        ))}
      </div>
    </div>
  );
}

