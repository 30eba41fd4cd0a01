// Inbox filters and saved views. Status and search go to the server (they change what is
// fetched); blueprint, role and due are applied here on the loaded list, which keeps one fetch
// per (status, search) and lets the filter menus show what the list actually holds.
import type { TaskSummary } from "../api/types.gen";

export type StatusFilter = "pending" | "decided" | "all";
export type DueFilter = "any" | "overdue" | "today";

/** The role filter value that means "any of my roles, or claimed by me". */
export const MINE = "@mine";

export interface InboxFilters {
  status: StatusFilter;
  blueprint: string | null;
  role: string | null;
  due: DueFilter;
  q: string;
  /** Only tasks with a decision the team's hub did not accept (a conflict). */
  conflicts: boolean;
}

export interface SavedView {
  id: string;
  name: string;
  filters: InboxFilters;
  builtin?: boolean;
}

export interface Me {
  name: string;
  roles: readonly string[];
  /** No user directory: everything is everyone's. */
  singleUser: boolean;
}

export const DEFAULT_FILTERS: InboxFilters = { status: "pending", blueprint: null, role: null, due: "any", q: "", conflicts: false };

export const BUILTIN_VIEWS: readonly SavedView[] = [
  { id: "all", name: "All pending", filters: DEFAULT_FILTERS, builtin: true },
  { id: "mine", name: "Mine", filters: { ...DEFAULT_FILTERS, role: MINE }, builtin: true },
  { id: "overdue", name: "Overdue", filters: { ...DEFAULT_FILTERS, due: "overdue" }, builtin: true },
  // Conflicts sit on decided tasks too (a decision that came late): every status.
  { id: "conflicts", name: "Conflicts", filters: { ...DEFAULT_FILTERS, status: "all", conflicts: true }, builtin: true },
];

export function sameFilters(a: InboxFilters, b: InboxFilters): boolean {
  return (
    a.status === b.status &&
    a.blueprint === b.blueprint &&
    a.role === b.role &&
    a.due === b.due &&
    a.conflicts === b.conflicts &&
    a.q.trim() === b.q.trim()
  );
}

export function isOverdue(t: TaskSummary, now: number): boolean {
  return t.breached_at !== null || (t.due_at !== null && t.due_at < now);
}

function endOfDay(now: number): number {
  const d = new Date(now);
  d.setHours(23, 59, 59, 999);
  return d.getTime();
}

export function isMine(t: TaskSummary, me: Me): boolean {
  if (me.singleUser || me.roles.length === 0) return true;
  return me.roles.includes(t.role) || t.claimed_by === me.name;
}

/** The client-side part of the filters; the list keeps the server's order (soonest due first). */
export function applyFilters(tasks: readonly TaskSummary[], f: InboxFilters, now: number, me: Me): TaskSummary[] {
  if (f.blueprint === null && f.role === null && f.due === "any" && !f.conflicts) return tasks as TaskSummary[];
  const eod = endOfDay(now);
  return tasks.filter((t) => {
    if (f.conflicts && t.sync !== "conflict") return false;
    if (f.blueprint !== null && t.blueprint !== f.blueprint) return false;
    if (f.role === MINE) {
      if (!isMine(t, me)) return false;
    } else if (f.role !== null && t.role !== f.role) return false;
    if (f.due === "overdue" && !(t.status === "pending" && isOverdue(t, now))) return false;
    if (f.due === "today" && !(t.due_at !== null && t.due_at >= now && t.due_at <= eod && t.breached_at === null)) return false;
    return true;
  });
}

/** Distinct values of a field with their counts, most frequent first: the filter menus. */
export function facet(tasks: readonly TaskSummary[], field: "blueprint" | "role"): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t[field], (counts.get(t[field]) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Parse stored filters defensively: localStorage outlives versions of this code. */
export function parseFilters(value: unknown): InboxFilters {
  const v = (value && typeof value === "object" ? value : {}) as Record<string, unknown>;
  const status = v.status === "decided" || v.status === "all" ? v.status : "pending";
  const due = v.due === "overdue" || v.due === "today" ? v.due : "any";
  return {
    status,
    blueprint: typeof v.blueprint === "string" ? v.blueprint : null,
    role: typeof v.role === "string" ? v.role : null,
    due,
    q: typeof v.q === "string" ? v.q : "",
    conflicts: v.conflicts === true,
  };
}

const FILTERS_KEY = "processops.inbox.filters";
const VIEWS_KEY = "processops.inbox.views";

function readJson(key: string): unknown {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as unknown) : null;
  } catch {
    return null;
  }
}

export function loadFilters(): InboxFilters {
  const v = readJson(FILTERS_KEY);
  return v ? parseFilters(v) : DEFAULT_FILTERS;
}

export function storeFilters(f: InboxFilters): void {
  localStorage.setItem(FILTERS_KEY, JSON.stringify(f));
}

export function loadViews(): SavedView[] {
  const v = readJson(VIEWS_KEY);
  if (!Array.isArray(v)) return [];
  return v.flatMap((item: unknown): SavedView[] => {
    if (!item || typeof item !== "object") return [];
    const o = item as Record<string, unknown>;
    if (typeof o.id !== "string" || typeof o.name !== "string") return [];
    return [{ id: o.id, name: o.name, filters: parseFilters(o.filters) }];
  });
}

export function storeViews(views: readonly SavedView[]): void {
  localStorage.setItem(VIEWS_KEY, JSON.stringify(views.filter((v) => !v.builtin)));
}
