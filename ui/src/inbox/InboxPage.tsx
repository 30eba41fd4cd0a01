// The inbox: managers approve, edit, reject or escalate AI drafts. A virtualized list on the
// left (filters, saved views, batch selection), the focused task on the right; the focused
// task lives in the URL (/inbox/:taskId). Keyboard first: see inboxKeys.ts.
import { useQueries } from "@tanstack/react-query";
import { clsx } from "clsx";
import { CheckCheck, CloudUpload, CornerUpRight, Keyboard, RefreshCw, SearchX, X } from "lucide-react";
import { useCallback, useEffect, useEffectEvent, useMemo, useRef, useState, type ReactNode } from "react";
import { useNavigate, useParams } from "react-router";
import { toast } from "sonner";
import type { DecisionRequest, TaskSummary } from "../api/types.gen";
import { useMe } from "../app/me";
import { Button, EmptyState, ErrorState, Kbd, PageHeader } from "../components/ui";
import { commonReasons } from "./decisions";
import { clearEdit, useEditedIds } from "./edits";
import { FilterRow, SearchBox, ViewTabs } from "./FilterBar";
import {
  applyFilters,
  BUILTIN_VIEWS,
  DEFAULT_FILTERS,
  facet,
  loadFilters,
  loadViews,
  sameFilters,
  storeFilters,
  storeViews,
  type InboxFilters,
  type SavedView,
} from "./filters";
import { InboxClientContext, taskKey, useClaim, useDecisions, useInboxClient, useTaskList, type InboxClient } from "./data";
import { inboxKeys, isTypingTarget, nextAfter, selectRange, toggle } from "./inboxKeys";
import { RejectDialog } from "./RejectDialog";
import { ROW_HEIGHT, TaskList } from "./TaskList";
import { TaskDetailPane } from "./TaskDetailPane";

type DecideAction = "approve" | "edit" | "reject" | "escalate";

const VERB: Record<DecideAction, [string, string]> = {
  approve: ["approve", "Approved"],
  edit: ["send the edit of", "Edited"],
  reject: ["reject", "Rejected"],
  escalate: ["escalate", "Escalated"],
};

/** `client` is for tests; the app uses the real API. */
export function InboxPage({ client }: { client?: InboxClient }) {
  const page = <Inbox_ />;
  return client ? <InboxClientContext.Provider value={client}>{page}</InboxClientContext.Provider> : page;
}

function useNow(ms: number) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

