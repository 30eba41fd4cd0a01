// Form descriptions derived from the blueprint JSON Schema (schema.json / api.blueprintSchema()).
// Pure: the inspector renders these; tests check them against the committed schema.
import { blueprintIdProblem, nodeIdProblem, triggerIdProblem } from "./graph";

export type Schema = Record<string, unknown>;

export type FieldKind =
  | "id"
  | "text"
  | "template"
  | "expression"
  | "integer"
  | "number"
  | "boolean"
  | "enum"
  | "strings"
  | "enums"
  | "next"
  | "map"
  | "object"
  | "json"
  | "rules"
  | "branches"
  | "outcomes"
  | "agent"
  | "agents";

export interface Option {
  value: string;
  description: string;
}

export interface FieldSpec {
  name: string;
  kind: FieldKind;
  label: string;
  description: string;
  required: boolean;
  nullable: boolean;
  options?: Option[];
  minimum?: number;
  default?: unknown;
  /** For `object`: the nested fields. */
  fields?: FieldSpec[];
}

export interface KindSpec {
  kind: string;
  description: string;
  fields: FieldSpec[];
}

function obj(v: unknown): Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Schema) : {};
}

function resolve(root: Schema, s: Schema): Schema {
  const ref = s.$ref;
  if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
    const target = obj(obj(root.$defs)[ref.slice("#/$defs/".length)]);
    // Keep the property's own description over the definition's.
    return { ...target, ...(s.description ? { description: s.description } : {}), $refName: ref.slice(8) };
  }
  return s;
}

/** Unwrap `anyOf: [X, null]` and `type: [t, "null"]`. */
function unwrap(root: Schema, s: Schema): { schema: Schema; nullable: boolean } {
  let schema = resolve(root, s);
  let nullable = false;
  if (Array.isArray(schema.anyOf)) {
    const parts = schema.anyOf.map(obj);
    const nonNull = parts.filter((p) => p.type !== "null");
    if (nonNull.length === 1 && parts.length === 2) {
      nullable = true;
      schema = { ...resolve(root, nonNull[0]!), description: schema.description ?? resolve(root, nonNull[0]!).description };
    }
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t) => t !== "null");
    if (types.length !== schema.type.length) nullable = true;
    schema = { ...schema, type: types.length === 1 ? types[0] : types };
  }
  return { schema, nullable };
}

function enumOptions(s: Schema): Option[] | null {
  if (Array.isArray(s.enum)) return s.enum.map((v) => ({ value: String(v), description: "" }));
  if (Array.isArray(s.oneOf) && s.oneOf.every((x) => obj(x).const !== undefined)) {
    return s.oneOf.map((x) => ({ value: String(obj(x).const), description: String(obj(x).description ?? "") }));
  }
  return null;
}

const LABELS: Record<string, string> = {
  sla: "SLA",
  top_k: "Top K",
  url: "URL",
  http: "HTTP",
  utc_offset: "UTC offset",
  secret_env: "Secret (env var)",
  on_breach: "When the SLA runs out",
  auto_approve_when: "Auto-approve when",
  not_by: "Not decided by",
  max_visits: "Max visits",
  on_exhausted: "When exhausted, go to",
  next: "Next",
};

