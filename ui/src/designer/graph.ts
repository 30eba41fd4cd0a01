// Blueprint ↔ graph, and the designer's edit operations on the yaml Document.
//
// Pure (no React, no DOM). The yaml Document is the source of truth: every edit is applied to
// a clone of it and written back with `patchSource`, so comments, anchors and the formatting
// of untouched parts survive. The canvas graph is derived from the document after each edit.
import {
  isDocument,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  Scalar,
  stringify,
  visit,
  YAMLMap,
  YAMLSeq,
  type Document,
  type Node as YamlNode,
} from "yaml";
import { patchSourceWithDoc } from "./yamlPatch";

export { patchSource } from "./yamlPatch";

export const STEP_KINDS = ["retrieve", "prompt", "route", "review", "branch", "transform", "output"] as const;
export type StepKind = (typeof STEP_KINDS)[number];
export const TRIGGER_KINDS = ["manual", "webhook", "schedule", "folder_drop", "event"] as const;
export type TriggerKind = (typeof TRIGGER_KINDS)[number];
export const REVIEW_OUTCOMES = ["approved", "rejected", "escalated"] as const;
export type ReviewOutcome = (typeof REVIEW_OUTCOMES)[number];

/** Names templates read besides node ids (mirrors the validator's RESERVED_ROOTS). */
export const RESERVED_IDS = ["trigger", "vars", "run", "loop", "self", "range", "true", "false", "none"];

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : null;
}

/** A `Next` value (string or list) as a list of targets. */
export function targets(v: unknown): string[] {
  if (typeof v === "string") return v ? [v] : [];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return [];
}

// ---------------------------------------------------------------------------------------------
// Parsing

export function parseBlueprint(source: string): Document.Parsed {
  return parseDocument(source, { prettyErrors: true });
}

/** The document as plain JS (aliases resolved), or null when the YAML does not parse. */
export function toJs(doc: Document): Obj | null {
  if (doc.errors.length > 0) return null;
  try {
    const v: unknown = doc.toJS({ maxAliasCount: -1 });
    return isObj(v) ? v : null;
  } catch {
    return null;
  }
}

export function nodeList(bp: Obj | null): Obj[] {
  const nodes = bp?.nodes;
  return Array.isArray(nodes) ? nodes.filter(isObj) : [];
}

export function triggerList(bp: Obj | null): Obj[] {
  const t = bp?.triggers;
  return Array.isArray(t) ? t.filter(isObj) : [];
}

export function agentNames(bp: Obj | null): string[] {
  return isObj(bp?.agents) ? Object.keys(bp.agents) : [];
}

// ---------------------------------------------------------------------------------------------
// Ports: where an edge leaves a node. The handle id on the canvas is the port's string form.

export type Port =
  | { kind: "next" }
  | { kind: "exhausted" }
  | { kind: "default" }
  | { kind: "rule"; index: number }
  | { kind: "branch"; index: number }
  | { kind: "new-branch" }
  | { kind: "outcome"; outcome: ReviewOutcome }
  | { kind: "start" };

export function portId(p: Port): string {
  switch (p.kind) {
    case "rule":
      return `rule:${p.index}`;
    case "branch":
      return `branch:${p.index}`;
    case "new-branch":
      return "branch:new";
    case "outcome":
      return `on:${p.outcome}`;
    default:
      return p.kind;
  }
}

export function parsePort(handle: string | null | undefined): Port | null {
  if (!handle) return null;
  if (handle === "next" || handle === "exhausted" || handle === "default" || handle === "start") return { kind: handle };
  if (handle === "branch:new") return { kind: "new-branch" };
  const [head, tail] = handle.split(":");
  if (head === "rule" || head === "branch") {
    const index = Number(tail);
    return Number.isInteger(index) && index >= 0 ? { kind: head, index } : null;
  }
  if (head === "on" && (REVIEW_OUTCOMES as readonly string[]).includes(tail ?? "")) {
    return { kind: "outcome", outcome: tail as ReviewOutcome };
  }
  return null;
}

/** The path of a port's field inside its node (for `rule`/`branch`: the entry's `to`). */
export function portPath(p: Port): (string | number)[] {
  switch (p.kind) {
    case "next":
      return ["next"];
    case "exhausted":
      return ["on_exhausted"];
    case "default":
      return ["default"];
    case "rule":
      return ["rules", p.index, "to"];
    case "branch":
      return ["branches", p.index, "to"];
    case "outcome":
      return ["on", p.outcome];
    default:
      return [];
  }
}

export interface PortInfo {
  handle: string;
  label: string | null;
  /** The label its edges carry (unconditional branch paths have none). */
  edgeLabel: string | null;
  tone: "neutral" | "ok" | "danger" | "warn" | "info";
  /** Targets currently connected. */
  targets: string[];
}

