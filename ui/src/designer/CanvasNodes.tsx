// Custom React Flow nodes (steps, triggers) and the labelled edge.
import {
  BaseEdge,
  EdgeLabelRenderer,
  getBezierPath,
  Handle,
  Position,
  type Edge,
  type EdgeProps,
  type Node,
  type NodeProps,
  useInternalNode,
  useUpdateNodeInternals,
} from "@xyflow/react";
import { clsx } from "clsx";
import { CircleCheck, CircleDashed, CircleX, Clock, Flag } from "lucide-react";
import { memo, useEffect, useRef } from "react";
import type { StepInfo, TriggerInfo } from "./graph";
import { stepMeta, TONE_STROKE, triggerMeta } from "./kinds";
import { pillPorts, pillWidth, stepSize, TRIGGER_WIDTH } from "./layout";

export interface RunChip {
  status: "done" | "failed" | "skipped" | "waiting" | "running";
  visits: number;
  durationMs: number | null;
}

export interface Marks {
  errors: number;
  warnings: number;
  run: RunChip | null;
  /** A dry run exists and did not reach this node. */
  dim: boolean;
}

export type StepNodeData = { step: StepInfo; marks: Marks };
export type TriggerNodeData = { trigger: TriggerInfo; marks: Marks };
export type StepNodeType = Node<StepNodeData, "step">;
export type TriggerNodeType = Node<TriggerNodeData, "trigger">;
export type FlowNode = StepNodeType | TriggerNodeType;

export type EdgeData = { label: string | null; tone: string; dashed: boolean; traversed: boolean; dim: boolean };
export type FlowEdge = Edge<EdgeData, "labelled">;

const TONE_PILL: Record<string, string> = {
  ok: "border-ok/30 bg-ok/8 text-ok",
  danger: "border-danger/30 bg-danger/8 text-danger",
  warn: "border-warn/30 bg-warn/8 text-warn",
  info: "border-info/30 bg-info/8 text-info",
  neutral: "border-border bg-sunken text-muted",
};

const TONE_TEXT: Record<string, string> = {
  ok: "text-ok",
  danger: "text-danger",
  warn: "text-warn",
  info: "text-info",
  neutral: "text-muted",
};

function ProblemBadge({ marks }: { marks: Marks }) {
  const n = marks.errors || marks.warnings;
  if (!n) return null;
  return (
    <span
      data-testid="node-problems"
      title={`${marks.errors} error(s), ${marks.warnings} warning(s)`}
      className={clsx(
        "absolute -top-2 -right-2 grid h-5 min-w-5 place-items-center rounded-full px-1 text-[11px] font-semibold text-white shadow-sm ring-2 ring-bg",
        marks.errors ? "bg-danger" : "bg-warn",
      )}
    >
      {n}
    </span>
  );
}

function RunBadge({ run }: { run: RunChip | null }) {
  if (!run) return null;
  const conf = {
    done: { icon: CircleCheck, cls: "border-ok/30 bg-ok/10 text-ok", text: "ok" },
    failed: { icon: CircleX, cls: "border-danger/30 bg-danger/10 text-danger", text: "failed" },
    skipped: { icon: CircleDashed, cls: "border-border bg-sunken text-muted", text: "skipped" },
    waiting: { icon: Clock, cls: "border-warn/30 bg-warn/10 text-warn", text: "waiting" },
    running: { icon: Clock, cls: "border-info/30 bg-info/10 text-info", text: "running" },
  }[run.status];
  const Icon = conf.icon;
  return (
    <span
      data-testid="node-run-status"
      data-status={run.status}
      className={clsx("absolute -top-2.5 left-3 inline-flex h-5 items-center gap-1 rounded-full border px-1.5 text-[10.5px] font-medium shadow-xs", conf.cls, "bg-panel")}
    >
      <Icon className="size-3" aria-hidden />
      {conf.text}
      {run.visits > 1 && <span className="opacity-75">×{run.visits}</span>}
      {run.durationMs != null && run.durationMs >= 1 && <span className="font-normal opacity-70">{formatMs(run.durationMs)}</span>}
    </span>
  );
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}

