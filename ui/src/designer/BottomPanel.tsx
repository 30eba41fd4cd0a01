// The bottom panel: every validation problem (click selects the node) and the dry run
// (trigger, sample payload, run, per-step results).
import CodeMirror from "@uiw/react-codemirror";
import { EditorView } from "@codemirror/view";
import { clsx } from "clsx";
import { ChevronDown, CircleAlert, CircleCheck, CircleDashed, CircleX, Clock, Loader2, Play, RotateCcw, TriangleAlert, X } from "lucide-react";
import type { ReactNode } from "react";
import type { DiagnosticDto, DryRunReport } from "../api/types.gen";
import { Kbd } from "../components/ui";
import { formatMs } from "./CanvasNodes";
import { pointerTarget, triggerList, type Obj } from "./graph";
import { useDesigner, type DesignerStore } from "./store";

export type PanelTab = "problems" | "dryrun";

const payloadTheme = EditorView.theme({
  "&": { color: "var(--fg)", backgroundColor: "var(--panel)", fontSize: "12px", height: "100%" },
  ".cm-scroller": { fontFamily: "var(--font-mono)", lineHeight: "1.55" },
  ".cm-gutters": { backgroundColor: "var(--panel)", borderRight: "1px solid var(--border)", color: "var(--faint)" },
  "&.cm-focused": { outline: "none" },
  ".cm-activeLine, .cm-activeLineGutter": { backgroundColor: "transparent" },
  ".cm-cursor": { borderLeftColor: "var(--fg)" },
});

export function BottomPanel({
  store,
  tab,
  open,
  onTab,
  onToggle,
  onReveal,
  dry,
}: {
  store: DesignerStore;
  tab: PanelTab;
  open: boolean;
  onTab: (t: PanelTab) => void;
  onToggle: () => void;
  onReveal: (key: string) => void;
  dry: DryRunControls;
}) {
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const syntaxError = useDesigner(store, (s) => s.syntaxError);
  const dryRun = useDesigner(store, (s) => s.dryRun);
  const errors = diagnostics.filter((d) => d.severity === "error").length + (syntaxError ? 1 : 0);
  const warnings = diagnostics.length - diagnostics.filter((d) => d.severity === "error").length;
  const tabBtn = (id: PanelTab, label: ReactNode) => (
    <button
      type="button"
      role="tab"
      aria-selected={open && tab === id}
      data-testid={`panel-tab-${id}`}
      onClick={() => (open && tab === id ? onToggle() : (onTab(id), !open && onToggle()))}
      className={clsx(
        "inline-flex h-9 items-center gap-1.5 border-b-2 px-1 text-[12.5px] font-medium transition-colors",
        open && tab === id ? "border-accent text-fg" : "border-transparent text-muted hover:text-fg",
      )}
    >
      {label}
    </button>
  );
  return (
    <div className={clsx("flex shrink-0 flex-col border-t border-border bg-panel", open ? "h-64" : "h-9")}>
      <div role="tablist" className="flex h-9 shrink-0 items-center gap-4 px-3">
        {tabBtn(
          "problems",
          <>
            Problems
            {errors > 0 && <span className="rounded-full bg-danger/15 px-1.5 text-[11px] text-danger">{errors}</span>}
            {warnings > 0 && <span className="rounded-full bg-warn/15 px-1.5 text-[11px] text-warn">{warnings}</span>}
          </>,
        )}
        {tabBtn(
          "dryrun",
          <>
            Dry run
            {dryRun && <RunStatusDot status={dryRun.status} />}
          </>,
        )}
        <button type="button" aria-label={open ? "Collapse panel" : "Expand panel"} onClick={onToggle} className="ml-auto grid size-7 place-items-center rounded text-faint hover:bg-hover hover:text-fg">
          <ChevronDown className={clsx("size-4 transition-transform", !open && "rotate-180")} />
        </button>
      </div>
      {open && (
        <div className="min-h-0 flex-1 border-t border-border">
          {tab === "problems" ? <Problems store={store} onReveal={onReveal} /> : <DryRunPane store={store} onReveal={onReveal} dry={dry} />}
        </div>
      )}
    </div>
  );
}

function RunStatusDot({ status }: { status: string }) {
  return <span className={clsx("size-1.5 rounded-full", status === "completed" ? "bg-ok" : status === "failed" ? "bg-danger" : "bg-warn")} />;
}

