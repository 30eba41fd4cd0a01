// Change control as the Versions screen needs it: which moves a version can make next, which
// of them the current user may make (and why not), what a rollback restores, and the diff
// grouped the way a reviewer reads it. Pure, so it is tested with tables; the engine stays
// the authority (crates/core/src/lifecycle.rs) and the screen shows its refusals as they come.
import type { Area, BlueprintVersions, ChangeKind, DiffEntry, DiffLine, VersionInfo } from "../api/types.gen";

export const GOVERNANCE_ROLE = "governance-lead";
export const DESIGNER_ROLE = "workflow-designer";

/** A stage a version can be moved to. */
export type Move = "pilot" | "monitored" | "approved" | "retired";

/** Who is acting: the app's current user. */
export interface Actor {
  name: string;
  roles: readonly string[];
  /** No directory is configured: roles pass, the author rule still holds. */
  singleUser: boolean;
}

interface MoveRule {
  /** The button's label. */
  label: string;
  /** Any of these roles may make the move. */
  roles: readonly string[];
  /** Whether the version's author may make it. */
  authorMay: boolean;
  /** What it does, for the tooltip. */
  hint: string;
}

export const MOVES: Record<Move, MoveRule> = {
  pilot: {
    label: "Pilot",
    roles: [DESIGNER_ROLE, GOVERNANCE_ROLE],
    authorMay: true,
    hint: "Start the pilot: only the cohort in the blueprint's lifecycle.pilot gets its runs and tasks",
  },
  monitored: {
    label: "Monitor",
    roles: [GOVERNANCE_ROLE],
    authorMay: false,
    hint: "Keep it with the cohort and watch it against the approved version",
  },
  approved: {
    label: "Approve",
    roles: [GOVERNANCE_ROLE],
    authorMay: false,
    hint: "Approve and scale it to everyone; the approved version it replaces retires",
  },
  retired: {
    label: "Retire",
    roles: [GOVERNANCE_ROLE],
    authorMay: true,
    hint: "Retire it: it starts no new runs and stays retired",
  },
};

/** The moves that are a valid next step from a stage (the lifecycle's order, or retiring). */
export function nextMoves(stage: string | null): Move[] {
  switch (stage) {
    case "draft":
      return ["pilot", "retired"];
    case "pilot":
      return ["monitored", "retired"];
    case "monitored":
      return ["approved", "retired"];
    case "approved":
      return ["retired"];
    default:
      // Never proposed (propose it first) or retired (stays retired).
      return [];
  }
}

export interface Permission {
  allowed: boolean;
  /** Why not, in words for a tooltip; empty when allowed. */
  reason: string;
}

const yes: Permission = { allowed: true, reason: "" };

function roleCheck(actor: Actor, roles: readonly string[], doing: string): Permission {
  if (actor.singleUser || roles.some((r) => actor.roles.includes(r))) return yes;
  const needs = roles.length === 1 ? `the role ${roles[0]}` : `one of the roles ${roles.join(", ")}`;
  const has = actor.roles.length ? actor.roles.join(", ") : "none";
  return { allowed: false, reason: `To ${doing} you need ${needs} (${actor.name || "you"} has: ${has})` };
}

const DOING: Record<Move, string> = {
  pilot: "start a pilot",
  monitored: "promote a version",
  approved: "promote a version",
  retired: "retire a version",
};

/** Whether the actor may move this version to `move`, and why not. */
export function movePermission(version: Pick<VersionInfo, "author">, move: Move, actor: Actor): Permission {
  const rule = MOVES[move];
  const roles = roleCheck(actor, rule.roles, DOING[move]);
  if (!roles.allowed) return roles;
  if (!rule.authorMay && version.author !== null && version.author === actor.name) {
    return {
      allowed: false,
      reason: `You proposed this version, so you cannot promote it: another ${GOVERNANCE_ROLE} must`,
    };
  }
  return yes;
}

export interface VersionAction extends Permission {
  move: Move;
  label: string;
  hint: string;
}

/** The buttons of a version's row: its valid next steps, each with whether I may. */
export function versionActions(version: Pick<VersionInfo, "stage" | "author">, actor: Actor): VersionAction[] {
  return nextMoves(version.stage).map((move) => ({
    move,
    label: MOVES[move].label,
    hint: MOVES[move].hint,
    ...movePermission(version, move, actor),
  }));
}

export function proposePermission(actor: Actor): Permission {
  return roleCheck(actor, [DESIGNER_ROLE, GOVERNANCE_ROLE], "propose a version");
}

export function rollbackPermission(actor: Actor): Permission {
  return roleCheck(actor, [GOVERNANCE_ROLE], "roll back a version");
}

/** The file's version when it was never proposed (then the screen offers to propose it). */
export function unproposedFileVersion(data: BlueprintVersions): VersionInfo | null {
  return data.versions.find((v) => v.current_file && v.stage === null) ?? null;
}

export function approvedVersion(data: BlueprintVersions): VersionInfo | null {
  return data.versions.find((v) => v.stage === "approved") ?? null;
}

/**
 * What a rollback restores: the version approved most recently before the current one that
 * is retired and was not itself rolled back (as `core::lifecycle::plan_rollback` decides).
 * `null`: nothing to roll back (no approved version, or none approved before it).
 */
