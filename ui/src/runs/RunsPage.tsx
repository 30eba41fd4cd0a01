// Runs: the list (status chips, blueprint filter) beside the selected run's timeline.
import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { PlayCircle, Plus } from "lucide-react";
import { useEffect, useMemo, useRef, useState } from "react";
import { useNavigate, useParams, useSearchParams } from "react-router";
import { api } from "../api/client";
import type { RunSummary } from "../api/types.gen";
import { Button, EmptyState, ErrorState, inputClass, Kbd, PageHeader, relativeTime, shortId, Spinner } from "../components/ui";
import { RunDetailPane } from "./RunDetailPane";
import { StartRunDialog } from "./StartRunDialog";
import { formatTime, isLive, RUN_STATUSES, statusMeta, StatusIcon } from "./status";
import { isPlainKey, useWindowKey } from "./useWindowKey";

const LIMIT = 500;

const DOT: Record<string, string> = {
  running: "bg-info",
  waiting: "bg-accent",
  attention: "bg-warn",
  completed: "bg-ok",
  failed: "bg-danger",
};

export function RunsPage() {
  const { runId } = useParams();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const status = params.get("status") ?? "";
  const blueprint = params.get("blueprint") ?? "";
  const [starting, setStarting] = useState(false);

  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints, staleTime: 60_000 });
  const names = useMemo(() => new Map(blueprints.data?.map((b) => [b.id, b.name])), [blueprints.data]);
  const blueprintName = (id: string) => names.get(id) ?? id;

  // Every status of the blueprint, for the chip counts; the status filter asks the engine
  // separately so a long history is not cut at the limit.
  const all = useQuery({
    queryKey: ["runs", "list", { blueprint }],
    queryFn: () => api.runs({ blueprint: blueprint || undefined, limit: LIMIT }),
    refetchInterval: (q) => (q.state.data?.some((r) => isLive(r.status)) ? 3_000 : 15_000),
  });
  const filtered = useQuery({
    queryKey: ["runs", "list", { blueprint, status }],
    queryFn: () => api.runs({ blueprint: blueprint || undefined, status, limit: LIMIT }),
    enabled: status !== "",
    refetchInterval: (q) => (q.state.data?.some((r) => isLive(r.status)) ? 3_000 : 15_000),
  });
  const list = status ? filtered : all;
  const runs = list.data ?? [];
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const r of all.data ?? []) c[r.status] = (c[r.status] ?? 0) + 1;
    return c;
  }, [all.data]);

  const setFilter = (key: "status" | "blueprint", value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const open = (id: string) => navigate({ pathname: `/runs/${id}`, search: params.toString() });

  // Open the newest run when none is selected, so the screen is never half empty.
  const first = runs[0]?.id;
  useEffect(() => {
    if (!runId && first) navigate({ pathname: `/runs/${first}`, search: params.toString() }, { replace: true });
  }, [runId, first, navigate, params]);

  useWindowKey((e) => {
    const index = runs.findIndex((r) => r.id === runId);
    if (isPlainKey(e, "j") || isPlainKey(e, "ArrowDown")) {
      const next = runs[Math.min(runs.length - 1, index + 1)];
      if (next) {
        e.preventDefault();
        open(next.id);
      }
    } else if (isPlainKey(e, "k") || isPlainKey(e, "ArrowUp")) {
      const prev = runs[Math.max(0, index - 1)];
      if (prev) {
        e.preventDefault();
        open(prev.id);
      }
    } else if (isPlainKey(e, "c")) {
      e.preventDefault();
      setStarting(true);
    }
  });

  return (
    <>
      <PageHeader title="Runs">
        <span className="hidden items-center gap-1 text-[11px] text-faint lg:flex">
          <Kbd>J</Kbd>
          <Kbd>K</Kbd> to move
        </span>
        <Button variant="primary" onClick={() => setStarting(true)} data-testid="runs-start">
          <Plus className="size-3.5" />
          Start run
          <Kbd>C</Kbd>
        </Button>
      </PageHeader>
      <div className="flex min-h-0 flex-1">
        <section aria-label="Runs" className="flex w-[400px] shrink-0 flex-col border-r border-border bg-panel">
          <div className="flex flex-col gap-2 border-b border-border p-2.5">
            <div className="grid grid-cols-3 gap-1" role="radiogroup" aria-label="Status">
              <Chip active={status === ""} onClick={() => setFilter("status", "")} count={all.data?.length}>
                All
              </Chip>
              {RUN_STATUSES.map((s) => (
                <Chip
                  key={s}
                  active={status === s}
                  onClick={() => setFilter("status", status === s ? "" : s)}
                  count={counts[s] ?? 0}
                  tone={s === "attention" && (counts[s] ?? 0) > 0 ? "warn" : s === "failed" && (counts[s] ?? 0) > 0 ? "danger" : undefined}
                  testId={`runs-filter-${s}`}
                >
                  <span className="flex items-center gap-1.5">
                    <span className={clsx("size-1.5 rounded-full", DOT[s])} aria-hidden />
                    {statusMeta(s).label}
                  </span>
                </Chip>
              ))}
            </div>
            <select
              aria-label="Blueprint"
              className={clsx(inputClass, "h-8 py-1")}
              value={blueprint}
              onChange={(e) => setFilter("blueprint", e.target.value)}
              data-testid="runs-filter-blueprint"
            >
              <option value="">All blueprints</option>
              {blueprints.data?.map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
          </div>
          <div className="min-h-0 flex-1 overflow-auto">
            {list.isPending ? (
              <Spinner label="Loading runs…" />
            ) : list.isError ? (
              <ErrorState error={list.error} />
            ) : runs.length === 0 ? (
              <EmptyState icon={<PlayCircle className="size-6" />} title={status || blueprint ? "No runs match" : "No runs yet"}>
                {status || blueprint ? (
                  <button type="button" className="text-accent hover:underline" onClick={() => setParams({}, { replace: true })}>
                    Clear the filters
                  </button>
                ) : (
                  "Start one by hand, or send an event to one of the blueprints' triggers."
                )}
              </EmptyState>
            ) : (
              <RunList runs={runs} selected={runId} onOpen={open} blueprintName={blueprintName} />
            )}
          </div>
          {runs.length >= LIMIT && (
            <div className="border-t border-border px-3 py-1.5 text-[11px] text-faint">Showing the newest {LIMIT} runs.</div>
          )}
        </section>
        <section aria-label="Run" className="flex min-w-0 flex-1 flex-col bg-bg">
          {runId ? (
            <RunDetailPane key={runId} runId={runId} blueprintName={blueprintName} />
          ) : (
            !list.isPending && (
              <EmptyState icon={<PlayCircle className="size-6" />} title="No run selected">
                Pick a run on the left to see its timeline.
              </EmptyState>
            )
          )}
        </section>
      </div>
      <StartRunDialog open={starting} onClose={() => setStarting(false)} blueprintId={blueprint || undefined} />
    </>
  );
}

function Chip({
  active,
  onClick,
  count,
  tone,
  children,
  testId,
}: {
  active: boolean;
  onClick: () => void;
  count?: number;
  tone?: "warn" | "danger";
  children: React.ReactNode;
  testId?: string;
}) {
  return (
    <button
      type="button"
      role="radio"
      aria-checked={active}
      onClick={onClick}
      data-testid={testId}
      className={clsx(
        "flex h-6 items-center justify-between gap-1 rounded-md border px-2 text-xs transition-colors",
        active ? "border-accent/50 bg-selected font-medium text-fg" : "border-border text-muted hover:bg-hover hover:text-fg",
      )}
    >
      {children}
      {count !== undefined && count > 0 && (
        <span
          className={clsx(
            "tabular-nums",
            tone === "warn" ? "font-semibold text-warn" : tone === "danger" ? "font-semibold text-danger" : "text-faint",
          )}
        >
          {count}
        </span>
      )}
    </button>
  );
}

function RunList({
  runs,
  selected,
  onOpen,
  blueprintName,
}: {
  runs: RunSummary[];
  selected: string | undefined;
  onOpen: (id: string) => void;
  blueprintName: (id: string) => string;
}) {
  const selectedRef = useRef<HTMLButtonElement>(null);
  // Keep the keyboard selection in view.
  useEffect(() => {
    selectedRef.current?.scrollIntoView({ block: "nearest" });
  }, [selected]);
  return (
    <ul>
      {runs.map((r) => {
        const active = r.id === selected;
        return (
          <li key={r.id}>
            <button
              ref={active ? selectedRef : undefined}
              type="button"
              onClick={() => onOpen(r.id)}
              data-testid="run-row"
              data-run-id={r.id}
              data-status={r.status}
              aria-current={active ? "true" : undefined}
              className={clsx(
                "flex w-full items-start gap-2.5 border-b border-border/70 px-3 py-2 text-left transition-colors",
                active ? "bg-selected" : "hover:bg-hover",
              )}
            >
              <StatusIcon status={r.status} className="mt-0.5" />
              <span className="min-w-0 flex-1">
                <span className="flex items-baseline gap-2">
                  <span className="truncate font-medium">{blueprintName(r.blueprint)}</span>
                  <span className="ml-auto shrink-0 text-[11px] text-faint tabular-nums" title={formatTime(r.created_at)}>
                    {relativeTime(r.created_at)}
                  </span>
                </span>
                <span className="mt-0.5 flex items-center gap-1.5 text-[11.5px] text-muted">
                  <span className="font-mono text-faint">{shortId(r.id)}</span>
                  <span className="text-faint">·</span>
                  <span className="truncate">{r.trigger}</span>
                  <span className="text-faint">·</span>
                  <span className={clsx(r.status === "attention" && "text-warn", r.status === "failed" && "text-danger")}>
                    {statusMeta(r.status).label.toLowerCase()}
                  </span>
                </span>
                {r.error && <span className="mt-0.5 block truncate text-[11.5px] text-danger">{r.error}</span>}
              </span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