function locationOf(bp: Obj | null, d: DiagnosticDto): { key: string; label: string } {
  const t = pointerTarget(bp, d.pointer);
  if (t.kind === "blueprint") return { key: "", label: t.field || "blueprint" };
  const name = t.kind === "trigger" ? `trigger ${t.key.slice("trigger:".length)}` : t.key;
  return { key: t.key, label: t.field ? `${name} › ${t.field.replace(/\//g, " › ")}` : name };
}

function Problems({ store, onReveal }: { store: DesignerStore; onReveal: (key: string) => void }) {
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const syntaxError = useDesigner(store, (s) => s.syntaxError);
  const bp = useDesigner(store, (s) => s.bp);
  if (!syntaxError && diagnostics.length === 0) {
    return (
      <div className="flex h-full items-center justify-center gap-2 text-[13px] text-muted">
        <CircleCheck className="size-4 text-ok" /> No problems. The validator the CLI uses accepts this blueprint.
      </div>
    );
  }
  return (
    <ul className="h-full overflow-y-auto py-1" data-testid="problems-list">
      {syntaxError && (
        <li className="flex items-start gap-2 px-3 py-1.5 text-[12.5px]">
          <CircleX className="mt-0.5 size-3.5 shrink-0 text-danger" />
          <span>
            YAML syntax: {syntaxError} <span className="text-faint">— fix it in the YAML view; the canvas shows the last good version.</span>
          </span>
        </li>
      )}
      {diagnostics.map((d, i) => {
        const loc = locationOf(bp, d);
        return (
          <li key={i}>
            <button
              type="button"
              data-testid="problem-row"
              onClick={() => loc.key && onReveal(loc.key)}
              className={clsx("flex w-full items-start gap-2 px-3 py-1.5 text-left text-[12.5px] hover:bg-hover", !loc.key && "cursor-default")}
            >
              {d.severity === "error" ? <CircleAlert className="mt-0.5 size-3.5 shrink-0 text-danger" /> : <TriangleAlert className="mt-0.5 size-3.5 shrink-0 text-warn" />}
              <span className="min-w-0 flex-1">
                <span className="text-fg">{d.message}</span>
                {d.help && <span className="ml-2 text-faint">{d.help}</span>}
              </span>
              <span className="shrink-0 rounded bg-sunken px-1.5 font-mono text-[11px] text-muted">{loc.label}</span>
              <span className="w-14 shrink-0 text-right font-mono text-[11px] text-faint">
                {d.line}:{d.column}
              </span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}

export interface DryRunControls {
  trigger: string | null;
  setTrigger: (id: string) => void;
  payload: string;
  setPayload: (text: string) => void;
  resetPayload: () => void;
  running: boolean;
  run: () => void;
  clear: () => void;
}

function stepIcon(status: string) {
  if (status === "done") return <CircleCheck className="size-3.5 text-ok" />;
  if (status === "failed") return <CircleX className="size-3.5 text-danger" />;
  if (status === "skipped") return <CircleDashed className="size-3.5 text-faint" />;
  return <Clock className="size-3.5 text-warn" />;
}

function DryRunPane({ store, onReveal, dry }: { store: DesignerStore; onReveal: (key: string) => void; dry: DryRunControls }) {
  const bp = useDesigner(store, (s) => s.bp);
  const report: DryRunReport | null = useDesigner(store, (s) => s.dryRun);
  const stale = useDesigner(store, (s) => s.dryRun !== null && s.dryRunSource !== s.source);
  const triggers = triggerList(bp);
  return (
    <div className="flex h-full" data-testid="dry-run-panel">
      <div className="flex w-[380px] shrink-0 flex-col border-r border-border">
        <div className="flex items-center gap-2 border-b border-border px-3 py-1.5">
          <label className="text-[12px] text-muted" htmlFor="dry-trigger">
            Trigger
          </label>
          <select
            id="dry-trigger"
            data-testid="dry-run-trigger"
            className="h-7 min-w-0 flex-1 rounded-md border border-border bg-panel px-1.5 text-[12.5px]"
            value={dry.trigger ?? ""}
            onChange={(e) => dry.setTrigger(e.target.value)}
          >
            {triggers.length === 0 && <option value="">(no triggers: manual start)</option>}
            {triggers.map((t) => (
              <option key={String(t.id)} value={String(t.id)}>
                {String(t.id)} · {String(t.kind)}
              </option>
            ))}
          </select>
          <button type="button" title="Reset the payload from the trigger's input schema" aria-label="Reset payload" onClick={dry.resetPayload} className="grid size-7 place-items-center rounded text-faint hover:bg-hover hover:text-fg">
            <RotateCcw className="size-3.5" />
          </button>
        </div>
        <div className="min-h-0 flex-1 overflow-hidden" data-testid="dry-run-payload">
          <CodeMirror
            value={dry.payload}
            onChange={dry.setPayload}
            theme={payloadTheme}
            height="100%"
            style={{ height: "100%" }}
            basicSetup={{ lineNumbers: true, foldGutter: false, highlightActiveLine: false, autocompletion: false, searchKeymap: false }}
            aria-label="Sample payload (JSON)"
          />
        </div>
        <div className="flex items-center gap-2 border-t border-border px-3 py-1.5">
          <span className="text-[11px] text-faint">Prompts run for real; HTTP, files and events are only described; reviews auto-approve.</span>
          <button
            type="button"
            data-testid="dry-run-run"
            disabled={dry.running}
            onClick={dry.run}
            className="ml-auto inline-flex h-7 shrink-0 items-center gap-1.5 rounded-md bg-accent px-2.5 text-[12px] font-medium text-accent-fg hover:opacity-90 disabled:opacity-60"
          >
            {dry.running ? <Loader2 className="size-3.5 animate-spin" /> : <Play className="size-3.5" />}
            Run <Kbd>⌘↵</Kbd>
          </button>
        </div>
      </div>
      <div className="min-w-0 flex-1 overflow-y-auto" data-testid="dry-run-results">
        {!report ? (
          <div className="flex h-full items-center justify-center text-[13px] text-muted">Run the blueprint on the sample payload to see each node's output on the canvas.</div>
        ) : (
          <>
            <div className="sticky top-0 flex items-center gap-2 border-b border-border bg-panel px-3 py-1.5 text-[12.5px]">
              <span data-testid="dry-run-status" className={clsx("font-medium capitalize", report.status === "completed" ? "text-ok" : report.status === "failed" ? "text-danger" : "text-warn")}>
                {report.status}
              </span>
              <span className="text-muted">
                {report.steps.length} step{report.steps.length === 1 ? "" : "s"}
                {report.approvals > 0 && ` · ${report.approvals} review${report.approvals === 1 ? "" : "s"} auto-approved`}
              </span>
              {stale && <span className="rounded bg-warn/12 px-1.5 text-[11px] text-warn">edited since this run</span>}
              <button type="button" onClick={dry.clear} className="ml-auto inline-flex items-center gap-1 text-[12px] text-faint hover:text-fg">
                <X className="size-3" /> Clear
              </button>
            </div>
            {report.error && <div className="mx-3 mt-2 rounded-md border border-danger/30 bg-danger/8 px-2.5 py-1.5 text-[12.5px] text-danger">{report.error}</div>}
            {report.diagnostics.map((d, i) => (
              <div key={i} className="mx-3 mt-2 text-[12.5px] text-danger">
                {d.message} <span className="text-faint">({d.line}:{d.column})</span>
              </div>
            ))}
            <ol className="py-1">
              {report.steps.map((s, i) => (
                <li key={i}>
                  <button type="button" onClick={() => onReveal(s.node)} className="flex w-full items-center gap-2 px-3 py-1 text-left text-[12.5px] hover:bg-hover">
                    <span className="w-5 shrink-0 text-right font-mono text-[11px] text-faint">{i + 1}</span>
                    <span className="shrink-0">{stepIcon(s.status)}</span>
                    <span className="shrink-0 font-mono">{s.node}</span>
                    {s.visit > 1 && <span className="text-[11px] text-faint">visit {s.visit}</span>}
                    {s.label && <span className="shrink-0 rounded bg-info/12 px-1.5 text-[11px] text-info">{s.label}</span>}
                    {s.error && <span className="truncate text-danger">{s.error}</span>}
                    <span className="ml-auto min-w-0 truncate font-mono text-[11px] text-faint">{s.next.length ? `→ ${s.next.join(", ")}` : ""}</span>
                    <span className="w-14 shrink-0 text-right text-[11px] text-faint tabular-nums">{s.meta?.duration_ms != null ? formatMs(s.meta.duration_ms) : ""}</span>
                  </button>
                </li>
              ))}
            </ol>
          </>
        )}
      </div>
    </div>
  );
}
