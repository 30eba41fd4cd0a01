// Sample payloads for the dry run, made from a trigger's input schema.
import { isObj, triggerList, type Obj } from "./graph";

function example(name: string, s: Obj): unknown {
  if (s.default !== undefined) return s.default;
  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if (s.const !== undefined) return s.const;
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
  switch (type) {
    case "integer":
      return typeof s.minimum === "number" ? s.minimum : 1;
    case "number":
      return typeof s.minimum === "number" ? s.minimum : typeof s.exclusiveMinimum === "number" ? s.exclusiveMinimum + 100 : 100;
    case "boolean":
      return true;
    case "array":
      return isObj(s.items) ? [example(name, s.items)] : [];
    case "object":
      return sampleFromSchema(s);
    default:
      break;
  }
  switch (s.format) {
    case "date":
      return new Date().toISOString().slice(0, 10);
    case "date-time":
      return new Date().toISOString();
    case "email":
      return "ada.lovelace@example.com";
    case "uri":
    case "url":
      return "https://example.com";
  }
  if (typeof s.pattern === "string" && /^\^\[A-Z\]\{3\}\$$/.test(s.pattern)) return "USD";
  const text = `Example ${name.replace(/_/g, " ")}`;
  return typeof s.minLength === "number" && text.length < s.minLength ? text.padEnd(s.minLength, ".") : text;
}

/** An object with an example value for each required property (all when none are required). */
export function sampleFromSchema(schema: unknown): Obj {
  if (!isObj(schema) || !isObj(schema.properties)) return {};
  const required = Array.isArray(schema.required) ? schema.required.map(String) : Object.keys(schema.properties);
  const out: Obj = {};
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (!required.includes(name)) continue;
    out[name] = example(name, isObj(prop) ? prop : {});
  }
  return out;
}

/** The sample payload for a trigger of the blueprint (schedule: its payload and a fire time). */
export function samplePayload(bp: Obj | null, triggerId: string | null): Obj {
  const t = triggerList(bp).find((x) => x.id === triggerId);
  if (!t) return {};
  if (t.kind === "schedule") return { ...(isObj(t.payload) ? t.payload : {}), scheduled_at: new Date().toISOString() };
  return sampleFromSchema(t.input);
}

/** The trigger a dry run uses by default: the manual one, else the first. */
export function defaultTrigger(bp: Obj | null): string | null {
  const list = triggerList(bp);
  const manual = list.find((t) => t.kind === "manual");
  const t = manual ?? list[0];
  return t && typeof t.id === "string" ? t.id : null;
}