export const StepNode = memo(function StepNode({ id, data, selected }: NodeProps<StepNodeType>) {
  const { step, marks } = data;
  // Handles come and go with rules, paths and outcomes while the node keeps its size, so
  // React Flow must be told to measure them again.
  const updateInternals = useUpdateNodeInternals();
  const portKey = step.ports.map((p) => `${p.handle}=${p.label ?? ""}`).join(",");
  // Not on mount: React Flow measures new nodes itself, and an early update would let the
  // initial fitView run before the other nodes are measured.
  const seenPorts = useRef(portKey);
  useEffect(() => {
    if (seenPorts.current === portKey) return;
    seenPorts.current = portKey;
    updateInternals(id);
  }, [id, portKey, updateInternals]);
  const meta = stepMeta(step.kind);
  const Icon = meta.icon;
  const pills = pillPorts(step);
  const plain = pills.length === 0 ? step.ports[0] : undefined;
  const { width } = stepSize(step);
  return (
    <div
      data-testid="designer-node"
      data-node-id={step.id}
      data-kind={step.kind}
      style={{ width }}
      className={clsx(
        "group relative rounded-xl border bg-panel shadow-[0_1px_2px_rgb(0_0_0/0.05)] transition-[box-shadow,opacity,border-color] duration-150",
        selected ? "border-accent shadow-[0_0_0_3px_color-mix(in_srgb,var(--accent)_22%,transparent),0_4px_14px_rgb(0_0_0/0.08)]" : "border-border hover:border-faint/70 hover:shadow-md",
        marks.errors > 0 && !selected && "border-danger/70 shadow-[0_0_0_3px_color-mix(in_srgb,var(--danger)_16%,transparent)]",
        marks.dim && "opacity-45",
      )}
    >
      <Handle type="target" position={Position.Top} className="designer-handle" />
      <div className="flex h-[68px] items-center gap-2.5 px-3">
        <div className={clsx("grid size-8 shrink-0 place-items-center rounded-lg", meta.chip)}>
          <Icon className="size-4" aria-hidden />
        </div>
        <div className="min-w-0 flex-1">
          <div className="flex items-center gap-1.5 text-[10px] leading-4 font-semibold tracking-[0.06em] text-faint uppercase">
            {meta.label}
            {step.isStart && (
              <span className="inline-flex items-center gap-0.5 rounded bg-accent/12 px-1 text-[9.5px] tracking-normal text-accent normal-case">
                <Flag className="size-2.5" aria-hidden />
                start
              </span>
            )}
          </div>
          <div className="truncate text-[13px] leading-[18px] font-semibold text-fg" title={step.title ?? step.id}>
            {step.title ?? step.id}
          </div>
          <div className="truncate text-[11px] leading-4 text-muted" title={step.subtitle}>
            <span className="font-mono text-[10.5px]">{step.id}</span>
            {step.subtitle && <span className="text-faint"> · {step.subtitle}</span>}
          </div>
        </div>
      </div>
      {plain && <Handle type="source" position={Position.Bottom} id={plain.handle} className="designer-handle" />}
      {pills.length > 0 && (
        <div className="flex h-[34px] items-start justify-center gap-1 border-t border-border/80 px-2.5 pt-[7px]">
          {pills.map((p) => (
            <div
              key={p.handle}
              style={{ width: pillWidth(p.label) }}
              className={clsx(
                "relative flex h-5 items-center justify-center rounded-full border px-1.5 text-[10.5px] leading-none font-medium",
                p.handle === "branch:new" ? "border-dashed border-border text-faint" : clsx(TONE_PILL[p.tone], p.empty && "opacity-60"),
              )}
              title={p.empty ? `${p.label}: not connected; drag from the dot below` : p.label}
            >
              <span className="truncate">{p.label}</span>
              <Handle type="source" position={Position.Bottom} id={p.handle} className="designer-handle" data-tone={p.tone} style={{ bottom: -8 }} />
            </div>
          ))}
        </div>
      )}
      <ProblemBadge marks={marks} />
      <RunBadge run={marks.run} />
    </div>
  );
});

