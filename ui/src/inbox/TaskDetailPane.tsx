// The right-hand pane: one task's draft, the context that produced it, and its history.
import { clsx } from "clsx";
import {
  ArrowUpRight,
  Check,
  CloudUpload,
  CornerUpRight,
  Hand,
  Inbox,
  Pencil,
  TriangleAlert,
  X,
} from "lucide-react";
import type { ReactNode } from "react";
import { Link } from "react-router";
import type { DecisionRequest, TaskDetail, TaskSummary } from "../api/types.gen";
import { Badge, Button, EmptyState, ErrorState, Kbd, Spinner, shortId } from "../components/ui";
import { ContextView } from "./ContextView";
import { useRunDetail, useTaskDetail } from "./data";
import { nextRole } from "./decisions";
import { DraftEditor } from "./DraftEditor";
import { HubChip, HubPanel } from "./HubState";
import { BlockTitle, DecisionBadge, decisionLabel, UnifiedDiff } from "./parts";
import { duration, formatDate, sla } from "./sla";

export interface DetailActions {
  onApprove: () => void;
  onEdit: () => void;
  onReject: () => void;
  onEscalate: () => void;
  onSubmitEdit: (text: string) => void;
  onCloseEditor: () => void;
  onClaim: (release: boolean) => void;
}

export function TaskDetailPane({
  taskId,
  listEmpty,
  summary,
  syncing,
  editing,
  hasEdit,
  me,
  now,
  actions,
}: {
  taskId: string | null;
  /** Nothing in the list: the pane stays quiet instead of asking to pick a task. */
  listEmpty: boolean;
  /** The list's row, shown while the detail loads. */
  summary: TaskSummary | undefined;
  syncing: DecisionRequest | undefined;
  editing: boolean;
  hasEdit: boolean;
  me: string;
  now: number;
  actions: DetailActions;
}) {
  const detail = useTaskDetail(taskId);
  const run = useRunDetail(detail.data ? detail.data.task.run_id : null);
  if (!taskId) {
    return (
      <div data-testid="inbox-detail" className="h-full">
        {listEmpty ? (
          <div className="grid h-full place-items-center text-faint">
            <Inbox className="size-10 opacity-40" aria-hidden />
          </div>
        ) : (
          <EmptyState icon={<Inbox className="size-8" />} title="No task selected">
            Pick a task on the left, or press <Kbd>j</Kbd> to start at the top.
          </EmptyState>
        )}
      </div>
    );
  }
  const task = detail.data?.task ?? summary;
  if (!task) {
    return (
      <div data-testid="inbox-detail" className="h-full">
        {detail.isError ? <ErrorState error={detail.error} /> : <Spinner label="Loading task…" />}
      </div>
    );
  }
  const pending = task.status === "pending" && !syncing;
  const d = detail.data;
  const next = d ? nextRole(d) : null;

  return (
    <div data-testid="inbox-detail" data-task-id={task.id} className="flex h-full min-h-0 flex-col">
      <header className="shrink-0 border-b border-border bg-panel px-6 pt-4 pb-3">
        <div className="mb-1.5 flex items-center gap-1.5 text-[12px] text-muted">
          <span className="font-medium text-fg/80">{task.blueprint}</span>
          <span className="text-faint">/</span>
          <span className="font-mono text-[11.5px]">{task.node}</span>
          <span
            className="rounded bg-sunken px-1 font-mono text-[11px] text-faint"
            title={`Blueprint version ${task.version}`}
          >
            {task.version.slice(0, 8)}
          </span>
          <Link
            to={`/runs/${task.run_id}`}
            className="ml-auto flex items-center gap-0.5 rounded px-1 text-muted hover:bg-hover hover:text-fg"
            title="Open the run"
          >
            Run <span className="font-mono text-[11.5px]">{shortId(task.run_id)}</span>
            <ArrowUpRight className="size-3" aria-hidden />
          </Link>
        </div>
        <h2 className="text-[17px] leading-snug font-semibold text-fg">{task.title}</h2>
        <div className="mt-2 flex flex-wrap items-center gap-1.5">
          <MetaChips task={task} now={now} syncing={syncing} />
        </div>
        {pending ? (
          <div className="mt-3 flex items-center gap-1.5">
            <Button variant="primary" data-testid="approve-button" aria-keyshortcuts="a" onClick={actions.onApprove}>
              <Check className="size-3.5" aria-hidden />
              Approve
              <KeyHint>A</KeyHint>
            </Button>
            <Button
              data-testid="edit-button"
              aria-keyshortcuts="e"
              aria-pressed={editing}
              onClick={editing ? actions.onCloseEditor : actions.onEdit}
              className={clsx(editing && "bg-selected")}
            >
              <Pencil className="size-3.5" aria-hidden />
              {hasEdit && !editing ? "Resume edit" : "Edit"}
              <KeyHint>E</KeyHint>
            </Button>
            <Button data-testid="reject-button" aria-keyshortcuts="r" onClick={actions.onReject}>
              <X className="size-3.5" aria-hidden />
              Reject
              <KeyHint>R</KeyHint>
            </Button>
            <Button
              data-testid="escalate-button"
              aria-keyshortcuts="Shift+X"
              onClick={actions.onEscalate}
              title={next ? `Escalate to ${next}` : "Hand the task to the next level of this review"}
            >
              <CornerUpRight className="size-3.5" aria-hidden />
              Escalate
              <KeyHint>⇧X</KeyHint>
            </Button>
            <div className="flex-1" />
            <ClaimButton task={task} me={me} onClaim={actions.onClaim} />
          </div>
        ) : null}
      </header>

      <div className="min-h-0 flex-1 overflow-y-auto">
        <div className="mx-auto flex max-w-[860px] flex-col gap-7 px-6 py-5">
          {syncing && (
            <Banner tone="info" icon={<CloudUpload className="size-4 animate-pulse" />}>
              Your {decisionLabel(syncing.action).toLowerCase()} decision was sent and is waiting for the engine to
              confirm it.
            </Banner>
          )}
          {(task.sync || task.owner) && <HubPanel task={task} now={now} />}
          {task.attention && task.status === "pending" && (
            <Banner tone="danger" icon={<TriangleAlert className="size-4" />}>
              Needs attention: the SLA ran out and its policy left this task for a person to look at.
            </Banner>
          )}

          <section aria-label="Draft">
            <BlockTitle
              right={
                task.decision?.action === "edit" ? <span className="text-[11px] text-faint">as drafted; see History for the edit</span> : null
              }
            >
              {editing ? "Edit draft" : "Draft"}
            </BlockTitle>
            {/* The list carries no drafts (it stays small at 100k tasks): the detail has it. */}
            {!d ? (
              <div data-testid="task-draft" className="rounded-md border border-border bg-panel px-4 py-3 text-[13px] text-faint">
                Loading the draft…
              </div>
            ) : editing && pending ? (
              <DraftEditor
                key={task.id}
                taskId={task.id}
                draft={task.draft}
                onSubmit={actions.onSubmitEdit}
                onClose={actions.onCloseEditor}
              />
            ) : (
              <div
                data-testid="task-draft"
                className="rounded-md border border-border bg-panel px-4 py-3 text-[13.5px] leading-relaxed break-words whitespace-pre-wrap text-fg"
              >
                {task.draft || <span className="text-faint">The draft is empty.</span>}
              </div>
            )}
            {hasEdit && !editing && pending && (
              <p className="mt-1.5 text-[12px] text-accent">
                You have an unsent edit of this draft. Press <Kbd>e</Kbd> to resume it.
              </p>
            )}
          </section>

          <section aria-label="Context">
            <BlockTitle right={run.isLoading ? <span className="text-[11px] text-faint">loading prompts…</span> : null}>
              Context
            </BlockTitle>
            {d ? (
              <ContextView context={d.context} run={run.data} draft={task.draft} />
            ) : detail.isError ? (
              <ErrorState error={detail.error} />
            ) : (
              <Spinner label="Loading context…" />
            )}
          </section>

          <section aria-label="History" data-testid="task-history">
            <BlockTitle>History</BlockTitle>
            <History task={task} detail={d} syncing={syncing} />
          </section>
        </div>
      </div>
    </div>
  );
}