export function humanize(name: string): string {
  if (LABELS[name]) return LABELS[name];
  const s = name.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const TEMPLATE_HINT = /\((template|templates)\)|values are templates|\(template\);/i;
const EXPRESSION_HINT = /\(expression\)/i;

function fieldSpec(root: Schema, name: string, raw: Schema, required: boolean): FieldSpec | null {
  if (name === "kind" || name === "layout") return null;
  const { schema, nullable } = unwrap(root, raw);
  const description = String(schema.description ?? raw.description ?? "");
  const base = { name, label: humanize(name), description, required, nullable, default: schema.default };
  const refName = typeof schema.$refName === "string" ? schema.$refName : null;
  if (refName === "Next") return { ...base, kind: "next" };
  if (name === "id") return { ...base, kind: "id" };
  if (name === "rules") return { ...base, kind: "rules" };
  if (name === "branches") return { ...base, kind: "branches" };
  if (refName === "ReviewEdges") return { ...base, kind: "outcomes" };
  const options = enumOptions(schema);
  if (options) return { ...base, kind: "enum", options };
  const type = schema.type;
  if (type === undefined && !schema.properties) return { ...base, kind: "json" };
  if (type === "boolean") return { ...base, kind: "boolean" };
  if (type === "integer") return { ...base, kind: "integer", minimum: typeof schema.minimum === "number" ? schema.minimum : undefined };
  if (type === "number") return { ...base, kind: "number" };
  if (type === "array") {
    const items = resolve(root, obj(schema.items));
    const opts = enumOptions(items);
    if (opts) return { ...base, kind: "enums", options: opts };
    return { ...base, kind: "strings" };
  }
  if (type === "object") {
    if (schema.properties) {
      const req = Array.isArray(schema.required) ? schema.required.map(String) : [];
      const fields = Object.entries(obj(schema.properties)).flatMap(([k, v]) => {
        const f = fieldSpec(root, k, obj(v), req.includes(k));
        return f ? [f] : [];
      });
      return { ...base, kind: "object", fields };
    }
    return { ...base, kind: "map" };
  }
  if (type === "string") {
    if (TEMPLATE_HINT.test(description)) return { ...base, kind: "template" };
    if (EXPRESSION_HINT.test(description)) return { ...base, kind: "expression" };
    return { ...base, kind: "text" };
  }
  return { ...base, kind: "json" };
}

function kindSpecs(root: Schema, defName: "Node" | "Trigger"): KindSpec[] {
  const variants = obj(obj(root.$defs)[defName]).oneOf;
  if (!Array.isArray(variants)) return [];
  return variants.map((v) => {
    const s = obj(v);
    const props = obj(s.properties);
    const kind = String(obj(props.kind).const ?? "?");
    const req = Array.isArray(s.required) ? s.required.map(String) : [];
    const fields = Object.entries(props).flatMap(([name, p]) => {
      const f = fieldSpec(root, name, obj(p), req.includes(name));
      if (!f) return [];
      // A few fields get richer editors than their JSON type suggests.
      if (defName === "Node" && kind === "prompt" && name === "agent") return [{ ...f, kind: "agent" as const }];
      if (defName === "Node" && kind === "prompt" && name === "fallbacks") return [{ ...f, kind: "agents" as const }];
      if (defName === "Node" && name === "template") return [{ ...f, kind: "template" as const }];
      return [f];
    });
    return { kind, description: String(s.description ?? ""), fields };
  });
}

export function nodeKinds(schema: Schema): KindSpec[] {
  return kindSpecs(schema, "Node");
}

export function triggerKinds(schema: Schema): KindSpec[] {
  return kindSpecs(schema, "Trigger");
}

export function nodeKindSpec(schema: Schema, kind: string): KindSpec | null {
  return nodeKinds(schema).find((k) => k.kind === kind) ?? null;
}

export function triggerKindSpec(schema: Schema, kind: string): KindSpec | null {
  return triggerKinds(schema).find((k) => k.kind === kind) ?? null;
}

/** Top-level blueprint fields (name, description, start, domain, lifecycle…). */
export function blueprintFields(schema: Schema): FieldSpec[] {
  const req = Array.isArray(schema.required) ? schema.required.map(String) : [];
  return Object.entries(obj(schema.properties)).flatMap(([name, p]) => {
    if (name === "nodes" || name === "triggers" || name === "agents") return [];
    const f = fieldSpec(schema, name, obj(p), req.includes(name));
    return f ? [f] : [];
  });
}

// ---------------------------------------------------------------------------------------------
// Validation of a field's value as the user types (the server validator has the last word).

export interface FieldContext {
  /** What is being edited: ids follow different rules. */
  owner: "node" | "trigger" | "blueprint";
  /** Ids already taken by others (for `id`). */
  taken?: string[];
}

const DURATION = /^\d+\s*[mhdw]$/;
const DURATION_FIELDS = new Set(["sla", "remind_before"]);

export function fieldProblem(spec: FieldSpec, value: unknown, ctx: FieldContext): string | null {
  const empty = value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0 && spec.kind !== "strings");
  if (spec.kind === "id") {
    const id = typeof value === "string" ? value : "";
    if (ctx.owner === "node") return nodeIdProblem(id, ctx.taken ?? []);
    if (ctx.owner === "trigger") return triggerIdProblem(id, ctx.taken ?? []);
    return blueprintIdProblem(id);
  }
  if (empty) return spec.required && spec.kind !== "next" && spec.kind !== "outcomes" && spec.kind !== "map" ? `${spec.label} is required.` : null;
  switch (spec.kind) {
    case "integer": {
      const n = typeof value === "number" ? value : Number(value);
      if (!Number.isInteger(n)) return "Enter a whole number.";
      if (spec.minimum !== undefined && n < spec.minimum) return `At least ${spec.minimum}.`;
      if (spec.name === "max_visits" && n < 1) return "At least 1.";
      return null;
    }
    case "number": {
      const n = typeof value === "number" ? value : Number(value);
      if (!Number.isFinite(n)) return "Enter a number.";
      if (spec.name === "temperature" && (n < 0 || n > 2)) return "Use a value from 0 to 2.";
      return null;
    }
    case "enum":
      return spec.options && !spec.options.some((o) => o.value === value) ? `Pick one of ${spec.options.map((o) => o.value).join(", ")}.` : null;
    case "text":
    case "template":
    case "expression": {
      const s = String(value);
      if (DURATION_FIELDS.has(spec.name) && !DURATION.test(s.trim())) return "Write a number and a unit: 30m, 4h, 2d or 1w.";
      if (spec.name === "cron") {
        const parts = s.trim().split(/\s+/);
        if (parts.length < 5 || parts.length > 6) return "A cron expression has 5 fields (or 6 with seconds), e.g. 0 9 * * MON-FRI.";
      }
      if (spec.kind === "template") {
        const opens = (s.match(/\{\{/g) ?? []).length;
        const closes = (s.match(/\}\}/g) ?? []).length;
        if (opens !== closes) return "Unbalanced {{ }} in the template.";
      }
      return null;
    }
    default:
      return null;
  }
}
