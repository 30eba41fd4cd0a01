// The rail's sync state with the team's hub: last sync, changes waiting, open conflicts; a
// click syncs now. Nothing is shown for a project that is not a device of a hub.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { clsx } from "clsx";
import { Cloud, CloudOff, Loader2, Split } from "lucide-react";
import { api } from "../api/client";
import { useNow } from "../runs/useNow";

function ago(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

export function HubStatus() {
  const now = useNow();
  const qc = useQueryClient();
  const status = useQuery({ queryKey: ["sync"], queryFn: api.syncStatus, refetchInterval: 3_000 });
  const syncNow = useMutation({
    mutationFn: api.syncNow,
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: ["sync"] });
      void qc.invalidateQueries({ queryKey: ["tasks"] });
      void qc.invalidateQueries({ queryKey: ["task"] });
      void qc.invalidateQueries({ queryKey: ["conflicts"] });
    },
  });
  const s = status.data;
  if (!s?.enrolled) return null;
  const offline = s.online === false || syncNow.isError;
  let text = s.last_sync_at ? `Synced ${ago(s.last_sync_at, now)}` : "Not synced yet";
  if (offline) text = s.pending > 0 ? `Offline · ${s.pending} pending` : "Hub unreachable";
  else if (s.pending > 0) text = `${s.pending} pending sync`;
  const title = [
    `Hub ${s.hub ?? "?"}${s.team ? `, team ${s.team}` : ""}, as ${s.user ?? "?"}`,
    s.last_error && offline ? `Last error: ${s.last_error}` : null,
    s.pending > 0 ? `${s.pending} change(s) of this device wait for the hub; nothing is lost` : null,
    "Click to sync now",
  ]
    .filter(Boolean)
    .join("\n");
  return (
    <div className="flex flex-col gap-1 px-2.5 pb-1" data-testid="hub-status">
      <button
        type="button"
        title={title}
        onClick={() => syncNow.mutate()}
        disabled={syncNow.isPending}
        data-testid="sync-now"
        className={clsx(
          "flex h-7 items-center gap-2 rounded-md px-1 text-left text-xs hover:bg-hover",
          offline ? "text-warn" : "text-muted",
        )}
      >
        {syncNow.isPending ? (
          <Loader2 className="size-3.5 shrink-0 animate-spin" aria-hidden />
        ) : offline ? (
          <CloudOff className="size-3.5 shrink-0" aria-hidden />
        ) : (
          <Cloud className="size-3.5 shrink-0" aria-hidden />
        )}
        <span className="truncate" data-testid="sync-text">
          {text}
        </span>
      </button>
      {s.open_conflicts > 0 && (
        <span
          className="flex items-center gap-2 px-1 text-xs text-danger"
          data-testid="sync-conflicts"
          title="Decisions the hub could not accept; they show on their tasks in the inbox (decided or all)"
        >
          <Split className="size-3.5 shrink-0" aria-hidden />
          {s.open_conflicts} open conflict{s.open_conflicts === 1 ? "" : "s"}
        </span>
      )}
    </div>
  );
}
