// One run: its header (status, trigger, timing, retry) and the timeline of node visits.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { clsx } from "clsx";
import {
  ArrowRight,
  ChevronDown,
  ChevronRight,
  ChevronsDownUp,
  ChevronsUpDown,
  CornerDownRight,
  ExternalLink,
  GitBranch,
  Repeat,
  RotateCcw,
  Shuffle,
} from "lucide-react";
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { toast } from "sonner";
import { api } from "../api/client";
import type { Action, Exchange, JsonValue, RunDetail, TimelineStep } from "../api/types.gen";
import { Badge, Button, EmptyState, ErrorState, Kbd, relativeTime, Spinner } from "../components/ui";
import { CopyButton, JsonBlock, TextBlock } from "./JsonBlock";
import { formatDuration, formatTime, formatTokens, isLive, StatusBadge, StatusIcon } from "./status";
import { useNow } from "./useNow";
import { isPlainKey, useWindowKey } from "./useWindowKey";

export function runQueryKey(id: string) {
  return ["runs", "detail", id] as const;
}

export function RunDetailPane({ runId, blueprintName }: { runId: string; blueprintName: (id: string) => string }) {
  const query = useQuery({
    queryKey: runQueryKey(runId),
    queryFn: () => api.run(runId),
    // Live updates: poll while the run can still change.
    refetchInterval: (q) => (q.state.data && isLive(q.state.data.run.status) ? 1_500 : false),
  });
  if (query.isPending) return <Spinner label="Loading run…" />;
  if (query.isError) return <ErrorState error={query.error} />;
  return <RunView detail={query.data} blueprintName={blueprintName} />;
}

function stepKey(s: TimelineStep) {
  return `${s.node}#${s.visit}`;
}

/** Steps a person most likely wants to see open: what failed, what waits, and the last one. */
function defaultOpen(steps: TimelineStep[]): Set<string> {
  const open = new Set<string>();
  steps.forEach((s, i) => {
    if (s.status === "failed" || s.status === "waiting" || s.status === "running" || s.error || i === steps.length - 1) {
      open.add(stepKey(s));
    }
  });
  return open;
}

