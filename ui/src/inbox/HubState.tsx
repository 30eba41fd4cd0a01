// What the hub means for one task: "decided here, pending sync" until the hub accepts it,
// and conflicts (a decision that lost) with the way to close them. Only shown where the
// project is a device of a hub; without one tasks carry no `sync` state.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { CloudUpload, GitMerge, Split } from "lucide-react";
import { useState } from "react";
import { api } from "../api/client";
import type { ConflictDto, TaskSummary } from "../api/types.gen";
import { Badge, Button } from "../components/ui";
import { decisionLabel } from "./parts";
import { age } from "./sla";

const NOUN: Record<string, string> = { approve: "approval", edit: "edit", reject: "rejection", escalate: "escalation" };
const noun = (action: string) => NOUN[action] ?? action;

export const conflictsKey = (taskId: string) => ["conflicts", taskId] as const;

/** The list row's chip for a task's place on the hub, if it has one worth a chip. */
export function HubChip({ task }: { task: TaskSummary }) {
  if (task.sync === "conflict") {
    return (
      <Badge tone="danger" title="A decision on this task was not accepted by the hub; open it to see and close the conflict">
        <Split className="size-3" aria-hidden />
        Conflict
      </Badge>
    );
  }
  if (task.sync === "pending") {
    return (
      <Badge tone="info" title="Decided here; the hub has not accepted it yet, so the run waits">
        <CloudUpload className="size-3" aria-hidden />
        Pending sync
      </Badge>
    );
  }
  return null;
}

/** The detail pane's explanation of the task's hub state, with the conflicts to close. */
export function HubPanel({ task, now }: { task: TaskSummary; now: number }) {
  const conflicts = useQuery({
    queryKey: conflictsKey(task.id),
    queryFn: () => api.taskConflicts(task.id),
    enabled: task.sync === "conflict" || task.sync === "accepted",
    refetchInterval: 5_000,
  });
  const shown = conflicts.data ?? [];
  return (
    <div className="flex flex-col gap-2" data-testid="hub-panel">
      {task.sync === "pending" && (
        <div role="status" className="flex items-start gap-2 rounded-md border border-info/30 bg-info/8 px-3 py-2 text-[12.5px] text-info">
          <CloudUpload className="mt-px size-4 shrink-0" aria-hidden />
          <span>
            {task.decision ? decisionLabel(task.decision.action) : "Decided"} here — <b>pending sync</b>. The hub has not
            accepted this decision yet (it may be offline); the run goes on, and its output is sent, only once it does.
          </span>
        </div>
      )}
      {task.owner && (
        <p className="text-[12px] text-muted">
          This task&apos;s run belongs to another engine of your team; your decision reaches it through the hub.
        </p>
      )}
      {shown.map((c) => (
        <ConflictCard key={c.id} conflict={c} task={task} now={now} />
      ))}
    </div>
  );
}

/** "2m ago", or "just now". */
function ago(at: number, now: number): string {
  const a = age(at, now);
  return a === "now" ? "just now" : `${a} ago`;
}

/** A quoted note, ending a sentence whatever its own last character. */
function quoted(note: string): string {
  const t = note.trim();
  return /[.!?]$/.test(t) ? `“${t}”` : `“${t}”.`;
}

function ConflictCard({ conflict, task, now }: { conflict: ConflictDto; task: TaskSummary; now: number }) {
  const qc = useQueryClient();
  const [note, setNote] = useState("");
  const resolve = useMutation({
    mutationFn: () => api.resolveConflict(conflict.id, note.trim() || null),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: conflictsKey(task.id) });
      void qc.invalidateQueries({ queryKey: ["tasks"] });
      void qc.invalidateQueries({ queryKey: ["task", task.id] });
      void qc.invalidateQueries({ queryKey: ["sync"] });
    },
  });
  const lost = `${conflict.actor}'s ${noun(conflict.decision.action)}`;
  const standing = task.decision ? `${task.decision.by}'s ${noun(task.decision.action)}` : null;
  if (conflict.resolved) {
    return (
      <div data-testid="conflict" data-resolved="true" className="flex items-start gap-2 rounded-md border border-border bg-panel px-3 py-2 text-[12.5px] text-muted">
        <GitMerge className="mt-px size-4 shrink-0" aria-hidden />
        <span>
          Conflict closed by {conflict.resolved_by}
          {conflict.note ? `: ${quoted(conflict.note)}` : "."} {capitalize(lost)} ({ago(conflict.at, now)}) was not applied.
        </span>
      </div>
    );
  }
  return (
    <div data-testid="conflict" role="alert" className="flex flex-col gap-2 rounded-md border border-danger/30 bg-danger/8 px-3 py-2.5 text-[12.5px]">
      <div className="flex items-start gap-2 text-danger">
        <Split className="mt-px size-4 shrink-0" aria-hidden />
        <span>
          <b>Conflict.</b> {capitalize(lost)} ({ago(conflict.at, now)}) was not accepted: {conflict.reason}.{" "}
          {standing
            ? `${capitalize(standing)} stands and its result has been acted on.`
            : "Nobody's decision stands yet: decide the task again (that closes the conflict)."}
        </span>
      </div>
      {conflict.decision.reason && <p className="pl-6 text-muted">Their reason: “{conflict.decision.reason}”</p>}
      {standing && (
        <form
          className="flex items-center gap-2 pl-6"
          onSubmit={(e) => {
            e.preventDefault();
            resolve.mutate();
          }}
        >
          <input
            aria-label="Note for the team"
            data-testid="conflict-note"
            value={note}
            onChange={(e) => setNote(e.target.value)}
            placeholder="Why the accepted decision stands (optional)"
            className="h-7 min-w-0 flex-1 rounded border border-border bg-panel px-2 text-[12.5px] text-fg placeholder:text-faint"
          />
          <Button type="submit" data-testid="resolve-conflict" disabled={resolve.isPending}>
            <GitMerge className="size-3.5" aria-hidden />
            Close conflict
          </Button>
        </form>
      )}
      {resolve.isError && <p className="pl-6 text-danger">{resolve.error.message}</p>}
    </div>
  );
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
