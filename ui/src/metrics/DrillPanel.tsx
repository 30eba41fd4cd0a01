// The drawer behind a number: the runs a metric counted (GET /api/metrics/runs), or for drift
// each version's components. Each run links to its timeline on the Runs screen.
import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { ChevronRight, PlayCircle, X } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import { Badge, EmptyState, ErrorState, shortId, Spinner } from "../components/ui";
import { formatDate } from "../inbox/sla";
import { formatTime } from "../runs/status";
import { componentLabel, count, DEFINITIONS, formatPsi, shortVersion } from "./format";
import type { BlueprintMetrics, Drill, DrillRow } from "../api/types.gen";

export type Card = "prompt" | "override" | "automation" | "latency" | "drift";

/** What the drawer explains: a card's number, for the selection or one blueprint / version. */
export interface DrillTarget {
  card: Card;
  blueprint: string | null;
  version: string | null;
}

const LIMIT = 100;

export const CARDS: Record<Card, { title: string; help: string; tabs: { metric: Drill; label: string; empty: string }[] }> = {
  prompt: {
    title: "Prompt success",
    help: DEFINITIONS.prompt,
    tabs: [
      { metric: "prompt_issues", label: "Prompt issues", empty: "No prompt step needed a repair or a fallback, or failed." },
      { metric: "failed", label: "Failed runs", empty: "No run failed." },
    ],
  },
  override: {
    title: "Human override",
    help: DEFINITIONS.override,
    tabs: [{ metric: "overrides", label: "Edited or rejected", empty: "No human decision edited or rejected a draft." }],
  },
  automation: {
    title: "Automation coverage",
    help: DEFINITIONS.automation,
    tabs: [
      { metric: "automated", label: "No human touch", empty: "No finished run went through without a person." },
      { metric: "touched", label: "Touched by a person", empty: "No finished run needed a person." },
    ],
  },
  latency: {
    title: "Decision latency",
    help: DEFINITIONS.latency,
    tabs: [
      { metric: "slowest", label: "Slowest", empty: "No task was decided." },
      { metric: "escalated", label: "Escalated", empty: "No decided task had been escalated." },
      { metric: "breached", label: "Breached SLA", empty: "No decided task breached its SLA." },
    ],
  },
  drift: { title: "Process drift", help: DEFINITIONS.drift, tabs: [] },
};

export function DrillPanel({
  target,
  since,
  windowLabel,
  blueprints,
  nameOf,
  onClose,
}: {
  target: DrillTarget;
  since: string;
  windowLabel: string;
  /** The report's blueprints, for the drift view. */
  blueprints: BlueprintMetrics[];
  nameOf: (id: string) => string;
  onClose: () => void;
}) {
  const card = CARDS[target.card];
  const [tab, setTab] = useState(0);
  const closeButton = useRef<HTMLButtonElement>(null);
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });
  useEffect(() => {
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    closeButton.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        close.current();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      previous?.focus();
    };
  }, []);

  const scope = [
    target.blueprint ? nameOf(target.blueprint) : "All processes",
    target.version ? `version ${shortVersion(target.version)}` : null,
    windowLabel.toLowerCase(),
  ]
    .filter(Boolean)
    .join(" · ");
  const current = card.tabs[Math.min(tab, card.tabs.length - 1)];

  return (
    <>
      <div className="fixed inset-0 z-30 bg-black/10" onMouseDown={onClose} aria-hidden />
      <aside
        role="dialog"
        aria-label={`${card.title}: ${card.tabs.length > 0 ? "the runs behind the number" : "drift by version"}`}
        data-testid="drill-panel"
        className="fixed top-0 right-0 bottom-0 z-40 flex w-[460px] max-w-full flex-col border-l border-border bg-panel shadow-2xl"
      >
        <header className="flex items-start gap-2 border-b border-border px-4 py-3">
          <div className="min-w-0 flex-1">
            <h2 className="text-sm font-semibold">{card.title}</h2>
            <div className="mt-0.5 truncate text-xs text-muted">{scope}</div>
          </div>
          <button
            ref={closeButton}
            type="button"
            onClick={onClose}
            aria-label="Close"
            className="rounded p-1 text-muted hover:bg-hover hover:text-fg"
          >
            <X className="size-4" />
          </button>
        </header>
        <p className="border-b border-border bg-sunken/60 px-4 py-2 text-[11.5px] leading-relaxed text-muted">{card.help}</p>
        {card.tabs.length > 1 && (
          <div role="tablist" aria-label="Runs to show" className="flex gap-1 border-b border-border px-3 py-2">
            {card.tabs.map((t, i) => (
              <button
                key={t.metric}
                type="button"
                role="tab"
                aria-selected={current === t}
                onClick={() => setTab(i)}
                data-testid={`drill-tab-${t.metric}`}
                className={clsx(
                  "h-6 rounded-md px-2 text-xs transition-colors",
                  current === t ? "bg-selected font-medium text-fg" : "text-muted hover:bg-hover hover:text-fg",
                )}
              >
                {t.label}
              </button>
            ))}
          </div>
        )}
        <div className="min-h-0 flex-1 overflow-auto">
          {current ? (
            <DrillRuns
              key={current.metric}
              metric={current.metric}
              empty={current.empty}
              since={since}
              blueprint={target.blueprint}
              version={target.version}
              nameOf={nameOf}
            />
          ) : (
            <DriftVersions blueprints={blueprints} target={target} nameOf={nameOf} />
          )}
        </div>
      </aside>
    </>
  );
}

