import { describe, expect, it } from "vitest";
import { evalKeyAction, toggleTag, type KeyLike } from "./keys";

const key = (k: Partial<KeyLike> & { key: string }): KeyLike => ({
  code: "",
  shiftKey: false,
  altKey: false,
  ctrlKey: false,
  metaKey: false,
  ...k,
});
const digit = (n: number, extra: Partial<KeyLike> = {}) => key({ key: String(n), code: `Digit${n}`, ...extra });
const opts = { tagCount: 6, editing: false };

describe("evalKeyAction", () => {
  it("maps 1–9 to the tag at that position", () => {
    expect(evalKeyAction(digit(1), opts)).toEqual({ type: "toggle-tag", index: 0 });
    expect(evalKeyAction(digit(6), opts)).toEqual({ type: "toggle-tag", index: 5 });
    expect(evalKeyAction(key({ key: "3", code: "Numpad3" }), opts)).toEqual({ type: "toggle-tag", index: 2 });
  });

  it("ignores digits beyond the taxonomy and 0", () => {
    expect(evalKeyAction(digit(7), opts)).toBeNull();
    expect(evalKeyAction(digit(0), opts)).toBeNull();
    expect(evalKeyAction(digit(9), { tagCount: 12, editing: false })).toEqual({ type: "toggle-tag", index: 8 });
  });

  it("uses the physical key, so AZERTY's unshifted digit row toggles tags", () => {
    expect(evalKeyAction(key({ key: "&", code: "Digit1" }), opts)).toEqual({ type: "toggle-tag", index: 0 });
  });

  it("maps Shift+1–5 to a rating whatever character the layout produces", () => {
    expect(evalKeyAction(digit(3, { key: "#", shiftKey: true }), opts)).toEqual({ type: "rate", value: 3 });
    expect(evalKeyAction(digit(5, { key: "%", shiftKey: true }), opts)).toEqual({ type: "rate", value: 5 });
    expect(evalKeyAction(digit(6, { key: "^", shiftKey: true }), opts)).toBeNull();
  });

  it("submits with n, Enter and ⌘/Ctrl+Enter; moves with j/k", () => {
    expect(evalKeyAction(key({ key: "n" }), opts)).toEqual({ type: "submit" });
    expect(evalKeyAction(key({ key: "Enter" }), opts)).toEqual({ type: "submit" });
    expect(evalKeyAction(key({ key: "Enter", metaKey: true }), opts)).toEqual({ type: "submit" });
    expect(evalKeyAction(key({ key: "j" }), opts)).toEqual({ type: "next" });
    expect(evalKeyAction(key({ key: "k" }), opts)).toEqual({ type: "previous" });
    expect(evalKeyAction(key({ key: "c" }), opts)).toEqual({ type: "focus-comment" });
  });

  it("leaves keys alone while typing, except ⌘/Ctrl+Enter", () => {
    const editing = { tagCount: 6, editing: true };
    expect(evalKeyAction(digit(1), editing)).toBeNull();
    expect(evalKeyAction(key({ key: "n" }), editing)).toBeNull();
    expect(evalKeyAction(key({ key: "Enter" }), editing)).toBeNull();
    expect(evalKeyAction(key({ key: "Enter", ctrlKey: true }), editing)).toEqual({ type: "submit" });
  });

  it("leaves browser shortcuts alone", () => {
    expect(evalKeyAction(digit(1, { metaKey: true }), opts)).toBeNull();
    expect(evalKeyAction(digit(1, { ctrlKey: true }), opts)).toBeNull();
    expect(evalKeyAction(key({ key: "n", altKey: true }), opts)).toBeNull();
  });
});

describe("toggleTag", () => {
  it("adds and removes", () => {
    expect(toggleTag(["a"], "b")).toEqual(["a", "b"]);
    expect(toggleTag(["a", "b"], "a")).toEqual(["b"]);
  });
});
