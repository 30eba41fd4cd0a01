// Evaluate: work through finished outputs, tag them from the taxonomy, rate and comment.
// Every change goes to the local outbox first (see outbox.ts), so this screen keeps working
// while the engine is unreachable and nothing is lost on reload.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { clsx } from "clsx";
import { CheckCircle2, FlaskConical, History, WifiOff } from "lucide-react";
import { useEffect, useMemo, useRef, useState } from "react";
import { toast } from "sonner";
import { api } from "../api/client";
import type { QueueItem } from "../api/types.gen";
import { useMe } from "../app/me";
import { EmptyState, ErrorState, inputClass, Kbd, PageHeader, relativeTime, Spinner } from "../components/ui";
import { isEditable, useWindowKey } from "../runs/useWindowKey";
import { evalKeyAction, toggleTag } from "./keys";
import { EMPTY_FEEDBACK, feedbackOps, type Feedback } from "./outbox";
import { OutputView } from "./OutputView";
import { ProgressPanel } from "./ProgressPanel";
import { loadQueue } from "./queueCache";
import { outboxSync, useOutboxSync } from "./sync";
import { SyncStatus } from "./SyncStatus";
import { TagPanel } from "./TagPanel";

const sync = outboxSync();
const kick = () => sync.kick();
// Start syncing as soon as the app loads (this module is part of the main bundle), so tags
// queued before a reload are sent even if the evaluator never comes back to this screen.
if (import.meta.env.MODE !== "test") sync.start();

type Kind = "" | "prompt" | "review";

interface Submitted {
  item: QueueItem;
  feedback: Feedback;
}

const LAST_EVALUATOR = "processops.eval.lastEvaluator";

/**
 * Who tags are recorded under. Remembered, so that an evaluator who opens the app while the
 * engine is unreachable (and /api/me fails) can still work through the cached queue.
 */
function useEvaluator(): string {
  const { name } = useMe();
  useEffect(() => {
    if (name) localStorage.setItem(LAST_EVALUATOR, name);
  }, [name]);
  return name || localStorage.getItem(LAST_EVALUATOR) || "";
}