export const TriggerNode = memo(function TriggerNode({ data, selected }: NodeProps<TriggerNodeType>) {
  const { trigger, marks } = data;
  const meta = triggerMeta(trigger.kind);
  const Icon = meta.icon;
  return (
    <div
      data-testid="designer-trigger"
      data-trigger-id={trigger.id}
      style={{ width: TRIGGER_WIDTH }}
      className={clsx(
        "relative flex items-center gap-2.5 rounded-full border bg-panel py-2 pr-4 pl-2 shadow-[0_1px_2px_rgb(0_0_0/0.05)] transition-shadow",
        selected ? "border-accent shadow-[0_0_0_3px_color-mix(in_srgb,var(--accent)_22%,transparent)]" : "border-border hover:border-faint/70",
        marks.errors > 0 && !selected && "border-danger/70",
      )}
    >
      <div className={clsx("grid size-9 shrink-0 place-items-center rounded-full", meta.chip)}>
        <Icon className="size-4" aria-hidden />
      </div>
      <div className="min-w-0 flex-1">
        <div className="text-[10px] leading-4 font-semibold tracking-[0.06em] text-faint uppercase">{meta.label} trigger</div>
        <div className="truncate text-[12.5px] leading-[17px] font-semibold">{trigger.id}</div>
        <div className="truncate font-mono text-[10.5px] leading-4 text-muted" title={trigger.subtitle}>
          {trigger.subtitle}
        </div>
      </div>
      <Handle type="source" position={Position.Bottom} id="start" className="designer-handle" />
      <ProblemBadge marks={marks} />
    </div>
  );
});

/** An orthogonal path through `points` with rounded corners. */
export function roundedPath(points: [number, number][], r = 12): string {
  let d = `M ${points[0]![0]} ${points[0]![1]}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [px, py] = points[i - 1]!;
    const [cx, cy] = points[i]!;
    const [nx, ny] = points[i + 1]!;
    const inLen = Math.hypot(cx - px, cy - py);
    const outLen = Math.hypot(nx - cx, ny - cy);
    const k = Math.min(r, inLen / 2, outLen / 2);
    const ax = cx - ((cx - px) / (inLen || 1)) * k;
    const ay = cy - ((cy - py) / (inLen || 1)) * k;
    const bx = cx + ((nx - cx) / (outLen || 1)) * k;
    const by = cy + ((ny - cy) / (outLen || 1)) * k;
    d += ` L ${ax} ${ay} Q ${cx} ${cy} ${bx} ${by}`;
  }
  const last = points[points.length - 1]!;
  return `${d} L ${last[0]} ${last[1]}`;
}

export const LabelledEdge = memo(function LabelledEdge(props: EdgeProps<FlowEdge>) {
  const { id, source, target, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, data, selected, markerEnd } = props;
  const from = useInternalNode(source);
  const to = useInternalNode(target);
  let path: string;
  let lx: number;
  let ly: number;
  if (targetY < sourceY + 12 && from && to) {
    // Back edges (revise loops) run around the side of the nodes instead of through them.
    const fw = from.measured.width ?? 248;
    const tw = to.measured.width ?? 248;
    const fx = from.internals.positionAbsolute.x;
    const tx = to.internals.positionAbsolute.x;
    const leftSide = sourceX < fx + fw / 2;
    const lane = 26 + (Math.abs(hash(id)) % 3) * 8;
    const side = leftSide ? Math.min(fx, tx) - lane : Math.max(fx + fw, tx + tw) + lane;
    const drop = 16;
    path = roundedPath([
      [sourceX, sourceY],
      [sourceX, sourceY + drop],
      [side, sourceY + drop],
      [side, targetY - drop],
      [targetX, targetY - drop],
      [targetX, targetY],
    ]);
    lx = side;
    ly = (sourceY + targetY) / 2;
  } else {
    [path, lx, ly] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, curvature: 0.25 });
  }
  const tone = data?.tone ?? "neutral";
  const stroke = selected ? "var(--accent)" : data?.traversed ? "var(--accent)" : TONE_STROKE[tone] ?? "var(--faint)";
  return (
    <>
      <BaseEdge
        id={id}
        path={path}
        markerEnd={markerEnd}
        interactionWidth={18}
        style={{
          stroke,
          strokeWidth: selected || data?.traversed ? 2.25 : 1.5,
          strokeDasharray: data?.dashed && !data.traversed ? "5 4" : undefined,
          opacity: data?.dim ? 0.35 : tone === "neutral" && !selected && !data?.traversed ? 0.85 : 1,
        }}
      />
      {data?.label && (
        <EdgeLabelRenderer>
          <div
            className={clsx(
              "nodrag nopan pointer-events-auto absolute max-w-40 truncate rounded-full border bg-panel px-1.5 py-px text-[10.5px] leading-4 font-medium shadow-xs",
              selected ? "border-accent text-accent" : "border-border",
              !selected && TONE_TEXT[tone],
              data.dim && "opacity-40",
            )}
            style={{ transform: `translate(-50%, -50%) translate(${lx}px, ${ly}px)` }}
            title={data.label}
          >
            {data.label}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
});

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

export const nodeTypes = { step: StepNode, trigger: TriggerNode };
export const edgeTypes = { labelled: LabelledEdge };