function Inbox_() {
  const { taskId } = useParams();
  const navigate = useNavigate();
  // The focused task follows the URL, but is held locally too: the router applies navigations
  // in a transition, and a held-down j must not read a focus that is a few frames old.
  const [focusedId, setFocusedId] = useState<string | null>(taskId ?? null);
  const [urlTask, setUrlTask] = useState(taskId);
  if (taskId !== urlTask) {
    setUrlTask(taskId);
    setFocusedId(taskId ?? null);
  }
  const { name, roles, me } = useMe();
  const singleUser = me?.single_user ?? false;
  const now = useNow(15_000);
  // Filters only need minute precision; recomputing 100k rows every tick would be waste.
  const minute = Math.floor(now / 60_000) * 60_000;

  const [filters, setFiltersState] = useState<InboxFilters>(loadFilters);
  const [userViews, setUserViews] = useState<SavedView[]>(loadViews);
  const [selected, setSelected] = useState<ReadonlySet<string>>(() => new Set());
  const [anchorId, setAnchorId] = useState<string | null>(null);
  const [editingId, setEditingId] = useState<string | null>(null);
  const [rejectFor, setRejectFor] = useState<string[] | null>(null);
  const [help, setHelp] = useState(false);
  const searchRef = useRef<HTMLInputElement>(null);

  const setFilters = useCallback((f: InboxFilters) => {
    setFiltersState(f);
    storeFilters(f);
    setSelected(new Set());
  }, []);
  const setQuery = useCallback((q: string) => setFiltersState((f) => {
    const next = { ...f, q };
    storeFilters(next);
    return next;
  }), []);

  // Pilots hide their tasks from people outside the cohort; one user sees everything.
  const list = useTaskList(filters.status, filters.q.trim(), me?.single_user ? "" : name);
  const { decide, syncing } = useDecisions();
  const claim = useClaim();
  const edited = useEditedIds();

  const all = list.data;
  const meInfo = useMemo(() => ({ name, roles, singleUser }), [name, roles, singleUser]);
  const tasks = useMemo(() => applyFilters(all ?? [], filters, minute, meInfo), [all, filters, minute, meInfo]);
  const ids = useMemo(() => tasks.map((t) => t.id), [tasks]);
  const byId = useMemo(() => new Map((all ?? []).map((t) => [t.id, t])), [all]);
  const blueprintFacet = useMemo(() => facet(all ?? [], "blueprint"), [all]);
  const roleFacet = useMemo(() => facet(all ?? [], "role"), [all]);
  const views = useMemo(() => [...BUILTIN_VIEWS, ...userViews], [userViews]);

  // Ticked rows that are still on screen: decisions apply to what the user can see.
  const selectedVisible = useMemo(
    () => (selected.size === 0 ? [] : ids.filter((id) => selected.has(id))),
    [ids, selected],
  );

  const focus = useCallback(
    (id: string | null) => {
      setFocusedId(id);
      void navigate(id ? `/inbox/${id}` : "/inbox", { replace: true });
    },
    [navigate],
  );

  // Open the first task when none is chosen, so the split view never starts half empty.
  const first = ids[0];
  useEffect(() => {
    if (!focusedId && first && !list.isPlaceholderData) void navigate(`/inbox/${first}`, { replace: true });
  }, [focusedId, first, list.isPlaceholderData, navigate]);

  const decidable = useCallback(
    (id: string) => {
      const t = byId.get(id);
      return !syncing.has(id) && (t === undefined || t.status === "pending");
    },
    [byId, syncing],
  );

  const decideMany = useCallback(
    async (targetIds: string[], action: DecideAction, extra: Pick<DecisionRequest, "text" | "reason"> = {}) => {
      if (!name) {
        toast.error("Cannot decide yet", { description: "The engine has not said who you are; check the connection." });
        return;
      }
      // A clicked Approve keeps focus and sits in the same spot for the next task; Space
      // would then approve that one too. Hand the keyboard back to the list instead.
      if (document.activeElement instanceof HTMLButtonElement) document.activeElement.blur();
      let live = targetIds.filter(decidable);
      if (action === "approve") {
        // Approving would silently drop an edit the user typed but has not sent.
        const unsent = live.filter((id) => edited.has(id));
        if (unsent.length) {
          live = live.filter((id) => !edited.has(id));
          toast.warning(unsent.length === 1 ? "This task has an unsent edit" : `${unsent.length} tasks have unsent edits`, {
            description: "Submit the edit (e, then ⌘↵) or discard it before approving the original draft.",
          });
        }
      }
      if (live.length === 0) return;
      const leaving = new Set([...live, ...syncing.keys()]);
      if (focusedId && leaving.has(focusedId)) focus(nextAfter(ids, focusedId, leaving));
      setSelected((s) => {
        if (s.size === 0) return s;
        const next = new Set(s);
        live.forEach((id) => next.delete(id));
        return next;
      });
      setEditingId(null);

      const [verb, done] = VERB[action];
      const results = await Promise.allSettled(
        live.map((id) => decide({ id, request: { action, by: name, ...extra } }).then(() => id)),
      );
      const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ id: live[i]!, error: r.reason as unknown }] : []));
      // Once decided, a task's unsent edit has nothing left to apply to.
      results.forEach((r) => r.status === "fulfilled" && clearEdit(r.value));
      const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
      if (live.length === 1 && failed[0]) {
        const title = byId.get(failed[0].id)?.title ?? "this task";
        toast.error(`Could not ${verb} “${title}”`, { description: message(failed[0].error) });
      } else if (failed.length > 0) {
        toast.error(`${failed.length} of ${live.length} tasks were not ${done.toLowerCase()}`, {
          description: message(failed[0]!.error),
        });
      } else if (live.length > 1) {
        toast.success(`${done} ${live.length} tasks`);
      }
    },
    [name, decidable, edited, syncing, focusedId, focus, ids, decide, byId],
  );

  const openEditor = useCallback(
    (id: string) => {
      if (!decidable(id)) return;
      if (id !== focusedId) focus(id);
      setEditingId(id);
    },
    [decidable, focusedId, focus],
  );

  const openReject = useCallback(
    (targetIds: string[]) => {
      const live = targetIds.filter(decidable);
      if (live.length) setRejectFor(live);
    },
    [decidable],
  );

  const onKey = useEffectEvent((e: KeyboardEvent) => {
    if (e.defaultPrevented) return;
    if (e.key === "Escape" && !isTypingTarget(e.target) && (help || editingId)) {
      // Esc closes what is open before it clears the selection.
      setHelp(false);
      setEditingId(null);
      return;
    }
    const result = inboxKeys(
      { focusedId, selected, anchorId },
      e,
      { ids, typing: isTypingTarget(e.target), blocked: rejectFor !== null },
    );
    if (!result.handled) return;
    e.preventDefault();
    const { state, effect } = result;
    if (state.selected !== selected) setSelected(state.selected);
    if (state.anchorId !== anchorId) setAnchorId(state.anchorId);
    switch (effect.type) {
      case "focus":
        focus(effect.id);
        break;
      case "decide":
        void decideMany(effect.ids, effect.action);
        break;
      case "reject":
        openReject(effect.ids);
        break;
      case "edit":
        openEditor(effect.id);
        break;
      case "search":
        searchRef.current?.focus();
        searchRef.current?.select();
        break;
      case "help":
        setHelp((h) => !h);
        break;
    }
  });
  useEffect(() => {
    const listener = (e: KeyboardEvent) => onKey(e);
    window.addEventListener("keydown", listener);
    return () => window.removeEventListener("keydown", listener);
  }, []);

  const onSelectRow = useCallback(
    (id: string, range: boolean) => {
      if (range) setSelected((s) => selectRange(s, ids, anchorId ?? focusedId, id));
      else {
        setSelected((s) => toggle(s, id));
        setAnchorId(id);
      }
    },
    [ids, anchorId, focusedId],
  );

  const focusedTask = focusedId ? byId.get(focusedId) : undefined;
  const filtered = !sameFilters({ ...filters, status: "pending" }, DEFAULT_FILTERS) || filters.status !== "pending";

  return (
    <div className="flex h-full min-h-0 flex-col">
      <PageHeader
        title={
          <span className="flex items-center gap-2">
            Inbox
            {all && (
              <span className="rounded-full bg-sunken px-1.5 text-[11px] font-medium text-muted tabular-nums" data-testid="inbox-count">
                {tasks.length.toLocaleString()}
              </span>
            )}
          </span>
        }
      >
        {syncing.size > 0 && (
          <span className="flex items-center gap-1.5 text-[12px] text-info" role="status">
            <CloudUpload className="size-3.5 animate-pulse" aria-hidden />
            {syncing.size} pending sync
          </span>
        )}
        <RefreshCw
          className={clsx("size-3.5 text-faint transition-opacity", list.isFetching ? "animate-spin opacity-100" : "opacity-0")}
          aria-hidden
        />
        <Button variant="ghost" size="sm" onClick={() => setHelp((h) => !h)} aria-expanded={help} aria-label="Keyboard shortcuts">
          <Keyboard className="size-3.5" aria-hidden />
          <Kbd>?</Kbd>
        </Button>
      </PageHeader>

      <div className="flex min-h-0 flex-1">
        <section aria-label="Task list" className="relative flex w-[456px] shrink-0 flex-col border-r border-border bg-panel">
          <ViewTabs
            views={views}
            filters={filters}
            onPick={(v) => setFilters({ ...v.filters, q: v.filters.q })}
            onSave={(n) => {
              const next = [...userViews, { id: `v${Date.now()}`, name: n, filters }];
              setUserViews(next);
              storeViews(next);
            }}
            onRemove={(v) => {
              const next = userViews.filter((u) => u.id !== v.id);
              setUserViews(next);
              storeViews(next);
            }}
          />
          <SearchBox ref={searchRef} value={filters.q} onChange={setQuery} busy={list.isFetching} />
          <FilterRow
            filters={filters}
            onChange={setFilters}
            blueprints={blueprintFacet}
            roles={roleFacet}
            myRoles={roles}
          />
          {selectedVisible.length > 0 ? (
            <BatchBar
              count={selectedVisible.length}
              onApprove={() => void decideMany(selectedVisible, "approve")}
              onReject={() => openReject(selectedVisible)}
              onEscalate={() => void decideMany(selectedVisible, "escalate")}
              onClear={() => setSelected(new Set())}
            />
          ) : (
            <div className="flex h-8 shrink-0 items-center border-y border-border px-3 text-[11.5px] text-faint">
              {all ? (
                <span className="tabular-nums">
                  {tasks.length.toLocaleString()} {tasks.length === 1 ? "task" : "tasks"}
                  {tasks.length !== all.length && ` of ${all.length.toLocaleString()}`}
                </span>
              ) : (
                <span>{list.isError ? "Not loaded" : "Loading…"}</span>
              )}
              <span className="ml-auto">{filters.status === "pending" ? "Soonest due first" : "By due date"}</span>
            </div>
          )}

          {list.isError && !all ? (
            <div className="min-h-0 flex-1 p-2">
              <ErrorState error={list.error} />
              <Button size="sm" className="ml-4" onClick={() => void list.refetch()}>
                Try again
              </Button>
            </div>
          ) : !all ? (
            <SkeletonRows />
          ) : tasks.length === 0 ? (
            <div className="min-h-0 flex-1">
              {filtered ? (
                <EmptyState icon={<SearchX className="size-8" />} title="No tasks match">
                  <p>Nothing in this view right now.</p>
                  <Button size="sm" className="mx-auto mt-3" onClick={() => setFilters(DEFAULT_FILTERS)}>
                    Clear filters
                  </Button>
                </EmptyState>
              ) : (
                <EmptyState icon={<CheckCheck className="size-8" />} title="Inbox zero">
                  Nothing waits for a decision. New drafts show up here as soon as a process reaches a review.
                </EmptyState>
              )}
            </div>
          ) : (
            <TaskList
              tasks={tasks}
              focusedId={focusedId}
              selected={selected}
              syncing={syncing}
              edited={edited}
              now={now}
              onOpen={focus}
              onSelect={onSelectRow}
            />
          )}
          {list.isError && all && (
            <div role="alert" className="border-t border-danger/30 bg-danger/10 px-3 py-1.5 text-[11.5px] text-danger">
              Not refreshed: {list.error.message}
            </div>
          )}
          <ShortcutBar onHelp={() => setHelp((h) => !h)} />
          {help && <HelpPanel onClose={() => setHelp(false)} />}
        </section>

        <section aria-label="Task detail" className="min-w-0 flex-1 bg-bg">
          <TaskDetailPane
            taskId={focusedId}
            listEmpty={all !== undefined && tasks.length === 0}
            summary={focusedTask}
            syncing={focusedId ? syncing.get(focusedId) : undefined}
            editing={editingId !== null && editingId === focusedId}
            hasEdit={focusedId !== null && edited.has(focusedId)}
            me={name}
            now={now}
            actions={{
              onApprove: () => focusedId && void decideMany([focusedId], "approve"),
              onEdit: () => focusedId && openEditor(focusedId),
              onReject: () => focusedId && openReject([focusedId]),
              onEscalate: () => focusedId && void decideMany([focusedId], "escalate"),
              onSubmitEdit: (text) => focusedId && void decideMany([focusedId], "edit", { text }),
              onCloseEditor: () => setEditingId(null),
              onClaim: (release) =>
                focusedId &&
                claim.mutate(
                  { id: focusedId, by: name, release },
                  { onError: (e) => toast.error(release ? "Could not release the task" : "Could not claim the task", { description: e.message }) },
                ),
            }}
          />
        </section>
      </div>

      {rejectFor && (
        <RejectFlow
          ids={rejectFor}
          tasks={byId}
          onClose={() => setRejectFor(null)}
          onSubmit={(reason) => {
            const target = rejectFor;
            setRejectFor(null);
            void decideMany(target, "reject", { reason });
          }}
        />
      )}
    </div>
  );
}