export function EvaluatePage() {
  const name = useEvaluator();
  const queryClient = useQueryClient();
  const [blueprint, setBlueprint] = useState("");
  const [kind, setKind] = useState<Kind>("");
  const syncState = useOutboxSync();

  useEffect(() => {
    sync.start();
    sync.onSynced = () => void queryClient.invalidateQueries({ queryKey: ["eval"] });
    sync.onRejected = (entries) =>
      entries.forEach((e) => toast.error(`The engine refused a change to ${e.output.split(":").slice(-2).join(":")}`, { description: e.lastError }));
  }, [queryClient]);

  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints, staleTime: 60_000 });
  const queue = useQuery({
    queryKey: ["eval", "queue", name, blueprint, kind],
    queryFn: () =>
      loadQueue(
        `${name}|${blueprint}|${kind}`,
        () => api.evalQueue({ by: name, blueprint: blueprint || undefined, kind: kind || undefined, limit: 200 }),
        window.localStorage,
      ),
    enabled: name !== "",
    refetchInterval: 30_000,
  });

  // Outputs already judged here: this session's, and anything still waiting in the outbox
  // (which may come from before a reload).
  const [submitted, setSubmitted] = useState<Map<string, Submitted>>(() => new Map());
  const pendingOutputs = useMemo(
    () => new Set(syncState.entries.filter((e) => e.by === name).map((e) => e.output)),
    [syncState.entries, name],
  );
  const items = useMemo(
    () => (queue.data?.items ?? []).filter((i) => !submitted.has(i.output) && !pendingOutputs.has(i.output)),
    [queue.data, submitted, pendingOutputs],
  );
  const done = useMemo(() => [...submitted.values()].reverse(), [submitted]);

  const [selected, setSelected] = useState<string | null>(null);
  const [drafts, setDrafts] = useState<Record<string, Feedback>>({});
  const current: QueueItem | undefined =
    items.find((i) => i.output === selected) ?? submitted.get(selected ?? "")?.item ?? items[0];
  const previous = current ? submitted.get(current.output)?.feedback : undefined;
  const feedback = current ? (drafts[current.output] ?? previous ?? EMPTY_FEEDBACK) : EMPTY_FEEDBACK;
  const setFeedback = (f: Feedback) => {
    if (current) setDrafts((d) => ({ ...d, [current.output]: f }));
  };
  const tags = current?.allowed_tags ?? [];
  const commentRef = useRef<HTMLTextAreaElement>(null);

  const move = (delta: number) => {
    if (items.length === 0) return;
    const index = current ? items.findIndex((i) => i.output === current.output) : -1;
    const next = items[index === -1 ? 0 : Math.max(0, Math.min(items.length - 1, index + delta))];
    if (next) setSelected(next.output);
  };

  const submit = () => {
    if (!current || !name) return;
    const ops = feedbackOps(current.output, name, previous ?? EMPTY_FEEDBACK, feedback);
    const index = items.findIndex((i) => i.output === current.output);
    if (ops.length === 0 && !previous) {
      toast("Nothing to record — skipped", { description: "Tag, rate or comment to give feedback." });
      move(1);
      return;
    }
    if (ops.length > 0) sync.enqueue(ops);
    setSubmitted((m) => new Map(m).set(current.output, { item: current, feedback }));
    setDrafts((d) => {
      const rest = { ...d };
      delete rest[current.output];
      return rest;
    });
    // Advance to the item that followed this one.
    const rest = items.filter((i) => i.output !== current.output);
    const next = index === -1 ? rest[0] : (rest[Math.min(index, rest.length - 1)] ?? null);
    setSelected(next?.output ?? null);
  };

  useWindowKey((e) => {
    if (!current) return;
    const editing = isEditable(e.target);
    const action = evalKeyAction(e, { tagCount: tags.length, editing });
    if (!action) {
      if (e.key === "Escape" && editing) (e.target as HTMLElement).blur();
      return;
    }
    e.preventDefault();
    switch (action.type) {
      case "toggle-tag": {
        const tag = tags[action.index];
        if (tag) setFeedback({ ...feedback, tags: toggleTag(feedback.tags, tag) });
        break;
      }
      case "rate":
        setFeedback({ ...feedback, rating: feedback.rating === action.value ? null : action.value });
        break;
      case "submit":
        submit();
        break;
      case "next":
        move(1);
        break;
      case "previous":
        move(-1);
        break;
      case "focus-comment":
        commentRef.current?.focus();
        break;
    }
  });

  return (
    <>
      <PageHeader title="Evaluate">
        <SyncStatus state={syncState} by={name} onRetry={kick} />
      </PageHeader>
      <div className="flex min-h-0 flex-1">
        <section aria-label="Queue" className="flex w-[300px] shrink-0 flex-col border-r border-border bg-panel">
          <div className="flex flex-col gap-2 border-b border-border p-2.5">
            <select aria-label="Blueprint" className={clsx(inputClass, "h-8 py-1")} value={blueprint} onChange={(e) => setBlueprint(e.target.value)}>
              <option value="">All blueprints</option>
              {blueprints.data?.map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
            <div className="flex gap-1" role="radiogroup" aria-label="Kind">
              {(
                [
                  ["", "All"],
                  ["prompt", "Drafts"],
                  ["review", "Approved"],
                ] as const
              ).map(([k, label]) => (
                <button
                  key={k}
                  type="button"
                  role="radio"
                  aria-checked={kind === k}
                  onClick={() => setKind(k)}
                  className={clsx(
                    "h-6 flex-1 rounded-md border text-xs transition-colors",
                    kind === k ? "border-accent/50 bg-selected font-medium" : "border-border text-muted hover:bg-hover hover:text-fg",
                  )}
                >
                  {label}
                </button>
              ))}
            </div>
          </div>
          <div className="min-h-0 flex-1 overflow-auto">
            {!name ? (
              <div className="p-4 text-xs text-muted">Waiting for the engine to say who you are…</div>
            ) : queue.isPending ? (
              <Spinner label="Loading the queue…" />
            ) : queue.isError ? (
              <ErrorState error={queue.error} />
            ) : (
              <>
                <div className="flex items-center justify-between px-3 pt-2.5 pb-1 text-[11px] font-medium text-faint">
                  <span>To evaluate</span>
                  <span className="tabular-nums">{items.length}</span>
                </div>
                {items.length === 0 && <div className="px-3 py-2 text-xs text-muted">Nothing left in this queue.</div>}
                <ul>
                  {items.map((i) => (
                    <QueueRow key={i.output} item={i} active={current?.output === i.output} onClick={() => setSelected(i.output)} drafted={Boolean(drafts[i.output])} />
                  ))}
                </ul>
                {done.length > 0 && (
                  <>
                    <div className="flex items-center gap-1.5 px-3 pt-4 pb-1 text-[11px] font-medium text-faint">
                      <History className="size-3" /> Done this session
                      <span className="ml-auto tabular-nums">{done.length}</span>
                    </div>
                    <ul>
                      {done.map(({ item }) => (
                        <QueueRow
                          key={item.output}
                          item={item}
                          active={current?.output === item.output}
                          onClick={() => setSelected(item.output)}
                          done
                          pending={pendingOutputs.has(item.output)}
                        />
                      ))}
                    </ul>
                  </>
                )}
              </>
            )}
          </div>
          <div className="flex flex-wrap gap-x-3 gap-y-1 border-t border-border px-3 py-2 text-[11px] text-faint">
            <span><Kbd>1–9</Kbd> tag</span>
            <span><Kbd>⇧1–5</Kbd> rate</span>
            <span><Kbd>N</Kbd> submit</span>
            <span><Kbd>J</Kbd> <Kbd>K</Kbd> move</span>
          </div>
        </section>
        <section aria-label="Output" className="flex min-w-0 flex-1 flex-col bg-bg">
          {queue.data?.cachedAt != null && (
            <div className="flex items-center gap-2 border-b border-warn/30 bg-warn/10 px-4 py-1.5 text-xs text-warn">
              <WifiOff className="size-3.5" />
              The engine is unreachable — showing the queue as of {relativeTime(queue.data.cachedAt)}. Your tags are kept and sent when it answers.
            </div>
          )}
          {current ? (
            <OutputView key={current.output} item={current} />
          ) : queue.isPending || !queue.data ? null : (
            <EmptyState icon={queue.data ? <CheckCircle2 className="size-7 text-ok" /> : <FlaskConical className="size-7" />} title={queue.data ? "All caught up" : "Nothing to evaluate"}>
              {queue.data
                ? "Every finished output in this queue has your feedback. New outputs appear here as runs finish."
                : "Outputs of finished runs appear here."}
            </EmptyState>
          )}
        </section>
        <aside aria-label="Feedback" className="flex w-[320px] shrink-0 flex-col overflow-auto border-l border-border bg-panel">
          {current && (
            <TagPanel
              key={current.output}
              tags={tags}
              feedback={feedback}
              onChange={setFeedback}
              onSubmit={submit}
              onSkip={() => move(1)}
              commentRef={commentRef}
              resubmit={Boolean(previous)}
              disabled={!name}
            />
          )}
          <ProgressPanel blueprint={blueprint} me={name} pending={pendingOutputs.size} />
        </aside>
      </div>
    </>
  );
}

