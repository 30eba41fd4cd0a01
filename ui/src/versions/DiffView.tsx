// What changed between two versions of a blueprint, grouped by area, with before → after
// values and, for text that spans lines (prompt templates), a unified line diff.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { ArrowLeftRight, GitCompareArrows, Loader2 } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import type { BlueprintVersions, DiffEntry, DiffLine } from "../api/types.gen";
import { stageInfo } from "../blueprints/stage";
import { EmptyState, ErrorState, inputClass } from "../components/ui";
import { diffSummary, entryTitle, entryView, foldContext, groupDiff, MARKER, resolveVersion, shortHash } from "./rules";

export function DiffView({
  data,
  from,
  to,
  onChange,
  scrollOnLoad = false,
}: {
  data: BlueprintVersions;
  /** The chosen versions (from the URL); empty: the engine's defaults (approved → the file's). */
  from: string;
  to: string;
  onChange: (from: string, to: string) => void;
  /** Scroll to the diff when it has loaded (the page was opened with versions to compare). */
  scrollOnLoad?: boolean;
}) {
  const enough = data.versions.length >= 2;
  const diff = useQuery({
    queryKey: ["versions", data.blueprint, "diff", { from, to }],
    queryFn: () => api.versionDiff({ blueprint: data.blueprint, from: from || undefined, to: to || undefined }),
    enabled: enough,
    placeholderData: keepPreviousData,
  });
  // The selects show what the engine compared, so its defaults are visible too; a URL may
  // name versions by their first characters.
  const shownFrom = resolveVersion(data.versions, from) || diff.data?.from || "";
  const shownTo = resolveVersion(data.versions, to) || diff.data?.to || "";
  // A link naming the versions opens at the diff, once it is there to scroll to.
  const section = useRef<HTMLElement>(null);
  const pendingScroll = useRef(scrollOnLoad);
  useEffect(() => {
    if (pendingScroll.current && diff.data) {
      pendingScroll.current = false;
      section.current?.scrollIntoView({ block: "start" });
    }
  }, [diff.data]);

  const option = (hash: string) => {
    const v = data.versions.find((x) => x.version === hash);
    const parts = [shortHash(hash), v?.stage ? stageInfo(v.stage).label : "not proposed"];
    if (v?.current_file) parts.push("file");
    return parts.join(" · ");
  };

  return (
    <section ref={section} aria-labelledby="diff-heading" data-testid="versions-diff" className="scroll-mt-4 rounded-lg border border-border bg-panel">
      <div className="flex flex-wrap items-center gap-2 border-b border-border px-4 py-2.5">
        <h2 id="diff-heading" className="flex items-center gap-1.5 text-[13px] font-semibold">
          <GitCompareArrows className="size-3.5 text-muted" aria-hidden /> Changes
        </h2>
        {diff.data && (
          <span className="text-xs text-muted" data-testid="diff-summary">
            {diffSummary(diff.data.changes)}
          </span>
        )}
        {diff.isFetching && <Loader2 className="size-3.5 animate-spin text-faint" aria-label="Loading the diff" />}
        {enough && (
          <div className="ml-auto flex items-center gap-1.5 text-xs text-muted">
            <label className="flex items-center gap-1.5">
              From
              <select
                className={clsx(inputClass, "h-8 w-56 py-1 font-mono text-xs")}
                value={shownFrom}
                onChange={(e) => onChange(e.target.value, shownTo)}
                data-testid="diff-from"
              >
                {!shownFrom && <option value="">…</option>}
                {data.versions.map((v) => (
                  <option key={v.version} value={v.version}>
                    {option(v.version)}
                  </option>
                ))}
              </select>
            </label>
            <button
              type="button"
              className="rounded p-1 text-faint hover:bg-hover hover:text-fg"
              title="Swap from and to"
              aria-label="Swap from and to"
              onClick={() => onChange(shownTo, shownFrom)}
              disabled={!shownFrom || !shownTo}
            >
              <ArrowLeftRight className="size-3.5" />
            </button>
            <label className="flex items-center gap-1.5">
              To
              <select
                className={clsx(inputClass, "h-8 w-56 py-1 font-mono text-xs")}
                value={shownTo}
                onChange={(e) => onChange(shownFrom, e.target.value)}
                data-testid="diff-to"
              >
                {!shownTo && <option value="">…</option>}
                {data.versions.map((v) => (
                  <option key={v.version} value={v.version}>
                    {option(v.version)}
                  </option>
                ))}
              </select>
            </label>
          </div>
        )}
      </div>
      {!enough ? (
        <EmptyState title="Only one version so far">Edit the blueprint in the Designer to make another one to compare with.</EmptyState>
      ) : diff.isPending ? (
        <div className="p-6 text-muted" role="status">
          Comparing…
        </div>
      ) : diff.isError ? (
        <ErrorState error={diff.error} />
      ) : diff.data.changes.length === 0 ? (
        <div data-testid="diff-empty">
          <EmptyState title="No changes (canvas positions aside)">
            {diff.data.from === diff.data.to ? "Both sides are the same version." : "The two versions run the same process."}
          </EmptyState>
        </div>
      ) : (
        <div className="flex flex-col gap-4 p-4">
          {groupDiff(diff.data.changes).map((g) => (
            <div key={g.area} data-testid="diff-group" data-area={g.area}>
              <h3 className="mb-1.5 flex items-center gap-2 text-[11px] font-semibold tracking-wide text-muted uppercase">
                {g.label}
                <span className="rounded bg-sunken px-1.5 font-normal tabular-nums">{g.entries.length}</span>
              </h3>
              <ul className="flex flex-col divide-y divide-border overflow-hidden rounded-md border border-border">
                {g.entries.map((e, i) => (
                  <DiffItem key={`${e.subject}/${e.field}/${i}`} entry={e} />
                ))}
              </ul>
            </div>
          ))}
        </div>
      )}
    </section>
  );
}