function DrillRuns({
  metric,
  empty,
  since,
  blueprint,
  version,
  nameOf,
}: {
  metric: Drill;
  empty: string;
  since: string;
  blueprint: string | null;
  version: string | null;
  nameOf: (id: string) => string;
}) {
  const runs = useQuery({
    queryKey: ["metrics", "runs", { metric, blueprint, version, since }],
    queryFn: () => api.metricRuns({ metric, blueprint: blueprint ?? undefined, version: version ?? undefined, since, limit: LIMIT }),
  });
  if (runs.isPending) return <Spinner label="Loading runs…" />;
  if (runs.isError) return <ErrorState error={runs.error} />;
  if (runs.data.length === 0)
    return (
      <EmptyState icon={<PlayCircle className="size-6" />} title="No runs">
        {empty}
      </EmptyState>
    );
  return (
    <>
      <ul aria-label="Runs">
        {runs.data.map((r, i) => (
          <DrillRunRow key={`${r.run_id}-${i}`} row={r} nameOf={nameOf} />
        ))}
      </ul>
      {runs.data.length >= LIMIT && (
        <div className="px-4 py-2 text-[11px] text-faint">Showing the first {LIMIT} runs.</div>
      )}
    </>
  );
}

function DrillRunRow({ row, nameOf }: { row: DrillRow; nameOf: (id: string) => string }) {
  return (
    <li>
      <Link
        to={`/runs/${row.run_id}`}
        data-testid="drill-run"
        className="group flex items-center gap-3 border-b border-border/70 px-4 py-2 transition-colors hover:bg-hover"
      >
        <span className="min-w-0 flex-1">
          <span className="block truncate text-[13px]">{row.detail || "—"}</span>
          <span className="mt-0.5 flex items-center gap-1.5 text-[11.5px] text-muted">
            <span className="truncate">{nameOf(row.blueprint)}</span>
            <span className="text-faint">·</span>
            <span className="font-mono text-faint" title={`Version ${row.version}`}>
              {shortVersion(row.version)}
            </span>
            <span className="text-faint">·</span>
            <span className="font-mono text-faint" title={`Run ${row.run_id}`}>
              {shortId(row.run_id)}
            </span>
          </span>
        </span>
        <span className="shrink-0 text-[11px] text-faint tabular-nums" title={formatTime(row.at)}>
          {formatDate(row.at)}
        </span>
        <ChevronRight className="size-3.5 shrink-0 text-faint group-hover:text-fg" aria-hidden />
      </Link>
    </li>
  );
}

function DriftVersions({
  blueprints,
  target,
  nameOf,
}: {
  blueprints: BlueprintMetrics[];
  target: DrillTarget;
  nameOf: (id: string) => string;
}) {
  const versions = blueprints
    .filter((b) => !target.blueprint || b.blueprint === target.blueprint)
    .flatMap((b) => b.versions.filter((v) => !target.version || v.version === target.version).map((v) => ({ b, v })))
    .sort((x, y) => (y.v.drift.index ?? -1) - (x.v.drift.index ?? -1));
  if (versions.length === 0) return <EmptyState title="No versions ran in the window" />;
  return (
    <ul aria-label="Versions by drift">
      {versions.map(({ b, v }) => (
        <li
          key={`${b.blueprint}/${v.version}`}
          data-testid="drift-version"
          className={clsx("border-b border-border/70 px-4 py-2.5", v.drift.flagged && "bg-warn/[0.06]")}
        >
          <div className="flex items-center gap-2">
            <span className="truncate font-medium">{b.name ?? nameOf(b.blueprint)}</span>
            <span className="font-mono text-[11.5px] text-faint" title={v.version}>
              {shortVersion(v.version)}
            </span>
            <span className="ml-auto flex items-center gap-1.5 tabular-nums">
              {v.drift.flagged && <Badge tone="warn">Flagged</Badge>}
              <span className={clsx("font-semibold", v.drift.flagged && "text-warn")}>{formatPsi(v.drift.index)}</span>
            </span>
          </div>
          <table className="mt-1.5 w-full text-[11.5px] text-muted">
            <tbody>
              {v.drift.components.map((c) => (
                <tr key={c.name}>
                  <td className="py-px">{componentLabel(c.name)}</td>
                  <td
                    className={clsx(
                      "py-px text-right tabular-nums",
                      c.psi !== null && c.psi >= v.drift.threshold && "font-medium text-warn",
                    )}
                  >
                    {c.psi === null ? "too few observations" : formatPsi(c.psi)}
                  </td>
                  <td className="w-36 py-px text-right text-faint tabular-nums">
                    {count(c.baseline_n)} → {count(c.recent_n)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </li>
      ))}
    </ul>
  );
}