/** The reject dialog with the reasons every chosen task accepts. */
function RejectFlow({
  ids,
  tasks,
  onSubmit,
  onClose,
}: {
  ids: string[];
  tasks: ReadonlyMap<string, TaskSummary>;
  onSubmit: (reason: string) => void;
  onClose: () => void;
}) {
  const client = useInboxClient();
  // Reasons belong to a review (blueprint version and node): one detail per review is enough.
  const representatives = useMemo(() => {
    const seen = new Map<string, string>();
    for (const id of ids) {
      const t = tasks.get(id);
      const group = t ? `${t.version}/${t.node}` : id;
      if (!seen.has(group)) seen.set(group, id);
    }
    return [...seen.values()];
  }, [ids, tasks]);
  const details = useQueries({
    queries: representatives.map((id) => ({ queryKey: taskKey(id), queryFn: () => client.task(id) })),
  });
  const loaded = details.every((d) => d.data);
  const reasons = loaded ? commonReasons(details.map((d) => d.data?.reasons ?? [])) : undefined;
  const only = ids.length === 1 ? tasks.get(ids[0]!) : undefined;
  return (
    <RejectDialog
      count={ids.length}
      subject={only?.title ?? details[0]?.data?.task.title}
      reasons={reasons}
      onSubmit={onSubmit}
      onClose={onClose}
    />
  );
}

