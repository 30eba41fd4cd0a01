// Browser-local designer data: canvas positions (kept out of the YAML so files stay
// diff-friendly) and unsaved drafts (so closing the window loses nothing).
import type { XY } from "./store";

const POSITIONS = "processops.designer.positions.";
const DRAFT = "processops.designer.draft.";

export interface Draft {
  source: string;
  /** The server version the draft started from (null for a new blueprint). */
  baseVersion: string | null;
  isNew: boolean;
  savedAt: number;
}

function read<T>(key: string): T | null {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : null;
  } catch {
    return null;
  }
}

function write(key: string, value: unknown): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: positions and drafts are a convenience, not data.
  }
}

export function loadPositions(blueprintId: string): Record<string, XY> {
  const v = read<Record<string, XY>>(POSITIONS + blueprintId);
  return v && typeof v === "object" ? v : {};
}

export function savePositions(blueprintId: string, positions: Record<string, XY>): void {
  write(POSITIONS + blueprintId, Object.keys(positions).length ? positions : null);
}

export function loadDraft(blueprintId: string): Draft | null {
  const d = read<Draft>(DRAFT + blueprintId);
  return d && typeof d.source === "string" ? d : null;
}

export function saveDraft(blueprintId: string, draft: Draft | null): void {
  write(DRAFT + blueprintId, draft);
}

/** Ids of new (never saved) blueprints that have drafts, newest first. */
export function newDrafts(): { id: string; draft: Draft }[] {
  const out: { id: string; draft: Draft }[] = [];
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key?.startsWith(DRAFT)) continue;
      const d = loadDraft(key.slice(DRAFT.length));
      if (d?.isNew) out.push({ id: key.slice(DRAFT.length), draft: d });
    }
  } catch {
    return [];
  }
  return out.sort((a, b) => b.draft.savedAt - a.draft.savedAt);
}