function QueueRow({
  item,
  active,
  onClick,
  done,
  pending,
  drafted,
}: {
  item: QueueItem;
  active: boolean;
  onClick: () => void;
  done?: boolean;
  pending?: boolean;
  drafted?: boolean;
}) {
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (active) ref.current?.scrollIntoView({ block: "nearest" });
  }, [active]);
  return (
    <li>
      <button
        ref={ref}
        type="button"
        onClick={onClick}
        data-testid={done ? "eval-done-item" : "eval-item"}
        data-output={item.output}
        aria-current={active ? "true" : undefined}
        className={clsx(
          "flex w-full flex-col gap-0.5 border-l-2 px-3 py-1.5 text-left transition-colors",
          active ? "border-accent bg-selected" : "border-transparent hover:bg-hover",
          done && !active && "opacity-70",
        )}
      >
        <span className="flex items-center gap-1.5 text-xs">
          <span className="truncate font-mono font-medium">{item.node}</span>
          <span
            className={clsx(
              "rounded px-1 text-[10px] font-medium",
              item.kind === "review" ? "bg-ok/15 text-ok" : "bg-info/15 text-info",
            )}
          >
            {item.kind === "review" ? "approved" : "draft"}
          </span>
          {item.edited && <span className="text-[10px] text-warn">edited</span>}
          {drafted && <span className="size-1.5 rounded-full bg-accent" title="Unsent changes" />}
          <span className="ml-auto shrink-0 text-[10.5px] text-faint">
            {done ? (pending ? "pending" : "sent") : relativeTime(item.finished_at)}
          </span>
        </span>
        <span className="truncate text-[11.5px] text-muted">{item.text.replace(/\s+/g, " ").slice(0, 120)}</span>
        <span className="truncate font-mono text-[10.5px] text-faint">{item.blueprint} · {item.handle.split(":")[0]}</span>
      </button>
    </li>
  );
}
