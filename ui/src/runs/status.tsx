// How run and step statuses look, in one place so the list, the timeline and other screens agree.
import { clsx } from "clsx";
import { AlertTriangle, CheckCircle2, CircleDashed, CircleSlash, Clock, Loader2, XCircle } from "lucide-react";
import { Badge } from "../components/ui";

export const RUN_STATUSES = ["running", "waiting", "attention", "completed", "failed"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

type Tone = "neutral" | "ok" | "warn" | "danger" | "info" | "accent";

const META: Record<string, { tone: Tone; label: string; hint: string }> = {
  running: { tone: "info", label: "Running", hint: "Steps are executing" },
  waiting: { tone: "accent", label: "Waiting", hint: "Parked at a review task" },
  attention: { tone: "warn", label: "Attention", hint: "A step failed; fix the cause and retry" },
  completed: { tone: "ok", label: "Completed", hint: "Finished" },
  failed: { tone: "danger", label: "Failed", hint: "Stopped with an error" },
  // Step statuses.
  done: { tone: "ok", label: "Done", hint: "Finished" },
  skipped: { tone: "neutral", label: "Skipped", hint: "Not on the path taken" },
};

export function statusMeta(status: string) {
  return META[status] ?? { tone: "neutral" as Tone, label: status, hint: status };
}

/** Runs that can still change: poll them. */
export function isLive(status: string): boolean {
  return status === "running" || status === "waiting";
}

export function StatusIcon({ status, className }: { status: string; className?: string }) {
  const cls = clsx("size-4 shrink-0", className);
  switch (status) {
    case "running":
      return <Loader2 className={clsx(cls, "animate-spin text-info")} aria-label="running" />;
    case "waiting":
      return <Clock className={clsx(cls, "text-accent")} aria-label="waiting" />;
    case "attention":
      return <AlertTriangle className={clsx(cls, "text-warn")} aria-label="needs attention" />;
    case "completed":
    case "done":
      return <CheckCircle2 className={clsx(cls, "text-ok")} aria-label={status} />;
    case "failed":
      return <XCircle className={clsx(cls, "text-danger")} aria-label="failed" />;
    case "skipped":
      return <CircleSlash className={clsx(cls, "text-faint")} aria-label="skipped" />;
    default:
      return <CircleDashed className={clsx(cls, "text-faint")} aria-label={status} />;
  }
}

export function StatusBadge({ status }: { status: string }) {
  const m = statusMeta(status);
  return (
    <Badge tone={m.tone} title={m.hint}>
      {m.label}
    </Badge>
  );
}

/** "820 ms", "4.2 s", "3m 05s", "2h 10m". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function formatTokens(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toLocaleString("en-US");
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}
