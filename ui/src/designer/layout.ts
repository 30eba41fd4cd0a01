// Auto-layout with elkjs (layered, top to bottom). Positions are computed on load and on
// request; manual drags override them and are kept in localStorage.
import type { ELK as ElkApi } from "elkjs/lib/elk-api";
import type { BlueprintGraph, StepInfo } from "./graph";
import type { XY } from "./store";

export const NODE_WIDTH = 248;
export const TRIGGER_WIDTH = 232;
export const TRIGGER_HEIGHT = 52;
const HEADER_HEIGHT = 70;
const PORT_ROW_HEIGHT = 34;

/** Width of a port pill (keep in sync with StepNode's pill styles). */
export function pillWidth(label: string): number {
  return Math.min(150, Math.ceil(label.length * 6.1) + 20);
}

/** The labelled ports shown as pills along the bottom (none: one plain `next` handle). */
export function pillPorts(step: StepInfo): { handle: string; label: string; tone: string; empty: boolean }[] {
  if (!step.ports.some((p) => p.label)) return [];
  return step.ports.map((p) => ({ handle: p.handle, label: p.label ?? "next", tone: p.tone, empty: p.targets.length === 0 && p.handle !== "branch:new" }));
}

export function stepSize(step: StepInfo): { width: number; height: number } {
  const pills = pillPorts(step);
  const row = pills.reduce((w, p) => w + pillWidth(p.label) + 4, 20);
  return { width: Math.max(NODE_WIDTH, Math.min(520, row)), height: HEADER_HEIGHT + (pills.length ? PORT_ROW_HEIGHT : 0) };
}

let elk: ElkApi | null = null;

export async function autoLayout(graph: BlueprintGraph): Promise<Record<string, XY>> {
  // elk is large: load it with the first layout, in its own chunk.
  if (!elk) {
    const { default: ELK } = await import("elkjs/lib/elk.bundled.js");
    elk = new ELK();
  }
  // Ports in a fixed order along the bottom let elk keep outcome edges from crossing.
  const children = [
    ...graph.triggers.map((t) => ({
      id: t.key,
      width: TRIGGER_WIDTH,
      height: TRIGGER_HEIGHT,
      layoutOptions: { "elk.layered.layering.layerConstraint": "FIRST", "elk.portConstraints": "FIXED_ORDER" },
      ports: [{ id: `${t.key}::start`, layoutOptions: { "elk.port.side": "SOUTH" } }],
    })),
    ...graph.steps.map((s) => {
      const size = stepSize(s);
      return {
        id: s.key,
        ...size,
        layoutOptions: { "elk.portConstraints": "FIXED_ORDER" },
        ports: [
          { id: `${s.key}::in`, layoutOptions: { "elk.port.side": "NORTH" } },
          ...s.ports.map((p, i) => ({ id: `${s.key}::${p.handle}`, layoutOptions: { "elk.port.side": "SOUTH", "elk.port.index": String(s.ports.length - i) } })),
        ],
      };
    }),
  ];
  const ids = new Set(children.map((c) => c.id));
  const edges = graph.edges
    .filter((e) => ids.has(e.source) && ids.has(e.target))
    .map((e) => ({ id: e.id, sources: [`${e.source}::${e.sourceHandle}`], targets: [`${e.target}::in`] }));
  const res = await elk.layout({
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.layered.spacing.nodeNodeBetweenLayers": "64",
      "elk.spacing.nodeNode": "40",
      "elk.layered.spacing.edgeNodeBetweenLayers": "24",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
      "elk.layered.cycleBreaking.strategy": "MODEL_ORDER",
      "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
      "elk.layered.crossingMinimization.forceNodeModelOrder": "false",
      "elk.separateConnectedComponents": "true",
      "elk.spacing.componentComponent": "72",
    },
    children,
    edges,
  });
  const out: Record<string, XY> = {};
  for (const c of res.children ?? []) out[c.id] = { x: c.x ?? 0, y: c.y ?? 0 };
  return out;
}

/**
 * Positions for every canvas element: stored ones, and for new elements a spot right of
 * their first placed predecessor (below its other children), else below everything.
 */
export function placeAll(graph: BlueprintGraph, stored: Record<string, XY>): Record<string, XY> {
  const out: Record<string, XY> = {};
  const keys = [...graph.triggers.map((t) => t.key), ...graph.steps.map((s) => s.key)];
  for (const k of keys) if (stored[k]) out[k] = stored[k];
  const missing = keys.filter((k) => !out[k]);
  if (missing.length === 0) return out;
  const preds = new Map<string, string[]>();
  for (const e of graph.edges) preds.set(e.target, [...(preds.get(e.target) ?? []), e.source]);
  let bottom = 0;
  let left = Infinity;
  for (const p of Object.values(out)) {
    bottom = Math.max(bottom, p.y + 150);
    left = Math.min(left, p.x);
  }
  if (!Number.isFinite(left)) left = 0;
  const taken = (x: number, y: number) => Object.values(out).some((p) => Math.abs(p.x - x) < NODE_WIDTH + 20 && Math.abs(p.y - y) < 90);
  let pending = missing;
  // Several passes so chains of new nodes follow each other.
  for (let pass = 0; pass < 4 && pending.length; pass++) {
    const rest: string[] = [];
    for (const k of pending) {
      const anchor = (preds.get(k) ?? []).map((p) => out[p]).find(Boolean);
      if (!anchor) {
        rest.push(k);
        continue;
      }
      // Below the predecessor (top-to-bottom flow), moving right past siblings.
      let x = anchor.x;
      const y = anchor.y + 140;
      while (taken(x, y)) x += NODE_WIDTH + 40;
      out[k] = { x, y };
    }
    pending = rest;
  }
  let x = left;
  for (const k of pending) {
    out[k] = { x, y: bottom };
    x += NODE_WIDTH + 40;
  }
  return out;
}
