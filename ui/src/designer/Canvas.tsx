// The React Flow canvas: nodes and edges derived from the blueprint graph, positions from the
// store, drag-to-connect, drop from the palette, validation and dry-run marks.
import {
  Background,
  BackgroundVariant,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type OnConnectEnd,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useMemo, useState, type DragEvent } from "react";
import type { DiagnosticDto, DryRunReport } from "../api/types.gen";
import { addStepAction, addTriggerAction, connectAction } from "./actions";
import { edgeTypes, nodeTypes, type EdgeData, type FlowEdge, type FlowNode, type Marks, type RunChip } from "./CanvasNodes";
import "./designer.css";
import { pointerTarget, STEP_KINDS, TRIGGER_PREFIX, type Obj, type StepKind, type TriggerKind } from "./graph";
import { stepMeta, triggerMeta } from "./kinds";
import { placeAll, stepSize, TRIGGER_HEIGHT, TRIGGER_WIDTH } from "./layout";
import { DND_MIME } from "./Palette";
import { useDesigner, type DesignerStore, type XY } from "./store";

/** Leave room for the minimap (bottom right) when fitting the tree. */
export const FIT_VIEW = { padding: { top: "28px", bottom: "28px", left: "40px", right: "176px" }, maxZoom: 1.1 } as const;

const NO_MARKS: Marks = { errors: 0, warnings: 0, run: null, dim: false };

/** Validation and dry-run marks per canvas key. */
export function computeMarks(bp: Obj | null, diagnostics: DiagnosticDto[], dryRun: DryRunReport | null): Map<string, Marks> {
  const out = new Map<string, Marks>();
  const get = (k: string) => {
    let m = out.get(k);
    if (!m) {
      m = { ...NO_MARKS };
      out.set(k, m);
    }
    return m;
  };
  for (const d of diagnostics) {
    const t = pointerTarget(bp, d.pointer);
    if (t.kind === "blueprint") continue;
    const m = get(t.key);
    if (d.severity === "error") m.errors++;
    else m.warnings++;
  }
  if (dryRun && dryRun.steps.length > 0) {
    const runs = new Map<string, RunChip>();
    for (const s of dryRun.steps) {
      const prev = runs.get(s.node);
      const duration = s.meta?.duration_ms ?? (s.finished_at != null ? s.finished_at - s.started_at : null);
      runs.set(s.node, {
        status: s.status,
        visits: (prev?.visits ?? 0) + 1,
        durationMs: (prev?.durationMs ?? 0) + (duration ?? 0),
      });
    }
    for (const n of (Array.isArray(bp?.nodes) ? bp.nodes : []) as Obj[]) {
      const id = String(n.id);
      const m = get(id);
      m.run = runs.get(id) ?? null;
      m.dim = !m.run;
    }
  }
  return out;
}

/** Edges the dry run went along: `source|target` pairs. */
function traversedPairs(dryRun: DryRunReport | null): Set<string> {
  const out = new Set<string>();
  for (const s of dryRun?.steps ?? []) for (const t of s.next) out.add(`${s.node}|${t}`);
  return out;
}

// Positioned node objects are cached per base object so React Flow only re-renders the nodes
// that actually moved while dragging (matters for large trees).
const positioned = new WeakMap<FlowNode, { x: number; y: number; node: FlowNode }>();

function withPosition(base: FlowNode, p: XY): FlowNode {
  const hit = positioned.get(base);
  if (hit && hit.x === p.x && hit.y === p.y) return hit.node;
  const node = { ...base, position: p } as FlowNode;
  positioned.set(base, { x: p.x, y: p.y, node });
  return node;
}

