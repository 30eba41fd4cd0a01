// "3 pending sync" / "Synced": the outbox at a glance, with the refused changes one click away.
import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { AlertTriangle, CheckCircle2, CloudOff, Loader2, RefreshCw } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { Button } from "../components/ui";
import { useNow } from "../runs/useNow";
import { outboxSync, type SyncState } from "./sync";

/** `<run>:<node>:<visit>` as people read it: the run's last 8 characters. */
function shortHandle(output: string): string {
  const [run = "", ...rest] = output.split(":");
  return [run.slice(-8), ...rest].join(":");
}

export function SyncStatus({ state, by, onRetry }: { state: SyncState; by: string; onRetry: () => void }) {
  const now = useNow();
  // Shares the rail's health poll (same query key), so this costs no extra request.
  const health = useQuery({ queryKey: ["health"], queryFn: api.health, refetchInterval: 10_000 });
  const unreachable = health.isError || (state.lastError !== null && state.entries.some((e) => !e.failed));
  // The engine answers again: send now rather than wait out the backoff.
  const healthy = health.isSuccess ? health.dataUpdatedAt : 0;
  useEffect(() => {
    if (healthy && outboxSync().getState().lastError !== null) onRetry();
  }, [healthy, onRetry]);
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  const pending = state.entries.filter((e) => !e.failed);
  const refused = state.entries.filter((e) => e.failed);
  const retryAt = pending.length > 0 ? state.nextRetryAt : null;
  const waiting = retryAt !== null;
  const seconds = retryAt !== null ? Math.max(0, Math.ceil((retryAt - now) / 1000)) : 0;

  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => {
      if (!box.current?.contains(e.target as Node)) setOpen(false);
    };
    window.addEventListener("mousedown", close);
    return () => window.removeEventListener("mousedown", close);
  }, [open]);

  let icon = <CheckCircle2 className="size-3.5 text-ok" />;
  let text = unreachable ? "Nothing to sync" : "All changes synced";
  let tone = "text-muted";
  if (pending.length > 0) {
    icon = state.syncing ? (
      <Loader2 className="size-3.5 animate-spin text-info" />
    ) : (
      <CloudOff className="size-3.5 text-warn" />
    );
    text = `${pending.length} pending sync`;
    tone = state.syncing ? "text-fg" : "text-warn";
  }

  return (
    <div className="relative flex items-center gap-2" ref={box}>
      {(!state.online || unreachable) && (
        <span
          className="flex items-center gap-1 rounded bg-warn/15 px-1.5 py-px text-[11px] font-medium text-warn"
          title={state.online ? "The engine does not answer; your feedback is kept here and sent when it does." : "The browser is offline."}
        >
          <CloudOff className="size-3" /> {state.online ? "Engine unreachable" : "Offline"}
        </span>
      )}
      <button
        type="button"
        onClick={() => setOpen((o) => !o)}
        data-testid="eval-pending-sync"
        data-pending={pending.length}
        aria-expanded={open}
        className={clsx("flex h-7 items-center gap-1.5 rounded-md px-2 text-xs transition-colors hover:bg-hover", tone)}
        title={state.lastError ?? undefined}
      >
        {icon}
        {text}
        {waiting && !state.syncing && <span className="text-faint">· retry in {seconds}s</span>}
      </button>
      {refused.length > 0 && (
        <button
          type="button"
          onClick={() => setOpen(true)}
          className="flex h-7 items-center gap-1 rounded-md bg-danger/10 px-2 text-xs font-medium text-danger"
        >
          <AlertTriangle className="size-3.5" /> {refused.length} refused
        </button>
      )}
      {open && (
        <div className="absolute top-9 right-0 z-30 w-96 rounded-lg border border-border bg-panel p-3 shadow-xl">
          <div className="mb-2 flex items-center justify-between">
            <span className="text-xs font-semibold">Outbox</span>
            {pending.length > 0 && (
              <Button size="sm" onClick={onRetry} disabled={state.syncing}>
                <RefreshCw className="size-3" /> Sync now
              </Button>
            )}
          </div>
          {state.entries.length === 0 ? (
            <p className="text-xs text-muted">
              Every tag, rating and comment reached the engine
              {state.lastSyncedAt ? ` (last sync ${new Date(state.lastSyncedAt).toLocaleTimeString()})` : ""}.
            </p>
          ) : (
            <ul className="flex max-h-72 flex-col gap-1.5 overflow-auto">
              {state.entries.map((e) => (
                <li key={e.id} className={clsx("rounded-md border px-2 py-1.5 text-xs", e.failed ? "border-danger/30 bg-danger/5" : "border-border")}>
                  <div className="flex items-center gap-1.5">
                    <span className="font-medium">{e.kind === "tag" ? "Tag" : "Untag"}</span>
                    <span className="truncate font-mono text-[11px] text-muted" title={e.output}>
                      {shortHandle(e.output)}
                    </span>
                    {e.by !== by && <span className="text-faint">as {e.by}</span>}
                  </div>
                  <div className="mt-0.5 text-muted">
                    {[
                      e.tags.length > 0 ? e.tags.join(", ") : null,
                      e.rating != null ? `rated ${e.rating}/5` : null,
                      e.comment != null ? (e.comment ? "comment" : "clear comment") : null,
                    ]
                      .filter(Boolean)
                      .join(" · ")}
                  </div>
                  {e.lastError && <div className={clsx("mt-0.5", e.failed ? "text-danger" : "text-faint")}>{e.lastError}</div>}
                  {e.failed && (
                    <div className="mt-1 flex gap-1.5">
                      <Button size="sm" onClick={() => {
                          outboxSync().outbox.requeue(e.id);
                          onRetry();
                        }}>
                        Try again
                      </Button>
                      <Button size="sm" variant="ghost" onClick={() => outboxSync().outbox.discard(e.id)}>
                        Discard
                      </Button>
                    </div>
                  )}
                </li>
              ))}
            </ul>
          )}
          {state.lastError && pending.length > 0 && <p className="mt-2 text-[11px] text-faint">Last error: {state.lastError}</p>}
        </div>
      )}
    </div>
  );
}
