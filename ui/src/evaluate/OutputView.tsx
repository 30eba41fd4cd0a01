// The output under evaluation: the text itself, and for approved reviews the draft and what
// the reviewer changed.
import { clsx } from "clsx";
import { diffWords } from "diff";
import { ExternalLink } from "lucide-react";
import { useMemo, useState } from "react";
import { Link } from "react-router";
import type { QueueItem } from "../api/types.gen";
import { Badge, relativeTime } from "../components/ui";
import { CopyButton, JsonBlock } from "../runs/JsonBlock";

/** Model replies are often JSON; show those structured. */
function parseJson(text: string): unknown {
  const t = text.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return undefined;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return undefined;
  }
}

function Prose({ text }: { text: string }) {
  const json = parseJson(text);
  if (json !== undefined) return <JsonBlock value={json} maxHeight={false} />;
  return (
    <div className="group relative rounded-lg border border-border bg-panel px-5 py-4">
      <div className="text-[14px] leading-relaxed whitespace-pre-wrap" data-testid="eval-text">
        {text}
      </div>
      <div className="absolute top-1.5 right-1.5 opacity-0 transition-opacity group-hover:opacity-100">
        <CopyButton text={text} />
      </div>
    </div>
  );
}

function WordDiff({ before, after }: { before: string; after: string }) {
  const parts = useMemo(() => diffWords(before, after), [before, after]);
  return (
    <div className="rounded-lg border border-border bg-panel px-5 py-4 text-[14px] leading-relaxed whitespace-pre-wrap">
      {parts.map((p, i) => (
        <span
          key={i}
          className={clsx(p.added && "rounded-sm bg-ok/20 text-ok", p.removed && "rounded-sm bg-danger/15 text-danger line-through")}
        >
          {p.value}
        </span>
      ))}
    </div>
  );
}

export function OutputView({ item }: { item: QueueItem }) {
  const [view, setView] = useState<"approved" | "draft" | "changes">("approved");
  const review = item.kind === "review";
  return (
    <div className="min-h-0 flex-1 overflow-auto">
      <div className="mx-auto flex max-w-3xl flex-col gap-3 px-6 py-5">
        <div className="flex flex-wrap items-center gap-2">
          <h2 className="font-mono text-[15px] font-semibold">{item.node}</h2>
          <Badge tone={review ? "ok" : "info"}>{review ? "approved text" : "model draft"}</Badge>
          {review && (item.edited ? <Badge tone="warn">edited by reviewer</Badge> : <Badge>approved as drafted</Badge>)}
          <Link
            to={`/runs/${item.run}`}
            className="ml-auto flex items-center gap-1 text-xs text-muted hover:text-accent"
            title="Open the run's timeline"
          >
            run {item.run.slice(-8)} <ExternalLink className="size-3" />
          </Link>
        </div>
        <div className="-mt-1.5 flex flex-wrap gap-x-3 text-xs text-muted">
          <span>{item.blueprint}</span>
          <span className="font-mono text-faint">{item.handle}</span>
          <span>finished {relativeTime(item.finished_at)}</span>
        </div>
        {review && item.draft != null && item.edited && (
          <div className="flex gap-1" role="tablist">
            {(
              [
                ["approved", "Approved"],
                ["changes", "Changes"],
                ["draft", "Draft"],
              ] as const
            ).map(([id, label]) => (
              <button
                key={id}
                type="button"
                role="tab"
                aria-selected={view === id}
                onClick={() => setView(id)}
                className={clsx(
                  "rounded-md px-2 py-1 text-xs transition-colors",
                  view === id ? "bg-selected font-medium text-fg" : "text-muted hover:bg-hover hover:text-fg",
                )}
              >
                {label}
              </button>
            ))}
          </div>
        )}
        {review && item.draft != null && item.edited && view === "changes" ? (
          <WordDiff before={item.draft} after={item.text} />
        ) : review && item.draft != null && item.edited && view === "draft" ? (
          <Prose text={item.draft} />
        ) : (
          <Prose text={item.text} />
        )}
      </div>
    </div>
  );
}
