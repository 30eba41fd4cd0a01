// The Evaluate screen's keyboard map, as a pure function of the key event so it can be tested
// without a browser. Physical keys (`code`) are used for digits so that Shift+1 means "rate 1"
// on every layout, and the unshifted digit row toggles tags on AZERTY too.

export type EvalAction =
  | { type: "toggle-tag"; index: number }
  | { type: "rate"; value: number }
  | { type: "submit" }
  | { type: "next" }
  | { type: "previous" }
  | { type: "focus-comment" };

export interface KeyLike {
  key: string;
  code: string;
  shiftKey: boolean;
  altKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
}

function digitOf(code: string): number | null {
  const m = /^(?:Digit|Numpad)([0-9])$/.exec(code);
  return m ? Number(m[1]) : null;
}

/**
 * What a key press means. `editing` is true while focus is in a text field: then only
 * ⌘/Ctrl+Enter (submit) is ours, everything else types.
 */
export function evalKeyAction(e: KeyLike, opts: { tagCount: number; editing: boolean }): EvalAction | null {
  if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) return { type: "submit" };
  if (opts.editing || e.altKey || e.ctrlKey || e.metaKey) return null;
  const digit = digitOf(e.code);
  if (digit !== null) {
    if (e.shiftKey) return digit >= 1 && digit <= 5 ? { type: "rate", value: digit } : null;
    return digit >= 1 && digit <= Math.min(9, opts.tagCount) ? { type: "toggle-tag", index: digit - 1 } : null;
  }
  if (e.shiftKey) return null;
  switch (e.key) {
    case "n":
    case "Enter":
      return { type: "submit" };
    case "j":
    case "ArrowDown":
      return { type: "next" };
    case "k":
    case "ArrowUp":
      return { type: "previous" };
    case "c":
      return { type: "focus-comment" };
    default:
      return null;
  }
}

/** Toggle `tag` in `tags`, keeping the taxonomy's order stable for display. */
export function toggleTag(tags: readonly string[], tag: string): string[] {
  return tags.includes(tag) ? tags.filter((t) => t !== tag) : [...tags, tag];
}