/** The ports a node offers, in display order. */
export function nodePorts(node: Obj): PortInfo[] {
  const kind = str(node.kind);
  const out: PortInfo[] = [];
  const add = (p: Port, label: string | null, tone: PortInfo["tone"], value: unknown, edgeLabel = label) =>
    out.push({ handle: portId(p), label, edgeLabel, tone, targets: targets(value) });
  switch (kind) {
    case "route": {
      const rules = Array.isArray(node.rules) ? node.rules : [];
      rules.forEach((rule, index) =>
        add({ kind: "rule", index }, (isObj(rule) && str(rule.name)) || `rule ${index + 1}`, "info", isObj(rule) ? rule.to : null),
      );
      add({ kind: "default" }, "default", "neutral", node.default);
      break;
    }
    case "branch": {
      const paths = Array.isArray(node.branches) ? node.branches : [];
      paths.forEach((path, index) => {
        const when = isObj(path) ? str(path.when) : null;
        add({ kind: "branch", index }, when ? `when ${when}` : `path ${index + 1}`, "info", isObj(path) ? path.to : null, when ? `when ${when}` : null);
      });
      out.push({ handle: portId({ kind: "new-branch" }), label: "+ path", edgeLabel: null, tone: "neutral", targets: [] });
      break;
    }
    case "review": {
      const on = isObj(node.on) ? node.on : {};
      add({ kind: "outcome", outcome: "approved" }, "approved", "ok", on.approved);
      add({ kind: "outcome", outcome: "rejected" }, "rejected", "danger", on.rejected);
      add({ kind: "outcome", outcome: "escalated" }, "escalated", "warn", on.escalated);
      break;
    }
    default:
      add({ kind: "next" }, null, "neutral", node.next);
  }
  if (node.max_visits != null || node.on_exhausted != null) {
    add({ kind: "exhausted" }, "exhausted", "warn", node.on_exhausted);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Graph

export const TRIGGER_PREFIX = "trigger:";

export interface StepInfo {
  /** Canvas id: the node id. */
  key: string;
  id: string;
  index: number;
  kind: string;
  title: string | null;
  subtitle: string;
  ports: PortInfo[];
  isStart: boolean;
  layout: { x: number; y: number } | null;
}

export interface TriggerInfo {
  /** Canvas id: `trigger:<id>`. */
  key: string;
  id: string;
  index: number;
  kind: string;
  subtitle: string;
  start: string;
}

export interface EdgeInfo {
  id: string;
  source: string;
  sourceHandle: string;
  target: string;
  label: string | null;
  tone: PortInfo["tone"];
  /** JSON pointer of the field holding this edge, e.g. `/nodes/3/rules/0/to/1`. */
  pointer: string;
}

export interface BlueprintGraph {
  steps: StepInfo[];
  triggers: TriggerInfo[];
  edges: EdgeInfo[];
  start: string;
}

function stepSubtitle(n: Obj, bp: Obj): string {
  switch (str(n.kind)) {
    case "retrieve":
      return [str(n.collection), n.top_k != null ? `top ${String(n.top_k)}` : null].filter(Boolean).join(" · ");
    case "prompt": {
      const agent = str(n.agent) ?? "";
      const a = isObj(bp.agents) ? bp.agents[agent] : null;
      const model = isObj(a) ? str(a.model) : null;
      return model ? `${agent} · ${model}` : agent;
    }
    case "route": {
      const rules = Array.isArray(n.rules) ? n.rules.length : 0;
      return `${rules} rule${rules === 1 ? "" : "s"}${n.default != null ? " + default" : ""}`;
    }
    case "review":
      return [str(n.role), str(n.sla)].filter(Boolean).join(" · ");
    case "branch": {
      const b = Array.isArray(n.branches) ? n.branches.length : 0;
      return `${b} parallel path${b === 1 ? "" : "s"}`;
    }
    case "transform":
      return isObj(n.set) ? Object.keys(n.set).map((k) => `vars.${k}`).join(", ") : "";
    case "output": {
      for (const t of ["http", "file", "dataset", "emit"] as const) {
        const v = n[t];
        if (isObj(v)) {
          const detail = t === "http" ? `${str(v.method) ?? "POST"} ${str(v.url) ?? ""}` : t === "emit" ? str(v.event) : str(v.path);
          return `${t} · ${detail ?? ""}`;
        }
      }
      return "no target";
    }
    default:
      return "";
  }
}

function triggerSubtitle(t: Obj): string {
  switch (str(t.kind)) {
    case "schedule":
      return str(t.cron) ?? "";
    case "folder_drop":
      return str(t.path) ?? "";
    case "event":
      return str(t.event) ?? "";
    case "webhook":
      return `POST /hooks/…/${str(t.id) ?? ""}`;
    default: {
      const props = isObj(t.input) && isObj(t.input.properties) ? Object.keys(t.input.properties).length : 0;
      return props ? `form · ${props} field${props === 1 ? "" : "s"}` : "form";
    }
  }
}

/** Nodes, triggers and labelled edges of a blueprint (dangling references are left out). */
export function blueprintToGraph(doc: Document | Obj | null): BlueprintGraph {
  const bp = isDocument(doc) ? toJs(doc) : doc;
  const empty: BlueprintGraph = { steps: [], triggers: [], edges: [], start: "" };
  if (!bp) return empty;
  const nodes = nodeList(bp);
  const start = str(bp.start) ?? "";
  const ids = new Set(nodes.map((n) => str(n.id) ?? ""));
  const steps: StepInfo[] = [];
  const edges: EdgeInfo[] = [];
  nodes.forEach((n, index) => {
    const id = str(n.id) ?? `#${index}`;
    const layout = isObj(n.layout) && typeof n.layout.x === "number" && typeof n.layout.y === "number" ? { x: n.layout.x, y: n.layout.y } : null;
    const ports = nodePorts(n);
    steps.push({ key: id, id, index, kind: str(n.kind) ?? "?", title: str(n.title), subtitle: stepSubtitle(n, bp), ports, isStart: id === start, layout });
    for (const port of ports) {
      const p = parsePort(port.handle);
      if (!p) continue;
      const base = `/nodes/${index}/${portPath(p).join("/")}`;
      const list = Array.isArray(portValue(n, p));
      port.targets.forEach((t, i) => {
        if (!ids.has(t)) return;
        edges.push({
          id: `${id}|${port.handle}|${t}`,
          source: id,
          sourceHandle: port.handle,
          target: t,
          label: port.edgeLabel,
          tone: port.tone,
          pointer: list ? `${base}/${i}` : base,
        });
      });
    }
  });
  const triggers: TriggerInfo[] = triggerList(bp).map((t, index) => {
    const id = str(t.id) ?? `#${index}`;
    const tStart = str(t.start) ?? start;
    if (ids.has(tStart)) {
      edges.push({
        id: `${TRIGGER_PREFIX}${id}|start|${tStart}`,
        source: `${TRIGGER_PREFIX}${id}`,
        sourceHandle: "start",
        target: tStart,
        label: null,
        tone: "neutral",
        pointer: t.start != null ? `/triggers/${index}/start` : "/start",
      });
    }
    return { key: `${TRIGGER_PREFIX}${id}`, id, index, kind: str(t.kind) ?? "?", subtitle: triggerSubtitle(t), start: tStart };
  });
  return { steps, triggers, edges, start };
}

function portValue(n: Obj, p: Port): unknown {
  let cur: unknown = n;
  for (const k of portPath(p)) {
    if (typeof k === "number") cur = Array.isArray(cur) ? cur[k] : undefined;
    else cur = isObj(cur) ? cur[k] : undefined;
  }
  return cur;
}

// ---------------------------------------------------------------------------------------------
// Ids

const NODE_ID = /^[a-z][a-z0-9_]*$/;

/** Why `id` cannot be a node id (null when it can). `others` are the ids already taken. */
export function nodeIdProblem(id: string, others: Iterable<string> = []): string | null {
  if (!id) return "An id is required.";
  if (id.length > 64) return "At most 64 characters.";
  if (!NODE_ID.test(id)) return "Use lowercase letters, digits and _, starting with a letter.";
  if (RESERVED_IDS.includes(id)) return `\`${id}\` is reserved for templates.`;
  for (const o of others) if (o === id) return `Another node is already called \`${id}\`.`;
  return null;
}

const BLUEPRINT_ID = /^[a-z][a-z0-9-]*$/;

export function blueprintIdProblem(id: string): string | null {
  if (!id) return "An id is required.";
  if (id.length > 64) return "At most 64 characters.";
  if (!BLUEPRINT_ID.test(id)) return "Use lowercase letters, digits and -, starting with a letter.";
  return null;
}

export function triggerIdProblem(id: string, others: Iterable<string> = []): string | null {
  if (!id) return "An id is required.";
  if (id.length > 64) return "At most 64 characters.";
  if (!/^[a-z][a-z0-9_-]*$/.test(id)) return "Use lowercase letters, digits, - and _, starting with a letter.";
  for (const o of others) if (o === id) return `Another trigger is already called \`${id}\`.`;
  return null;
}

/** `base`, or `base_2`, `base_3`… whichever is free. */
export function freshId(base: string, taken: Iterable<string>, sep = "_"): string {
  const set = new Set(taken);
  let clean = base.toLowerCase().replace(/[^a-z0-9_-]+/g, sep).replace(/^[^a-z]+/, "");
  if (sep === "_") clean = clean.replace(/-/g, "_");
  if (!clean) clean = "node";
  if (!set.has(clean) && !RESERVED_IDS.includes(clean)) return clean;
  const stem = clean.replace(new RegExp(`${sep}\\d+$`), "");
  for (let i = 2; ; i++) {
    const candidate = `${stem}${sep}${i}`;
    if (!set.has(candidate)) return candidate;
  }
}

// ---------------------------------------------------------------------------------------------
// Document helpers

function nodesSeq(doc: Document, create = false): YAMLSeq | null {
  const seq = doc.get("nodes", true);
  if (isSeq(seq)) return seq;
  if (!create) return null;
  const s = new YAMLSeq();
  insertTopLevel(doc, "nodes", s);
  return s;
}

function triggersSeq(doc: Document, create = false): YAMLSeq | null {
  const seq = doc.get("triggers", true);
  if (isSeq(seq)) return seq;
  if (!create) return null;
  const s = new YAMLSeq();
  insertTopLevel(doc, "triggers", s, ["agents", "nodes"]);
  return s;
}

/** Add a top-level key before the first of `before` that exists (else at the end). */
function insertTopLevel(doc: Document, key: string, value: unknown, before: string[] = []): void {
  const root = doc.contents;
  if (!isMap(root)) throw new Error("the blueprint is not a YAML map");
  const pair = doc.createPair(key, value);
  const at = root.items.findIndex((p) => isScalar(p.key) && before.includes(String(p.key.value)));
  if (at < 0) root.items.push(pair);
  else root.items.splice(at, 0, pair);
}

export function nodeIndex(doc: Document, id: string): number {
  const seq = nodesSeq(doc);
  if (!seq) return -1;
  return seq.items.findIndex((it) => isMap(it) && scalarValue(it.get("id", true)) === id);
}

function nodeMap(doc: Document, id: string): YAMLMap {
  const seq = nodesSeq(doc);
  const i = nodeIndex(doc, id);
  const m = seq?.items[i];
  if (!isMap(m)) throw new Error(`no node has the id \`${id}\``);
  return m;
}

function triggerMap(doc: Document, id: string): { map: YAMLMap; index: number } {
  const seq = triggersSeq(doc);
  const index = seq ? seq.items.findIndex((it) => isMap(it) && scalarValue(it.get("id", true)) === id) : -1;
  const m = seq?.items[index];
  if (!isMap(m)) throw new Error(`no trigger has the id \`${id}\``);
  return { map: m, index };
}

function scalarValue(n: unknown): unknown {
  return isScalar(n) ? n.value : undefined;
}

function allNodeIds(doc: Document): string[] {
  const seq = nodesSeq(doc);
  if (!seq) return [];
  return seq.items.flatMap((it) => {
    const v = isMap(it) ? scalarValue(it.get("id", true)) : undefined;
    return typeof v === "string" ? [v] : [];
  });
}

function flowSeq(doc: Document, items: string[]): YAMLSeq {
  const s = doc.createNode(items) as YAMLSeq;
  s.flow = true;
  return s;
}

/** A string scalar in a readable style: a literal block for multi-line text. */
export function textScalar(value: string, previous?: unknown): Scalar {
  const s = new Scalar(value);
  if (value.includes("\n")) s.type = Scalar.BLOCK_LITERAL;
  else if (isScalar(previous) && previous.type && previous.type !== Scalar.BLOCK_LITERAL && previous.type !== Scalar.BLOCK_FOLDED) {
    s.type = previous.type;
  }
  return s;
}

/** Set (or, for undefined, delete) the value at `path` below `parent`, keeping the style of what was there. */
function setAt(doc: Document, parent: YAMLMap | YAMLSeq, path: (string | number)[], value: unknown): void {
  if (path.length === 0) return;
  const [head, ...rest] = path;
  if (rest.length > 0) {
    let child = parent.get(head as never, true) as unknown;
    if (!isMap(child) && !isSeq(child)) {
      if (value === undefined) return;
      child = typeof rest[0] === "number" ? new YAMLSeq() : new YAMLMap();
      parent.set(head as never, child as never);
    }
    setAt(doc, child as YAMLMap | YAMLSeq, rest, value);
    if (value === undefined && isMap(child) && child.items.length === 0 && isMap(parent)) parent.delete(head as never);
    return;
  }
  if (value === undefined) {
    parent.delete(head as never);
    return;
  }
  // `on: {}` and friends become block maps once they get entries.
  if (isMap(parent) && parent.flow && parent.items.length === 0) parent.flow = false;
  const existing = parent.get(head as never, true) as unknown;
  if (typeof value === "string") {
    // Editing a scalar in place keeps its anchor (`&reply`) and quoting.
    if (isScalar(existing) && !(value.includes("\n") && existing.type !== Scalar.BLOCK_LITERAL && existing.type !== Scalar.BLOCK_FOLDED)) {
      existing.value = value;
      return;
    }
    parent.set(head as never, textScalar(value, existing) as never);
    return;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    if (isScalar(existing)) {
      existing.value = value;
      return;
    }
    parent.set(head as never, doc.createNode(value) as never);
    return;
  }
  const node = doc.createNode(value) as YamlNode;
  if (isSeq(node) && node.items.every((x) => isScalar(x)) && (isSeq(existing) ? existing.flow : node.items.length <= 6)) {
    node.flow = true;
  }
  parent.set(head as never, node as never);
}

// ---------------------------------------------------------------------------------------------
// Edit operations. Each mutates the document it is given (callers pass a clone).

/** Set or delete (value undefined) a field of a node, e.g. `["memory", "subject"]`. */
export function setNodeField(doc: Document, nodeId: string, path: (string | number)[], value: unknown): void {
  if (path[0] === "id" && path.length === 1) {
    if (typeof value !== "string") throw new Error("a node id is a string");
    renameNode(doc, nodeId, value);
    return;
  }
  setAt(doc, nodeMap(doc, nodeId), path, value);
}

export function setTriggerField(doc: Document, triggerId: string, path: (string | number)[], value: unknown): void {
  setAt(doc, triggerMap(doc, triggerId).map, path, value);
}

/** Set or delete a top-level field (`name`, `description`, `start`, `lifecycle.stage`…). */
export function setBlueprintField(doc: Document, path: (string | number)[], value: unknown): void {
  const root = doc.contents;
  if (!isMap(root)) throw new Error("the blueprint is not a YAML map");
  setAt(doc, root, path, value);
}

function addTarget(doc: Document, parent: YAMLMap, key: string | number, target: string): void {
  const cur = parent.get(key as never, true) as unknown;
  if (cur == null || (isScalar(cur) && (cur.value == null || cur.value === ""))) {
    parent.set(key as never, doc.createNode(target) as never);
  } else if (isScalar(cur)) {
    if (cur.value === target) return;
    parent.set(key as never, flowSeq(doc, [String(cur.value), target]) as never);
  } else if (isSeq(cur)) {
    if (cur.items.some((x) => scalarValue(x) === target)) return;
    cur.items.push(doc.createNode(target));
  } else {
    parent.set(key as never, doc.createNode(target) as never);
  }
}

/** Remove `target` from a Next field; returns whether the field is now empty. */
function removeTarget(doc: Document, parent: YAMLMap, key: string | number, target: string | null): boolean {
  const cur = parent.get(key as never, true) as unknown;
  if (isScalar(cur)) {
    if (target === null || cur.value === target) return true;
    return false;
  }
  if (isSeq(cur)) {
    cur.items = cur.items.filter((x) => target !== null && scalarValue(x) !== target);
    if (cur.items.length === 1) {
      const only = scalarValue(cur.items[0]);
      parent.set(key as never, doc.createNode(only) as never);
    }
    return cur.items.length === 0;
  }
  return cur == null;
}

function ensureMap(doc: Document, parent: YAMLMap, key: string): YAMLMap {
  let m = parent.get(key, true) as unknown;
  if (!isMap(m)) {
    m = new YAMLMap();
    parent.set(key, m);
  }
  const map = m as YAMLMap;
  // `on: {}` of a fresh review becomes a block map once it has outcomes.
  if (map.items.length === 0) map.flow = false;
  void doc;
  return map;
}

/** Connect `source` (a node id, or `trigger:<id>`) through `port` to the node `target`. */
export function connect(doc: Document, source: string, port: Port, target: string): void {
  if (source.startsWith(TRIGGER_PREFIX) || port.kind === "start") {
    const tid = source.slice(TRIGGER_PREFIX.length);
    const { map } = triggerMap(doc, tid);
    const start = scalarValue(doc.get("start", true));
    const count = triggersSeq(doc)?.items.length ?? 0;
    if (target === start) map.delete("start");
    else if (count === 1) {
      map.delete("start");
      setBlueprintField(doc, ["start"], target);
    } else map.set("start", doc.createNode(target));
    return;
  }
  if (source === target && port.kind === "next") throw new Error("a node cannot lead to itself");
  const node = nodeMap(doc, source);
  switch (port.kind) {
    case "next":
      return addTarget(doc, node, "next", target);
    case "exhausted":
      return addTarget(doc, node, "on_exhausted", target);
    case "default":
      return addTarget(doc, node, "default", target);
    case "outcome":
      return addTarget(doc, ensureMap(doc, node, "on"), port.outcome, target);
    case "rule": {
      const rule = (node.get("rules", true) as YAMLSeq | undefined)?.items[port.index];
      if (!isMap(rule)) throw new Error(`route \`${source}\` has no rule ${port.index + 1}`);
      return addTarget(doc, rule, "to", target);
    }
    case "branch": {
      const path = (node.get("branches", true) as YAMLSeq | undefined)?.items[port.index];
      if (!isMap(path)) throw new Error(`branch \`${source}\` has no path ${port.index + 1}`);
      return addTarget(doc, path, "to", target);
    }
    case "new-branch": {
      let seq = node.get("branches", true) as unknown;
      if (!isSeq(seq)) {
        seq = new YAMLSeq();
        node.set("branches", seq);
      }
      const s = seq as YAMLSeq;
      s.flow = false;
      s.items.push(doc.createNode({ to: target }));
      return;
    }
  }
}

/** Remove the edge `source --port--> target`. */
export function disconnect(doc: Document, source: string, port: Port, target: string): void {
  if (source.startsWith(TRIGGER_PREFIX) || port.kind === "start") {
    // A trigger always starts somewhere: dropping its edge falls back to the blueprint's start.
    triggerMap(doc, source.slice(TRIGGER_PREFIX.length)).map.delete("start");
    return;
  }
  const node = nodeMap(doc, source);
  switch (port.kind) {
    case "next":
    case "exhausted":
    case "default": {
      const key = port.kind === "next" ? "next" : port.kind === "exhausted" ? "on_exhausted" : "default";
      if (removeTarget(doc, node, key, target)) node.delete(key);
      return;
    }
    case "outcome": {
      const on = node.get("on", true);
      if (!isMap(on)) return;
      if (removeTarget(doc, on, port.outcome, target)) on.delete(port.outcome);
      if (on.items.length === 0) on.flow = true;
      return;
    }
    case "rule": {
      const rule = (node.get("rules", true) as YAMLSeq | undefined)?.items[port.index];
      if (isMap(rule) && removeTarget(doc, rule, "to", target)) rule.set("to", flowSeq(doc, []));
      return;
    }
    case "branch": {
      const seq = node.get("branches", true);
      const path = isSeq(seq) ? seq.items[port.index] : null;
      if (isSeq(seq) && isMap(path) && removeTarget(doc, path, "to", target)) seq.items.splice(port.index, 1);
      return;
    }
    default:
      return;
  }
}

/** Every Next field of a node map: [parent map, key]. */
function edgeFields(node: YAMLMap): [YAMLMap, string][] {
  const out: [YAMLMap, string][] = [];
  for (const key of ["next", "on_exhausted", "default"]) if (node.has(key)) out.push([node, key]);
  const rules = node.get("rules", true);
  if (isSeq(rules)) for (const r of rules.items) if (isMap(r) && r.has("to")) out.push([r, "to"]);
  const branches = node.get("branches", true);
  if (isSeq(branches)) for (const b of branches.items) if (isMap(b) && b.has("to")) out.push([b, "to"]);
  const on = node.get("on", true);
  if (isMap(on)) for (const o of REVIEW_OUTCOMES) if (on.has(o)) out.push([on, o]);
  return out;
}

/** Remove a node and every edge into it. */
export function removeNode(doc: Document, id: string): void {
  const seq = nodesSeq(doc);
  const i = nodeIndex(doc, id);
  if (!seq || i < 0) return;
  const removed = seq.items[i] as YAMLMap;
  seq.items.splice(i, 1);
  for (const it of seq.items) {
    if (!isMap(it)) continue;
    for (const [parent, key] of edgeFields(it)) {
      const cur = parent.get(key, true);
      const refers = (isScalar(cur) && cur.value === id) || (isSeq(cur) && cur.items.some((x) => scalarValue(x) === id));
      if (!refers) continue;
      const empty = removeTarget(doc, parent, key, id);
      if (!empty) continue;
      if (key === "to") {
        // A rule keeps its condition; a branch path without a target is dropped.
        const branches = it.get("branches", true);
        if (isSeq(branches) && branches.items.includes(parent)) branches.items = branches.items.filter((b) => b !== parent);
        else parent.set("to", flowSeq(doc, []));
      } else {
        parent.delete(key);
        if (parent !== it && parent.items.length === 0) parent.flow = true;
      }
    }
  }
  const ts = triggersSeq(doc);
  for (const t of ts?.items ?? []) if (isMap(t) && scalarValue(t.get("start", true)) === id) t.delete("start");
  if (scalarValue(doc.get("start", true)) === id) {
    // Keep the blueprint runnable: start at what the removed node led to, if anything.
    const next = targets((removed.toJSON() as Obj).next)[0] ?? allNodeIds(doc)[0];
    if (next) doc.set("start", next);
  }
}

const TEMPLATE_TAG = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g;
const EXPRESSION_KEYS = new Set(["when", "auto_approve_when", "escalate_when"]);

/** Replace the identifier `from` with `to` in an expression, leaving string literals alone. */
export function renameInExpression(expr: string, from: string, to: string): string {
  let out = "";
  let i = 0;
  const ident = /[A-Za-z0-9_]/;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === "'" || c === '"') {
      const end = expr.indexOf(c, i + 1);
      const stop = end < 0 ? expr.length : end + 1;
      out += expr.slice(i, stop);
      i = stop;
      continue;
    }
    if (
      expr.startsWith(from, i) &&
      (i === 0 || (!ident.test(expr[i - 1]!) && expr[i - 1] !== ".")) &&
      !ident.test(expr[i + from.length] ?? "")
    ) {
      out += to;
      i += from.length;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

export function renameInTemplate(template: string, from: string, to: string): string {
  return template.replace(TEMPLATE_TAG, (tag) => renameInExpression(tag, from, to));
}

/** Rename a node, updating every edge, start and template reference to it. */
export function renameNode(doc: Document, from: string, to: string): void {
  if (from === to) return;
  const problem = nodeIdProblem(to, allNodeIds(doc).filter((x) => x !== from));
  if (problem) throw new Error(problem);
  const node = nodeMap(doc, from);
  const idNode = node.get("id", true);
  if (isScalar(idNode)) idNode.value = to;
  else node.set("id", to);
  const seq = nodesSeq(doc)!;
  for (const it of seq.items) {
    if (!isMap(it)) continue;
    for (const [parent, key] of edgeFields(it)) {
      const cur = parent.get(key, true);
      if (isScalar(cur) && cur.value === from) cur.value = to;
      if (isSeq(cur)) for (const x of cur.items) if (isScalar(x) && x.value === from) x.value = to;
    }
  }
  const start = doc.get("start", true);
  if (isScalar(start) && start.value === from) start.value = to;
  for (const t of triggersSeq(doc)?.items ?? []) {
    const s = isMap(t) ? t.get("start", true) : null;
    if (isScalar(s) && s.value === from) s.value = to;
  }
  // Templates and conditions that read the node's output.
  visit(seq, {
    Scalar(_key, scalar, path) {
      if (typeof scalar.value !== "string") return;
      const parent = path[path.length - 1];
      const key = parent && "key" in parent && isScalar(parent.key) ? String(parent.key.value) : null;
      if (parent && "key" in parent && parent.key === scalar) return;
      const next = key !== null && EXPRESSION_KEYS.has(key) ? renameInExpression(scalar.value, from, to) : renameInTemplate(scalar.value, from, to);
      if (next !== scalar.value) scalar.value = next;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Adding nodes and triggers

export interface AddOptions {
  id?: string;
  /** Connect the new node after this one. */
  after?: { source: string; port: Port };
  title?: string;
}

/** A good first variable for a new node's template: the upstream node's text, else a trigger field. */
function seedVariable(bp: Obj | null, after: string | null): string {
  if (after && !after.startsWith(TRIGGER_PREFIX)) {
    const n = nodeList(bp).find((x) => x.id === after);
    const kind = n ? str(n.kind) : null;
    if (kind === "prompt" || kind === "review" || kind === "retrieve") return `${after}.text`;
  }
  const fields = triggerFields(bp);
  if (fields[0]) return `trigger.${fields[0]}`;
  return "trigger";
}

/** The body of a fresh node of `kind`: valid on its own once connected. */
export function defaultNode(kind: StepKind, id: string, bp: Obj | null, after: string | null): Obj {
  const v = seedVariable(bp, after);
  switch (kind) {
    case "retrieve":
      return { id, kind, title: "Find relevant passages", collection: "knowledge", query: `{{ ${v} }}`, top_k: 5 };
    case "prompt":
      return { id, kind, title: "Draft with an agent", agent: agentNames(bp)[0] ?? "assistant", template: `Write a short, helpful answer.\n\nInput:\n{{ ${v} }}\n` };
    case "route":
      return { id, kind, title: "Choose a path", rules: [] };
    case "review":
      return { id, kind, title: "Human review", draft: `{{ ${v} }}`, role: "reviewer", sla: "1d", on: {} };
    case "branch":
      return { id, kind, title: "Run in parallel", branches: [] };
    case "transform":
      return { id, kind, title: "Set variables", set: { value: `{{ ${v} }}` } };
    case "output":
      return { id, kind, title: "Save the result", file: { path: `results/{{ run.id }}-${id}.md`, content: `{{ ${v} }}` } };
  }
}

const KIND_ID: Record<StepKind, string> = {
  retrieve: "retrieve",
  prompt: "draft",
  route: "route",
  review: "review",
  branch: "branch",
  transform: "set_vars",
  output: "output",
};

function styleNodeMap(doc: Document, m: YAMLMap, spaced: boolean): void {
  m.spaceBefore = spaced;
  visit(m, {
    Seq(_k, s) {
      if (s.items.every((x) => isScalar(x))) s.flow = true;
    },
    Scalar(_k, s) {
      if (typeof s.value === "string" && s.value.includes("\n")) s.type = Scalar.BLOCK_LITERAL;
      else if (typeof s.value === "string" && /[{}[\]:#]|^\s|\s$/.test(s.value)) s.type = Scalar.QUOTE_DOUBLE;
    },
  });
  void doc;
}

/** Whether the node list separates its items with blank lines (to match when adding). */
function listIsSpaced(seq: YAMLSeq): boolean {
  return seq.items.length > 1 && seq.items.slice(1).every((x) => isMap(x) && !!x.spaceBefore);
}

/** Append a node of `kind`; returns its id. */
export function addNode(doc: Document, kind: StepKind, opts: AddOptions = {}): string {
  const bp = toJs(doc);
  const ids = allNodeIds(doc);
  const id = opts.id ?? freshId(KIND_ID[kind], ids);
  const problem = nodeIdProblem(id, ids);
  if (problem) throw new Error(problem);
  const body = defaultNode(kind, id, bp, opts.after?.source ?? null);
  if (opts.title) body.title = opts.title;
  if (kind === "prompt" && agentNames(bp).length === 0) {
    // A prompt needs an agent; a fresh blueprint gets a sensible default one.
    setBlueprintField(doc, ["agents"], { assistant: { provider: "default", model: "gpt-4o-mini", temperature: 0.3 } });
  }
  const seq = nodesSeq(doc, true)!;
  // Match the file: examples separate nodes with a blank line.
  const spaced = seq.items.length === 1 || listIsSpaced(seq);
  const m = doc.createNode(body) as YAMLMap;
  styleNodeMap(doc, m, spaced && seq.items.length > 0);
  seq.items.push(m);
  if (ids.length === 0 && !scalarValue(doc.get("start", true))) doc.set("start", id);
  if (opts.after) connect(doc, opts.after.source, opts.after.port, id);
  return id;
}

const TRIGGER_ID: Record<TriggerKind, string> = {
  manual: "form",
  webhook: "webhook",
  schedule: "schedule",
  folder_drop: "folder",
  event: "event",
};

export function defaultTrigger(kind: TriggerKind, id: string): Obj {
  switch (kind) {
    case "manual":
      return { kind, id, input: { type: "object", required: ["text"], properties: { text: { type: "string" } } } };
    case "webhook":
      return { kind, id, input: { type: "object", properties: { text: { type: "string" } } } };
    case "schedule":
      return { kind, id, cron: "0 9 * * MON-FRI" };
    case "folder_drop":
      return { kind, id, path: "inbox/files", extensions: [".json"] };
    case "event":
      return { kind, id, event: "some.event" };
  }
}

export function addTrigger(doc: Document, kind: TriggerKind): string {
  const seq = triggersSeq(doc, true)!;
  const taken = seq.items.flatMap((t) => (isMap(t) ? [String(scalarValue(t.get("id", true)) ?? "")] : []));
  const id = freshId(TRIGGER_ID[kind], taken, "-");
  const m = doc.createNode(defaultTrigger(kind, id)) as YAMLMap;
  visit(m, {
    Map(_k, x) {
      if (x !== m && x.items.every((p) => isScalar(p.value))) x.flow = true;
    },
    Seq(_k, s) {
      s.flow = true;
    },
    Scalar(_k, s) {
      if (typeof s.value === "string" && /[*{}[\]:#]/.test(s.value)) s.type = Scalar.QUOTE_DOUBLE;
    },
  });
  seq.items.push(m);
  return id;
}

export function removeTrigger(doc: Document, id: string): void {
  const seq = triggersSeq(doc);
  if (!seq) return;
  const { index } = triggerMap(doc, id);
  seq.items.splice(index, 1);
  if (seq.items.length === 0) doc.delete("triggers");
}

// ---------------------------------------------------------------------------------------------
// Copy / paste

/** YAML text of the selected nodes (a list), for the clipboard. */
export function copyNodes(doc: Document, ids: string[]): string {
  const bp = toJs(doc);
  const chosen = nodeList(bp).filter((n) => typeof n.id === "string" && ids.includes(n.id));
  return chosen.length ? stringify(chosen, { lineWidth: 0 }) : "";
}

/** Parse clipboard text as a list of nodes (or a single node); null when it is not one. */
export function parseClipboard(text: string): Obj[] | null {
  try {
    const v: unknown = parseDocument(text).toJS();
    const list = Array.isArray(v) ? v : [v];
    const nodes = list.filter(isObj).filter((n) => typeof n.kind === "string" && (STEP_KINDS as readonly string[]).includes(n.kind));
    return nodes.length > 0 && nodes.length === list.length ? nodes : null;
  } catch {
    return null;
  }
}

function remapNext(v: unknown, map: Map<string, string>, keep: (id: string) => boolean): unknown {
  if (typeof v === "string") return map.get(v) ?? (keep(v) ? v : undefined);
  if (Array.isArray(v)) {
    const out = v.flatMap((x) => {
      if (typeof x !== "string") return [];
      const y = map.get(x) ?? (keep(x) ? x : undefined);
      return y ? [y] : [];
    });
    return out.length === 0 ? undefined : out.length === 1 ? out[0] : out;
  }
  return undefined;
}

/** Paste nodes with fresh ids; edges among them follow, edges to missing nodes are dropped. Returns the new ids. */
export function pasteNodes(doc: Document, nodes: Obj[]): string[] {
  const taken = new Set(allNodeIds(doc));
  const map = new Map<string, string>();
  for (const n of nodes) {
    const old = typeof n.id === "string" ? n.id : str(n.kind) ?? "node";
    const fresh = freshId(taken.has(old) ? `${old}_copy` : old, taken);
    taken.add(fresh);
    map.set(old, fresh);
  }
  const existing = new Set(allNodeIds(doc));
  const keep = (id: string) => existing.has(id);
  const seq = nodesSeq(doc, true)!;
  const spaced = listIsSpaced(seq);
  const out: string[] = [];
  for (const n of nodes) {
    const copy: Obj = structuredClone(n);
    const old = typeof n.id === "string" ? n.id : str(n.kind) ?? "node";
    copy.id = map.get(old);
    delete copy.layout;
    for (const key of ["next", "on_exhausted", "default"]) {
      if (key in copy) {
        const v = remapNext(copy[key], map, keep);
        if (v === undefined) delete copy[key];
        else copy[key] = v;
      }
    }
    if (Array.isArray(copy.rules)) {
      for (const r of copy.rules) if (isObj(r)) r.to = remapNext(r.to, map, keep) ?? [];
    }
    if (Array.isArray(copy.branches)) {
      copy.branches = copy.branches.filter((b) => {
        if (!isObj(b)) return false;
        const v = remapNext(b.to, map, keep);
        if (v === undefined) return false;
        b.to = v;
        return true;
      });
    }
    if (isObj(copy.on)) {
      for (const o of REVIEW_OUTCOMES) {
        if (!(o in copy.on)) continue;
        const v = remapNext(copy.on[o], map, keep);
        if (v === undefined) delete copy.on[o];
        else copy.on[o] = v;
      }
    }
    // Templates inside the pasted group read the copies.
    let text = stringify(copy, { lineWidth: 0 });
    for (const [from, to] of map) if (from !== to) text = renameInTemplate(text, from, to);
    const value = parseDocument(text).toJS() as unknown;
    const m = doc.createNode(value) as YAMLMap;
    styleNodeMap(doc, m, spaced);
    seq.items.push(m);
    out.push(String(copy.id));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One-stop edit: apply operations to a clone and produce the new text.

export interface EditResult {
  source: string;
  doc: Document.Parsed;
}

/** Apply `op` to a clone of `doc` (parsed from `source`) and return the minimally changed text. */
export function edit<T>(source: string, doc: Document, op: (d: Document) => T): EditResult & { value: T } {
  if (doc.errors.length > 0) throw new Error("the YAML has syntax errors; fix them in the YAML view first");
  const clone = doc.clone();
  const value = op(clone);
  const next = patchSourceWithDoc(source, doc, clone);
  if (next.text === source) return { source, doc: doc as Document.Parsed, value };
  return { source: next.text, doc: next.doc ?? parseBlueprint(next.text), value };
}

// ---------------------------------------------------------------------------------------------
// Template variables (for autocomplete)

/** Payload fields the triggers declare (input properties, schedule payload keys). */
export function triggerFields(bp: Obj | null): string[] {
  const out = new Set<string>();
  for (const t of triggerList(bp)) {
    if (isObj(t.input) && isObj(t.input.properties)) for (const k of Object.keys(t.input.properties)) out.add(k);
    if (t.kind === "schedule") {
      out.add("scheduled_at");
      if (isObj(t.payload)) for (const k of Object.keys(t.payload)) out.add(k);
    }
  }
  return [...out];
}

/** Output fields each node kind offers later templates (mirrors the validator's `output_fields`). */
export function outputFields(node: Obj): string[] {
  switch (str(node.kind)) {
    case "retrieve":
      return ["text", "passages", "memory", "query", "snippets", "mode"];
    case "prompt":
      return ["text", "json", "model", "agent", "tokens", "fallback_used", "attempts"];
    case "route":
      return ["rule"];
    case "branch":
      return ["paths"];
    case "transform":
      return isObj(node.set) ? Object.keys(node.set) : [];
    case "review":
      return ["decision", "text", "draft", "reason", "by", "edited", "path", "task"];
    case "output":
      return ["status", "location", "idempotency_key"];
    default:
      return [];
  }
}

/** Ids of the nodes that can run before `id` (its ancestors, loops included). */
export function ancestors(bp: Obj | null, id: string): string[] {
  const preds = new Map<string, Set<string>>();
  for (const e of blueprintToGraph(bp).edges) {
    if (e.source.startsWith(TRIGGER_PREFIX)) continue;
    const set = preds.get(e.target) ?? new Set<string>();
    set.add(e.source);
    preds.set(e.target, set);
  }
  const seen = new Set<string>();
  const stack = [id];
  while (stack.length) {
    const cur = stack.pop()!;
    for (const p of preds.get(cur) ?? []) {
      if (!seen.has(p)) {
        seen.add(p);
        stack.push(p);
      }
    }
  }
  seen.delete(id);
  const order = nodeList(bp).map((n) => String(n.id));
  return order.filter((x) => seen.has(x));
}

export interface Variable {
  label: string;
  detail: string;
  /** Sort boost: closer (more useful) first. */
  boost: number;
}

/** Everything a template of node `id` can read: trigger fields, vars, run, earlier nodes' outputs. */
export function templateVariables(bp: Obj | null, id: string | null): Variable[] {
  const out: Variable[] = [];
  out.push({ label: "trigger", detail: "the trigger's payload", boost: 1 });
  for (const f of triggerFields(bp)) out.push({ label: `trigger.${f}`, detail: "trigger input", boost: 3 });
  for (const n of nodeList(bp)) {
    if (n.kind === "transform" && isObj(n.set)) for (const k of Object.keys(n.set)) out.push({ label: `vars.${k}`, detail: `set by ${String(n.id)}`, boost: 2 });
  }
  for (const f of ["id", "blueprint", "version", "trigger"]) out.push({ label: `run.${f}`, detail: "run", boost: 0 });
  const nodes = nodeList(bp);
  const earlier = id ? ancestors(bp, id) : nodes.map((n) => String(n.id));
  for (const nid of earlier) {
    const n = nodes.find((x) => x.id === nid);
    if (!n) continue;
    out.push({ label: nid, detail: `${String(n.kind)} node`, boost: 2 });
    for (const f of outputFields(n)) out.push({ label: `${nid}.${f}`, detail: `${String(n.kind)} output`, boost: f === "text" ? 3 : 2 });
    if (n.kind === "prompt" && isObj(n.output_schema) && isObj(n.output_schema.properties)) {
      for (const f of Object.keys(n.output_schema.properties)) out.push({ label: `${nid}.json.${f}`, detail: "structured output", boost: 3 });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Diagnostics → canvas

export interface PointerTarget {
  kind: "node" | "trigger" | "blueprint";
  /** Canvas key (node id or `trigger:<id>`); empty for the blueprint. */
  key: string;
  /** The field below the node, e.g. `template` or `rules/0/when`. */
  field: string;
}

/** Which canvas element a diagnostic's JSON pointer belongs to. */
export function pointerTarget(bp: Obj | null, pointer: string): PointerTarget {
  const parts = pointer.split("/").slice(1);
  if (parts[0] === "nodes" && parts[1] !== undefined) {
    const n = nodeList(bp)[Number(parts[1])];
    if (n && typeof n.id === "string") return { kind: "node", key: n.id, field: parts.slice(2).join("/") };
  }
  if (parts[0] === "triggers" && parts[1] !== undefined) {
    const t = triggerList(bp)[Number(parts[1])];
    if (t && typeof t.id === "string") return { kind: "trigger", key: `${TRIGGER_PREFIX}${t.id}`, field: parts.slice(2).join("/") };
  }
  return { kind: "blueprint", key: "", field: parts.join("/") };
}

/** A small valid blueprint to start from. */
export function newBlueprintSource(id: string): string {
  return `# A new process. Triggers start runs; runs flow through the nodes from \`start\`.
id: ${id}
name: Untitled process
description: >
  Describe what this process does and who it is for.
lifecycle:
  stage: draft
start: draft

triggers:
  - kind: manual
    id: request-form
    input:
      type: object
      required: [request]
      properties:
        request: { type: string, description: What is being asked }

agents:
  assistant:
    provider: default
    model: gpt-4o-mini
    temperature: 0.3

nodes:
  - id: draft
    kind: prompt
    title: Draft an answer
    agent: assistant
    template: |
      Write a short, helpful answer to this request:

      {{ trigger.request }}
`;
}
