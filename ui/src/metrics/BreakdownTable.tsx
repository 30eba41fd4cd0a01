// "By process and version": one row per blueprint, expandable to its versions side by side.
import { clsx } from "clsx";
import { AlertTriangle, ChevronRight } from "lucide-react";
import { useState, type ReactNode } from "react";
import { Badge } from "../components/ui";
import type { Card, DrillTarget } from "./DrillPanel";
import {
  componentLabel,
  count,
  dayLabel,
  DEFINITIONS,
  formatDuration,
  formatPsi,
  fraction,
  pct,
  shortVersion,
} from "./format";
import type { BlueprintMetrics, Drift, Ratio, Summary } from "../api/types.gen";

const TH = "px-2.5 py-2 text-[11.5px] font-medium whitespace-nowrap text-muted";
const NUM = clsx(TH, "text-right");

export function BreakdownTable({
  blueprints,
  currentVersion,
  onDrill,
}: {
  blueprints: BlueprintMetrics[];
  /** The current version of each blueprint still in the project. */
  currentVersion: (blueprint: string) => string | undefined;
  onDrill: (target: DrillTarget) => void;
}) {
  // Open by default: a blueprint with a flagged version, or the only one shown.
  const [toggled, setToggled] = useState<Record<string, boolean>>({});
  const isOpen = (b: BlueprintMetrics) =>
    toggled[b.blueprint] ?? (blueprints.length === 1 || b.versions.some((v) => v.drift.flagged));

  return (
    <table className="w-full border-collapse text-[13px]" data-testid="metrics-table">
      <thead>
        <tr className="border-b border-border">
          <th className={clsx(TH, "text-left")}>Process</th>
          <th className={NUM}>Runs</th>
          <th className={NUM} title={DEFINITIONS.prompt}>
            Prompt success
          </th>
          <th className={NUM} title={DEFINITIONS.override}>
            Override
          </th>
          <th className={NUM} title={DEFINITIONS.automation}>
            Automation
          </th>
          <th className={NUM} title={DEFINITIONS.latency}>
            Latency p50 / p95
          </th>
          <th className={NUM} title={DEFINITIONS.drift}>
            Drift
          </th>
        </tr>
      </thead>
      {blueprints.map((b) => {
        const open = isOpen(b);
        const flagged = b.versions.filter((v) => v.drift.flagged).length;
        const drill = (card: Card, version: string | null = null) => onDrill({ card, blueprint: b.blueprint, version });
        return (
          <tbody key={b.blueprint} data-testid="metrics-blueprint" data-blueprint={b.blueprint}>
            <tr className="border-b border-border/70 hover:bg-hover/60">
              <td className="px-3 py-2">
                <button
                  type="button"
                  onClick={() => setToggled((t) => ({ ...t, [b.blueprint]: !open }))}
                  aria-expanded={open}
                  aria-label={`${open ? "Hide" : "Show"} the versions of ${b.name ?? b.blueprint}`}
                  className="flex max-w-full items-center gap-1.5 text-left"
                >
                  <ChevronRight className={clsx("size-3.5 shrink-0 text-faint transition-transform", open && "rotate-90")} />
                  <span className="truncate font-medium">{b.name ?? b.blueprint}</span>
                  <span className="shrink-0 text-[11.5px] text-faint">
                    {b.versions.length} version{b.versions.length === 1 ? "" : "s"}
                  </span>
                  {flagged > 0 && (
                    <AlertTriangle className="size-3.5 shrink-0 text-warn" aria-label={`${flagged} flagged`} />
                  )}
                </button>
              </td>
              <Cells summary={b.summary} drift={b.drift} drill={(card) => drill(card)} />
            </tr>
            {open &&
              b.versions.map((v) => (
                <tr
                  key={v.version}
                  data-testid="metrics-version"
                  data-version={v.version}
                  data-flagged={v.drift.flagged || undefined}
                  className={clsx(
                    "border-b border-border/70 text-muted",
                    v.drift.flagged ? "bg-warn/[0.07] shadow-[inset_2px_0_0_var(--warn)]" : "bg-sunken/40",
                  )}
                >
                  <td className="py-1.5 pr-3 pl-9">
                    <span className="flex items-center gap-2 whitespace-nowrap">
                      <span className="font-mono text-[12px] text-fg" title={`Version ${v.version}`}>
                        {shortVersion(v.version)}
                      </span>
                      {currentVersion(b.blueprint) === v.version && <Badge tone="accent">current</Badge>}
                      <span className="text-[11.5px] text-faint tabular-nums">
                        {v.first_day === v.last_day ? dayLabel(v.first_day) : `${dayLabel(v.first_day)} → ${dayLabel(v.last_day)}`}
                      </span>
                    </span>
                  </td>
                  <Cells summary={v.summary} drift={v.drift} drill={(card) => drill(card, v.version)} />
                </tr>
              ))}
          </tbody>
        );
      })}
    </table>
  );
}

