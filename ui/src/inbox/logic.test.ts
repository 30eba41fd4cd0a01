import { describe, expect, it } from "vitest";
import type { TaskSummary } from "../api/types.gen";
import { commonReasons, composeReason, nextRole, reasonAllowed } from "./decisions";
import { applyFilters, DEFAULT_FILTERS, facet, MINE, parseFilters, sameFilters, type InboxFilters } from "./filters";
import { pollInterval } from "./data";
import { sla } from "./sla";

const NOW = new Date(2025, 6, 1, 12, 0, 0).getTime();
const H = 3_600_000;

function task(over: Partial<TaskSummary> & { id: string }): TaskSummary {
  return {
    run_id: "r",
    blueprint: "support-triage",
    version: "v1",
    node: "review",
    title: over.id,
    role: "support-agent",
    status: "pending",
    created_at: NOW - H,
    due_at: null,
    decided_at: null,
    draft: "",
    decision: null,
    attention: false,
    breached_at: null,
    claimed_by: null,
    sync: null,
    owner: null,
    ...over,
  };
}

const tasks = [
  task({ id: "overdue", due_at: NOW - 5 * 60_000 }),
  task({ id: "breached", due_at: NOW + H, breached_at: NOW - 60_000, role: "support-lead" }),
  task({ id: "today", due_at: NOW + 2 * H, blueprint: "sales" }),
  task({ id: "tomorrow", due_at: NOW + 24 * H, role: "sales-lead", blueprint: "sales" }),
  task({ id: "undated", claimed_by: "alice", role: "legal", sync: "conflict" }),
];
const me = { name: "alice", roles: ["support-agent"], singleUser: false };
const run = (f: Partial<InboxFilters>, who = me) => applyFilters(tasks, { ...DEFAULT_FILTERS, ...f }, NOW, who).map((t) => t.id);

describe("applyFilters", () => {
  it.each([
    ["no client-side filter keeps everything", {}, ["overdue", "breached", "today", "tomorrow", "undated"]],
    ["overdue: past due or breached", { due: "overdue" as const }, ["overdue", "breached"]],
    ["due today: later today, not breached", { due: "today" as const }, ["today"]],
    ["blueprint", { blueprint: "sales" }, ["today", "tomorrow"]],
    ["a role", { role: "sales-lead" }, ["tomorrow"]],
    ["mine: my roles or claimed by me", { role: MINE }, ["overdue", "today", "undated"]],
    ["filters combine", { blueprint: "sales", due: "today" as const }, ["today"]],
    ["conflicts: a decision on it lost on the hub", { conflicts: true }, ["undated"]],
  ])("%s", (_name, f, expected) => {
    expect(run(f)).toEqual(expected);
  });

  it("mine is everything in a single-user installation", () => {
    expect(run({ role: MINE }, { ...me, singleUser: true })).toHaveLength(5);
  });
});

describe("filters helpers", () => {
  it("facet counts values, most frequent first", () => {
    expect(facet(tasks, "blueprint")).toEqual([
      ["support-triage", 3],
      ["sales", 2],
    ]);
  });

  it("parseFilters survives junk from localStorage", () => {
    expect(parseFilters({ status: "bogus", due: 3, blueprint: 7, q: "x" })).toEqual({ ...DEFAULT_FILTERS, q: "x" });
    expect(parseFilters(null)).toEqual(DEFAULT_FILTERS);
  });

  it("sameFilters ignores surrounding spaces in the search", () => {
    expect(sameFilters({ ...DEFAULT_FILTERS, q: " invoice " }, { ...DEFAULT_FILTERS, q: "invoice" })).toBe(true);
    expect(sameFilters(DEFAULT_FILTERS, { ...DEFAULT_FILTERS, role: MINE })).toBe(false);
    expect(sameFilters(DEFAULT_FILTERS, { ...DEFAULT_FILTERS, conflicts: true })).toBe(false);
  });
});

describe("sla chips", () => {
  it.each([
    ["no due date: no chip", { due_at: null }, null],
    ["hours left: neutral", { due_at: NOW + 3 * H + 12 * 60_000 }, { tone: "neutral", label: "3h 12m" }],
    ["under an hour: warn", { due_at: NOW + 42 * 60_000 }, { tone: "warn", label: "42m" }],
    ["past due: danger", { due_at: NOW - 4 * 60_000 }, { tone: "danger", label: "4m over" }],
    ["breached: danger even if due_at moved", { due_at: NOW + H, breached_at: NOW - 2 * H }, { tone: "danger", label: "2h 0m over" }],
    ["days left", { due_at: NOW + 50 * H }, { tone: "neutral", label: "2d 2h" }],
    ["decided: the clock no longer matters", { due_at: NOW - H, status: "decided" }, null],
  ])("%s", (_name, over, expected) => {
    const chip = sla(task({ id: "x", ...over }), NOW);
    if (expected === null) expect(chip).toBeNull();
    else expect(chip).toMatchObject(expected);
  });
});

describe("decision rules", () => {
  it.each([
    ["reason and words", "Tone", "too formal", "Tone: too formal"],
    ["reason alone", "Tone", "  ", "Tone"],
    ["words alone", null, "wrong customer", "wrong customer"],
    ["nothing", null, "", ""],
  ])("composeReason: %s", (_name, picked, note, expected) => {
    expect(composeReason(picked, note)).toBe(expected);
  });

  it.each([
    ["starts with a listed reason", "tone: too formal", ["Tone"], true],
    ["free text when the review lists none", "anything", [], true],
    ["free text when the review lists some", "anything", ["Tone"], false],
    ["empty", "  ", [], false],
  ])("reasonAllowed: %s", (_name, reason, reasons, expected) => {
    expect(reasonAllowed(reason, reasons)).toBe(expected);
  });

  it("commonReasons intersects batch reviews, null when they share none", () => {
    expect(commonReasons([["A", "B"], ["b", "C"]])).toEqual(["B"]);
    expect(commonReasons([["A"], ["C"]])).toBeNull();
    expect(commonReasons([[], []])).toEqual([]);
  });

  it("nextRole continues the chain after the current role", () => {
    const d = (role: string, escalation: string[]) => ({ task: task({ id: "x", role }), escalation });
    expect(nextRole(d("support-agent", ["support-lead", "manager"]))).toBe("support-lead");
    expect(nextRole(d("support-lead", ["support-lead", "manager"]))).toBe("manager");
    expect(nextRole(d("manager", ["support-lead", "manager"]))).toBeNull();
  });

  it("big inboxes poll less often", () => {
    expect(pollInterval(100)).toBe(5_000);
    expect(pollInterval(100_000)).toBeGreaterThan(5_000);
  });
});