export function Canvas({
  store,
  dark,
  selectedEdge,
  onSelectEdge,
}: {
  store: DesignerStore;
  dark: boolean;
  selectedEdge: string | null;
  onSelectEdge: (id: string | null) => void;
}) {
  const graph = useDesigner(store, (s) => s.graph);
  const bp = useDesigner(store, (s) => s.bp);
  const positions = useDesigner(store, (s) => s.positions);
  const selection = useDesigner(store, (s) => s.selection);
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const dryRun = useDesigner(store, (s) => s.dryRun);
  const rf = useReactFlow<FlowNode, FlowEdge>();
  const [menu, setMenu] = useState<{ x: number; y: number; flow: XY; source: string; handle: string | null } | null>(null);

  // Large trees open on their beginning at a readable zoom rather than as a speck.
  const [initialFit] = useState(() =>
    graph.steps.length > 60 ? { ...FIT_VIEW, nodes: [...graph.triggers.map((t) => ({ id: t.key })), ...graph.steps.slice(0, 16).map((s) => ({ id: s.key }))] } : FIT_VIEW,
  );
  const marks = useMemo(() => computeMarks(bp, diagnostics, dryRun), [bp, diagnostics, dryRun]);

  const baseNodes = useMemo(() => {
    const sel = new Set(selection);
    const out: FlowNode[] = [];
    for (const t of graph.triggers) {
      out.push({ id: t.key, type: "trigger", position: { x: 0, y: 0 }, selected: sel.has(t.key), initialWidth: TRIGGER_WIDTH, initialHeight: TRIGGER_HEIGHT, data: { trigger: t, marks: marks.get(t.key) ?? NO_MARKS } });
    }
    for (const s of graph.steps) {
      // Estimated sizes until React Flow measures (the minimap reads them from our objects).
      const size = stepSize(s);
      out.push({ id: s.key, type: "step", position: { x: 0, y: 0 }, selected: sel.has(s.key), initialWidth: size.width, initialHeight: size.height, data: { step: s, marks: marks.get(s.key) ?? NO_MARKS } });
    }
    return out;
  }, [graph, selection, marks]);

  const placed = useMemo(() => placeAll(graph, positions), [graph, positions]);
  const nodes = useMemo(() => baseNodes.map((n) => withPosition(n, placed[n.id] ?? { x: 0, y: 0 })), [baseNodes, placed]);

  const edges = useMemo<FlowEdge[]>(() => {
    const traversed = traversedPairs(dryRun);
    const ran = !!dryRun && dryRun.steps.length > 0;
    return graph.edges.map((e) => {
      const tone = e.tone;
      const went = ran && !e.source.startsWith(TRIGGER_PREFIX) && traversed.has(`${e.source}|${e.target}`);
      const color = selectedEdge === e.id ? "var(--accent)" : went ? "var(--accent)" : tone === "neutral" ? "var(--faint)" : `var(--${tone === "danger" ? "danger" : tone})`;
      const data: EdgeData = {
        label: e.label,
        tone,
        dashed: e.sourceHandle === "exhausted",
        traversed: went,
        dim: ran && !went && !e.source.startsWith(TRIGGER_PREFIX),
      };
      return {
        id: e.id,
        type: "labelled",
        source: e.source,
        sourceHandle: e.sourceHandle,
        target: e.target,
        selected: selectedEdge === e.id,
        className: went ? "traversed" : undefined,
        markerEnd: { type: MarkerType.ArrowClosed, width: 14, height: 14, color },
        data,
      };
    });
  }, [graph, selectedEdge, dryRun]);

  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) => {
      const moves: Record<string, XY> = {};
      let selectionChanged = false;
      const sel = new Set(store.get().selection);
      for (const c of changes) {
        if (c.type === "position" && c.position) moves[c.id] = { x: Math.round(c.position.x), y: Math.round(c.position.y) };
        if (c.type === "select") {
          selectionChanged = true;
          if (c.selected) sel.add(c.id);
          else sel.delete(c.id);
        }
      }
      if (Object.keys(moves).length) store.movePositions(moves);
      if (selectionChanged) {
        store.select([...sel]);
        if (sel.size) onSelectEdge(null);
      }
    },
    [store, onSelectEdge],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) => {
      for (const c of changes) {
        if (c.type === "select") {
          if (c.selected) {
            onSelectEdge(c.id);
            store.select([]);
          } else if (selectedEdge === c.id) onSelectEdge(null);
        }
      }
    },
    [store, onSelectEdge, selectedEdge],
  );

  const onConnect = useCallback((c: Connection) => connectAction(store, c.source, c.sourceHandle, c.target), [store]);

  const isValidConnection = useCallback(
    (c: Connection | FlowEdge) => !c.target.startsWith(TRIGGER_PREFIX) && !(c.source === c.target && (c.sourceHandle ?? "next") === "next"),
    [],
  );

  // Dropping a connection on empty canvas offers to create the next node right there.
  const onConnectEnd: OnConnectEnd = useCallback(
    (event, state) => {
      if (state.isValid || !state.fromNode || state.fromHandle?.type !== "source") return;
      const target = event.target as HTMLElement | null;
      if (!target?.classList.contains("react-flow__pane")) return;
      const point = "changedTouches" in event ? event.changedTouches[0]! : event;
      const bounds = (target.closest(".react-flow") as HTMLElement).getBoundingClientRect();
      setMenu({
        x: point.clientX - bounds.left,
        y: point.clientY - bounds.top,
        flow: rf.screenToFlowPosition({ x: point.clientX, y: point.clientY }),
        source: state.fromNode.id,
        handle: state.fromHandle.id ?? null,
      });
    },
    [rf],
  );

  const onDrop = useCallback(
    (e: DragEvent) => {
      const raw = e.dataTransfer.getData(DND_MIME);
      if (!raw) return;
      e.preventDefault();
      const [group, kind] = raw.split(":");
      const p = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      const at = { x: Math.round(p.x - 124), y: Math.round(p.y - 34) };
      if (group === "step") {
        store.select([]);
        addStepAction(store, kind as StepKind, at);
      } else addTriggerAction(store, kind as TriggerKind, at);
    },
    [rf, store],
  );

  const minimapColor = useCallback((n: FlowNode) => (n.type === "trigger" ? triggerMeta("manual").color : stepMeta((n.data as { step: { kind: string } }).step.kind).color), []);

  return (
    <div data-testid="designer-canvas" className="relative h-full w-full" onDragOver={(e) => {
      if (e.dataTransfer.types.includes(DND_MIME)) {
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
      }
    }} onDrop={onDrop}>
      <ReactFlow<FlowNode, FlowEdge>
        className="designer-flow"
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        onPaneClick={() => {
          store.select([]);
          onSelectEdge(null);
          setMenu(null);
        }}
        colorMode={dark ? "dark" : "light"}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={["Meta", "Control", "Shift"]}
        fitView
        fitViewOptions={initialFit}
        minZoom={0.08}
        maxZoom={2}
        onlyRenderVisibleElements={graph.steps.length > 120}
        proOptions={{ hideAttribution: true }}
        connectionRadius={28}
        snapToGrid
        snapGrid={[4, 4]}
      >
        <Background variant={BackgroundVariant.Dots} gap={18} size={1.2} />
        <MiniMap pannable zoomable nodeColor={minimapColor} nodeStrokeWidth={0} nodeBorderRadius={8} style={{ width: 152, height: 100 }} ariaLabel="Overview" />
        <Controls showInteractive={false} />
      </ReactFlow>
      {menu && <QuickAdd menu={menu} onClose={() => setMenu(null)} onPick={(kind) => {
        const src = menu.source;
        const handle = menu.handle;
        setMenu(null);
        const id = addStepAction(store, kind, { x: Math.round(menu.flow.x - 124), y: Math.round(menu.flow.y + 8) });
        if (id) connectAction(store, src, handle, id);
      }} />}
    </div>
  );
}

function QuickAdd({ menu, onPick, onClose }: { menu: { x: number; y: number }; onPick: (k: StepKind) => void; onClose: () => void }) {
  return (
    <div
      role="menu"
      aria-label="Add a connected node"
      className="absolute z-20 w-52 rounded-lg border border-border bg-panel p-1 shadow-xl"
      style={{ left: menu.x + 6, top: menu.y - 10 }}
      onKeyDown={(e) => e.key === "Escape" && onClose()}
    >
      <div className="px-2 pt-1 pb-1.5 text-[11px] font-medium text-faint">Add a connected node</div>
      {STEP_KINDS.map((k) => {
        const meta = stepMeta(k);
        const Icon = meta.icon;
        return (
          <button
            key={k}
            type="button"
            role="menuitem"
            autoFocus={k === STEP_KINDS[0]}
            className="flex w-full items-center gap-2 rounded-md px-2 py-1.5 text-left text-[13px] hover:bg-hover focus:bg-hover focus:outline-none"
            onClick={() => onPick(k)}
          >
            <span className={`grid size-5 place-items-center rounded ${meta.chip}`}>
              <Icon className="size-3" />
            </span>
            {meta.label}
          </button>
        );
      })}
    </div>
  );
}