function KeyHint({ children }: { children: ReactNode }) {
  return <span className="ml-0.5 font-mono text-[10.5px] opacity-60">{children}</span>;
}

function Banner({ tone, icon, children }: { tone: "info" | "danger"; icon: ReactNode; children: ReactNode }) {
  return (
    <div
      role="status"
      className={clsx(
        "flex items-start gap-2 rounded-md border px-3 py-2 text-[12.5px]",
        tone === "info" ? "border-info/30 bg-info/8 text-info" : "border-danger/30 bg-danger/8 text-danger",
      )}
    >
      <span className="mt-px shrink-0">{icon}</span>
      <span>{children}</span>
    </div>
  );
}

function MetaChips({ task, now, syncing }: { task: TaskSummary; now: number; syncing: DecisionRequest | undefined }) {
  const chip = sla(task, now);
  return (
    <>
      <Badge tone="neutral" title="Who may decide">
        {task.role}
      </Badge>
      {syncing ? (
        <Badge tone="info">
          <CloudUpload className="size-3" aria-hidden /> Pending sync
        </Badge>
      ) : task.decision ? (
        <DecisionBadge action={task.decision.action} />
      ) : null}
      {!syncing && <HubChip task={task} />}
      {chip && (
        <Badge tone={chip.tone} title={chip.title} className="tabular-nums">
          {chip.tone === "danger" ? chip.label : `Due in ${chip.label}`}
        </Badge>
      )}
      {!chip && task.due_at !== null && task.status === "pending" && (
        <Badge title={formatDate(task.due_at)}>Due {formatDate(task.due_at)}</Badge>
      )}
      {task.claimed_by && (
        <Badge tone="accent" title="Claimed: others see that this task is being worked on">
          <Hand className="size-3" aria-hidden /> {task.claimed_by}
        </Badge>
      )}
    </>
  );
}

