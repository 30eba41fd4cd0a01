// The start-run payload: a starting point generated from the trigger's JSON Schema, and the
// checks run before sending. The engine validates again; these catch typos early and say
// where. Only common keywords are checked; unknown ones are ignored (never stricter than
// the engine on purpose).
import type { JsonValue } from "../api/types.gen";

type Schema = { [key: string]: JsonValue };

function asSchema(value: JsonValue | null | undefined): Schema | null {
  return value && typeof value === "object" && !Array.isArray(value) ? value : null;
}

function typeOf(schema: Schema): string | null {
  const t = schema.type;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) return (t.find((x) => typeof x === "string" && x !== "null") as string | undefined) ?? null;
  if (schema.properties) return "object";
  return null;
}

function today(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/**
 * A payload that shows the shape the trigger expects: required fields (all fields when none
 * are required) with placeholder values the person then edits.
 */
export function exampleFromSchema(input: JsonValue | null | undefined, now = new Date()): JsonValue {
  const schema = asSchema(input);
  if (!schema) return {};
  if ("default" in schema && schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0] ?? null;
  if ("const" in schema && schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0] ?? null;
  switch (typeOf(schema)) {
    case "object": {
      const props = asSchema(schema.properties) ?? {};
      const required = Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === "string") : [];
      const keys = required.length > 0 ? required : Object.keys(props);
      const out: { [key: string]: JsonValue } = {};
      for (const key of keys) out[key] = exampleFromSchema(props[key], now);
      return out;
    }
    case "array":
      return [];
    case "string":
      switch (schema.format) {
        case "date":
          return today(now);
        case "date-time":
          return now.toISOString();
        case "email":
          return "name@example.com";
        case "uri":
        case "url":
          return "https://example.com";
        default:
          return "";
      }
    case "integer":
    case "number": {
      if (typeof schema.minimum === "number") return schema.minimum;
      if (typeof schema.exclusiveMinimum === "number") return schema.exclusiveMinimum + 1;
      return 0;
    }
    case "boolean":
      return false;
    case "null":
      return null;
    default:
      return "";
  }
}

/** Optional fields left out of the example, to list them next to the editor. */
export function optionalFields(input: JsonValue | null | undefined): string[] {
  const schema = asSchema(input);
  const props = asSchema(schema?.properties);
  if (!schema || !props) return [];
  const required = Array.isArray(schema.required) ? schema.required : [];
  if (required.length === 0) return [];
  return Object.keys(props).filter((k) => !required.includes(k));
}

export type PayloadCheck =
  | { ok: true; value: JsonValue }
  | { ok: false; syntax: boolean; errors: string[] };

/** "Line 3, column 5" from the position V8 puts in JSON.parse errors. */
function locate(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return message;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  const column = pos - before.lastIndexOf("\n");
  const reason = message.replace(/\s*in JSON at position \d+.*$/, "").replace(/ \(line \d+ column \d+\)$/, "");
  return `Line ${line}, column ${column}: ${reason}`;
}

function jsonType(value: JsonValue): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function matchesType(value: JsonValue, type: string): boolean {
  const actual = jsonType(value);
  return actual === type || (type === "number" && actual === "integer");
}

/** Schema problems of `value`, as "field: what is wrong". */
export function schemaErrors(value: JsonValue, input: JsonValue | null | undefined, path = ""): string[] {
  const schema = asSchema(input);
  if (!schema) return [];
  const at = path || "payload";
  const errors: string[] = [];
  const types = typeof schema.type === "string" ? [schema.type] : Array.isArray(schema.type) ? schema.type.filter((t): t is string => typeof t === "string") : [];
  if (types.length > 0 && !types.some((t) => matchesType(value, t))) {
    return [`${at}: should be ${types.join(" or ")}, not ${jsonType(value)}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${at}: should be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) {
      errors.push(schema.minLength === 1 ? `${at}: should not be empty` : `${at}: should have at least ${schema.minLength} characters`);
    }
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) {
      errors.push(`${at}: should have at most ${schema.maxLength} characters`);
    }
    if (typeof schema.pattern === "string") {
      let re: RegExp | null;
      try {
        re = new RegExp(schema.pattern, "u");
      } catch {
        re = null; // A pattern JavaScript cannot read is left to the engine.
      }
      if (re && !re.test(value)) errors.push(`${at}: should match ${schema.pattern}`);
    }
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${at}: should be at least ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${at}: should be at most ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) {
      errors.push(`${at}: should be greater than ${schema.exclusiveMinimum}`);
    }
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) {
      errors.push(`${at}: should be less than ${schema.exclusiveMaximum}`);
    }
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const props = asSchema(schema.properties) ?? {};
    if (Array.isArray(schema.required)) {
      for (const key of schema.required) {
        if (typeof key === "string" && !(key in value)) errors.push(`${path ? `${path}.` : ""}${key}: is required`);
      }
    }
    for (const [key, child] of Object.entries(value)) {
      if (key in props) errors.push(...schemaErrors(child, props[key], path ? `${path}.${key}` : key));
      else if (schema.additionalProperties === false) errors.push(`${path ? `${path}.` : ""}${key}: is not a known field`);
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => errors.push(...schemaErrors(item, schema.items, `${at}[${i}]`)));
  }
  return errors;
}

/** Parse the editor's text and check it against the trigger's schema. */
export function checkPayload(text: string, schema: JsonValue | null | undefined): PayloadCheck {
  if (text.trim() === "") return { ok: false, syntax: true, errors: ["The payload is empty; write {} for none."] };
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (e) {
    return { ok: false, syntax: true, errors: [locate(text, e instanceof Error ? e.message : String(e))] };
  }
  const errors = schemaErrors(value, schema);
  return errors.length > 0 ? { ok: false, syntax: false, errors } : { ok: true, value };
}
