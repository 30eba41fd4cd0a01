// Inbox data: the task list, one task's detail, and decisions with optimistic updates.
//
// A decision in flight is read from react-query's mutation cache (useMutationState): rows
// show it as "pending sync" over whatever the server last said, so a poll landing mid-flight
// cannot flip the row back, and a failed decision rolls back simply by no longer being
// pending. On success the cached lists are patched before the mutation settles, so the row
// leaves without a flicker; a hub that queues decisions offline will surface through the
// same state.
import {
  keepPreviousData,
  useMutation,
  useMutationState,
  useQuery,
  useQueryClient,
  type QueryClient,
} from "@tanstack/react-query";
import { createContext, useCallback, useContext, useMemo } from "react";
import { api, type Client } from "../api/client";
import type { DecisionRequest, TaskSummary } from "../api/types.gen";
import type { StatusFilter } from "./filters";

/** What the inbox needs from the API; tests pass a fake. */
export type InboxClient = Pick<Client, "tasks" | "task" | "decide" | "claim" | "unclaim" | "run">;

export const InboxClientContext = createContext<InboxClient>(api);

export function useInboxClient(): InboxClient {
  return useContext(InboxClientContext);
}

/** Enough for any real inbox; the server sorts by due, so a cut would drop the least urgent. */
export const LIST_LIMIT = 100_000;
export const POLL_MS = 5_000;

export function pollInterval(rows: number): number {
  if (rows > 20_000) return 30_000;
  if (rows > 5_000) return 15_000;
  return POLL_MS;
}

// Under the "tasks" prefix so invalidating after a decision also refreshes the rail badge.
// `viewer` is who looks (empty in a single-user installation): pilots hide tasks from
// people outside their cohort, so each viewer has their own list.
export const tasksKey = (status: StatusFilter, q: string, viewer = "") => ["tasks", "inbox", status, q, viewer] as const;
export const taskKey = (id: string) => ["task", id] as const;

/** Rows fetched first so the inbox paints at once, while the whole list loads behind them. */
export const FIRST_PAGE = 200;

export function useTaskList(status: StatusFilter, q: string, viewer = "") {
  const client = useInboxClient();
  const head = useQuery({
    queryKey: [...tasksKey(status, q, viewer), "head"],
    queryFn: () => client.tasks({ status, q: q || undefined, limit: FIRST_PAGE, summary: true, viewer: viewer || undefined }),
  });
  // The whole list is asked for once the first rows are in, so the first page never queues
  // behind the big read on the engine.
  const full = useFullTaskList(status, q, viewer, head.isFetched);
  if (full.data !== undefined || head.data === undefined) return full;
  return { ...full, data: head.data, isLoading: false, isPending: false };
}

function useFullTaskList(status: StatusFilter, q: string, viewer: string, enabled: boolean) {
  const client = useInboxClient();
  return useQuery({
    enabled,
    queryKey: tasksKey(status, q, viewer),
    queryFn: () => client.tasks({ status, q: q || undefined, limit: LIST_LIMIT, summary: true, viewer: viewer || undefined }),
    // Every poll re-reads the whole list; past a few thousand tasks that costs the main thread
    // a noticeable pause, so big inboxes poll less often (see the report: an incremental
    // `changed_since` endpoint would remove the trade-off).
    refetchInterval: (query) => pollInterval(query.state.data?.length ?? 0),
    // Typing a search keeps the old rows on screen until the new ones arrive.
    placeholderData: keepPreviousData,
  });
}

export function useTaskDetail(id: string | null) {
  const client = useInboxClient();
  return useQuery({
    queryKey: taskKey(id ?? ""),
    queryFn: () => client.task(id ?? ""),
    enabled: id !== null,
  });
}

/** The run behind a task: its steps carry the rendered prompts (`meta.input`). */
export function useRunDetail(runId: string | null) {
  const client = useInboxClient();
  return useQuery({
    queryKey: ["run", runId ?? ""],
    queryFn: () => client.run(runId ?? ""),
    enabled: runId !== null,
    staleTime: 60_000,
  });
}

export interface DecideVars {
  id: string;
  request: DecisionRequest;
}

const DECIDE_KEY = ["inbox", "decide"] as const;

/** Mark a task decided in every cached list (and drop it from pending-only lists). */
function applyDecided(qc: QueryClient, id: string, request: DecisionRequest) {
  const decided_at = Date.now();
  for (const [key, data] of qc.getQueriesData<TaskSummary[]>({ queryKey: ["tasks", "inbox"] })) {
    if (!data) continue;
    const status = key[2];
    qc.setQueryData<TaskSummary[]>(
      key,
      status === "pending"
        ? data.filter((t) => t.id !== id)
        : data.map((t) =>
            t.id === id
              ? {
                  ...t,
                  status: "decided",
                  decided_at,
                  decision: {
                    action: request.action as "approve" | "edit" | "reject" | "escalate",
                    by: request.by,
                    text: request.text ?? null,
                    reason: request.reason ?? null,
                  },
                }
              : t,
          ),
    );
  }
}

export function useDecisions() {
  const client = useInboxClient();
  const qc = useQueryClient();
  const mutation = useMutation({
    mutationKey: DECIDE_KEY,
    mutationFn: ({ id, request }: DecideVars) => client.decide(id, request),
    onMutate: async () => {
      // A list fetch already on its way predates the decision; it must not land after it.
      await qc.cancelQueries({ queryKey: ["tasks", "inbox"] });
    },
    onSuccess: (_data, { id, request }) => applyDecided(qc, id, request),
    onSettled: (_data, _error, { id }) => {
      void qc.invalidateQueries({ queryKey: ["tasks"] });
      void qc.invalidateQueries({ queryKey: taskKey(id) });
    },
  });

  const inflight = useMutationState({
    filters: { mutationKey: DECIDE_KEY, status: "pending" },
    select: (m) => m.state.variables as DecideVars | undefined,
  });
  const syncing = useMemo(() => {
    const map = new Map<string, DecisionRequest>();
    for (const v of inflight) if (v) map.set(v.id, v.request);
    return map;
  }, [inflight]);

  const { mutateAsync } = mutation;
  const decide = useCallback((vars: DecideVars) => mutateAsync(vars), [mutateAsync]);
  return { decide, syncing };
}

export function useClaim() {
  const client = useInboxClient();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ id, by, release }: { id: string; by: string; release: boolean }) =>
      release ? client.unclaim(id, { by }) : client.claim(id, { by }),
    onSettled: (_d, _e, { id }) => {
      void qc.invalidateQueries({ queryKey: ["tasks", "inbox"] });
      void qc.invalidateQueries({ queryKey: taskKey(id) });
    },
  });
}
