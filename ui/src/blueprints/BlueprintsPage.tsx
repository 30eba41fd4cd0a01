// Blueprints: every process the engine knows, its lifecycle stage and triggers, with shortcuts
// to the designer and to starting a run.
import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import {
  CalendarClock,
  FolderInput,
  GitBranch,
  Hand,
  LayoutTemplate,
  Play,
  Search,
  Webhook,
  Workflow,
  Zap,
} from "lucide-react";
import { useMemo, useRef, useState, type ReactNode } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import type { BlueprintSummary, RunSummary } from "../api/types.gen";
import { Badge, Button, EmptyState, ErrorState, inputClass, Kbd, PageHeader, Spinner } from "../components/ui";
import { StartRunDialog } from "../runs/StartRunDialog";
import { isPlainKey, useWindowKey } from "../runs/useWindowKey";
import { LIFECYCLE, stageInfo } from "./stage";

const TRIGGER_ICON: Record<string, ReactNode> = {
  manual: <Hand className="size-3" />,
  webhook: <Webhook className="size-3" />,
  schedule: <CalendarClock className="size-3" />,
  folder_drop: <FolderInput className="size-3" />,
  event: <Zap className="size-3" />,
};

interface RunStats {
  total: number;
  live: number;
  attention: number;
}

function statsByBlueprint(runs: RunSummary[] | undefined): Map<string, RunStats> {
  const m = new Map<string, RunStats>();
  for (const r of runs ?? []) {
    const s = m.get(r.blueprint) ?? { total: 0, live: 0, attention: 0 };
    s.total += 1;
    if (r.status === "running" || r.status === "waiting") s.live += 1;
    if (r.status === "attention" || r.status === "failed") s.attention += 1;
    m.set(r.blueprint, s);
  }
  return m;
}

export function BlueprintsPage() {
  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints });
  const runs = useQuery({ queryKey: ["runs", "list", { blueprint: "" }], queryFn: () => api.runs({ limit: 500 }) });
  const stats = useMemo(() => statsByBlueprint(runs.data), [runs.data]);
  const [q, setQ] = useState("");
  const [stage, setStage] = useState("");
  const [starting, setStarting] = useState<string | null>(null);
  const search = useRef<HTMLInputElement>(null);

  useWindowKey((e) => {
    if (isPlainKey(e, "/")) {
      e.preventDefault();
      search.current?.focus();
    }
  });

  const stages = useMemo(() => [...new Set(blueprints.data?.map((b) => b.stage))], [blueprints.data]);
  const shown = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return (blueprints.data ?? []).filter(
      (b) =>
        (!stage || b.stage === stage) &&
        (!needle || [b.id, b.name, b.description, b.domain ?? ""].some((s) => s.toLowerCase().includes(needle))),
    );
  }, [blueprints.data, q, stage]);

  return (
    <>
      <PageHeader title="Blueprints">
        <div className="relative w-60">
          <Search className="pointer-events-none absolute top-1/2 left-2 size-3.5 -translate-y-1/2 text-faint" />
          <input
            ref={search}
            value={q}
            onChange={(e) => setQ(e.target.value)}
            onKeyDown={(e) => e.key === "Escape" && (setQ(""), e.currentTarget.blur())}
            placeholder="Filter blueprints"
            aria-label="Filter blueprints"
            className={clsx(inputClass, "h-8 py-1 pr-8 pl-7")}
          />
          <span className="absolute top-1/2 right-2 -translate-y-1/2">
            <Kbd>/</Kbd>
          </span>
        </div>
        <div className="w-36">
          <select aria-label="Stage" className={clsx(inputClass, "h-8 py-1")} value={stage} onChange={(e) => setStage(e.target.value)}>
          <option value="">All stages</option>
          {stages.map((s) => (
            <option key={s} value={s}>
              {stageInfo(s).label}
            </option>
          ))}
          </select>
        </div>
        <Link
          to="/designer"
          className="inline-flex h-8 items-center gap-1.5 rounded-md whitespace-nowrap bg-accent px-3 text-[13px] font-medium text-accent-fg transition-opacity hover:opacity-90"
        >
          <Workflow className="size-3.5" /> Open Designer
        </Link>
      </PageHeader>
      <div className="min-h-0 flex-1 overflow-auto">
        {blueprints.isPending ? (
          <Spinner label="Loading blueprints…" />
        ) : blueprints.isError ? (
          <ErrorState error={blueprints.error} />
        ) : blueprints.data.length === 0 ? (
          <EmptyState icon={<LayoutTemplate className="size-7" />} title="No blueprints yet">
            Blueprints are YAML files in the project's blueprints/ folder. Create one in the Designer.
          </EmptyState>
        ) : shown.length === 0 ? (
          <EmptyState icon={<Search className="size-6" />} title="No blueprints match">
            <button type="button" className="text-accent hover:underline" onClick={() => (setQ(""), setStage(""))}>
              Clear the filters
            </button>
          </EmptyState>
        ) : (
          <div className="grid grid-cols-1 gap-3 p-5 md:grid-cols-2 xl:grid-cols-3">
            {shown.map((b) => (
              <BlueprintCard key={b.id} blueprint={b} stats={stats.get(b.id)} onStart={() => setStarting(b.id)} />
            ))}
          </div>
        )}
      </div>
      <StartRunDialog open={starting !== null} onClose={() => setStarting(null)} blueprintId={starting ?? undefined} />
    </>
  );
}

