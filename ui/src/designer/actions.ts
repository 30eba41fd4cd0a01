// User-level designer actions: one edit each, with positions and selection kept in step.
// Errors surface as toasts with the operation's message.
import { toast } from "sonner";
import {
  addNode,
  addTrigger,
  connect,
  copyNodes,
  disconnect,
  nodeList,
  parseClipboard,
  parsePort,
  pasteNodes,
  removeNode,
  removeTrigger,
  TRIGGER_PREFIX,
  type Port,
  type StepKind,
  type TriggerKind,
} from "./graph";
import { placeAll } from "./layout";
import type { DesignerStore, XY } from "./store";

function attempt<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    toast.error(`Could not ${what}`, { description: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
}

/** The port a click-to-add should connect from: the first free one of the selected node. */
export function freePort(store: DesignerStore, source: string): Port | null {
  const step = store.get().graph.steps.find((s) => s.key === source);
  if (!step) return null;
  if (step.kind === "branch") return { kind: "new-branch" };
  const open = step.ports.find((p) => p.handle !== "exhausted" && p.targets.length === 0 && p.handle !== "branch:new");
  const chosen = open ?? step.ports.find((p) => p.handle === "next" || p.handle === "on:approved");
  return chosen ? parsePort(chosen.handle) : null;
}

export function addStepAction(store: DesignerStore, kind: StepKind, at?: XY): string | undefined {
  const s = store.get();
  const sel = s.selection.length === 1 ? s.selection[0] : undefined;
  // Clicking the palette with one node selected adds the new node after it, connected.
  const after = !at && sel && !sel.startsWith(TRIGGER_PREFIX) ? freePort(store, sel) : null;
  const id = attempt(`add a ${kind} node`, () => store.apply((d) => addNode(d, kind, after && sel ? { after: { source: sel, port: after } } : {})));
  if (!id) return undefined;
  const g = store.get().graph;
  if (at) store.movePositions({ [id]: at });
  else store.movePositions({ [id]: placeAll(g, store.get().positions)[id]! });
  store.select([id]);
  return id;
}

export function addTriggerAction(store: DesignerStore, kind: TriggerKind, at?: XY): string | undefined {
  const id = attempt(`add a ${kind} trigger`, () => store.apply((d) => addTrigger(d, kind)));
  if (!id) return undefined;
  const key = `${TRIGGER_PREFIX}${id}`;
  const s = store.get();
  let pos = at;
  if (!pos) {
    const start = s.positions[s.graph.start];
    const triggers = s.graph.triggers.filter((t) => t.key !== key).map((t) => s.positions[t.key]).filter(Boolean) as XY[];
    // Triggers sit in a row above the start node.
    const right = triggers.reduce((m, p) => Math.max(m, p.x), -Infinity);
    const top = triggers.length ? triggers[0]!.y : (start?.y ?? 0) - 120;
    pos = Number.isFinite(right) ? { x: right + 232 + 32, y: top } : start ? { x: start.x, y: start.y - 120 } : { x: 0, y: 0 };
  }
  store.movePositions({ [key]: pos });
  store.select([key]);
  return id;
}

export function connectAction(store: DesignerStore, source: string, handle: string | null | undefined, target: string): void {
  const port = source.startsWith(TRIGGER_PREFIX) ? ({ kind: "start" } as Port) : parsePort(handle ?? "next");
  if (!port) return;
  attempt("connect", () => store.apply((d) => connect(d, source, port, target)));
}

export function disconnectAction(store: DesignerStore, source: string, handle: string, target: string): void {
  const port = source.startsWith(TRIGGER_PREFIX) ? ({ kind: "start" } as Port) : parsePort(handle);
  if (!port) return;
  attempt("disconnect", () => store.apply((d) => disconnect(d, source, port, target)));
}

export function deleteSelectionAction(store: DesignerStore, keys = store.get().selection): void {
  if (keys.length === 0) return;
  attempt("delete", () =>
    store.apply((d) => {
      for (const k of keys) {
        if (k.startsWith(TRIGGER_PREFIX)) removeTrigger(d, k.slice(TRIGGER_PREFIX.length));
        else removeNode(d, k);
      }
    }),
  );
  store.select([]);
}

let clipboard = "";

export function copyAction(store: DesignerStore): boolean {
  const s = store.get();
  const ids = s.selection.filter((k) => !k.startsWith(TRIGGER_PREFIX));
  if (ids.length === 0) return false;
  clipboard = copyNodes(s.doc, ids);
  void navigator.clipboard?.writeText(clipboard).catch(() => undefined);
  toast(`Copied ${ids.length} node${ids.length === 1 ? "" : "s"}`);
  return true;
}

export async function pasteAction(store: DesignerStore): Promise<void> {
  let text = clipboard;
  try {
    const system = await navigator.clipboard?.readText();
    if (system && parseClipboard(system)) text = system;
  } catch {
    // Clipboard permission refused: use what was copied inside the designer.
  }
  const nodes = text ? parseClipboard(text) : null;
  if (!nodes) {
    toast("Nothing to paste", { description: "Copy nodes first (⌘C), or copy YAML of blueprint nodes." });
    return;
  }
  const ids = attempt("paste", () => store.apply((d) => pasteNodes(d, nodes)));
  if (!ids) return;
  const s = store.get();
  const originals = nodes.map((n) => (typeof n.id === "string" ? s.positions[n.id] : undefined));
  const moves: Record<string, XY> = {};
  const fallback = placeAll(s.graph, s.positions);
  ids.forEach((id, i) => {
    const o = originals[i];
    moves[id] = o ? { x: o.x + 48, y: o.y + 64 } : (fallback[id] ?? { x: 0, y: 0 });
  });
  store.movePositions(moves);
  store.select(ids);
}

export function selectAllAction(store: DesignerStore): void {
  const s = store.get();
  store.select([...s.graph.triggers.map((t) => t.key), ...nodeList(s.bp).map((n) => String(n.id))]);
}
