// Screen-level hotkeys as plain window listeners: they step aside while a text field has focus
// or a modal dialog is open, so typing never triggers actions.
import { useEffect, useRef } from "react";

export function isEditable(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

export function modalOpen(): boolean {
  return document.querySelector('[role="dialog"][aria-modal="true"]') !== null;
}

/** Calls the latest `handler` for every keydown outside open dialogs. */
export function useWindowKey(handler: (e: KeyboardEvent) => void, enabled = true) {
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  useEffect(() => {
    if (!enabled) return;
    const listener = (e: KeyboardEvent) => {
      if (e.defaultPrevented || modalOpen()) return;
      ref.current(e);
    };
    window.addEventListener("keydown", listener);
    return () => window.removeEventListener("keydown", listener);
  }, [enabled]);
}

/** A single-letter shortcut without modifiers, ignored while typing. */
export function isPlainKey(e: KeyboardEvent, key: string): boolean {
  return e.key === key && !e.metaKey && !e.ctrlKey && !e.altKey && !isEditable(e.target);
}
