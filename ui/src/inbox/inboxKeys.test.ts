import { describe, expect, it } from "vitest";
import {
  inboxKeys,
  isTypingTarget,
  nextAfter,
  selectRange,
  type InboxKeyState,
  type KeyContext,
  type KeyInput,
} from "./inboxKeys";

const ids = ["t1", "t2", "t3", "t4"];
const at = (focusedId: string | null, selected: string[] = [], anchorId: string | null = null): InboxKeyState => ({
  focusedId,
  selected: new Set(selected),
  anchorId,
});
const ctx = (over: Partial<KeyContext> = {}): KeyContext => ({ ids, typing: false, ...over });
const key = (k: string, mods: Partial<KeyInput> = {}): KeyInput => ({ key: k, ...mods });

describe("inboxKeys: moving focus", () => {
  it.each([
    ["j moves down", at("t1"), key("j"), "t2"],
    ["ArrowDown moves down", at("t2"), key("ArrowDown"), "t3"],
    ["k moves up", at("t3"), key("k"), "t2"],
    ["ArrowUp moves up", at("t2"), key("ArrowUp"), "t1"],
    ["j stops at the last row", at("t4"), key("j"), "t4"],
    ["k stops at the first row", at("t1"), key("k"), "t1"],
    ["j from nowhere starts at the top", at(null), key("j"), "t1"],
    ["k from nowhere starts at the bottom", at(null), key("k"), "t4"],
    ["j from a task outside the list starts at the top", at("gone"), key("j"), "t1"],
  ])("%s", (_name, state, input, expected) => {
    const r = inboxKeys(state, input, ctx());
    expect(r.handled).toBe(true);
    expect(r.effect).toEqual({ type: "focus", id: expected });
    expect(r.state.focusedId).toBe(expected);
  });

  it("does nothing useful on an empty list but still owns the key", () => {
    const r = inboxKeys(at(null), key("j"), ctx({ ids: [] }));
    expect(r.effect).toEqual({ type: "none" });
    expect(r.handled).toBe(true);
  });

  it("shift+j extends the selection from the focused row", () => {
    const first = inboxKeys(at("t1"), key("J", { shiftKey: true }), ctx());
    expect([...first.state.selected].sort()).toEqual(["t1", "t2"]);
    const second = inboxKeys(first.state, key("J", { shiftKey: true }), ctx());
    expect([...second.state.selected].sort()).toEqual(["t1", "t2", "t3"]);
    expect(second.state.focusedId).toBe("t3");
    expect(second.state.anchorId).toBe("t1");
  });
});

describe("inboxKeys: decisions and selection", () => {
  it.each([
    ["a approves the focused task", at("t2"), key("a"), { type: "decide", action: "approve", ids: ["t2"] }],
    [
      "a approves every selected task, in list order",
      at("t1", ["t3", "t1"]),
      key("a"),
      { type: "decide", action: "approve", ids: ["t1", "t3"] },
    ],
    ["shift+x escalates the focused task", at("t2"), key("X", { shiftKey: true }), { type: "decide", action: "escalate", ids: ["t2"] }],
    ["shift+x escalates the selection", at("t1", ["t2", "t4"]), key("X", { shiftKey: true }), { type: "decide", action: "escalate", ids: ["t2", "t4"] }],
    ["r rejects the focused task", at("t3"), key("r"), { type: "reject", ids: ["t3"] }],
    ["r rejects the selection", at("t3", ["t1", "t2"]), key("r"), { type: "reject", ids: ["t1", "t2"] }],
    ["e edits the focused task (never a batch)", at("t2", ["t1", "t3"]), key("e"), { type: "edit", id: "t2" }],
    ["/ goes to search", at("t1"), key("/"), { type: "search" }],
    ["? shows the shortcuts", at("t1"), key("?", { shiftKey: true }), { type: "help" }],
  ])("%s", (_name, state, input, effect) => {
    const r = inboxKeys(state, input, ctx());
    expect(r.handled).toBe(true);
    expect(r.effect).toEqual(effect);
  });

  it("a decision needs something to decide", () => {
    expect(inboxKeys(at(null), key("a"), ctx()).effect).toEqual({ type: "none" });
    expect(inboxKeys(at(null), key("e"), ctx()).effect).toEqual({ type: "none" });
  });

  it("x toggles the focused row in and out of the selection", () => {
    const on = inboxKeys(at("t2"), key("x"), ctx());
    expect(on.effect).toEqual({ type: "selection" });
    expect([...on.state.selected]).toEqual(["t2"]);
    const off = inboxKeys(on.state, key("x"), ctx());
    expect(off.state.selected.size).toBe(0);
  });

  it("x then j then x selects two rows, and a approves both", () => {
    let s = at("t1");
    for (const k of ["x", "j", "x"]) s = inboxKeys(s, key(k), ctx()).state;
    expect([...s.selected].sort()).toEqual(["t1", "t2"]);
    expect(inboxKeys(s, key("a"), ctx()).effect).toEqual({ type: "decide", action: "approve", ids: ["t1", "t2"] });
  });

  it("Esc clears a selection, and is left alone without one", () => {
    const cleared = inboxKeys(at("t1", ["t1", "t2"]), key("Escape"), ctx());
    expect(cleared.handled).toBe(true);
    expect(cleared.state.selected.size).toBe(0);
    expect(inboxKeys(at("t1"), key("Escape"), ctx()).handled).toBe(false);
  });

  it("selected rows that left the list are not decided", () => {
    const r = inboxKeys(at("t1", ["t2", "gone"]), key("a"), ctx());
    expect(r.effect).toEqual({ type: "decide", action: "approve", ids: ["t2"] });
  });
});

