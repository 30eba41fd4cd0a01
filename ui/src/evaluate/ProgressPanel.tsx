// Done / remaining per evaluator, from the engine, plus my changes still in the outbox.
import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { api } from "../api/client";

export function ProgressPanel({ blueprint, me, pending }: { blueprint: string; me: string; pending: number }) {
  const progress = useQuery({
    queryKey: ["eval", "progress", blueprint],
    queryFn: () => api.evalProgress(blueprint || undefined),
    refetchInterval: 30_000,
  });
  const rows = [...(progress.data ?? [])].sort(
    (a, b) => Number(b.evaluator === me) - Number(a.evaluator === me) || b.done - a.done || a.evaluator.localeCompare(b.evaluator),
  );
  return (
    <div className="flex flex-col gap-2.5 p-4" data-testid="eval-progress">
      <h3 className="text-xs font-semibold">Progress</h3>
      {progress.isPending ? (
        <div className="text-xs text-muted">Loading…</div>
      ) : progress.isError ? (
        <div className="text-xs text-muted">Progress is unavailable while the engine is unreachable.</div>
      ) : rows.length === 0 ? (
        <div className="text-xs text-muted">Nobody has evaluated outputs yet.</div>
      ) : (
        <ul className="flex flex-col gap-2.5">
          {rows.map((r) => {
            const mine = r.evaluator === me;
            // Outputs in my outbox count as done for me; the engine has not seen them yet.
            const local = mine ? Math.min(pending, r.remaining) : 0;
            const total = r.done + r.remaining;
            const pct = (n: number) => (total === 0 ? 0 : (n / total) * 100);
            return (
              <li key={r.evaluator} className="flex flex-col gap-1">
                <div className="flex items-baseline justify-between text-xs">
                  <span className={clsx("truncate", mine && "font-medium")}>
                    {r.evaluator}
                    {mine && <span className="text-faint"> (you)</span>}
                  </span>
                  <span className="text-[11px] text-muted tabular-nums">
                    {r.done + local} / {total}
                    {local > 0 && <span className="text-warn"> · {local} pending</span>}
                  </span>
                </div>
                <div
                  className="flex h-1.5 overflow-hidden rounded-full bg-sunken"
                  role="progressbar"
                  aria-label={`${r.evaluator}: ${r.done} done, ${r.remaining} remaining`}
                  aria-valuemin={0}
                  aria-valuemax={total}
                  aria-valuenow={r.done}
                >
                  <div className="bg-ok transition-[width]" style={{ width: `${pct(r.done)}%` }} />
                  <div className="bg-warn/70 transition-[width]" style={{ width: `${pct(local)}%` }} />
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
