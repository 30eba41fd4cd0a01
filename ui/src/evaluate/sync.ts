// Keeps the evaluation outbox flowing to the engine: flushes on every change, when the
// browser comes back online, and after failures with exponential backoff. One instance per
// app, so tags queued on the Evaluate screen keep syncing after the evaluator moves on.
import { useSyncExternalStore } from "react";
import { api } from "../api/client";
import { ApiError } from "../api/transport";
import { backoffDelay, Outbox, type OutboxEntry, type OutboxOp } from "./outbox";

/** 4xx answers mean the engine refused the change; retrying the same request cannot help. */
export function isRefusal(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.status >= 400 && error.status < 500) return error.status !== 408 && error.status !== 429;
  // The Tauri transport has no HTTP status, only the API's code.
  return error.status === 0 && ["invalid_request", "not_found", "forbidden", "conflict", "unauthorized"].includes(error.code);
}

async function send(entry: OutboxEntry): Promise<void> {
  if (entry.kind === "untag") {
    await api.untag({ output: entry.output, tags: entry.tags, by: entry.by });
    return;
  }
  await api.tag({
    output: entry.output,
    tags: entry.tags,
    by: entry.by,
    ...(entry.rating != null ? { rating: entry.rating } : {}),
    ...(entry.comment != null ? { comment: entry.comment } : {}),
  });
}

export interface SyncState {
  entries: OutboxEntry[];
  /** What the browser says; a local engine may still answer when this is false. */
  online: boolean;
  syncing: boolean;
  lastSyncedAt: number | null;
  lastError: string | null;
  nextRetryAt: number | null;
}

type SyncListener = () => void;

export class OutboxSync {
  readonly outbox: Outbox;
  private state: SyncState;
  private readonly listeners = new Set<SyncListener>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private started = false;
  /** Called with entries the engine refused, to tell the evaluator. */
  onRejected: (entries: OutboxEntry[]) => void = () => {};
  /** Called after entries reached the engine, to refresh the queue and progress. */
  onSynced: () => void = () => {};

  constructor(outbox: Outbox) {
    this.outbox = outbox;
    this.state = {
      entries: outbox.entries(),
      online: typeof navigator === "undefined" ? true : navigator.onLine,
      syncing: false,
      lastSyncedAt: null,
      lastError: null,
      nextRetryAt: null,
    };
    outbox.subscribe(() => this.update({ entries: outbox.entries() }));
  }

  getState = (): SyncState => this.state;

  subscribe = (listener: SyncListener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private update(patch: Partial<SyncState>) {
    this.state = { ...this.state, ...patch };
    this.listeners.forEach((l) => l());
  }

  start() {
    if (this.started || typeof window === "undefined") return;
    this.started = true;
    window.addEventListener("online", () => {
      this.update({ online: true });
      this.kick();
    });
    window.addEventListener("offline", () => this.update({ online: false }));
    // Another tab changed the outbox.
    window.addEventListener("storage", () => this.update({ entries: this.outbox.entries() }));
    if (this.outbox.pending().length > 0) this.kick();
  }

  enqueue(ops: OutboxOp[]) {
    ops.forEach((op) => this.outbox.enqueue(op));
    this.kick();
  }

  /** Try now, whatever the backoff says. */
  kick() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.flush();
  }

  private async flush() {
    if (this.outbox.pending().length === 0) {
      this.update({ nextRetryAt: null });
      return;
    }
    this.update({ syncing: true });
    const result = await this.outbox.flush();
    if (result.rejected.length > 0) this.onRejected(result.rejected);
    if (result.sent > 0) this.onSynced();
    if (result.blocked) {
      this.failures += 1;
      const delay = backoffDelay(this.failures);
      this.update({ syncing: false, lastError: result.error ?? null, nextRetryAt: Date.now() + delay });
      this.timer = setTimeout(() => this.kick(), delay);
      return;
    }
    this.failures = 0;
    this.update({ syncing: false, lastError: null, nextRetryAt: null, lastSyncedAt: Date.now() });
    // Changes made while this flush ran.
    if (this.outbox.pending().length > 0) this.kick();
  }
}

let instance: OutboxSync | null = null;

export function outboxSync(): OutboxSync {
  if (!instance) {
    instance = new OutboxSync(new Outbox({ storage: window.localStorage, send, isPermanent: isRefusal }));
  }
  return instance;
}

export function useOutboxSync(): SyncState {
  const sync = outboxSync();
  return useSyncExternalStore(sync.subscribe, sync.getState, sync.getState);
}