function BatchBar({
  count,
  onApprove,
  onReject,
  onEscalate,
  onClear,
}: {
  count: number;
  onApprove: () => void;
  onReject: () => void;
  onEscalate: () => void;
  onClear: () => void;
}) {
  return (
    <div
      data-testid="batch-bar"
      role="toolbar"
      aria-label="Batch actions"
      className="flex h-8 shrink-0 items-center gap-1 border-y border-accent/30 bg-accent/8 px-2 text-[12px]"
    >
      <span className="px-1 font-medium text-accent tabular-nums">{count.toLocaleString()} selected</span>
      <div className="flex-1" />
      <BatchButton testId="batch-approve" onClick={onApprove} hint="A">
        Approve
      </BatchButton>
      <BatchButton testId="batch-reject" onClick={onReject} hint="R">
        Reject
      </BatchButton>
      <BatchButton testId="batch-escalate" onClick={onEscalate} hint="⇧X">
        <CornerUpRight className="size-3" aria-hidden />
        Escalate
      </BatchButton>
      <button
        type="button"
        aria-label="Clear selection"
        title="Clear selection (Esc)"
        onClick={onClear}
        className="grid size-6 place-items-center rounded text-muted hover:bg-hover hover:text-fg"
      >
        <X className="size-3.5" />
      </button>
    </div>
  );
}

