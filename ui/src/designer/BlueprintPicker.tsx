// Switch between blueprints, or start a new one from a small valid template.
import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import { Check, ChevronsUpDown, FilePlus2, Search } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { useNavigate } from "react-router";
import { api } from "../api/client";
import { Badge } from "../components/ui";
import { freshId, newBlueprintSource } from "./graph";
import { newDrafts, saveDraft } from "./storage";

/** Start a new (unsaved) blueprint and open it. */
export function useNewBlueprint() {
  const navigate = useNavigate();
  const list = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints });
  return () => {
    const taken = [...(list.data ?? []).map((b) => b.id), ...newDrafts().map((d) => d.id)];
    const id = freshId("untitled", taken, "-");
    saveDraft(id, { source: newBlueprintSource(id), baseVersion: null, isNew: true, savedAt: Date.now() });
    navigate(`/designer/${id}`);
  };
}

export function BlueprintPicker({ current, name, dirty, isNew }: { current: string; name: string; dirty: boolean; isNew: boolean }) {
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState("");
  const list = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints });
  const navigate = useNavigate();
  const startNew = useNewBlueprint();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    window.addEventListener("mousedown", close);
    return () => window.removeEventListener("mousedown", close);
  }, [open]);
  const items = (list.data ?? []).filter((b) => !q || `${b.name} ${b.id} ${b.domain ?? ""}`.toLowerCase().includes(q.toLowerCase()));
  return (
    <div className="relative" ref={ref}>
      <button
        type="button"
        data-testid="blueprint-picker"
        aria-haspopup="listbox"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
        className="flex h-8 max-w-[340px] items-center gap-2 rounded-md px-2 text-left hover:bg-hover"
      >
        <span className="min-w-0">
          <span className="block truncate text-[13px] leading-4 font-semibold">{name}</span>
          <span className="block truncate font-mono text-[10.5px] leading-3.5 text-faint">{current}.yaml</span>
        </span>
        {(dirty || isNew) && (
          <span data-testid="unsaved-indicator" title={isNew ? "Not created yet" : "Unsaved changes"} className="size-2 shrink-0 rounded-full bg-warn" />
        )}
        <ChevronsUpDown className="size-3.5 shrink-0 text-faint" />
      </button>
      {open && (
        <div role="listbox" className="absolute top-10 left-0 z-40 w-[360px] overflow-hidden rounded-lg border border-border bg-panel shadow-xl">
          <div className="flex items-center gap-2 border-b border-border px-3">
            <Search className="size-3.5 text-faint" />
            <input autoFocus value={q} onChange={(e) => setQ(e.target.value)} placeholder="Find a blueprint…" className="h-9 flex-1 bg-transparent text-[13px] outline-none placeholder:text-faint" />
          </div>
          <div className="max-h-80 overflow-y-auto p-1">
            {items.map((b) => (
              <button
                key={b.id}
                type="button"
                role="option"
                aria-selected={b.id === current}
                data-testid={`blueprint-option-${b.id}`}
                onClick={() => {
                  setOpen(false);
                  navigate(`/designer/${b.id}`);
                }}
                className={clsx("flex w-full items-center gap-2 rounded-md px-2 py-1.5 text-left hover:bg-hover", b.id === current && "bg-selected")}
              >
                <span className="min-w-0 flex-1">
                  <span className="block truncate text-[13px]">{b.name}</span>
                  <span className="block truncate font-mono text-[11px] text-faint">{b.id}</span>
                </span>
                <Badge>{b.stage}</Badge>
                {b.id === current && <Check className="size-3.5 text-accent" />}
              </button>
            ))}
            {list.isLoading && <div className="px-2 py-2 text-[12.5px] text-muted">Loading…</div>}
          </div>
          <div className="border-t border-border p-1">
            <button
              type="button"
              data-testid="new-blueprint-button"
              onClick={() => {
                setOpen(false);
                startNew();
              }}
              className="flex w-full items-center gap-2 rounded-md px-2 py-1.5 text-left text-[13px] text-accent hover:bg-hover"
            >
              <FilePlus2 className="size-4" /> New blueprint
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
