// The designer's state for one open blueprint: the YAML text (the source of truth), its parsed
// document and graph, undo/redo history of text snapshots, the selection and canvas positions.
// A tiny external store (useSyncExternalStore) so callbacks can read fresh state without refs.
import { useSyncExternalStore } from "react";
import type { Document } from "yaml";
import type { DiagnosticDto, DryRunReport } from "../api/types.gen";
import { blueprintToGraph, edit, parseBlueprint, toJs, type BlueprintGraph, type Obj } from "./graph";

export interface XY {
  x: number;
  y: number;
}

export interface DesignerState {
  blueprintId: string;
  /** The text being edited. */
  source: string;
  doc: Document.Parsed;
  bp: Obj | null;
  graph: BlueprintGraph;
  /** YAML syntax problem of `source` (then `graph` is the last good one). */
  syntaxError: string | null;
  past: string[];
  future: string[];
  /** The text as last loaded or saved (for the unsaved indicator). */
  savedSource: string;
  baseVersion: string | null;
  /** Not on the server yet (created with "New blueprint"). */
  isNew: boolean;
  selection: string[];
  positions: Record<string, XY>;
  diagnostics: DiagnosticDto[];
  validating: boolean;
  validatedSource: string | null;
  dryRun: DryRunReport | null;
  dryRunSource: string | null;
}

const HISTORY_LIMIT = 200;
const COALESCE_MS = 1200;

function derive(source: string, prev: DesignerState | null, doc?: Document.Parsed) {
  const d = doc ?? parseBlueprint(source);
  const bp = toJs(d);
  if (!bp) {
    const message = d.errors[0]?.message.split("\n")[0] ?? "the YAML does not describe a blueprint (a map at the top)";
    return { doc: d, bp: prev?.bp ?? null, graph: prev?.graph ?? blueprintToGraph(null), syntaxError: message };
  }
  return { doc: d, bp, graph: blueprintToGraph(bp), syntaxError: null };
}

export class DesignerStore {
  private state: DesignerState;
  private listeners = new Set<() => void>();
  private lastCoalesce: { key: string; at: number } | null = null;

  constructor(init: { blueprintId: string; source: string; savedSource: string; baseVersion: string | null; isNew: boolean; positions: Record<string, XY> }) {
    this.state = {
      blueprintId: init.blueprintId,
      source: init.source,
      ...derive(init.source, null),
      past: [],
      future: [],
      savedSource: init.savedSource,
      baseVersion: init.baseVersion,
      isNew: init.isNew,
      selection: [],
      positions: init.positions,
      diagnostics: [],
      validating: false,
      validatedSource: null,
      dryRun: null,
      dryRunSource: null,
    };
  }

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  };

  get = () => this.state;

  private set(patch: Partial<DesignerState>) {
    this.state = { ...this.state, ...patch };
    for (const fn of this.listeners) fn();
  }

  /** Replace the text (a new history entry unless `coalesce` matches the previous change). */
  private commit(source: string, doc?: Document.Parsed, coalesce?: string) {
    const s = this.state;
    if (source === s.source) return;
    const now = Date.now();
    const merge = coalesce !== undefined && this.lastCoalesce?.key === coalesce && now - this.lastCoalesce.at < COALESCE_MS;
    this.lastCoalesce = coalesce !== undefined ? { key: coalesce, at: now } : null;
    const past = merge ? s.past : [...s.past, s.source].slice(-HISTORY_LIMIT);
    this.set({ source, ...derive(source, s, doc), past, future: [] });
  }

  /**
   * Apply an edit operation to the document. Throws (with a message for a toast) when the
   * operation is refused. `coalesce` merges quick successive edits of the same field.
   */
  apply<T>(op: (d: Document) => T, coalesce?: string): T {
    const s = this.state;
    if (s.syntaxError) throw new Error("The YAML has a syntax error; fix it in the YAML view first.");
    const res = edit(s.source, s.doc, op);
    this.commit(res.source, res.doc, coalesce);
    return res.value;
  }

  /** Text typed in the YAML view. */
  setSource(source: string) {
    this.commit(source, undefined, "yaml-view");
  }

  undo = () => {
    const s = this.state;
    const prev = s.past[s.past.length - 1];
    if (prev === undefined) return;
    this.lastCoalesce = null;
    this.set({ source: prev, ...derive(prev, s), past: s.past.slice(0, -1), future: [s.source, ...s.future] });
  };

  redo = () => {
    const s = this.state;
    const next = s.future[0];
    if (next === undefined) return;
    this.lastCoalesce = null;
    this.set({ source: next, ...derive(next, s), past: [...s.past, s.source], future: s.future.slice(1) });
  };

  select(ids: string[]) {
    const cur = this.state.selection;
    if (cur.length === ids.length && cur.every((x, i) => x === ids[i])) return;
    this.set({ selection: ids });
  }

  setPositions(positions: Record<string, XY>) {
    this.set({ positions });
  }

  movePositions(moves: Record<string, XY>) {
    this.set({ positions: { ...this.state.positions, ...moves } });
  }

  renamePosition(from: string, to: string) {
    const p = this.state.positions[from];
    if (!p) return;
    const next = { ...this.state.positions, [to]: p };
    delete next[from];
    this.set({ positions: next });
  }

  setValidation(source: string, diagnostics: DiagnosticDto[] | null) {
    if (diagnostics === null) this.set({ validating: true });
    else this.set({ diagnostics, validating: false, validatedSource: source });
  }

  setDryRun(report: DryRunReport | null, source: string | null) {
    this.set({ dryRun: report, dryRunSource: source });
  }

  markSaved(source: string, version: string, blueprintId?: string) {
    this.set({ savedSource: source, baseVersion: version, isNew: false, ...(blueprintId ? { blueprintId } : {}) });
  }

  /** Load another text as the saved state (reload after a conflict). */
  reset(source: string, version: string | null) {
    this.lastCoalesce = null;
    this.set({ source, ...derive(source, this.state), savedSource: source, baseVersion: version, past: [...this.state.past, this.state.source], future: [] });
  }
}

export function useDesigner<T>(store: DesignerStore, select: (s: DesignerState) => T): T {
  return useSyncExternalStore(store.subscribe, () => select(store.get()));
}
