// The last evaluation queue the engine sent, kept in localStorage so an evaluator who opens
// the app while the engine is unreachable can still work through it (the tags go to the
// outbox). Only a connection failure falls back to the copy; refusals are shown as errors.
import { ApiError } from "../api/transport";
import type { QueueItem } from "../api/types.gen";
import type { KeyValueStore } from "./outbox";

const PREFIX = "processops.eval.queue:";

export interface QueueResult {
  items: QueueItem[];
  /** When the copy being shown was fetched; null when it is fresh from the engine. */
  cachedAt: number | null;
}

export function isUnreachable(error: unknown): boolean {
  return error instanceof ApiError ? error.code === "unreachable" || error.status >= 500 : error instanceof TypeError;
}

export async function loadQueue(
  key: string,
  fetchQueue: () => Promise<QueueItem[]>,
  storage: KeyValueStore,
  now = Date.now(),
): Promise<QueueResult> {
  try {
    const items = await fetchQueue();
    try {
      storage.setItem(PREFIX + key, JSON.stringify({ at: now, items }));
    } catch {
      // Storage full or unavailable: the queue still works online.
    }
    return { items, cachedAt: null };
  } catch (error) {
    if (!isUnreachable(error)) throw error;
    const raw = storage.getItem(PREFIX + key);
    if (!raw) throw error;
    try {
      const parsed = JSON.parse(raw) as { at: number; items: QueueItem[] };
      if (!Array.isArray(parsed.items)) throw error;
      return { items: parsed.items, cachedAt: parsed.at };
    } catch {
      throw error;
    }
  }
}
