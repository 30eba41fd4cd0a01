// The evaluation outbox: tag, untag, rating and comment changes are written here first and
// sent to the engine when it answers, so an evaluator can keep working offline and lose
// nothing on reload. Pure apart from the storage and the sender it is given (unit-tested).
//
// Invariants, per (output, evaluator): at most one pending `tag` entry and one pending
// `untag` entry, with disjoint tag sets. Both requests are idempotent on the engine (adding
// a present tag or removing an absent one changes nothing), so merging entries and
// re-sending one after a crash are safe; entries are still sent strictly in order.

export type OutboxKind = "tag" | "untag";

export interface OutboxEntry {
  id: string;
  kind: OutboxKind;
  output: string;
  by: string;
  tags: string[];
  /** Only on `tag` entries; undefined = leave as is. */
  rating?: number | null;
  /** Only on `tag` entries; undefined = leave as is, "" = clear. */
  comment?: string | null;
  /** Bumped on every merge, so a send that raced with a merge does not drop the merged part. */
  rev: number;
  createdAt: number;
  attempts: number;
  lastError?: string;
  /** The engine refused the entry (not a connection problem): kept aside, not retried. */
  failed?: boolean;
}

export interface OutboxOp {
  kind: OutboxKind;
  output: string;
  by: string;
  tags?: string[];
  rating?: number | null;
  comment?: string | null;
}

/** The part of `localStorage` the outbox needs. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface FlushResult {
  sent: number;
  /** Entries the engine refused during this flush. */
  rejected: OutboxEntry[];
  /** A transient failure stopped the flush; the rest waits for the next try. */
  blocked: boolean;
  error?: string;
}

export interface OutboxOptions {
  storage: KeyValueStore;
  key?: string;
  send: (entry: OutboxEntry) => Promise<void>;
  /** True when the error means "the engine refused this" rather than "could not reach it". */
  isPermanent?: (error: unknown) => boolean;
  now?: () => number;
  newId?: () => string;
}

export const DEFAULT_KEY = "processops.eval.outbox";