function BatchButton({ testId, onClick, hint, children }: { testId: string; onClick: () => void; hint: string; children: ReactNode }) {
  return (
    <button
      type="button"
      data-testid={testId}
      onClick={onClick}
      className="flex h-6 items-center gap-1 rounded px-1.5 text-fg hover:bg-panel"
    >
      {children}
      <span className="font-mono text-[10px] text-faint">{hint}</span>
    </button>
  );
}

function SkeletonRows() {
  return (
    <div className="flex-1 overflow-hidden" role="status" aria-label="Loading tasks">
      {Array.from({ length: 10 }, (_, i) => (
        <div key={i} className="flex items-center gap-3 border-b border-border/60 px-3" style={{ height: ROW_HEIGHT }}>
          <div className="size-3.5 rounded-sm bg-sunken" />
          <div className="flex flex-1 flex-col gap-1.5">
            <div className="h-2.5 animate-pulse rounded bg-sunken" style={{ width: `${55 + ((i * 17) % 35)}%` }} />
            <div className="h-2 w-1/3 animate-pulse rounded bg-sunken" />
          </div>
          <div className="h-3.5 w-12 animate-pulse rounded bg-sunken" />
        </div>
      ))}
    </div>
  );
}

const SHORTCUTS: Array<[string[], string]> = [
  [["j", "k"], "Next / previous task"],
  [["⇧J", "⇧K"], "Extend the selection"],
  [["a"], "Approve (all selected)"],
  [["e"], "Edit the draft"],
  [["⌘↵"], "Submit the edit"],
  [["r"], "Reject with a reason"],
  [["x"], "Select / unselect"],
  [["⇧X"], "Escalate (all selected)"],
  [["/"], "Search"],
  [["Esc"], "Clear selection, close"],
  [["?"], "These shortcuts"],
];