function RunView({ detail, blueprintName }: { detail: RunDetail; blueprintName: (id: string) => string }) {
  const { run, steps, payload } = detail;
  const queryClient = useQueryClient();
  // null = the default set; becomes explicit once the person toggles something.
  const [open, setOpen] = useState<Set<string> | null>(null);
  const [showPayload, setShowPayload] = useState(false);
  const openSet = open ?? defaultOpen(steps);
  const toggle = (key: string) => {
    const next = new Set(openSet);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setOpen(next);
  };
  const retry = useMutation({
    mutationFn: () => api.retryRun(run.id),
    // The engine answers once the retry settled, which can take a while; refetch shortly
    // after sending so the timeline turns "running" and starts polling meanwhile.
    onMutate: () => {
      setTimeout(() => void queryClient.invalidateQueries({ queryKey: runQueryKey(run.id) }), 300);
    },
    onSuccess: (summary) => {
      if (summary.status === "attention" || summary.status === "failed") {
        toast.error("The retry failed again", { description: summary.error ?? undefined });
      } else {
        toast.success(summary.status === "completed" ? "The run completed" : `The run is ${summary.status} again`);
      }
    },
    onError: (e) => toast.error(e.message),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ["runs"] }),
  });
  const end = steps.reduce((m, s) => Math.max(m, s.finished_at ?? s.started_at), run.updated_at);
  const totals = steps.reduce(
    (acc, s) => ({
      prompt: acc.prompt + (s.meta?.prompt_tokens ?? 0),
      completion: acc.completion + (s.meta?.completion_tokens ?? 0),
      calls: acc.calls + (s.meta?.exchanges?.length ?? 0),
    }),
    { prompt: 0, completion: 0, calls: 0 },
  );
  const live = isLive(run.status);
  const now = useNow();
  // The list shows statuses too: refresh it as soon as this run's status changes.
  useEffect(() => {
    void queryClient.invalidateQueries({ queryKey: ["runs", "list"] });
  }, [run.status, queryClient]);
  useWindowKey((e) => {
    if (run.status === "attention" && isPlainKey(e, "r") && !retry.isPending) {
      e.preventDefault();
      retry.mutate();
    }
  });
  const allOpen = steps.length > 0 && steps.every((s) => openSet.has(stepKey(s)));

  return (
    <div className="flex min-h-0 flex-1 flex-col" data-testid="run-detail" data-run-id={run.id}>
      <div className="shrink-0 border-b border-border bg-panel px-5 pt-4 pb-3">
        <div className="flex items-start gap-3">
          <div className="min-w-0 flex-1">
            <div className="flex items-center gap-2">
              <h2 className="truncate text-[15px] font-semibold">{blueprintName(run.blueprint)}</h2>
              <StatusBadge status={run.status} />
              {live && (
                <span className="flex items-center gap-1.5 text-[11px] text-muted" title="Updates every 1.5 s">
                  <span className="relative flex size-2">
                    <span className="absolute inline-flex size-full animate-ping rounded-full bg-info opacity-60" />
                    <span className="relative inline-flex size-2 rounded-full bg-info" />
                  </span>
                  Live
                </span>
              )}
            </div>
            <div className="mt-1 flex flex-wrap items-center gap-x-3 gap-y-1 text-xs text-muted">
              <span className="flex items-center gap-0.5 font-mono">
                {run.id}
                <CopyButton text={run.id} label="Copy run id" />
              </span>
              <span>
                trigger <span className="text-fg">{run.trigger}</span>
              </span>
              <span title={formatTime(run.created_at)}>started {relativeTime(run.created_at)}</span>
              <span>{live ? "elapsed" : "took"} {formatDuration((live ? Math.max(now, end) : end) - run.created_at)}</span>
              {totals.calls > 0 && (
                <span title={`${totals.prompt} prompt + ${totals.completion} completion tokens`}>
                  {totals.calls} model call{totals.calls === 1 ? "" : "s"} · {formatTokens(totals.prompt + totals.completion)} tokens
                </span>
              )}
              <span className="font-mono" title={`Blueprint version ${run.version}`}>
                v{run.version.slice(0, 8)}
              </span>
            </div>
          </div>
          <div className="flex shrink-0 items-center gap-1.5">
            {run.status === "attention" && (
              <Button variant="primary" onClick={() => retry.mutate()} disabled={retry.isPending} data-testid="run-retry">
                <RotateCcw className="size-3.5" />
                {retry.isPending ? "Retrying…" : "Retry"}
                <Kbd>R</Kbd>
              </Button>
            )}
            <Button variant="ghost" size="sm" onClick={() => setShowPayload((v) => !v)} aria-expanded={showPayload}>
              {showPayload ? <ChevronDown className="size-3.5" /> : <ChevronRight className="size-3.5" />}
              Payload
            </Button>
            <Button
              variant="ghost"
              size="sm"
              onClick={() => setOpen(allOpen ? new Set() : new Set(steps.map(stepKey)))}
              title={allOpen ? "Collapse all steps" : "Expand all steps"}
            >
              {allOpen ? <ChevronsDownUp className="size-3.5" /> : <ChevronsUpDown className="size-3.5" />}
              {allOpen ? "Collapse" : "Expand"}
            </Button>
          </div>
        </div>
        {run.error && (
          <div role="alert" className="mt-3 rounded-md border border-danger/30 bg-danger/5 px-3 py-2 text-xs whitespace-pre-wrap text-danger">
            {run.error}
          </div>
        )}
        {showPayload && <JsonBlock value={payload} className="mt-3" />}
      </div>
      <div className="min-h-0 flex-1 overflow-auto px-5 py-4">
        {steps.length === 0 ? (
          <EmptyState title="No steps yet">The run has not reached its first node.</EmptyState>
        ) : (
          <ol className="relative flex flex-col" aria-label="Timeline">
            {steps.map((s, i) => (
              <StepCard
                key={stepKey(s)}
                step={s}
                last={i === steps.length - 1}
                open={openSet.has(stepKey(s))}
                onToggle={() => toggle(stepKey(s))}
                runStart={run.created_at}
              />
            ))}
          </ol>
        )}
      </div>
    </div>
  );
}

