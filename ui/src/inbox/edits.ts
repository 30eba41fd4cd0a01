// Edits in progress, kept in localStorage per task so closing the window loses nothing.
// A small external store lets rows show which tasks have an unsent edit.
import { useSyncExternalStore } from "react";

const PREFIX = "processops.inbox.edit.";

let ids: ReadonlySet<string> | null = null;
const listeners = new Set<() => void>();

function scan(): ReadonlySet<string> {
  const found = new Set<string>();
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key?.startsWith(PREFIX)) found.add(key.slice(PREFIX.length));
    }
  } catch {
    // Storage can be unavailable (private mode, quota); edits then live only in memory.
  }
  return found;
}

function current(): ReadonlySet<string> {
  ids ??= scan();
  return ids;
}

function publish(next: ReadonlySet<string>) {
  ids = next;
  listeners.forEach((l) => l());
}

export function loadEdit(taskId: string): string | null {
  try {
    return localStorage.getItem(PREFIX + taskId);
  } catch {
    return null;
  }
}

export function saveEdit(taskId: string, text: string): void {
  try {
    localStorage.setItem(PREFIX + taskId, text);
  } catch {
    return;
  }
  if (!current().has(taskId)) publish(new Set(current()).add(taskId));
}

export function clearEdit(taskId: string): void {
  try {
    localStorage.removeItem(PREFIX + taskId);
  } catch {
    // Nothing stored, nothing to clear.
  }
  if (current().has(taskId)) {
    const next = new Set(current());
    next.delete(taskId);
    publish(next);
  }
}

function subscribe(listener: () => void) {
  listeners.add(listener);
  // Another window of the app edited the same store.
  const onStorage = (e: StorageEvent) => {
    if (e.key === null || e.key.startsWith(PREFIX)) publish(scan());
  };
  window.addEventListener("storage", onStorage);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", onStorage);
  };
}

/** Ids of tasks with an edit in progress. */
export function useEditedIds(): ReadonlySet<string> {
  return useSyncExternalStore(subscribe, current, current);
}