function LifecycleBar({ stage }: { stage: string }) {
  const info = stageInfo(stage);
  return (
    <span className="flex items-center gap-1.5" title={info.hint}>
      <Badge tone={info.tone}>{info.label}</Badge>
      {info.step >= 0 && (
        <span className="flex gap-0.5" aria-hidden>
          {LIFECYCLE.map((s, i) => (
            <span key={s} className={clsx("h-1 w-3 rounded-full", i <= info.step ? "bg-current opacity-70" : "bg-border")} />
          ))}
        </span>
      )}
    </span>
  );
}

function BlueprintCard({ blueprint: b, stats, onStart }: { blueprint: BlueprintSummary; stats: RunStats | undefined; onStart: () => void }) {
  const info = stageInfo(b.stage);
  const toneText = { neutral: "text-faint", info: "text-info", warn: "text-warn", ok: "text-ok", accent: "text-accent", danger: "text-danger" }[info.tone];
  const canStart = b.triggers.length > 0 && b.stage !== "retired";
  return (
    <article
      data-testid="blueprint-card"
      data-blueprint-id={b.id}
      className="group flex flex-col rounded-lg border border-border bg-panel transition-colors hover:border-accent/40"
    >
      <div className="flex flex-col gap-2 p-4 pb-3">
        <div className="flex items-start gap-2">
          <div className="min-w-0 flex-1">
            <h2 className="truncate text-[13.5px] font-semibold">
              <Link to={`/designer/${b.id}`} className="hover:text-accent">
                {b.name}
              </Link>
            </h2>
            <div className="flex items-center gap-1.5 truncate text-[11px] text-faint">
              {b.domain && <span className="text-muted">{b.domain}</span>}
              {b.domain && <span>·</span>}
              <span className="truncate font-mono">{b.id}</span>
            </div>
          </div>
          <span className="flex shrink-0 flex-col items-end gap-0.5">
            <span className={toneText}>
              <LifecycleBar stage={b.stage} />
            </span>
            <span className="font-mono text-[11px] text-faint" title={`Version ${b.version} (the file's)`}>
              {b.version.slice(0, 8)}
            </span>
          </span>
        </div>
        <p className="line-clamp-2 min-h-[2.6em] text-xs leading-relaxed text-muted" title={b.description.trim()}>
          {b.description.trim() || "No description."}
        </p>
        <div className="flex flex-wrap gap-1">
          {b.triggers.length === 0 ? (
            <span className="text-[11px] text-faint">No triggers</span>
          ) : (
            b.triggers.map((t) => (
              <span
                key={t.id}
                title={`${t.kind.replace("_", " ")} trigger${t.input ? " with an input schema" : ""}`}
                className="inline-flex items-center gap-1 rounded border border-border px-1.5 py-px text-[11px] text-muted"
              >
                {TRIGGER_ICON[t.kind] ?? <Zap className="size-3" />}
                {t.id}
              </span>
            ))
          )}
        </div>
      </div>
      <div className="mt-auto flex flex-wrap items-center gap-x-3 gap-y-1 border-t border-border px-4 py-2 text-[11.5px] whitespace-nowrap text-muted">
        <span className="tabular-nums">{b.nodes} nodes</span>
        {stats && (
          <Link to={`/runs?blueprint=${encodeURIComponent(b.id)}`} className="tabular-nums hover:text-accent" title="Open the runs of this blueprint">
            {stats.total} run{stats.total === 1 ? "" : "s"}
            {stats.attention > 0 && <span className="text-warn"> · {stats.attention} need attention</span>}
          </Link>
        )}
        <span className="ml-auto flex shrink-0 gap-1">
          <Link
            to={`/designer/${b.id}`}
            className="inline-flex h-7 items-center gap-1 rounded-md px-2 text-xs font-medium text-muted transition-colors hover:bg-hover hover:text-fg"
            data-testid="blueprint-open"
          >
            <Workflow className="size-3.5" /> Designer
          </Link>
          <Link
            to={`/blueprints/${encodeURIComponent(b.id)}/versions`}
            className="inline-flex h-7 items-center gap-1 rounded-md px-2 text-xs font-medium text-muted transition-colors hover:bg-hover hover:text-fg"
            title="Versions, stages and changes (change control)"
            data-testid="blueprint-versions"
          >
            <GitBranch className="size-3.5" /> Versions
          </Link>
          <Button size="sm" onClick={onStart} disabled={!canStart} title={canStart ? "Start a run by hand" : "This blueprint cannot start runs"} data-testid="blueprint-start">
            <Play className="size-3" /> Run
          </Button>
        </span>
      </div>
    </article>
  );
}