function Cells({ summary: s, drift, drill }: { summary: Summary; drift: Drift; drill: (card: Card) => void }) {
  const e = s.escalation;
  return (
    <>
      <td
        className="px-2.5 py-1.5 text-right tabular-nums"
        title={`${count(s.runs_started)} started, ${count(s.runs_finished)} finished, ${count(s.runs_failed)} failed`}
      >
        {count(s.runs_started)}
      </td>
      <RateCell ratio={s.prompt_success} noun="prompt steps" onClick={() => drill("prompt")} />
      <RateCell ratio={s.human_override} noun="human decisions" onClick={() => drill("override")} />
      <RateCell ratio={s.automation_coverage} noun="finished runs" onClick={() => drill("automation")} />
      <td className="px-2.5 py-1.5 text-right whitespace-nowrap tabular-nums">
        <CellButton onClick={() => drill("latency")} title={`${count(e.decided)} decided tasks`}>
          <span className="text-fg">{formatDuration(e.p50_ms)}</span>
          <span className="text-faint"> / {formatDuration(e.p95_ms)}</span>
        </CellButton>
      </td>
      <td className="px-2.5 py-1.5 text-right">
        <DriftCell drift={drift} onClick={() => drill("drift")} />
      </td>
    </>
  );
}

function CellButton({ onClick, title, children }: { onClick: () => void; title: string; children: ReactNode }) {
  return (
    <button
      type="button"
      onClick={onClick}
      title={title}
      className="rounded px-1 py-px decoration-faint underline-offset-2 hover:bg-hover hover:underline"
    >
      {children}
    </button>
  );
}

function RateCell({ ratio, noun, onClick }: { ratio: Ratio; noun: string; onClick: () => void }) {
  return (
    <td className="px-2.5 py-1.5 text-right text-fg tabular-nums">
      <CellButton onClick={onClick} title={fraction(ratio, noun)}>
        {pct(ratio.value)}
      </CellButton>
    </td>
  );
}

/** The index with a flag, and on hover or focus each component's PSI and sample sizes. */
export function DriftCell({ drift, onClick }: { drift: Drift; onClick: () => void }) {
  return (
    <span className="group relative inline-flex items-center justify-end gap-1.5">
      {drift.flagged && <Badge tone="warn">Flagged</Badge>}
      <button
        type="button"
        onClick={onClick}
        data-testid="drift-index"
        className={clsx(
          "rounded px-1 py-px tabular-nums hover:bg-hover",
          drift.flagged ? "font-semibold text-warn" : drift.index === null ? "text-faint" : "text-fg",
        )}
      >
        {formatPsi(drift.index)}
      </button>
      <span
        role="tooltip"
        className="pointer-events-none invisible absolute top-full right-0 z-20 mt-1 w-72 rounded-md border border-border bg-panel p-2.5 text-left text-[11.5px] font-normal text-muted opacity-0 shadow-lg transition-opacity group-focus-within:visible group-focus-within:opacity-100 group-hover:visible group-hover:opacity-100"
      >
        <span className="mb-1 block font-medium text-fg">
          {drift.index === null
            ? "Too few observations to compare"
            : `Drift index ${formatPsi(drift.index)}${drift.flagged ? " — flagged" : ""}`}
          <span className="font-normal text-faint"> (flag at {formatPsi(drift.threshold)})</span>
        </span>
        {drift.components.map((c) => (
          <span key={c.name} className="flex gap-2 py-px">
            <span className="flex-1">{componentLabel(c.name)}</span>
            <span
              className={clsx(
                "tabular-nums",
                c.psi === null ? "text-faint" : c.psi >= drift.threshold ? "font-medium text-warn" : "text-fg",
              )}
            >
              {c.psi === null ? "too few observations" : formatPsi(c.psi)}
            </span>
            <span className="w-20 text-right text-faint tabular-nums" title="baseline → recent observations">
              {count(c.baseline_n)} → {count(c.recent_n)}
            </span>
          </span>
        ))}
      </span>
    </span>
  );
}