/** Exponential backoff for transient failures: 1s, 2s, 4s … capped at 60s. */
export function backoffDelay(attempts: number, baseMs = 1_000, capMs = 60_000): number {
  if (attempts <= 0) return 0;
  return Math.min(capMs, baseMs * 2 ** (attempts - 1));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isEntry(value: unknown): value is OutboxEntry {
  if (!value || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.id === "string" &&
    (v.kind === "tag" || v.kind === "untag") &&
    typeof v.output === "string" &&
    typeof v.by === "string" &&
    Array.isArray(v.tags)
  );
}

function sameKey(a: OutboxEntry, op: { output: string; by: string }) {
  return a.output === op.output && a.by === op.by;
}

/** An entry with nothing left to say is dropped instead of being sent. */
function isEmpty(e: OutboxEntry): boolean {
  if (e.tags.length > 0) return false;
  return e.kind === "untag" || (e.rating == null && e.comment == null);
}

export class Outbox {
  private readonly storage: KeyValueStore;
  private readonly key: string;
  private readonly sendEntry: (entry: OutboxEntry) => Promise<void>;
  private readonly isPermanent: (error: unknown) => boolean;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly listeners = new Set<() => void>();
  private flushing: Promise<FlushResult> | null = null;
  private seq = 0;

  constructor(options: OutboxOptions) {
    this.storage = options.storage;
    this.key = options.key ?? DEFAULT_KEY;
    this.sendEntry = options.send;
    this.isPermanent = options.isPermanent ?? (() => false);
    this.now = options.now ?? Date.now;
    this.newId =
      options.newId ?? (() => `${this.now().toString(36)}-${(this.seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  }

  /** Every entry, oldest first. Read from storage each time so other tabs' changes show. */
  entries(): OutboxEntry[] {
    let raw: string | null;
    try {
      raw = this.storage.getItem(this.key);
    } catch {
      return [];
    }
    if (!raw) return [];
    try {
      const parsed: unknown = JSON.parse(raw);
      return Array.isArray(parsed) ? parsed.filter(isEntry) : [];
    } catch {
      // A corrupt value must not take the evaluate screen down; start afresh.
      return [];
    }
  }

  /** Entries still to send (not refused). */
  pending(): OutboxEntry[] {
    return this.entries().filter((e) => !e.failed);
  }

  /** Entries the engine refused, kept so the evaluator can see why and decide. */
  rejected(): OutboxEntry[] {
    return this.entries().filter((e) => e.failed);
  }

  get isFlushing(): boolean {
    return this.flushing !== null;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private save(entries: OutboxEntry[]) {
    this.storage.setItem(this.key, JSON.stringify(entries));
    this.listeners.forEach((l) => l());
  }

  /**
   * Record a change. Merges with the pending entries of the same output and evaluator so the
   * outbox never holds two requests that say the same thing.
   */
  enqueue(op: OutboxOp): void {
    const tags = [...new Set(op.tags ?? [])];
    const entries = this.entries();
    const live = (kind: OutboxKind) => entries.find((e) => !e.failed && e.kind === kind && sameKey(e, op));
    const opposite = live(op.kind === "tag" ? "untag" : "tag");
    const same = live(op.kind);

    // Adding a tag cancels a pending removal of it, and the other way round.
    if (opposite && tags.length > 0) {
      const before = opposite.tags.length;
      opposite.tags = opposite.tags.filter((t) => !tags.includes(t));
      if (opposite.tags.length !== before) opposite.rev += 1;
    }

    const hasNote = op.kind === "tag" && (op.rating !== undefined || op.comment !== undefined);
    if (same) {
      const merged = [...new Set([...same.tags, ...tags])];
      let changed = merged.length !== same.tags.length;
      same.tags = merged;
      if (op.kind === "tag") {
        if (op.rating !== undefined && op.rating !== same.rating) {
          same.rating = op.rating;
          changed = true;
        }
        if (op.comment !== undefined && op.comment !== same.comment) {
          same.comment = op.comment;
          changed = true;
        }
      }
      if (changed) same.rev += 1;
    } else if (tags.length > 0 || hasNote) {
      const entry: OutboxEntry = {
        id: this.newId(),
        kind: op.kind,
        output: op.output,
        by: op.by,
        tags,
        rev: 0,
        createdAt: this.now(),
        attempts: 0,
      };
      if (op.kind === "tag") {
        if (op.rating !== undefined) entry.rating = op.rating;
        if (op.comment !== undefined) entry.comment = op.comment;
      }
      entries.push(entry);
    }
    this.save(entries.filter((e) => e.failed || !isEmpty(e)));
  }

  /** Forget a refused entry (the evaluator read why and gave up on it). */
  discard(id: string): void {
    this.save(this.entries().filter((e) => e.id !== id));
  }

  /** Put a refused entry back in line (e.g. after the taxonomy was fixed). */
  requeue(id: string): void {
    const entries = this.entries();
    const e = entries.find((x) => x.id === id);
    if (!e) return;
    delete e.failed;
    delete e.lastError;
    e.attempts = 0;
    this.save(entries);
  }

  /**
   * Send pending entries oldest first. A success removes the entry; a transient failure keeps
   * it (and everything after it, to keep the order) and stops; a refusal sets it aside.
   * Concurrent calls share one flush.
   */
  flush(): Promise<FlushResult> {
    if (this.flushing) return this.flushing;
    const run = async (): Promise<FlushResult> => {
      const result: FlushResult = { sent: 0, rejected: [], blocked: false };
      const tried = new Set<string>();
      for (;;) {
        const next = this.pending().find((e) => !tried.has(`${e.id}@${e.rev}`));
        if (!next) return result;
        tried.add(`${next.id}@${next.rev}`);
        try {
          await this.sendEntry(next);
          result.sent += 1;
          // Drop it unless it was merged with newer changes while in flight.
          this.save(this.entries().filter((e) => !(e.id === next.id && e.rev === next.rev)));
        } catch (error) {
          const entries = this.entries();
          const current = entries.find((e) => e.id === next.id);
          if (current) {
            current.attempts += 1;
            current.lastError = messageOf(error);
            if (this.isPermanent(error)) current.failed = true;
            this.save(entries);
          }
          if (current?.failed) {
            result.rejected.push({ ...current });
            continue;
          }
          result.blocked = true;
          result.error = messageOf(error);
          return result;
        }
      }
    };
    this.flushing = run().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }
}

/** The feedback an evaluator gives one output. */
export interface Feedback {
  tags: string[];
  rating: number | null;
  comment: string;
}

export const EMPTY_FEEDBACK: Feedback = { tags: [], rating: null, comment: "" };

/**
 * The requests that turn `before` (what the engine has, or nothing) into `after`: added tags
 * with the rating and comment when they changed, and removed tags.
 */
export function feedbackOps(output: string, by: string, before: Feedback, after: Feedback): OutboxOp[] {
  const added = after.tags.filter((t) => !before.tags.includes(t));
  const removed = before.tags.filter((t) => !after.tags.includes(t));
  const ops: OutboxOp[] = [];
  const tag: OutboxOp = { kind: "tag", output, by, tags: added };
  // Rating null means "not rated": the API cannot clear a rating, so only send real values.
  if (after.rating !== null && after.rating !== before.rating) tag.rating = after.rating;
  const comment = after.comment.trim();
  if (comment !== before.comment.trim() && (comment !== "" || before.comment.trim() !== "")) tag.comment = comment;
  if (added.length > 0 || tag.rating !== undefined || tag.comment !== undefined) ops.push(tag);
  if (removed.length > 0) ops.push({ kind: "untag", output, by, tags: removed });
  return ops;
}
