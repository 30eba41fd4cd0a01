import { describe, expect, it } from "vitest";
import type { BlueprintVersions, DiffEntry, StageChangeDto, VersionInfo } from "../api/types.gen";
import {
  diffSummary,
  entryTitle,
  entryView,
  foldContext,
  groupDiff,
  movePermission,
  nextMoves,
  parseRefs,
  proposePermission,
  reasonLabel,
  resolveVersion,
  rollbackPermission,
  rollbackTarget,
  unproposedFileVersion,
  versionActions,
  type Actor,
  type Move,
} from "./rules";

const gil: Actor = { name: "gil", roles: ["workflow-designer"], singleUser: false };
const gwen: Actor = { name: "gwen", roles: ["governance-lead"], singleUser: false };
const ana: Actor = { name: "ana", roles: ["hr-manager"], singleUser: false };
const solo: Actor = { name: "solo", roles: [], singleUser: true };

const version = (hash: string, stage: string | null, extra: Partial<VersionInfo> = {}): VersionInfo => ({
  version: hash,
  name: "HR onboarding",
  created_at: 1_000,
  stage,
  current_file: false,
  author: stage === null ? null : "gil",
  note: stage === null ? null : `note of ${hash}`,
  feedback: [],
  proposed_at: stage === null ? null : 2_000,
  approved_at: null,
  gate_summary: null,
  gate_passed: null,
  ...extra,
});

const change = (v: string, from: string | null, to: string, reason = "asked"): StageChangeDto => ({
  version: v,
  from,
  to,
  reason,
  by: "gwen",
  at: 3_000,
  note: null,
});

const versions = (list: VersionInfo[], history: StageChangeDto[] = []): BlueprintVersions => ({
  blueprint: "hr-onboarding",
  managed: list.some((v) => v.stage !== null),
  versions: list,
  history,
});

describe("nextMoves", () => {
  it.each<[string | null, Move[]]>([
    ["draft", ["pilot", "retired"]],
    ["pilot", ["monitored", "retired"]],
    ["monitored", ["approved", "retired"]],
    ["approved", ["retired"]],
    ["retired", []],
    [null, []],
  ])("from %s: %j", (stage, moves) => {
    expect(nextMoves(stage)).toEqual(moves);
  });
});

describe("movePermission", () => {
  // [who, author of the version, move, allowed, reason contains]
  it.each<[string, Actor, string, Move, boolean, string]>([
    ["a designer pilots their own draft", gil, "gil", "pilot", true, ""],
    ["a governance lead pilots", gwen, "gil", "pilot", true, ""],
    ["someone without a role cannot pilot", ana, "gil", "pilot", false, "one of the roles workflow-designer, governance-lead"],
    ["a designer cannot monitor", gil, "dan", "monitored", false, "the role governance-lead (gil has: workflow-designer)"],
    ["a governance lead monitors another's version", gwen, "gil", "monitored", true, ""],
    ["a governance lead cannot monitor their own", gwen, "gwen", "monitored", false, "You proposed this version"],
    ["a governance lead approves another's version", gwen, "gil", "approved", true, ""],
    ["a governance lead cannot approve their own", gwen, "gwen", "approved", false, "another governance-lead must"],
    ["the author may retire", gwen, "gwen", "retired", true, ""],
    ["a designer cannot retire", gil, "gil", "retired", false, "retire a version"],
    ["single user: roles pass", solo, "gil", "approved", true, ""],
    ["single user: the author rule holds", solo, "solo", "approved", false, "You proposed this version"],
    ["single user: the author pilots", solo, "solo", "pilot", true, ""],
  ])("%s", (_what, actor, author, move, allowed, reason) => {
    const p = movePermission({ author }, move, actor);
    expect(p.allowed).toBe(allowed);
    if (reason) expect(p.reason).toContain(reason);
    else expect(p.reason).toBe("");
  });

  it("names a missing role of a person with no roles as none", () => {
    expect(movePermission({ author: "gil" }, "approved", { name: "zoe", roles: [], singleUser: false }).reason).toBe(
      "To promote a version you need the role governance-lead (zoe has: none)",
    );
  });
});

describe("versionActions", () => {
  it("offers only the valid next steps, each with whether I may", () => {
    expect(versionActions(version("a", "monitored", { author: "gwen" }), gwen).map((a) => [a.label, a.allowed])).toEqual([
      ["Approve", false],
      ["Retire", true],
    ]);
    expect(versionActions(version("a", "draft"), gil).map((a) => [a.move, a.allowed])).toEqual([
      ["pilot", true],
      ["retired", false],
    ]);
    expect(versionActions(version("a", "retired"), gwen)).toEqual([]);
    expect(versionActions(version("a", null), gwen)).toEqual([]);
  });
});

describe("propose and rollback permissions", () => {
  it.each<[Actor, boolean, boolean]>([
    [gil, true, false],
    [gwen, true, true],
    [ana, false, false],
    [solo, true, true],
  ])("%o may propose %s, roll back %s", (actor, propose, rollback) => {
    expect(proposePermission(actor).allowed).toBe(propose);
    expect(rollbackPermission(actor).allowed).toBe(rollback);
  });
});

describe("rollbackTarget", () => {
  it("is the version approved last before the current one", () => {
    const data = versions([
      version("c", "approved", { approved_at: 30 }),
      version("b", "retired", { approved_at: 20 }),
      version("a", "retired", { approved_at: 10 }),
      version("x", "retired", { approved_at: null }),
    ]);
    expect(rollbackTarget(data)?.version).toBe("b");
  });

  it("skips versions that were themselves rolled back", () => {
    const data = versions(
      [version("a", "approved", { approved_at: 10 }), version("b", "retired", { approved_at: 20 })],
      [change("b", "approved", "retired", "rolled_back"), change("a", "retired", "approved", "restored")],
    );
    expect(rollbackTarget(data)).toBeNull();
  });

  it("skips versions approved after the current one", () => {
    const data = versions([version("a", "approved", { approved_at: 10 }), version("b", "retired", { approved_at: 20 })]);
    expect(rollbackTarget(data)).toBeNull();
  });

  it("is null without an approved version", () => {
    expect(rollbackTarget(versions([version("b", "retired", { approved_at: 20 }), version("a", "pilot")]))).toBeNull();
  });
});

