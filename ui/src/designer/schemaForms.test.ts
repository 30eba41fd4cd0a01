// @vitest-environment node
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { STEP_KINDS, TRIGGER_KINDS, type Obj } from "./graph";
import { defaultTrigger, sampleFromSchema, samplePayload } from "./payload";
import { blueprintFields, fieldProblem, nodeKinds, nodeKindSpec, triggerKinds, type FieldSpec, type Schema } from "./schemaForms";

const ROOT = join(__dirname, "../../../blueprints");
const schema = JSON.parse(readFileSync(join(ROOT, "schema.json"), "utf8")) as Schema;

function field(kind: string, name: string): FieldSpec {
  const f = nodeKindSpec(schema, kind)?.fields.find((x) => x.name === name);
  if (!f) throw new Error(`${kind}.${name} not derived`);
  return f;
}

describe("forms derived from schema.json", () => {
  it("has a form for every node and trigger kind of the schema", () => {
    expect(nodeKinds(schema).map((k) => k.kind).sort()).toEqual([...STEP_KINDS].sort());
    expect(triggerKinds(schema).map((k) => k.kind).sort()).toEqual([...TRIGGER_KINDS].sort());
  });

  it("picks an editor per field type", () => {
    expect(field("prompt", "template")).toMatchObject({ kind: "template", required: true });
    expect(field("prompt", "agent").kind).toBe("agent");
    expect(field("prompt", "fallbacks").kind).toBe("agents");
    expect(field("prompt", "output_schema").kind).toBe("json");
    expect(field("prompt", "next").kind).toBe("next");
    expect(field("retrieve", "top_k")).toMatchObject({ kind: "integer", default: 5, minimum: 0 });
    expect(field("retrieve", "memory").kind).toBe("object");
    expect(field("retrieve", "memory").fields?.map((f) => `${f.name}:${f.kind}`)).toEqual(["last:integer", "subject:template"]);
    expect(field("route", "rules").kind).toBe("rules");
    expect(field("branch", "branches").kind).toBe("branches");
    expect(field("review", "on").kind).toBe("outcomes");
    expect(field("review", "escalate_when").kind).toBe("expression");
    expect(field("review", "distinct_approvers").kind).toBe("boolean");
    expect(field("review", "escalation").kind).toBe("strings");
    expect(field("review", "actions")).toMatchObject({ kind: "enums" });
    expect(field("review", "actions").options?.map((o) => o.value)).toEqual(["approve", "edit", "reject", "escalate"]);
    expect(field("review", "on_breach")).toMatchObject({ kind: "enum", nullable: true });
    expect(field("transform", "set").kind).toBe("map");
    expect(field("output", "http").fields?.find((f) => f.name === "url")?.kind).toBe("template");
    // Positions are never edited as fields (they live in localStorage).
    expect(nodeKindSpec(schema, "prompt")?.fields.some((f) => f.name === "layout" || f.name === "kind")).toBe(false);
  });

  it("derives blueprint-level fields with the lifecycle stage as a select", () => {
    const fields = blueprintFields(schema);
    expect(fields.map((f) => f.name)).toEqual(expect.arrayContaining(["id", "name", "start", "description", "lifecycle"]));
    const stage = fields.find((f) => f.name === "lifecycle")?.fields?.find((f) => f.name === "stage");
    expect(stage?.options?.map((o) => o.value)).toEqual(["draft", "pilot", "monitored", "approved", "retired"]);
  });
});

describe("inspector field validation", () => {
  const id = field("prompt", "id");
  const taken = ["classify", "history"];

  it.each([
    ["draft_reply", null],
    ["a1", null],
    ["Draft", /lowercase/],
    ["1draft", /lowercase/],
    ["draft-reply", /lowercase/],
    ["draft reply", /lowercase/],
    ["", /required/],
    ["trigger", /reserved/],
    ["vars", /reserved/],
    ["classify", /already/],
    ["x".repeat(65), /64/],
  ])("node id %j", (value, want) => {
    const p = fieldProblem(id, value, { owner: "node", taken });
    if (want === null) expect(p).toBeNull();
    else expect(p).toMatch(want);
  });

  it("trigger ids may use dashes, blueprint ids only dashes", () => {
    expect(fieldProblem(id, "new-hire", { owner: "trigger", taken: [] })).toBeNull();
    expect(fieldProblem(id, "new-hire", { owner: "trigger", taken: ["new-hire"] })).toMatch(/already/);
    expect(fieldProblem(id, "hr-onboarding", { owner: "blueprint" })).toBeNull();
    expect(fieldProblem(id, "hr_onboarding", { owner: "blueprint" })).toMatch(/lowercase/);
  });

  it("requires required fields", () => {
    expect(fieldProblem(field("prompt", "template"), "", { owner: "node" })).toBe("Template is required.");
    expect(fieldProblem(field("review", "role"), "", { owner: "node" })).toBe("Role is required.");
    expect(fieldProblem(field("prompt", "system"), "", { owner: "node" })).toBeNull();
  });

  it("checks numbers, durations, cron and templates", () => {
    expect(fieldProblem(field("retrieve", "top_k"), 2.5, { owner: "node" })).toMatch(/whole number/);
    expect(fieldProblem(field("retrieve", "top_k"), -1, { owner: "node" })).toMatch(/At least 0/);
    expect(fieldProblem(field("prompt", "max_visits"), 0, { owner: "node" })).toMatch(/At least 1/);
    expect(fieldProblem(field("review", "sla"), "4 hours", { owner: "node" })).toMatch(/30m, 4h, 2d or 1w/);
    expect(fieldProblem(field("review", "sla"), "4h", { owner: "node" })).toBeNull();
    expect(fieldProblem(field("prompt", "template"), "Hi {{ trigger.name }", { owner: "node" })).toMatch(/Unbalanced/);
    const cron = triggerKinds(schema).find((k) => k.kind === "schedule")!.fields.find((f) => f.name === "cron")!;
    expect(fieldProblem(cron, "0 9 * *", { owner: "trigger" })).toMatch(/5 fields/);
    expect(fieldProblem(cron, "0 9 * * MON-FRI", { owner: "trigger" })).toBeNull();
  });
});

describe("dry-run payloads", () => {
  const bp = (f: string) => parse(readFileSync(join(ROOT, f), "utf8")) as Obj;

  it("fills the required fields of the trigger's input with examples", () => {
    const p = samplePayload(bp("finance-invoice-review.yaml"), "invoice-form");
    expect(Object.keys(p).sort()).toEqual(["amount", "currency", "due_date", "invoice_number", "vendor"]);
    expect(p.currency).toBe("USD");
    expect(typeof p.amount).toBe("number");
    expect(p.amount as number).toBeGreaterThan(0);
    expect(p.due_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it("uses enums, formats and minLength", () => {
    const p = sampleFromSchema({
      type: "object",
      required: ["kind", "email", "text"],
      properties: { kind: { enum: ["a", "b"] }, email: { type: "string", format: "email" }, text: { type: "string", minLength: 30 }, extra: { type: "string" } },
    });
    expect(p.kind).toBe("a");
    expect(p.email).toMatch(/@/);
    expect(String(p.text).length).toBeGreaterThanOrEqual(30);
    expect("extra" in p).toBe(false);
  });

  it("prefers the manual trigger; schedules get their payload and a fire time", () => {
    expect(defaultTrigger(bp("finance-invoice-review.yaml"))).toBe("invoice-form");
    const digest = samplePayload(bp("ops-weekly-digest.yaml"), "monday-morning");
    expect(digest.period).toBe("last 7 days");
    expect(typeof digest.scheduled_at).toBe("string");
  });
});