export function rollbackTarget(data: BlueprintVersions): VersionInfo | null {
  const current = approvedVersion(data);
  if (!current) return null;
  const rolledBack = new Set(data.history.filter((h) => h.reason === "rolled_back").map((h) => h.version));
  let best: VersionInfo | null = null;
  for (const v of data.versions) {
    if (v.version === current.version || v.stage !== "retired" || rolledBack.has(v.version)) continue;
    if (v.approved_at === null) continue;
    if (current.approved_at !== null && v.approved_at > current.approved_at) continue;
    if (!best || v.approved_at > (best.approved_at ?? 0)) best = v;
  }
  return best;
}

/** Feedback references typed into the chips field: split on commas and new lines, trimmed, no repeats. */
export function parseRefs(text: string, existing: readonly string[] = []): string[] {
  const out = [...existing];
  for (const part of text.split(/[,\n]/)) {
    const ref = part.trim();
    if (ref && !out.includes(ref)) out.push(ref);
  }
  return out;
}

/** The full hash a URL's version (a hash or its first characters) stands for; "" when none or ambiguous. */
export function resolveVersion(versions: readonly Pick<VersionInfo, "version">[], prefix: string): string {
  if (!prefix) return "";
  const found = versions.filter((v) => v.version.startsWith(prefix));
  return found.length === 1 ? found[0]!.version : "";
}

export function shortHash(hash: string): string {
  return hash.slice(0, 8);
}

const REASONS: Record<string, string> = {
  proposed: "proposed",
  asked: "",
  superseded: "superseded",
  rolled_back: "rolled back",
  restored: "restored by a rollback",
};

/** Why a stage changed, as a chip's words; empty for a move someone asked for. */
export function reasonLabel(reason: string): string {
  return REASONS[reason] ?? reason.replace(/_/g, " ");
}

// ---------------------------------------------------------------------------------------
// The diff

export const AREAS: readonly { area: Area; label: string }[] = [
  { area: "graph", label: "Graph" },
  { area: "prompts", label: "Prompts" },
  { area: "policies", label: "Policies" },
  { area: "process", label: "Process" },
];

export interface DiffGroup {
  area: Area;
  label: string;
  entries: DiffEntry[];
}

/** Changes grouped by area (Graph, Prompts, Policies, Process), empty areas left out, order kept. */
export function groupDiff(changes: readonly DiffEntry[]): DiffGroup[] {
  return AREAS.map(({ area, label }) => ({ area, label, entries: changes.filter((c) => c.area === area) })).filter(
    (g) => g.entries.length > 0,
  );
}

export const MARKER: Record<ChangeKind, string> = { added: "+", removed: "−", changed: "~" };

/** How an entry is shown: a line diff, a before → after pair, or just the marker (whole things). */
export type EntryView =
  | { kind: "lines"; lines: DiffLine[] }
  | { kind: "values"; before: string | null; after: string | null }
  | { kind: "whole" };

export function entryView(entry: DiffEntry): EntryView {
  // `lines` is left out of the JSON when empty, whatever the generated type says.
  const lines = entry.lines ?? [];
  if (lines.length > 0) return { kind: "lines", lines };
  if (entry.before === null && entry.after === null) return { kind: "whole" };
  return { kind: "values", before: entry.before, after: entry.after };
}

/** What an entry is about: `node draft (prompt) · template`. */
export function entryTitle(entry: Pick<DiffEntry, "subject" | "field">): string {
  return entry.field ? `${entry.subject} · ${entry.field}` : entry.subject;
}

/** Counts for the diff's summary line: `3 changes: 1 added, 1 removed, 1 changed`. */
export function diffSummary(changes: readonly DiffEntry[]): string {
  if (changes.length === 0) return "No changes";
  const n = (k: ChangeKind) => changes.filter((c) => c.change === k).length;
  const parts = (["added", "removed", "changed"] as const).filter((k) => n(k) > 0).map((k) => `${n(k)} ${k}`);
  return `${changes.length} change${changes.length === 1 ? "" : "s"}: ${parts.join(", ")}`;
}

/** A line of a folded line diff, or a run of unchanged lines folded away. */
export type FoldedLine = { kind: "line"; line: DiffLine } | { kind: "fold"; start: number; count: number };

/**
 * Unchanged lines more than `context` lines away from a change fold into one marker (the
 * engine sends the whole template), as a unified diff's hunks do. A single line is not folded.
 */
export function foldContext(lines: readonly DiffLine[], context = 3): FoldedLine[] {
  const changed = lines.map((l) => l.tag === "+" || l.tag === "-");
  const keep = lines.map((_, i) => {
    for (let j = Math.max(0, i - context); j <= Math.min(lines.length - 1, i + context); j++) if (changed[j]) return true;
    return false;
  });
  const out: FoldedLine[] = [];
  for (let i = 0; i < lines.length; ) {
    if (keep[i]) {
      out.push({ kind: "line", line: lines[i]! });
      i += 1;
      continue;
    }
    let end = i;
    while (end < lines.length && !keep[end]) end += 1;
    if (end - i === 1) out.push({ kind: "line", line: lines[i]! });
    else out.push({ kind: "fold", start: i, count: end - i });
    i = end;
  }
  return out;
}
