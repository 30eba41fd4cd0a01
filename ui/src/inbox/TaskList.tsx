// The virtualized task list: fixed-height rows, so 100k tasks cost the same as 20.
import { useVirtualizer } from "@tanstack/react-virtual";
import { clsx } from "clsx";
import { CloudUpload, Pencil, TriangleAlert, UserRound } from "lucide-react";
import { memo, useCallback, useEffect, useMemo, useRef, type MouseEvent } from "react";
import type { DecisionRequest, TaskSummary } from "../api/types.gen";
import { Badge } from "../components/ui";
import { HubChip } from "./HubState";
import { DecisionBadge } from "./parts";
import { age, sla } from "./sla";

export const ROW_HEIGHT = 60;

export interface TaskListProps {
  tasks: readonly TaskSummary[];
  focusedId: string | null;
  selected: ReadonlySet<string>;
  syncing: ReadonlyMap<string, DecisionRequest>;
  edited: ReadonlySet<string>;
  now: number;
  onOpen: (id: string) => void;
  /** Checkbox or modifier click: `range` for shift, else a toggle. */
  onSelect: (id: string, range: boolean) => void;
}

export function TaskList({ tasks, focusedId, selected, syncing, edited, now, onOpen, onSelect }: TaskListProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  // Stable identity matters: the virtualizer rebuilds all row offsets when the key function
  // changes, which with 100k rows would happen on every scroll frame.
  const getItemKey = useCallback((i: number) => tasks[i]?.id ?? i, [tasks]);
  // The app does not run the React Compiler; the virtualizer re-renders through its own state.
  // eslint-disable-next-line react-hooks/incompatible-library
  const virtualizer = useVirtualizer({
    count: tasks.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    getItemKey,
  });

  // Keep the focused row on screen when j/k (or a decision) moves focus.
  // Memoized: scrolling re-renders this component every frame, and 100k compares add up.
  const focusedIndex = useMemo(
    () => (focusedId === null ? -1 : tasks.findIndex((t) => t.id === focusedId)),
    [tasks, focusedId],
  );
  useEffect(() => {
    if (focusedIndex >= 0) virtualizer.scrollToIndex(focusedIndex, { align: "auto" });
  }, [focusedIndex, virtualizer]);

  return (
    <div
      ref={scrollRef}
      className="min-h-0 flex-1 overflow-y-auto overscroll-contain"
      role="list"
      aria-label="Tasks"
      data-testid="inbox-list"
    >
      <div className="relative w-full" style={{ height: virtualizer.getTotalSize() }}>
        {virtualizer.getVirtualItems().map((item) => {
          const task = tasks[item.index];
          if (!task) return null;
          return (
            <TaskRow
              key={item.key}
              task={task}
              top={item.start}
              focused={task.id === focusedId}
              selected={selected.has(task.id)}
              syncing={syncing.get(task.id)}
              edited={edited.has(task.id)}
              now={now}
              onOpen={onOpen}
              onSelect={onSelect}
            />
          );
        })}
      </div>
    </div>
  );
}

interface RowProps {
  task: TaskSummary;
  top: number;
  focused: boolean;
  selected: boolean;
  syncing: DecisionRequest | undefined;
  edited: boolean;
  now: number;
  onOpen: (id: string) => void;
  onSelect: (id: string, range: boolean) => void;
}

const TaskRow = memo(function TaskRow({ task, top, focused, selected, syncing, edited, now, onOpen, onSelect }: RowProps) {
  const chip = syncing ? null : sla(task, now);
  const decided = task.status !== "pending" || syncing !== undefined;
  const title = task.status === "pending" ? "text-fg" : "text-muted";
  const onClick = (e: MouseEvent) => {
    if (e.shiftKey || e.metaKey || e.ctrlKey) {
      e.preventDefault();
      onSelect(task.id, e.shiftKey);
    } else onOpen(task.id);
  };
  return (
    <div
      role="listitem"
      data-testid="inbox-row"
      data-task-id={task.id}
      data-focused={focused || undefined}
      data-selected={selected || undefined}
      data-syncing={syncing ? "true" : undefined}
      aria-current={focused ? "true" : undefined}
      onClick={onClick}
      className={clsx(
        "group absolute inset-x-0 flex cursor-default items-center gap-2.5 border-b border-border/60 pr-3 pl-2.5 select-none",
        "before:absolute before:inset-y-0 before:left-0 before:w-0.5",
        focused ? "bg-selected before:bg-accent" : selected ? "bg-accent/5 hover:bg-hover" : "hover:bg-hover",
      )}
      style={{ top, height: ROW_HEIGHT }}
    >
      <input
        type="checkbox"
        data-testid="row-checkbox"
        aria-label={`Select ${task.title}`}
        checked={selected}
        onClick={(e) => {
          // The row's click would open the task; a tick only selects.
          e.stopPropagation();
          onSelect(task.id, e.shiftKey);
        }}
        onChange={() => {}}
        className={clsx(
          "size-3.5 shrink-0 cursor-pointer accent-accent transition-opacity",
          !selected && "opacity-40 group-hover:opacity-100",
        )}
      />
      <div className={clsx("flex min-w-0 flex-1 flex-col gap-1", syncing && "opacity-60")}>
        <div className="flex min-w-0 items-center gap-1.5">
          {task.attention && (
            <TriangleAlert
              className="size-3.5 shrink-0 text-danger"
              aria-label="Needs attention"
              role="img"
            >
              <title>Needs attention: the SLA ran out and the task waits for a person</title>
            </TriangleAlert>
          )}
          <span className={clsx("truncate text-[13px]", title, focused && "font-medium")}>{task.title}</span>
          {edited && !decided && (
            <Pencil className="size-3 shrink-0 text-accent" aria-label="Edit in progress" role="img">
              <title>Edit in progress (saved on this device)</title>
            </Pencil>
          )}
        </div>
        <div className="flex min-w-0 items-center gap-1.5 text-[11.5px] text-muted">
          <span className="truncate">{task.blueprint}</span>
          <span className="text-faint">·</span>
          <span className="shrink-0 truncate">{task.role}</span>
          {task.claimed_by && (
            <span className="flex shrink-0 items-center gap-0.5 text-faint" title={`Claimed by ${task.claimed_by}`}>
              <UserRound className="size-3" aria-hidden />
              {task.claimed_by}
            </span>
          )}
        </div>
      </div>
      <div className="flex shrink-0 flex-col items-end gap-1">
        {syncing ? (
          <Badge tone="info" title={`Your ${syncing.action} was sent and awaits confirmation`}>
            <CloudUpload className="size-3 animate-pulse" aria-hidden />
            Pending sync
          </Badge>
        ) : task.sync === "conflict" || task.sync === "pending" ? (
          <HubChip task={task} />
        ) : chip ? (
          <Badge tone={chip.tone} title={chip.title} className="tabular-nums">
            {chip.label}
          </Badge>
        ) : task.decision ? (
          <DecisionBadge action={task.decision.action} />
        ) : (
          <span className="h-[18px]" />
        )}
        <span className="text-[11px] text-faint tabular-nums" title={new Date(task.created_at).toLocaleString()}>
          {age(task.created_at, now)}
        </span>
      </div>
    </div>
  );
});
