// Decision rules the UI mirrors from the engine, as pure functions.
import type { TaskDetail } from "../api/types.gen";

// Reject reasons: a review may list reasons, and then a rejection must start with one of
// them (the engine checks); the reviewer's own words follow after a colon.

export function composeReason(picked: string | null, note: string): string {
  const n = note.trim();
  if (picked && n) return `${picked}: ${n}`;
  return picked ?? n;
}

/** Whether a reason satisfies a review's list (same rule as the engine: case-insensitive prefix). */
export function reasonAllowed(reason: string, reasons: readonly string[]): boolean {
  const r = reason.trim().toLowerCase();
  if (!r) return false;
  return reasons.length === 0 || reasons.some((x) => r.startsWith(x.toLowerCase()));
}

/** Reasons every one of several reviews accepts; null when they disagree entirely. */
export function commonReasons(lists: ReadonlyArray<readonly string[]>): string[] | null {
  const withReasons = lists.filter((l) => l.length > 0);
  if (withReasons.length === 0) return [];
  const [first, ...others] = withReasons;
  const common = first!.filter((r) => others.every((o) => o.some((x) => x.toLowerCase() === r.toLowerCase())));
  return common.length ? common : null;
}

/** Who an escalation goes to: the chain continues after the role the task sits with now. */
export function nextRole(d: Pick<TaskDetail, "escalation" | "task">): string | null {
  const chain = d.escalation;
  const at = chain.indexOf(d.task.role);
  return (at >= 0 ? chain.slice(at + 1) : chain)[0] ?? null;
}