function ClaimButton({ task, me, onClaim }: { task: TaskSummary; me: string; onClaim: (release: boolean) => void }) {
  if (task.claimed_by && task.claimed_by !== me) return null;
  const mine = task.claimed_by === me;
  return (
    <Button
      variant="ghost"
      size="sm"
      onClick={() => onClaim(mine)}
      title={mine ? "Give the task back" : "Take the task so others do not work on it at the same time"}
    >
      <Hand className="size-3.5" aria-hidden />
      {mine ? "Release" : "Claim"}
    </Button>
  );
}

function History({ task, detail, syncing }: { task: TaskSummary; detail: TaskDetail | undefined; syncing: DecisionRequest | undefined }) {
  const items: Array<{ key: string; dot: string; title: ReactNode; at?: number; body?: ReactNode }> = [];
  items.push({ key: "created", dot: "bg-faint", title: "Draft ready for review", at: task.created_at });
  if (task.due_at !== null)
    items.push({
      key: "due",
      dot: "bg-border",
      title: <>Due {formatDate(task.due_at)}</>,
    });
  if (task.breached_at !== null)
    items.push({ key: "breach", dot: "bg-danger", title: "SLA breached", at: task.breached_at });
  if (task.claimed_by) items.push({ key: "claim", dot: "bg-accent", title: <>Claimed by {task.claimed_by}</> });
  if (task.decision) {
    const dec = task.decision;
    items.push({
      key: "decision",
      dot: dec.action === "reject" ? "bg-danger" : dec.action === "escalate" ? "bg-warn" : "bg-ok",
      title: (
        <>
          {decisionLabel(dec.action)} by <span className="font-medium">{dec.by}</span>
          {detail?.decision_latency_ms != null && (
            <span className="text-faint"> · after {duration(detail.decision_latency_ms)}</span>
          )}
        </>
      ),
      at: task.decided_at ?? undefined,
      body: (
        <div className="flex flex-col gap-2">
          {dec.reason && <blockquote className="border-l-2 border-border pl-2.5 text-muted">{dec.reason}</blockquote>}
          {detail?.diff ? (
            <UnifiedDiff diff={detail.diff} />
          ) : dec.text ? (
            <div className="rounded-md border border-border bg-sunken px-3 py-2 whitespace-pre-wrap">{dec.text}</div>
          ) : null}
        </div>
      ),
    });
  }
  if (syncing)
    items.push({
      key: "syncing",
      dot: "bg-info animate-pulse",
      title: (
        <>
          {decisionLabel(syncing.action)} by {syncing.by} <span className="text-info">· pending sync</span>
        </>
      ),
      body: syncing.reason ? <blockquote className="border-l-2 border-border pl-2.5 text-muted">{syncing.reason}</blockquote> : undefined,
    });

  return (
    <div className="flex flex-col gap-3">
      <ol className="relative flex flex-col gap-3 before:absolute before:top-1.5 before:bottom-1.5 before:left-[3.5px] before:w-px before:bg-border">
        {items.map((it) => (
          <li key={it.key} className="relative flex gap-3 pl-0">
            <span className={clsx("relative mt-1.5 size-2 shrink-0 rounded-full ring-2 ring-bg", it.dot)} />
            <div className="min-w-0 flex-1">
              <div className="flex items-baseline gap-2 text-[13px]">
                <span className="min-w-0">{it.title}</span>
                {it.at !== undefined && (
                  <span className="ml-auto shrink-0 text-[11.5px] text-faint tabular-nums" title={new Date(it.at).toLocaleString()}>
                    {formatDate(it.at)}
                  </span>
                )}
              </div>
              {it.body && <div className="mt-1.5 text-[12.5px]">{it.body}</div>}
            </div>
          </li>
        ))}
      </ol>
      {detail && detail.escalation.length > 0 && task.status === "pending" && (
        <div className="flex flex-wrap items-center gap-1.5 text-[12px] text-muted">
          <CornerUpRight className="size-3.5 text-faint" aria-hidden />
          Escalates to
          {detail.escalation.map((r, i) => (
            <span key={r} className="flex items-center gap-1.5">
              {i > 0 && <span className="text-faint">→</span>}
              <Badge>{r}</Badge>
            </span>
          ))}
        </div>
      )}
      {detail && detail.users.length > 0 && (
        <div className="text-[12px] text-muted">Assigned to {detail.users.join(", ")}</div>
      )}
    </div>
  );
}
