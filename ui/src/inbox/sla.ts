// SLA chips: how long until a task is due, coloured by urgency.
import type { TaskSummary } from "../api/types.gen";

export type SlaTone = "neutral" | "warn" | "danger";

export interface Sla {
  tone: SlaTone;
  /** Short text for a chip: "3h 12m", "42m", "2d 4h", "4m over". */
  label: string;
  /** Full sentence for the tooltip and screen readers. */
  title: string;
}

const HOUR = 3_600_000;

/** "2d 4h", "3h 12m", "42m", "<1m" */
export function duration(ms: number): string {
  const m = Math.floor(Math.abs(ms) / 60_000);
  if (m < 1) return "<1m";
  if (m < 60) return `${m}m`;
  if (m < 60 * 24) return `${Math.floor(m / 60)}h ${m % 60}m`;
  return `${Math.floor(m / 1440)}d ${Math.floor((m % 1440) / 60)}h`;
}

export function formatDate(ms: number): string {
  return new Date(ms).toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** Null when the task has no SLA or is decided (the clock no longer matters). */
export function sla(t: Pick<TaskSummary, "due_at" | "breached_at" | "status">, now: number): Sla | null {
  if (t.status !== "pending") return null;
  if (t.breached_at !== null) {
    return {
      tone: "danger",
      label: `${duration(now - t.breached_at)} over`,
      title: `SLA breached ${formatDate(t.breached_at)}`,
    };
  }
  if (t.due_at === null) return null;
  const left = t.due_at - now;
  if (left < 0) return { tone: "danger", label: `${duration(left)} over`, title: `Overdue since ${formatDate(t.due_at)}` };
  return {
    tone: left < HOUR ? "warn" : "neutral",
    label: duration(left),
    title: `Due ${formatDate(t.due_at)} (in ${duration(left)})`,
  };
}

/** Compact age for list rows: "5m", "3h", "2d". */
export function age(createdAt: number, now: number): string {
  const m = Math.max(0, Math.floor((now - createdAt) / 60_000));
  if (m < 1) return "now";
  if (m < 60) return `${m}m`;
  if (m < 60 * 24) return `${Math.floor(m / 60)}h`;
  return `${Math.floor(m / 1440)}d`;
}
