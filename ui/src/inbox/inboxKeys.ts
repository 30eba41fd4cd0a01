// The inbox keyboard as a pure function: (state, key, context) -> (state, effect). The page
// feeds it window keydown events and performs the effect; keeping it free of React and the
// DOM lets the tests walk through it with tables.

export interface KeyInput {
  key: string;
  shiftKey?: boolean;
  metaKey?: boolean;
  ctrlKey?: boolean;
  altKey?: boolean;
}

export interface InboxKeyState {
  /** The task shown in the detail pane (the URL's task). */
  focusedId: string | null;
  /** Rows ticked for a batch decision. */
  selected: ReadonlySet<string>;
  /** Where the last range selection started (shift-click, shift+j/k). */
  anchorId: string | null;
}

export interface KeyContext {
  /** The visible rows, in list order. */
  ids: readonly string[];
  /** The key was typed into a text field: it belongs to the field, not to the inbox. */
  typing: boolean;
  /** A dialog or the editor owns the keyboard. */
  blocked?: boolean;
}

export type KeyEffect =
  | { type: "none" }
  | { type: "focus"; id: string }
  | { type: "selection" }
  | { type: "decide"; action: "approve" | "escalate"; ids: string[] }
  | { type: "reject"; ids: string[] }
  | { type: "edit"; id: string }
  | { type: "search" }
  | { type: "help" };

export interface KeyResult {
  state: InboxKeyState;
  effect: KeyEffect;
  /** The inbox used the key (the caller should preventDefault). */
  handled: boolean;
}

export const emptyKeyState: InboxKeyState = { focusedId: null, selected: new Set(), anchorId: null };

/** The ids a decision applies to: the ticked rows when there are any, else the focused one. */
export function targets(state: InboxKeyState, ids: readonly string[]): string[] {
  if (state.selected.size > 0) return ids.filter((id) => state.selected.has(id));
  return state.focusedId ? [state.focusedId] : [];
}

/** Rows from `from` to `to` (inclusive, either order) added to the selection. */
export function selectRange(
  selected: ReadonlySet<string>,
  ids: readonly string[],
  from: string | null,
  to: string,
): Set<string> {
  const next = new Set(selected);
  const end = ids.indexOf(to);
  const start = from === null ? -1 : ids.indexOf(from);
  if (end < 0) return next;
  if (start < 0) {
    next.add(to);
    return next;
  }
  const [lo, hi] = start <= end ? [start, end] : [end, start];
  for (let i = lo; i <= hi; i++) next.add(ids[i]!);
  return next;
}

export function toggle(selected: ReadonlySet<string>, id: string): Set<string> {
  const next = new Set(selected);
  if (next.has(id)) next.delete(id);
  else next.add(id);
  return next;
}

/**
 * Where focus goes once `decided` leave the list: the first remaining row after the focused
 * one, else the nearest before it, else nothing (inbox zero).
 */
export function nextAfter(ids: readonly string[], focusedId: string | null, decided: ReadonlySet<string>): string | null {
  const at = focusedId === null ? -1 : ids.indexOf(focusedId);
  for (let i = at + 1; i < ids.length; i++) if (!decided.has(ids[i]!)) return ids[i]!;
  for (let i = Math.min(at, ids.length) - 1; i >= 0; i--) if (!decided.has(ids[i]!)) return ids[i]!;
  return null;
}

const none = (state: InboxKeyState, handled = false): KeyResult => ({ state, effect: { type: "none" }, handled });

function move(state: InboxKeyState, ctx: KeyContext, delta: 1 | -1, extend: boolean): KeyResult {
  const { ids } = ctx;
  if (ids.length === 0) return none(state, true);
  const at = state.focusedId === null ? -1 : ids.indexOf(state.focusedId);
  // From nowhere (or a task outside the list), j starts at the top and k at the bottom.
  const to = at < 0 ? (delta > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + delta));
  const id = ids[to]!;
  if (!extend) return { state: { ...state, focusedId: id }, effect: { type: "focus", id }, handled: true };
  // shift+j/k: tick the row left and the row reached, like shift+arrow in a file list.
  const anchorId = state.anchorId ?? state.focusedId ?? id;
  const selected = selectRange(state.selected, ids, anchorId, id);
  return { state: { focusedId: id, selected, anchorId }, effect: { type: "focus", id }, handled: true };
}

export function inboxKeys(state: InboxKeyState, input: KeyInput, ctx: KeyContext): KeyResult {
  if (ctx.typing || ctx.blocked) return none(state);
  // Chords belong to the app (⌘K palette) and the browser (copy, reload).
  if (input.metaKey || input.ctrlKey || input.altKey) return none(state);
  const shift = Boolean(input.shiftKey);
  // With shift held, `key` is the shifted character ("J", "X", "?").
  const key = input.key.length === 1 ? input.key.toLowerCase() : input.key;

  switch (key) {
    case "j":
    case "ArrowDown":
      return move(state, ctx, 1, shift);
    case "k":
    case "ArrowUp":
      return move(state, ctx, -1, shift);
    case "x": {
      if (shift) {
        const ids = targets(state, ctx.ids);
        return ids.length ? { state, effect: { type: "decide", action: "escalate", ids }, handled: true } : none(state, true);
      }
      if (!state.focusedId) return none(state, true);
      return {
        state: { ...state, selected: toggle(state.selected, state.focusedId), anchorId: state.focusedId },
        effect: { type: "selection" },
        handled: true,
      };
    }
    case "a": {
      if (shift) return none(state);
      const ids = targets(state, ctx.ids);
      return ids.length ? { state, effect: { type: "decide", action: "approve", ids }, handled: true } : none(state, true);
    }
    case "r": {
      if (shift) return none(state);
      const ids = targets(state, ctx.ids);
      return ids.length ? { state, effect: { type: "reject", ids }, handled: true } : none(state, true);
    }
    case "e":
      if (shift || !state.focusedId) return none(state, !shift);
      return { state, effect: { type: "edit", id: state.focusedId }, handled: true };
    case "/":
      return { state, effect: { type: "search" }, handled: true };
    case "?":
      return { state, effect: { type: "help" }, handled: true };
    case "Escape":
      if (state.selected.size === 0) return none(state);
      return { state: { ...state, selected: new Set(), anchorId: null }, effect: { type: "selection" }, handled: true };
    default:
      return none(state);
  }
}

const TEXT_INPUTS = new Set(["text", "search", "email", "url", "tel", "password", "number", "date", "datetime-local", "month", "time", "week"]);

/** Whether a key event's target is a place where the user types text. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!target || typeof (target as Partial<HTMLElement>).tagName !== "string") return false;
  const el = target as HTMLElement;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  // A ticked checkbox keeps focus after a click; j/k must still work from there.
  if (tag === "INPUT") return TEXT_INPUTS.has(((el as HTMLInputElement).type || "text").toLowerCase());
  return false;
}