describe("unproposedFileVersion", () => {
  it.each<[VersionInfo[], string | null]>([
    [[version("f", null, { current_file: true }), version("a", "approved")], "f"],
    [[version("f", "draft", { current_file: true })], null],
    [[version("a", null)], null],
  ])("%#", (list, expected) => {
    expect(unproposedFileVersion(versions(list))?.version ?? null).toBe(expected);
  });
});

describe("parseRefs", () => {
  it.each<[string, string[], string[]]>([
    ["tag:missing-deadline", [], ["tag:missing-deadline"]],
    [" a , b,,c\nd ", [], ["a", "b", "c", "d"]],
    ["b, c", ["a", "b"], ["a", "b", "c"]],
    ["   ", ["a"], ["a"]],
  ])("%j after %j", (text, existing, expected) => {
    expect(parseRefs(text, existing)).toEqual(expected);
  });
});

describe("reasonLabel", () => {
  it.each([
    ["asked", ""],
    ["superseded", "superseded"],
    ["rolled_back", "rolled back"],
    ["restored", "restored by a rollback"],
    ["something_new", "something new"],
  ])("%s → %j", (reason, label) => {
    expect(reasonLabel(reason)).toBe(label);
  });
});

const entry = (area: DiffEntry["area"], subject: string, extra: Partial<DiffEntry> = {}): DiffEntry => ({
  area,
  subject,
  field: "",
  change: "changed",
  before: null,
  after: null,
  lines: [],
  ...extra,
});

describe("the diff", () => {
  it("groups by area in the reviewer's order, keeping the engine's order inside", () => {
    const changes = [
      entry("process", "process", { field: "name" }),
      entry("graph", "edge a -> b", { change: "added" }),
      entry("policies", "node check (review)", { field: "sla/due" }),
      entry("prompts", "node draft (prompt)", { field: "template" }),
      entry("graph", "node fetch (http)", { change: "removed" }),
    ];
    expect(groupDiff(changes).map((g) => [g.label, g.entries.map((e) => e.subject)])).toEqual([
      ["Graph", ["edge a -> b", "node fetch (http)"]],
      ["Prompts", ["node draft (prompt)"]],
      ["Policies", ["node check (review)"]],
      ["Process", ["process"]],
    ]);
    expect(groupDiff([])).toEqual([]);
  });

  it.each<[string, Partial<DiffEntry>, string]>([
    ["a line diff for text over lines", { before: "a\nb", after: "a\nc", lines: [{ tag: " ", text: "a" }, { tag: "-", text: "b" }, { tag: "+", text: "c" }] }, "lines"],
    ["before → after for a value", { before: "4h", after: "8h" }, "values"],
    ["an added value", { before: null, after: "gwen", change: "added" }, "values"],
    ["a whole thing added", { change: "added" }, "whole"],
  ])("shows %s", (_what, extra, kind) => {
    expect(entryView(entry("graph", "x", extra)).kind).toBe(kind);
  });

  it("reads lines left out of the JSON as none", () => {
    const rest: Partial<DiffEntry> = entry("graph", "x", { before: "1", after: "2" });
    delete rest.lines;
    expect(entryView(rest as DiffEntry)).toEqual({ kind: "values", before: "1", after: "2" });
  });

  it("titles and summarises", () => {
    expect(entryTitle({ subject: "node draft (prompt)", field: "template" })).toBe("node draft (prompt) · template");
    expect(entryTitle({ subject: "edge a -> b", field: "" })).toBe("edge a -> b");
    expect(diffSummary([])).toBe("No changes");
    expect(diffSummary([entry("graph", "a", { change: "added" }), entry("graph", "b"), entry("graph", "c")])).toBe(
      "3 changes: 1 added, 2 changed",
    );
  });
});

describe("foldContext", () => {
  const L = (spec: string) => spec.split("").map((c, i) => ({ tag: c === "." ? " " : c, text: `l${i}` }));
  const shape = (spec: string, context = 1) =>
    foldContext(L(spec), context)
      .map((f) => (f.kind === "fold" ? `[${f.count}@${f.start}]` : f.line.tag === " " ? "." : f.line.tag))
      .join("");
  it.each([
    ["......+......", "[5@0].+.[5@8]"],
    ["..+..", "..+.."],
    ["...+...-...", "[2@0].+...-.[2@9]"],
    ["+.-", "+.-"],
    ["...+", "[2@0].+"],
    ["....", "[4@0]"],
    ["", ""],
  ])("%s → %s", (spec, expected) => {
    expect(shape(spec)).toBe(expected);
  });

  it("keeps three lines of context by default and never folds a single line", () => {
    expect(shape("..........+", 3)).toBe("[7@0]...+");
    expect(shape("....+", 3)).toBe("....+");
  });
});

describe("resolveVersion", () => {
  const list = [{ version: "abc123" }, { version: "abd456" }, { version: "ffff00" }];
  it.each([
    ["abc", "abc123"],
    ["abc123", "abc123"],
    ["ab", ""],
    ["f", "ffff00"],
    ["zzz", ""],
    ["", ""],
  ])("%j → %j", (prefix, full) => {
    expect(resolveVersion(list, prefix)).toBe(full);
  });
});