const MARKER_TONE = {
  added: "bg-ok/15 text-ok",
  removed: "bg-danger/15 text-danger",
  changed: "bg-warn/15 text-warn",
} as const;

function DiffItem({ entry }: { entry: DiffEntry }) {
  const view = entryView(entry);
  return (
    <li className="px-3 py-2" data-testid="diff-entry" data-change={entry.change}>
      <div className="flex items-start gap-2">
        <span
          className={clsx("mt-px inline-flex size-4 shrink-0 items-center justify-center rounded font-mono text-[11px] font-bold", MARKER_TONE[entry.change])}
          title={entry.change}
          aria-label={entry.change}
        >
          {MARKER[entry.change]}
        </span>
        <span className="min-w-0 font-mono text-[12px] break-words">{entryTitle(entry)}</span>
        {view.kind === "whole" && <span className="text-[11.5px] text-faint">{entry.change}</span>}
      </div>
      {view.kind === "values" && (
        <div className="mt-1 ml-6 flex flex-wrap items-baseline gap-1.5 font-mono text-[12px]">
          {view.before !== null && (
            <span className="rounded bg-danger/10 px-1 break-all text-danger line-through decoration-danger/40" data-testid="diff-before">
              {view.before}
            </span>
          )}
          {view.before !== null && view.after !== null && <span className="text-faint" aria-label="becomes">→</span>}
          {view.after !== null && (
            <span className="rounded bg-ok/10 px-1 break-all text-ok" data-testid="diff-after">
              {view.after}
            </span>
          )}
        </div>
      )}
      {view.kind === "lines" && <LineDiff lines={view.lines} />}
    </li>
  );
}

/** A unified line diff: added lines green, removed red, distant context folded (click to show). */
export function LineDiff({ lines }: { lines: DiffLine[] }) {
  const [open, setOpen] = useState<ReadonlySet<number>>(() => new Set());
  const folded = foldContext(lines);
  return (
    <pre
      data-testid="diff-lines"
      className="relative mt-1.5 ml-6 overflow-x-auto rounded-md border border-border bg-sunken py-1 font-mono text-[12px] leading-5"
    >
      {folded.map((f, i) =>
        f.kind === "fold" && !open.has(f.start) ? (
          <button
            key={`fold-${f.start}`}
            type="button"
            className="block w-full bg-info/5 px-2 text-left text-[11px] text-faint hover:bg-info/10 hover:text-info"
            onClick={() => setOpen(new Set([...open, f.start]))}
            data-testid="diff-fold"
          >
            ⋯ {f.count} unchanged lines
          </button>
        ) : f.kind === "fold" ? (
          lines.slice(f.start, f.start + f.count).map((l, j) => <Line key={`${f.start}-${j}`} line={l} />)
        ) : (
          <Line key={i} line={f.line} />
        ),
      )}
    </pre>
  );
}

function Line({ line: l }: { line: DiffLine }) {
  return (
    <div
      data-tag={l.tag}
      className={clsx(
        "flex px-2 whitespace-pre-wrap",
        l.tag === "+" && "bg-ok/10 text-ok",
        l.tag === "-" && "bg-danger/10 text-danger",
        l.tag !== "+" && l.tag !== "-" && "text-muted",
      )}
    >
      <span className="w-4 shrink-0 select-none opacity-70" aria-hidden>
        {l.tag === "-" ? "−" : l.tag === "@" ? "" : l.tag.trim()}
      </span>
      {(l.tag === "+" || l.tag === "-") && <span className="sr-only">{l.tag === "+" ? "added: " : "removed: "}</span>}
      <span className="min-w-0 flex-1">{l.text || " "}</span>
    </div>
  );
}