function pastTense(action: Action | undefined): string | undefined {
  return action && { approve: "approved", edit: "edited", reject: "rejected", escalate: "escalated" }[action];
}

type Tab = "output" | "input" | "exchanges" | "review";

function stepDuration(s: TimelineStep): number | null {
  if (s.meta?.duration_ms != null) return s.meta.duration_ms;
  return s.finished_at != null ? s.finished_at - s.started_at : null;
}

function StepCard({
  step,
  last,
  open,
  onToggle,
  runStart,
}: {
  step: TimelineStep;
  last: boolean;
  open: boolean;
  onToggle: () => void;
  runStart: number;
}) {
  const meta = step.meta;
  const exchanges = meta?.exchanges ?? [];
  const tabs: { id: Tab; label: string }[] = [];
  if (step.output != null) tabs.push({ id: "output", label: "Output" });
  if (meta?.input != null) tabs.push({ id: "input", label: "Input" });
  if (exchanges.length > 0) tabs.push({ id: "exchanges", label: `Model calls · ${exchanges.length}` });
  if (step.task || step.decision) tabs.push({ id: "review", label: "Review" });
  const [tab, setTab] = useState<Tab | null>(null);
  const active = tab && tabs.some((t) => t.id === tab) ? tab : (step.task || step.decision ? "review" : tabs[0]?.id);
  const duration = stepDuration(step);
  const now = useNow();
  const tokens = (meta?.prompt_tokens ?? 0) + (meta?.completion_tokens ?? 0);
  const retries = meta?.retries ?? 0;
  const expandable = tabs.length > 0;

  return (
    <li className="relative flex gap-3 pb-2.5" data-testid="run-step" data-node={step.node} data-status={step.status}>
      {/* The rail joining the status icons. */}
      {!last && <span className="absolute top-6 bottom-0 left-[9px] w-px bg-border" aria-hidden />}
      <div className="relative z-[1] mt-2 grid size-[19px] shrink-0 place-items-center rounded-full bg-bg">
        <StatusIcon status={step.status} />
      </div>
      <div
        className={clsx(
          "min-w-0 flex-1 rounded-lg border bg-panel transition-colors",
          step.status === "failed" ? "border-danger/40" : step.status === "waiting" ? "border-accent/40" : "border-border",
        )}
      >
        <button
          type="button"
          className={clsx(
            "flex w-full items-center gap-2 rounded-lg px-3 py-2 text-left",
            expandable ? "hover:bg-hover" : "cursor-default",
          )}
          onClick={expandable ? onToggle : undefined}
          aria-expanded={expandable ? open : undefined}
        >
          {expandable ? (
            open ? <ChevronDown className="size-3.5 shrink-0 text-faint" /> : <ChevronRight className="size-3.5 shrink-0 text-faint" />
          ) : (
            <span className="size-3.5 shrink-0" />
          )}
          <span className="font-mono text-[12.5px] font-medium">{step.node}</span>
          {step.visit > 1 && (
            <Badge title={`Visit ${step.visit} of this node`}>
              <Repeat className="size-3" />
              {step.visit}
            </Badge>
          )}
          {step.label && step.label !== pastTense(step.decision?.action) && (
            <Badge tone="info" title="The branch this step chose">
              <GitBranch className="size-3" />
              {step.label}
            </Badge>
          )}
          {step.status === "waiting" && <Badge tone="accent">awaiting review</Badge>}
          {retries > 0 && (
            <Badge tone="warn" title="Provider retries">
              {retries} retr{retries === 1 ? "y" : "ies"}
            </Badge>
          )}
          {step.attempts > 1 && (
            <Badge tone="warn" title="The step ran more than once">
              attempt {step.attempts}
            </Badge>
          )}
          {meta?.fallback && (
            <Badge tone="warn" title="The primary agent failed; a fallback answered">
              <Shuffle className="size-3" />
              fallback {meta.fallback}
            </Badge>
          )}
          {step.decision && (
            <Badge tone={ACTION_TONE[step.decision.action]} title="The reviewer's decision">
              {pastTense(step.decision.action)} by {step.decision.by}
            </Badge>
          )}
          {!open && step.next.length > 0 && (
            <span className="flex min-w-0 items-center gap-1 truncate text-[11px] text-faint" title={`Next: ${step.next.join(", ")}`}>
              <CornerDownRight className="size-3 shrink-0" />
              <span className="truncate font-mono">{step.next.join(", ")}</span>
            </span>
          )}
          <span className="flex-1" />
          <span className="flex shrink-0 items-center gap-3 text-[11.5px] text-muted tabular-nums">
            {meta?.model && <span className="font-mono">{meta.model}</span>}
            {tokens > 0 && (
              <span title={`${meta?.prompt_tokens ?? 0} prompt + ${meta?.completion_tokens ?? 0} completion tokens`}>
                {formatTokens(meta?.prompt_tokens ?? 0)} → {formatTokens(meta?.completion_tokens ?? 0)} tok
              </span>
            )}
            <span className="w-16 text-right" title={`Started +${formatDuration(step.started_at - runStart)} after the run`}>
              {step.status === "waiting" || step.status === "running"
                ? relativeTime(step.started_at, now)
                : step.status === "failed" && duration === null
                  ? "failed"
                  : formatDuration(duration)}
            </span>
          </span>
        </button>
        {step.error && (
          <div className="mx-3 mb-2 rounded-md border border-danger/30 bg-danger/5 px-2.5 py-1.5 font-mono text-[11.5px] whitespace-pre-wrap text-danger">
            {step.error}
          </div>
        )}
        {open && expandable && active && (
          <div className="border-t border-border">
            <div role="tablist" className="flex gap-1 px-2 pt-1.5">
              {tabs.map((t) => (
                <button
                  key={t.id}
                  type="button"
                  role="tab"
                  aria-selected={active === t.id}
                  onClick={() => setTab(t.id)}
                  className={clsx(
                    "rounded-md px-2 py-1 text-xs transition-colors",
                    active === t.id ? "bg-selected font-medium text-fg" : "text-muted hover:bg-hover hover:text-fg",
                  )}
                >
                  {t.label}
                </button>
              ))}
              {step.next.length > 0 && (
                <span className="ml-auto flex items-center gap-1 pr-1 text-[11px] text-faint">
                  next <ArrowRight className="size-3" /> <span className="font-mono text-muted">{step.next.join(", ")}</span>
                </span>
              )}
            </div>
            <div role="tabpanel" className="p-3 pt-2">
              {active === "output" && <OutputView value={step.output} />}
              {active === "input" && <InputView value={meta?.input ?? null} />}
              {active === "exchanges" && <ExchangesView exchanges={exchanges} />}
              {active === "review" && <ReviewView step={step} />}
            </div>
          </div>
        )}
      </div>
    </li>
  );
}