function ShortcutBar({ onHelp }: { onHelp: () => void }) {
  const items: Array<[string, string]> = [
    ["j k", "move"],
    ["a", "approve"],
    ["e", "edit"],
    ["r", "reject"],
    ["x", "select"],
    ["⇧x", "escalate"],
  ];
  return (
    <button
      type="button"
      onClick={onHelp}
      aria-label="Show keyboard shortcuts"
      data-testid="shortcut-bar"
      className="flex h-8 shrink-0 items-center gap-[7px] overflow-hidden border-t border-border px-2.5 text-[11px] whitespace-nowrap text-faint hover:text-muted"
    >
      {items.map(([k, label]) => (
        <span key={k} className="flex items-center gap-[3px]">
          <Kbd>{k}</Kbd>
          {label}
        </span>
      ))}
      <span className="ml-auto flex items-center gap-[3px]">
        <Kbd>?</Kbd>
        more
      </span>
    </button>
  );
}

function HelpPanel({ onClose }: { onClose: () => void }) {
  return (
    <div
      role="dialog"
      aria-label="Keyboard shortcuts"
      data-testid="shortcut-help"
      className="absolute right-2 bottom-10 left-2 z-20 rounded-lg border border-border bg-panel p-3 shadow-xl"
    >
      <div className="mb-2 flex items-center">
        <h2 className="text-[12px] font-semibold">Keyboard shortcuts</h2>
        <button type="button" onClick={onClose} aria-label="Close" className="ml-auto rounded p-0.5 text-faint hover:bg-hover hover:text-fg">
          <X className="size-3.5" />
        </button>
      </div>
      <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1.5 text-[12px]">
        {SHORTCUTS.map(([keys, label]) => (
          <div key={label} className="contents">
            <dt className="flex gap-1">
              {keys.map((k) => (
                <Kbd key={k}>{k}</Kbd>
              ))}
            </dt>
            <dd className="text-muted">{label}</dd>
          </div>
        ))}
      </dl>
      <p className="mt-2.5 text-[11px] text-faint">
        Shift-click ticks a range. Keys are ignored while you type in a field. Decisions show “pending sync” until the
        engine confirms them.
      </p>
    </div>
  );
}

