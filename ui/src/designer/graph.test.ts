// @vitest-environment node
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseDocument, type Document } from "yaml";
import {
  addNode,
  addTrigger,
  blueprintToGraph,
  connect,
  copyNodes,
  disconnect,
  edit,
  freshId,
  newBlueprintSource,
  parseBlueprint,
  parseClipboard,
  parsePort,
  pasteNodes,
  pointerTarget,
  removeNode,
  renameInExpression,
  renameNode,
  setBlueprintField,
  setNodeField,
  templateVariables,
  toJs,
  type Obj,
} from "./graph";
import { patchSource } from "./yamlPatch";

const DIR = join(__dirname, "../../../blueprints");
const FILES = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).sort();
const read = (f: string) => readFileSync(join(DIR, f), "utf8");

/** Lines of `after` that are not in `before` and vice versa (a cheap line diff). */
function changedLines(before: string, after: string): { added: string[]; removed: string[] } {
  const a = before.split("\n");
  const b = after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length - 1;
  let endB = b.length - 1;
  while (endA >= start && endB >= start && a[endA] === b[endB]) {
    endA--;
    endB--;
  }
  return { removed: a.slice(start, endA + 1), added: b.slice(start, endB + 1) };
}

function js(source: string): Obj {
  return parse(source) as Obj;
}

