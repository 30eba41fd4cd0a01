// Small presentational pieces of the inbox: decision badges, collapsible sections, JSON and
// diff views.
import { clsx } from "clsx";
import { diffWordsWithSpace } from "diff";
import { ChevronRight } from "lucide-react";
import { useMemo, useState, type ReactNode } from "react";
import type { Action, JsonValue } from "../api/types.gen";
import { Badge } from "../components/ui";

const DECISION: Record<Action, { label: string; tone: "ok" | "info" | "danger" | "warn" }> = {
  approve: { label: "Approved", tone: "ok" },
  edit: { label: "Edited", tone: "info" },
  reject: { label: "Rejected", tone: "danger" },
  escalate: { label: "Escalated", tone: "warn" },
};

export function decisionLabel(action: string): string {
  return DECISION[action as Action]?.label ?? action;
}

export function DecisionBadge({ action }: { action: string }) {
  const d = DECISION[action as Action];
  return <Badge tone={d?.tone ?? "neutral"}>{d?.label ?? action}</Badge>;
}

export function Section({
  title,
  meta,
  defaultOpen = true,
  children,
  testId,
}: {
  title: ReactNode;
  meta?: ReactNode;
  defaultOpen?: boolean;
  children: ReactNode;
  testId?: string;
}) {
  const [open, setOpen] = useState(defaultOpen);
  return (
    <section data-testid={testId} className="border-b border-border/70 last:border-b-0">
      <button
        type="button"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
        className="flex w-full items-center gap-1.5 py-2 text-left text-[12px] font-medium text-muted hover:text-fg"
      >
        <ChevronRight className={clsx("size-3.5 shrink-0 transition-transform", open && "rotate-90")} aria-hidden />
        <span className="min-w-0 truncate">{title}</span>
        {meta && <span className="ml-auto flex shrink-0 items-center gap-1.5 font-normal text-faint">{meta}</span>}
      </button>
      {open && <div className="pb-3 pl-5">{children}</div>}
    </section>
  );
}

/** Heading of a detail block ("Draft", "Context", "History"). */
export function BlockTitle({ children, right }: { children: ReactNode; right?: ReactNode }) {
  return (
    <div className="mb-2 flex items-center gap-2">
      <h2 className="text-[11px] font-semibold tracking-wide text-faint uppercase">{children}</h2>
      {right && <div className="ml-auto flex items-center gap-2">{right}</div>}
    </div>
  );
}

export function isRecord(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function humanize(key: string): string {
  const s = key.replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function Scalar({ value }: { value: JsonValue }) {
  if (value === null) return <span className="text-faint">—</span>;
  if (typeof value === "boolean") return <span className="font-mono text-[12px]">{String(value)}</span>;
  if (typeof value === "number")
    return <span className="font-mono text-[12px] tabular-nums">{Number.isInteger(value) ? value.toLocaleString() : value}</span>;
  if (typeof value === "string") {
    if (/^https?:\/\//.test(value))
      return (
        <a href={value} target="_blank" rel="noreferrer" className="break-all text-accent hover:underline">
          {value}
        </a>
      );
    return <span className="break-words whitespace-pre-wrap">{value}</span>;
  }
  return null;
}

const MAX_ITEMS = 20;

/** A JSON value as nested key/value rows: readable for payloads, no raw braces. */
export function JsonView({ value, depth = 0 }: { value: JsonValue; depth?: number }) {
  const [all, setAll] = useState(false);
  if (Array.isArray(value)) {
    if (value.length === 0) return <span className="text-faint">none</span>;
    if (value.every((v) => typeof v !== "object" || v === null))
      return <span className="break-words">{value.map((v) => (v === null ? "—" : String(v))).join(", ")}</span>;
    const shown = all ? value : value.slice(0, MAX_ITEMS);
    return (
      <ol className="flex flex-col gap-1.5">
        {shown.map((v, i) => (
          <li key={i} className="rounded border border-border/70 bg-sunken/50 px-2 py-1.5">
            <JsonView value={v} depth={depth + 1} />
          </li>
        ))}
        {!all && value.length > MAX_ITEMS && (
          <button type="button" className="self-start text-[12px] text-accent hover:underline" onClick={() => setAll(true)}>
            Show {value.length - MAX_ITEMS} more
          </button>
        )}
      </ol>
    );
  }
  if (isRecord(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return <span className="text-faint">empty</span>;
    if (depth > 4) return <pre className="font-mono text-[11px] whitespace-pre-wrap">{JSON.stringify(value, null, 2)}</pre>;
    return (
      <dl className="grid grid-cols-[minmax(96px,max-content)_1fr] gap-x-4 gap-y-1">
        {entries.map(([k, v]) => (
          <div key={k} className="contents">
            <dt className="truncate pt-px text-[12px] text-muted" title={k}>
              {humanize(k)}
            </dt>
            <dd className="min-w-0 text-[12.5px]">
              <JsonView value={v} depth={depth + 1} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  return <Scalar value={value} />;
}

/** A unified diff (as the engine stores edits) with added and removed lines coloured. */
export function UnifiedDiff({ diff }: { diff: string }) {
  const lines = diff.replace(/\n+$/, "").split("\n");
  return (
    <pre
      data-testid="decision-diff"
      className="overflow-x-auto rounded-md border border-border bg-sunken py-1.5 font-mono text-[12px] leading-5"
    >
      {lines.map((line, i) => {
        const kind = line.startsWith("+++") || line.startsWith("---") ? "file" : line[0];
        return (
          <div
            key={i}
            className={clsx(
              "px-3 whitespace-pre-wrap",
              kind === "+" && "bg-ok/10 text-ok",
              kind === "-" && "bg-danger/10 text-danger",
              kind === "@" && "text-info",
              kind === "file" && "text-faint",
            )}
          >
            {line || " "}
          </div>
        );
      })}
    </pre>
  );
}

/** Word-level changes from `before` to `after`, inline: what an edit will send. */
export function InlineDiff({ before, after }: { before: string; after: string }) {
  const { parts, added, removed } = useMemo(() => {
    const parts = diffWordsWithSpace(before, after);
    let added = 0;
    let removed = 0;
    for (const p of parts) {
      // Words, not tokens: a comma added next to a word should not count as a word.
      const words = p.value.match(/[\p{L}\p{N}]+/gu)?.length ?? 0;
      if (p.added) added += words;
      else if (p.removed) removed += words;
    }
    return { parts, added, removed };
  }, [before, after]);
  return (
    <div data-testid="edit-diff">
      <div className="mb-1.5 flex items-center gap-2 text-[11px] text-faint">
        <span>Changes</span>
        <span className="text-ok tabular-nums">+{added}</span>
        <span className="text-danger tabular-nums">−{removed}</span>
        <span>words</span>
      </div>
      <div className="rounded-md border border-border bg-sunken px-3 py-2 text-[13px] leading-relaxed whitespace-pre-wrap">
        {added === 0 && removed === 0 ? (
          <span className="text-faint">No changes yet.</span>
        ) : (
          parts.map((p, i) =>
            p.added ? (
              <ins key={i} className="rounded-sm bg-ok/15 text-ok no-underline">
                {p.value}
              </ins>
            ) : p.removed ? (
              <del key={i} className="rounded-sm bg-danger/15 text-danger">
                {p.value}
              </del>
            ) : (
              <span key={i} className="text-muted">
                {p.value}
              </span>
            ),
          )
        )}
      </div>
    </div>
  );
}