describe("inboxKeys: keys that are not the inbox's", () => {
  const keys = ["j", "k", "a", "e", "r", "x", "/", "?", "Escape"];

  it.each(keys)("%s is ignored while typing in a field", (k) => {
    const state = at("t1", ["t2"]);
    const r = inboxKeys(state, key(k), ctx({ typing: true }));
    expect(r.handled).toBe(false);
    expect(r.effect).toEqual({ type: "none" });
    expect(r.state).toBe(state);
  });

  it.each(keys)("%s is ignored while a dialog owns the keyboard", (k) => {
    expect(inboxKeys(at("t1"), key(k), ctx({ blocked: true })).handled).toBe(false);
  });

  it.each([
    ["ctrl+a", key("a", { ctrlKey: true })],
    ["cmd+k (the palette)", key("k", { metaKey: true })],
    ["alt+j", key("j", { altKey: true })],
    ["shift+a", key("A", { shiftKey: true })],
    ["an unbound letter", key("q")],
  ])("%s is not handled", (_name, input) => {
    const r = inboxKeys(at("t1"), input, ctx());
    expect(r.handled).toBe(false);
    expect(r.effect).toEqual({ type: "none" });
  });
});

describe("isTypingTarget", () => {
  const make = (html: string) => {
    const host = document.createElement("div");
    host.innerHTML = html;
    return host.firstElementChild;
  };
  it.each([
    ["a text input", make('<input type="text">'), true],
    ["a search input", make('<input type="search">'), true],
    ["an input without a type", make("<input>"), true],
    ["a textarea", make("<textarea></textarea>"), true],
    ["a select", make("<select></select>"), true],
    ["a checkbox (row selection keeps focus there)", make('<input type="checkbox">'), false],
    ["a radio", make('<input type="radio">'), false],
    ["a button", make("<button></button>"), false],
    ["a plain div", make("<div></div>"), false],
    ["nothing", null, false],
  ])("%s → %s", (_name, el, expected) => {
    expect(isTypingTarget(el)).toBe(expected);
  });

  it("a contenteditable element", () => {
    const el = document.createElement("div");
    // jsdom does not implement isContentEditable; the browser derives it from the attribute.
    Object.defineProperty(el, "isContentEditable", { value: true });
    expect(isTypingTarget(el)).toBe(true);
  });
});

describe("nextAfter", () => {
  it.each([
    ["the next row", "t2", ["t2"], "t3"],
    ["skips rows being decided", "t2", ["t2", "t3"], "t4"],
    ["falls back to the row before at the end", "t4", ["t4"], "t3"],
    ["nothing left: inbox zero", "t1", ["t1", "t2", "t3", "t4"], null],
    ["from outside the list: the first undecided", "gone", ["t1"], "t2"],
  ])("%s", (_name, focused, decided, expected) => {
    expect(nextAfter(ids, focused, new Set(decided))).toBe(expected);
  });
});

describe("selectRange", () => {
  it.each([
    ["downwards", "t1", "t3", ["t1", "t2", "t3"]],
    ["upwards", "t4", "t2", ["t2", "t3", "t4"]],
    ["without an anchor, just the row", null, "t3", ["t3"]],
  ])("%s", (_name, from, to, expected) => {
    expect([...selectRange(new Set(), ids, from, to)].sort()).toEqual(expected);
  });

  it("keeps what was selected before", () => {
    expect([...selectRange(new Set(["t4"]), ids, "t1", "t2")].sort()).toEqual(["t1", "t2", "t4"]);
  });
});