function nodeById(source: string, id: string): Obj {
  const n = (js(source).nodes as Obj[]).find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

function apply<T>(source: string, op: (d: Document) => T): string {
  return edit(source, parseBlueprint(source), op).source;
}

describe("example blueprints convert to graphs", () => {
  // Counted by hand from the files: steps, triggers, edges (incl. trigger → start edges).
  const expected: Record<string, { steps: number; triggers: number; edges: number; labels: Record<string, number> }> = {
    "support-triage.yaml": {
      steps: 13,
      triggers: 1,
      edges: 19,
      labels: { outage: 2, billing: 2, technical: 2, default: 2, approved: 2, rejected: 1, exhausted: 1 },
    },
    "hr-onboarding.yaml": { steps: 7, triggers: 1, edges: 10, labels: { approved: 4, rejected: 1, exhausted: 1 } },
    "finance-invoice-review.yaml": { steps: 6, triggers: 2, edges: 7, labels: { approved: 2, rejected: 1 } },
    "legal-clause-comparison.yaml": { steps: 8, triggers: 1, edges: 10, labels: { approved: 2, rejected: 1, exhausted: 1 } },
    "ops-weekly-digest.yaml": { steps: 4, triggers: 2, edges: 4, labels: {} },
    "product-prd-drafting.yaml": { steps: 8, triggers: 1, edges: 10, labels: { approved: 2, rejected: 1, exhausted: 1 } },
    "sales-rfp-response.yaml": { steps: 8, triggers: 1, edges: 12, labels: { approved: 4, rejected: 1, exhausted: 1 } },
  };

  it("covers every example", () => {
    expect(FILES.sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(FILES)("%s", (file) => {
    const g = blueprintToGraph(parseBlueprint(read(file)));
    const want = expected[file]!;
    expect(g.steps).toHaveLength(want.steps);
    expect(g.triggers).toHaveLength(want.triggers);
    expect(g.edges).toHaveLength(want.edges);
    const labels: Record<string, number> = {};
    for (const e of g.edges) if (e.label) labels[e.label] = (labels[e.label] ?? 0) + 1;
    expect(labels).toEqual(want.labels);
    // Every edge ends at a step and leaves through a port its source offers.
    const keys = new Set(g.steps.map((s) => s.key));
    for (const e of g.edges) {
      expect(keys.has(e.target)).toBe(true);
      const src = g.steps.find((s) => s.key === e.source);
      if (src) expect(src.ports.map((p) => p.handle)).toContain(e.sourceHandle);
      else expect(e.sourceHandle).toBe("start");
    }
  });

  it("labels route rules, the default and review outcomes in support-triage", () => {
    const g = blueprintToGraph(parseBlueprint(read("support-triage.yaml")));
    const out = (src: string) => g.edges.filter((e) => e.source === src).map((e) => `${e.label ?? "-"}:${e.target}`);
    expect(out("by_category")).toEqual([
      "outage:incident",
      "outage:draft_technical",
      "billing:draft_billing",
      "technical:draft_technical",
      "default:draft_general",
    ]);
    expect(out("agent_review")).toEqual(["approved:send_reply", "approved:reply_log", "rejected:redraft"]);
    expect(out("redraft")).toContain("exhausted:manual_queue");
    expect(g.edges.find((e) => e.source === "by_category" && e.target === "draft_technical" && e.label === "outage")?.pointer).toBe(
      "/nodes/3/rules/0/to/1",
    );
    expect(g.steps.find((s) => s.isStart)?.id).toBe("config");
  });

  it("starts event triggers at their own start node", () => {
    const g = blueprintToGraph(parseBlueprint(read("ops-weekly-digest.yaml")));
    const starts = g.edges.filter((e) => e.sourceHandle === "start").map((e) => `${e.source}->${e.target}`);
    expect(starts).toEqual(["trigger:monday-morning->updates", "trigger:prd-approved->queue_prd"]);
  });

  it("draws branch paths of legal-clause-comparison", () => {
    const g = blueprintToGraph(parseBlueprint(read("legal-clause-comparison.yaml")));
    const gather = g.edges.filter((e) => e.source === "gather");
    expect(gather.map((e) => [e.sourceHandle, e.target])).toEqual([
      ["branch:0", "standard"],
      ["branch:1", "playbook"],
    ]);
  });
});

describe("round trip", () => {
  it.each(FILES)("load → save without edits is identical: %s", (file) => {
    const src = read(file);
    const doc = parseBlueprint(src);
    expect(patchSource(src, doc, doc.clone())).toBe(src);
    // An edit op that changes nothing also leaves the text alone.
    expect(edit(src, doc, () => undefined).source).toBe(src);
  });

  it.each(FILES)("a one-field edit changes one line: %s", (file) => {
    const src = read(file);
    const first = (js(src).nodes as Obj[])[0]!;
    const out = apply(src, (d) => setNodeField(d, String(first.id), ["title"], "A new title"));
    const diff = changedLines(src, out);
    expect(diff.added).toHaveLength(1);
    expect(diff.added[0]).toMatch(/title: A new title$/);
    expect(nodeById(out, String(first.id)).title).toBe("A new title");
  });

  it("keeps comments, anchors and folded text when editing elsewhere", () => {
    const src = read("support-triage.yaml");
    const out = apply(src, (d) => setNodeField(d, "agent_review", ["sla"], "8h"));
    expect(changedLines(src, out)).toEqual({ removed: ["    sla: 4h"], added: ["    sla: 8h"] });
    expect(out).toContain("template: &reply |");
    expect(out).toContain("template: *reply");
    expect(out).toContain("# Exactly one of the drafts ran; `or` picks the one with an output.");
  });
});

describe("edit operations", () => {
  const src = read("support-triage.yaml");

  it("adds a node at the end of the list, keeping the blank-line style", () => {
    let id = "";
    const doc = parseBlueprint(src);
    const res = edit(src, doc, (d) => {
      id = addNode(d, "prompt");
    });
    expect(id).toBe("draft");
    // Pure append: the old text is a prefix, and a blank line separates the new node.
    expect(res.source.startsWith(src)).toBe(true);
    expect(res.source.slice(src.length)).toMatch(/^\n {2}- id: draft\n {4}kind: prompt\n/);
    const n = nodeById(res.source, "draft");
    expect(n).toMatchObject({ kind: "prompt", agent: "triage" });
    expect(res.doc.errors).toEqual([]);
  });

  it("adds a node after another and connects it", () => {
    const out = apply(src, (d) => addNode(d, "review", { after: { source: "incident", port: { kind: "next" } } }));
    expect(nodeById(out, "incident").next).toBe("review");
    expect(nodeById(out, "review")).toMatchObject({ kind: "review", role: "reviewer", on: {} });
  });

  it("connect sets next, then extends it to a list", () => {
    let out = apply(src, (d) => connect(d, "incident", { kind: "next" }, "reply_log"));
    expect(nodeById(out, "incident").next).toBe("reply_log");
    out = apply(out, (d) => connect(d, "incident", { kind: "next" }, "manual_queue"));
    expect(nodeById(out, "incident").next).toEqual(["reply_log", "manual_queue"]);
    expect(out).toContain("next: [reply_log, manual_queue]");
    // Connecting twice is a no-op.
    expect(apply(out, (d) => connect(d, "incident", { kind: "next" }, "manual_queue"))).toBe(out);
  });

  it("connect extends a route rule's `to` and a review outcome", () => {
    let out = apply(src, (d) => connect(d, "by_category", { kind: "rule", index: 1 }, "incident"));
    expect((nodeById(out, "by_category").rules as Obj[])[1]!.to).toEqual(["draft_billing", "incident"]);
    out = apply(out, (d) => connect(d, "agent_review", { kind: "outcome", outcome: "escalated" }, "manual_queue"));
    expect(nodeById(out, "agent_review").on).toEqual({ approved: ["send_reply", "reply_log"], rejected: "redraft", escalated: "manual_queue" });
  });

  it("connects a fresh review's empty `on: {}` as a block map", () => {
    let out = apply(src, (d) => addNode(d, "review", { id: "qa" }));
    expect(out).toContain("    on: {}");
    out = apply(out, (d) => connect(d, "qa", { kind: "outcome", outcome: "approved" }, "reply_log"));
    expect(out).toMatch(/ {4}on:\n {6}approved: reply_log\n/);
  });

  it("disconnect removes one target and collapses a one-item list", () => {
    const out = apply(src, (d) => disconnect(d, "agent_review", { kind: "outcome", outcome: "approved" }, "reply_log"));
    expect(nodeById(out, "agent_review").on).toEqual({ approved: "send_reply", rejected: "redraft" });
    const out2 = apply(src, (d) => disconnect(d, "config", { kind: "next" }, "history"));
    expect(nodeById(out2, "config").next).toBeUndefined();
    // A rule keeps its condition when its last target goes.
    const out3 = apply(src, (d) => disconnect(d, "by_category", { kind: "rule", index: 1 }, "draft_billing"));
    expect((nodeById(out3, "by_category").rules as Obj[])[1]).toMatchObject({ name: "billing", to: [] });
  });

  it("removes a node and every reference to it", () => {
    const out = apply(src, (d) => removeNode(d, "draft_technical"));
    const bp = js(out);
    expect((bp.nodes as Obj[]).map((n) => n.id)).not.toContain("draft_technical");
    const rules = nodeById(out, "by_category").rules as Obj[];
    expect(rules[0]!.to).toBe("incident");
    expect(rules[2]!.to).toEqual([]);
    expect((nodeById(out, "redraft").rules as Obj[])[1]!.to).toEqual([]);
    expect(out).toContain("# Exactly one of the drafts ran");
    // The removed node's lines are gone; the untouched node before it is byte-identical.
    expect(out).toContain(src.slice(src.indexOf("  - id: draft_billing"), src.indexOf("  - id: draft_technical")));
  });

  it("removing the start node moves start to its successor", () => {
    const out = apply(src, (d) => removeNode(d, "config"));
    expect(js(out).start).toBe("history");
  });

  it("renames a node and updates edges, start and templates", () => {
    const out = apply(src, (d) => renameNode(d, "classify", "triage_step"));
    expect(nodeById(out, "history").next).toBe("triage_step");
    expect(out).not.toMatch(/\bclassify\.json/);
    expect(out).toContain("{{ triage_step.json.summary }}");
    expect((nodeById(out, "by_category").rules as Obj[])[0]!.when).toBe(
      "triage_step.json.category == 'technical' and triage_step.json.urgency == 'urgent'",
    );
    // The comment mentioning "classified" is prose, not a reference.
    expect(out).toContain("# Tier-1 triage: every new ticket is classified");
    const out2 = apply(src, (d) => renameNode(d, "config", "setup"));
    expect(js(out2).start).toBe("setup");
  });

  it("refuses invalid or taken ids on rename", () => {
    const doc = parseBlueprint(src);
    expect(() => edit(src, doc, (d) => renameNode(d, "classify", "Classify"))).toThrow(/lowercase/);
    expect(() => edit(src, doc, (d) => renameNode(d, "classify", "history"))).toThrow(/already/);
    expect(() => edit(src, doc, (d) => renameNode(d, "classify", "trigger"))).toThrow(/reserved/);
  });

  it("copy → paste makes fresh ids and keeps internal edges", () => {
    const doc = parseBlueprint(src);
    const clip = copyNodes(doc, ["draft_general", "agent_review"]);
    const nodes = parseClipboard(clip);
    expect(nodes).toHaveLength(2);
    let ids: string[] = [];
    const out = edit(src, doc, (d) => {
      ids = pasteNodes(d, nodes!);
    }).source;
    expect(ids).toEqual(["draft_general_copy", "agent_review_copy"]);
    expect(nodeById(out, "draft_general_copy").next).toBe("agent_review_copy");
    // Edges to nodes outside the copy stay; the template alias was resolved into text.
    expect(nodeById(out, "agent_review_copy").on).toEqual({ approved: ["send_reply", "reply_log"], rejected: "redraft" });
    expect(String(nodeById(out, "draft_general_copy").template)).toContain("agent_review_copy.reason");
    expect(parseClipboard("just text")).toBeNull();
  });

  it("sets, replaces and deletes fields; multi-line text becomes a literal block", () => {
    let out = apply(src, (d) => setNodeField(d, "classify", ["max_visits"], 2));
    expect(nodeById(out, "classify").max_visits).toBe(2);
    out = apply(out, (d) => setNodeField(d, "classify", ["max_visits"], undefined));
    expect(nodeById(out, "classify").max_visits).toBeUndefined();
    out = apply(out, (d) => setNodeField(d, "incident", ["title"], "line one\nline two"));
    expect(out).toContain("    title: |-\n      line one\n      line two\n");
    out = apply(out, (d) => setNodeField(d, "history", ["memory", "last"], 9));
    expect(nodeById(out, "history").memory).toEqual({ subject: "{{ trigger.customer_id }}", last: 9 });
  });

  it("editing an anchored template keeps the anchor (aliases follow)", () => {
    const out = apply(src, (d) => setNodeField(d, "draft_billing", ["template"], "Hello {{ trigger.subject }}\n"));
    expect(out).toContain("template: &reply |\n      Hello {{ trigger.subject }}\n");
    const bp = toJs(parseDocument(out))!;
    expect((bp.nodes as Obj[]).find((n) => n.id === "draft_general")!.template).toBe("Hello {{ trigger.subject }}\n");
  });

  it("connecting a trigger moves the start", () => {
    let out = apply(src, (d) => connect(d, "trigger:ticket-created", { kind: "start" }, "history"));
    expect(js(out).start).toBe("history");
    const fin = read("finance-invoice-review.yaml");
    out = apply(fin, (d) => connect(d, "trigger:invoice-form", { kind: "start" }, "check_invoice"));
    expect((js(out).triggers as Obj[])[1]!.start).toBe("check_invoice");
    expect(js(out).start).toBe("vendor_terms");
  });

  it("adds triggers with fresh ids", () => {
    const out = apply(src, (d) => {
      addTrigger(d, "schedule");
      addTrigger(d, "schedule");
    });
    const triggers = js(out).triggers as Obj[];
    expect(triggers.map((t) => t.id)).toEqual(["ticket-created", "schedule", "schedule-2"]);
    expect(out).toContain('cron: "0 9 * * MON-FRI"');
  });

  it("every op yields YAML that parses", () => {
    const ops: ((d: Document) => unknown)[] = [
      (d) => addNode(d, "branch"),
      (d) => connect(d, "branch", { kind: "new-branch" }, "incident"),
      (d) => connect(d, "branch", { kind: "new-branch" }, "reply_log"),
      (d) => disconnect(d, "branch", { kind: "branch", index: 0 }, "incident"),
      (d) => addNode(d, "output", { after: { source: "branch", port: { kind: "new-branch" } } }),
      (d) => setBlueprintField(d, ["lifecycle", "stage"], "monitored"),
      (d) => removeNode(d, "branch"),
    ];
    let cur = src;
    for (const op of ops) {
      cur = apply(cur, op);
      expect(parseDocument(cur).errors).toEqual([]);
    }
    expect(js(cur).lifecycle).toMatchObject({ stage: "monitored" });
    expect(cur.split("\n").slice(0, 20)).toEqual(src.split("\n").slice(0, 20).map((l) => l.replace("stage: pilot", "stage: monitored")));
  });
});

describe("helpers", () => {
  it("parses ports", () => {
    expect(parsePort("rule:2")).toEqual({ kind: "rule", index: 2 });
    expect(parsePort("on:rejected")).toEqual({ kind: "outcome", outcome: "rejected" });
    expect(parsePort("branch:new")).toEqual({ kind: "new-branch" });
    expect(parsePort("on:maybe")).toBeNull();
  });

  it("makes fresh ids", () => {
    expect(freshId("draft", ["draft", "draft_2"])).toBe("draft_3");
    expect(freshId("Draft Reply", [])).toBe("draft_reply");
    expect(freshId("form", ["form"], "-")).toBe("form-2");
  });

  it("renames identifiers but not string literals", () => {
    expect(renameInExpression("a.x == 'a' or a", "a", "b")).toBe("b.x == 'a' or b");
    expect(renameInExpression("ab.x + x.a", "a", "b")).toBe("ab.x + x.a");
  });

  it("maps diagnostic pointers to canvas elements", () => {
    const bp = toJs(parseBlueprint(read("support-triage.yaml")));
    expect(pointerTarget(bp, "/nodes/2/template")).toEqual({ kind: "node", key: "classify", field: "template" });
    expect(pointerTarget(bp, "/triggers/0/input")).toEqual({ kind: "trigger", key: "trigger:ticket-created", field: "input" });
    expect(pointerTarget(bp, "/start").kind).toBe("blueprint");
  });

  it("offers trigger fields, vars and earlier outputs to templates", () => {
    const bp = toJs(parseBlueprint(read("support-triage.yaml")));
    const labels = templateVariables(bp, "agent_review").map((v) => v.label);
    expect(labels).toContain("trigger.ticket_id");
    expect(labels).toContain("vars.helpdesk_url");
    expect(labels).toContain("classify.json.urgency");
    expect(labels).toContain("draft_billing.text");
    // Nodes that only run later are not offered.
    expect(labels).not.toContain("send_reply.status");
  });

  it("the new-blueprint template is valid YAML with one node", () => {
    const g = blueprintToGraph(parseBlueprint(newBlueprintSource("untitled")));
    expect(g.steps.map((s) => s.id)).toEqual(["draft"]);
    expect(g.edges).toHaveLength(1);
  });
});

describe("minimal diffs under many edits", () => {
  // A small deterministic PRNG so failures reproduce.
  function rng(seed: number) {
    let x = seed;
    return () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648;
    };
  }

  it.each(FILES)("comments and folded text survive 25 random edits: %s", (file) => {
    const src = read(file);
    const comments = src.split("\n").filter((l) => l.trim().startsWith("#"));
    const folded = src.split("\n").filter((_, i, all) => i > 0 && /: >$/.test(all[i - 1]!)).slice(0, 1);
    const rand = rng(file.length * 7919);
    let cur = src;
    for (let i = 0; i < 25; i++) {
      const ids = (js(cur).nodes as Obj[]).map((n) => String(n.id));
      const pick = () => ids[Math.floor(rand() * ids.length)]!;
      const a = pick();
      const b = pick();
      const choice = Math.floor(rand() * 6);
      const res = edit(cur, parseBlueprint(cur), (d) => {
        if (choice === 0) setNodeField(d, a, ["title"], `Step ${i}`);
        else if (choice === 1 && a !== b) connect(d, a, { kind: "exhausted" }, b);
        else if (choice === 2) setNodeField(d, a, ["max_visits"], i + 1);
        else if (choice === 3) addNode(d, i % 2 ? "transform" : "output", { after: { source: a, port: { kind: "exhausted" } } });
        else if (choice === 4) renameNode(d, a, `${a}_r${i}`);
        else setNodeField(d, a, ["max_visits"], undefined);
      });
      cur = res.source;
      expect(res.doc.errors).toEqual([]);
      // The text means exactly what the edited document means.
      expect(toJs(parseDocument(cur))).toEqual(toJs(res.doc));
    }
    for (const c of comments) expect(cur).toContain(c);
    for (const f of folded) expect(cur).toContain(f);
  });
});