function isObject(v: unknown): v is { [key: string]: JsonValue } {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Model steps put their reply in `text` (and parsed JSON in `json`): show that first. */
function OutputView({ value }: { value: JsonValue | null }) {
  const [raw, setRaw] = useState(false);
  const text = isObject(value) && typeof value.text === "string" ? value.text : null;
  const json = isObject(value) && value.json != null ? value.json : null;
  if (value == null) return <div className="text-muted">No output.</div>;
  if (typeof value === "string") return <TextBlock text={value} />;
  if (text === null || raw) {
    return (
      <div className="flex flex-col gap-1.5">
        {text !== null && <ViewToggle raw={raw} onChange={setRaw} />}
        <JsonBlock value={value} />
      </div>
    );
  }
  return (
    <div className="flex flex-col gap-1.5">
      <ViewToggle raw={raw} onChange={setRaw} />
      {json !== null ? <JsonBlock value={json} /> : <TextBlock text={text} />}
    </div>
  );
}

function ViewToggle({ raw, onChange }: { raw: boolean; onChange: (raw: boolean) => void }) {
  return (
    <div className="flex gap-2 text-[11px]">
      {[false, true].map((r) => (
        <button
          key={String(r)}
          type="button"
          onClick={() => onChange(r)}
          className={clsx("rounded px-1.5 py-0.5", raw === r ? "bg-sunken font-medium text-fg" : "text-muted hover:text-fg")}
        >
          {r ? "Full output" : "Reply"}
        </button>
      ))}
    </div>
  );
}

interface Message {
  role: string;
  content: string;
}

function messagesOf(value: JsonValue | null): Message[] | null {
  if (!isObject(value) || !Array.isArray(value.messages)) return null;
  const out: Message[] = [];
  for (const m of value.messages) {
    if (!isObject(m) || typeof m.role !== "string" || typeof m.content !== "string") return null;
    out.push({ role: m.role, content: m.content });
  }
  return out;
}

function Messages({ messages }: { messages: Message[] }) {
  return (
    <div className="flex flex-col gap-2">
      {messages.map((m, i) => (
        <div key={i} className="rounded-md border border-border bg-sunken">
          <div className="flex items-center justify-between border-b border-border px-3 py-1 text-[10.5px] font-semibold tracking-wide text-faint uppercase">
            {m.role}
            <CopyButton text={m.content} label={`Copy ${m.role} message`} />
          </div>
          <div className="max-h-72 overflow-auto px-3 py-2 text-[12.5px] leading-relaxed whitespace-pre-wrap">{m.content}</div>
        </div>
      ))}
    </div>
  );
}

/** The rendered prompt (messages) or request body the step sent. */
function InputView({ value }: { value: JsonValue | null }) {
  const messages = messagesOf(value);
  if (messages) return <Messages messages={messages} />;
  if (typeof value === "string") return <TextBlock text={value} />;
  return <JsonBlock value={value} />;
}

function ExchangesView({ exchanges }: { exchanges: Exchange[] }) {
  const [openIndex, setOpenIndex] = useState<number | null>(null);
  return (
    <div className="overflow-hidden rounded-md border border-border">
      <table className="w-full text-left text-xs">
        <thead className="bg-sunken text-[11px] text-faint">
          <tr>
            <th className="px-2.5 py-1.5 font-medium">#</th>
            <th className="px-2.5 py-1.5 font-medium">Purpose</th>
            <th className="px-2.5 py-1.5 font-medium">Agent · provider</th>
            <th className="px-2.5 py-1.5 font-medium">Model</th>
            <th className="px-2.5 py-1.5 text-right font-medium">Latency</th>
            <th className="px-2.5 py-1.5 text-right font-medium">Tokens</th>
            <th className="px-2.5 py-1.5 text-right font-medium">Tries</th>
          </tr>
        </thead>
        <tbody>
          {exchanges.map((x, i) => {
            const requestMessages = messagesOf(x.request);
            const isOpen = openIndex === i;
            return (
              <ExchangeRows
                key={i}
                index={i}
                exchange={x}
                open={isOpen}
                onToggle={() => setOpenIndex(isOpen ? null : i)}
                requestMessages={requestMessages}
              />
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function ExchangeRows({
  index,
  exchange: x,
  open,
  onToggle,
  requestMessages,
}: {
  index: number;
  exchange: Exchange;
  open: boolean;
  onToggle: () => void;
  requestMessages: Message[] | null;
}) {
  const requestModel = isObject(x.request) && typeof x.request.model === "string" ? x.request.model : null;
  return (
    <>
      <tr
        className={clsx("cursor-pointer border-t border-border hover:bg-hover", x.error && "bg-danger/5")}
        onClick={onToggle}
        aria-expanded={open}
      >
        <td className="px-2.5 py-1.5 text-faint tabular-nums">
          <span className="flex items-center gap-1">
            {open ? <ChevronDown className="size-3" /> : <ChevronRight className="size-3" />}
            {index + 1}
          </span>
        </td>
        <td className="px-2.5 py-1.5">
          <Badge tone={x.purpose === "repair" ? "warn" : "neutral"}>{x.purpose}</Badge>
        </td>
        <td className="px-2.5 py-1.5">
          {x.agent} <span className="text-faint">· {x.provider}</span>
        </td>
        <td className="px-2.5 py-1.5 font-mono">
          {x.model ?? requestModel ?? "—"}
          {x.model && requestModel && x.model !== requestModel && <span className="text-faint"> (asked {requestModel})</span>}
        </td>
        <td className="px-2.5 py-1.5 text-right tabular-nums">{formatDuration(x.latency_ms)}</td>
        <td className="px-2.5 py-1.5 text-right tabular-nums">
          {formatTokens(x.prompt_tokens)} → {formatTokens(x.completion_tokens)}
        </td>
        <td className={clsx("px-2.5 py-1.5 text-right tabular-nums", x.attempts > 1 && "font-medium text-warn")}>{x.attempts}</td>
      </tr>
      {x.error && (
        <tr className="bg-danger/5">
          <td />
          <td colSpan={6} className="px-2.5 pb-1.5 font-mono text-[11px] whitespace-pre-wrap text-danger">
            {x.error}
          </td>
        </tr>
      )}
      {open && (
        <tr className="border-t border-border bg-panel">
          <td colSpan={7} className="p-2.5">
            <div className="grid gap-2.5 lg:grid-cols-2">
              <div className="flex min-w-0 flex-col gap-1">
                <div className="text-[11px] font-medium text-faint">Request</div>
                {requestMessages ? <Messages messages={requestMessages} /> : <JsonBlock value={x.request} />}
              </div>
              <div className="flex min-w-0 flex-col gap-1">
                <div className="text-[11px] font-medium text-faint">Response</div>
                {x.response != null ? <TextBlock text={x.response} /> : <div className="text-muted">No reply.</div>}
              </div>
            </div>
          </td>
        </tr>
      )}
    </>
  );
}

const ACTION_TONE = { approve: "ok", edit: "info", reject: "danger", escalate: "warn" } as const;

function ReviewView({ step }: { step: TimelineStep }) {
  const { task, decision } = step;
  const now = useNow();
  return (
    <div className="flex flex-col gap-3">
      {task && (
        <div className="flex flex-col gap-1.5">
          <div className="flex flex-wrap items-center gap-2 text-xs">
            <span className="font-medium text-fg">{task.title}</span>
            <Badge>role {task.role}</Badge>
            {task.due_at != null && !decision && (
              <span className={clsx("text-muted", task.due_at < now && "text-danger")} title={formatTime(task.due_at)}>
                due {relativeTime(task.due_at)}
              </span>
            )}
            {step.status === "waiting" && (
              <Link to={`/inbox/${task.id}`} className="ml-auto flex items-center gap-1 text-accent hover:underline">
                Open in Inbox <ExternalLink className="size-3" />
              </Link>
            )}
          </div>
          <div className="text-[11px] font-medium text-faint">Draft</div>
          <TextBlock text={task.draft} />
        </div>
      )}
      {decision ? (
        <div className="flex flex-col gap-1.5">
          <div className="flex items-center gap-2 text-xs">
            <span className="text-[11px] font-medium text-faint">Decision</span>
            <Badge tone={ACTION_TONE[decision.action]}>{decision.action}</Badge>
            <span className="text-muted">by {decision.by}</span>
          </div>
          {decision.reason && <div className="text-xs text-fg">Reason: {decision.reason}</div>}
          {decision.text && <TextBlock text={decision.text} />}
        </div>
      ) : (
        step.status === "waiting" && <div className="text-xs text-muted">No decision yet.</div>
      )}
    </div>
  );
}
