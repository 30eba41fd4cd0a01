// Saved views (tabs) and the filter controls above the list.
import { clsx } from "clsx";
import { ChevronDown, Plus, Search, X } from "lucide-react";
import { forwardRef, useEffect, useState } from "react";
import { Kbd } from "../components/ui";
import {
  MINE,
  sameFilters,
  type DueFilter,
  type InboxFilters,
  type SavedView,
  type StatusFilter,
} from "./filters";

export function ViewTabs({
  views,
  filters,
  onPick,
  onSave,
  onRemove,
}: {
  views: readonly SavedView[];
  filters: InboxFilters;
  onPick: (view: SavedView) => void;
  onSave: (name: string) => void;
  onRemove: (view: SavedView) => void;
}) {
  const [naming, setNaming] = useState(false);
  const [name, setName] = useState("");
  const active = views.find((v) => sameFilters(v.filters, filters));
  const save = () => {
    if (name.trim()) onSave(name.trim());
    setNaming(false);
    setName("");
  };
  return (
    <div role="tablist" aria-label="Saved views" className="flex items-center gap-0.5 overflow-x-auto px-2 pt-2 pb-1.5">
      {views.map((v) => (
        <div key={v.id} className="group relative flex shrink-0">
          <button
            type="button"
            role="tab"
            aria-selected={active?.id === v.id}
            data-testid="view-tab"
            onClick={() => onPick(v)}
            className={clsx(
              "h-7 rounded-md px-2.5 text-[12.5px] whitespace-nowrap transition-colors",
              active?.id === v.id ? "bg-selected font-medium text-fg" : "text-muted hover:bg-hover hover:text-fg",
              !v.builtin && "pr-6",
            )}
          >
            {v.name}
          </button>
          {!v.builtin && (
            <button
              type="button"
              aria-label={`Delete view ${v.name}`}
              onClick={() => onRemove(v)}
              className="absolute top-1/2 right-1 grid size-4 -translate-y-1/2 place-items-center rounded text-faint opacity-0 group-hover:opacity-100 hover:bg-hover hover:text-fg focus-visible:opacity-100"
            >
              <X className="size-3" />
            </button>
          )}
        </div>
      ))}
      {naming ? (
        <input
          autoFocus
          aria-label="Name of the new view"
          value={name}
          onChange={(e) => setName(e.target.value)}
          onBlur={save}
          onKeyDown={(e) => {
            if (e.key === "Enter") save();
            if (e.key === "Escape") {
              setName("");
              setNaming(false);
            }
          }}
          placeholder="View name"
          className="h-7 w-28 shrink-0 rounded-md border border-accent/60 bg-panel px-2 text-[12.5px] outline-none"
        />
      ) : (
        <button
          type="button"
          onClick={() => setNaming(true)}
          disabled={Boolean(active)}
          title={active ? "These filters are already a view" : "Save the current filters as a view"}
          aria-label="Save the current filters as a view"
          className="grid size-7 shrink-0 place-items-center rounded-md text-faint hover:bg-hover hover:text-fg disabled:opacity-40 disabled:hover:bg-transparent"
        >
          <Plus className="size-3.5" />
        </button>
      )}
    </div>
  );
}

export const SearchBox = forwardRef<HTMLInputElement, { value: string; onChange: (q: string) => void; busy: boolean }>(
  function SearchBox({ value, onChange, busy }, ref) {
    // Local text so typing stays instant; the server search follows after a pause.
    const [text, setText] = useState(value);
    const [prev, setPrev] = useState(value);
    if (value !== prev) {
      setPrev(value);
      setText(value);
    }
    useEffect(() => {
      if (text === value) return;
      const t = setTimeout(() => onChange(text), 250);
      return () => clearTimeout(t);
    }, [text, value, onChange]);
    return (
      <div className="relative px-2">
        <Search className="pointer-events-none absolute top-1/2 left-4.5 size-3.5 -translate-y-1/2 text-faint" aria-hidden />
        <input
          ref={ref}
          type="search"
          data-testid="search-input"
          aria-label="Search tasks"
          placeholder="Search titles and drafts"
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.preventDefault();
              // First Esc clears, the second hands the keyboard back to the list.
              if (text) {
                setText("");
                onChange("");
              } else e.currentTarget.blur();
            } else if (e.key === "Enter" || e.key === "ArrowDown") {
              e.preventDefault();
              onChange(text);
              e.currentTarget.blur();
            }
          }}
          className="h-8 w-full rounded-md border border-border bg-bg pr-9 pl-7.5 text-[13px] outline-none placeholder:text-faint focus:border-accent/70 focus:bg-panel [&::-webkit-search-cancel-button]:hidden"
        />
        <span className="pointer-events-none absolute top-1/2 right-4 -translate-y-1/2">
          {busy && text ? <span className="text-[11px] text-faint">…</span> : <Kbd>/</Kbd>}
        </span>
      </div>
    );
  },
);

const STATUSES: Array<[StatusFilter, string]> = [
  ["pending", "Pending"],
  ["decided", "Decided"],
  ["all", "All"],
];

const DUES: Array<[DueFilter, string]> = [
  ["any", "Any due"],
  ["overdue", "Overdue"],
  ["today", "Due today"],
];

export function FilterRow({
  filters,
  onChange,
  blueprints,
  roles,
  myRoles,
}: {
  filters: InboxFilters;
  onChange: (f: InboxFilters) => void;
  blueprints: Array<[string, number]>;
  roles: Array<[string, number]>;
  myRoles: readonly string[];
}) {
  const set = (patch: Partial<InboxFilters>) => onChange({ ...filters, ...patch });
  // A filter value the loaded list no longer holds must stay selectable (and clearable).
  const withCurrent = (list: Array<[string, number]>, current: string | null) =>
    current && current !== MINE && !list.some(([v]) => v === current) ? [...list, [current, 0] as [string, number]] : list;
  return (
    <div className="flex min-w-0 items-center gap-1.5 px-2 pt-2 pb-2">
      <div role="radiogroup" aria-label="Status" className="flex h-6 shrink-0 items-center rounded-md bg-sunken p-0.5">
        {STATUSES.map(([value, label]) => (
          <button
            key={value}
            type="button"
            role="radio"
            aria-checked={filters.status === value}
            onClick={() => set({ status: value })}
            className={clsx(
              "h-5 rounded px-2 text-[11.5px] transition-colors",
              filters.status === value ? "bg-panel font-medium text-fg shadow-sm" : "text-muted hover:text-fg",
            )}
          >
            {label}
          </button>
        ))}
      </div>
      <Select
        label="Blueprint"
        value={filters.blueprint}
        onChange={(blueprint) => set({ blueprint })}
        options={withCurrent(blueprints, filters.blueprint).map(([v, n]) => ({ value: v, label: v, count: n }))}
      />
      <Select
        label="Role"
        value={filters.role}
        onChange={(role) => set({ role })}
        options={[
          { value: MINE, label: myRoles.length ? "My roles" : "Mine", count: null },
          ...withCurrent(roles, filters.role).map(([v, n]) => ({ value: v, label: v, count: n })),
        ]}
      />
      <Select
        label="Due"
        value={filters.due === "any" ? null : filters.due}
        onChange={(due) => set({ due: (due as DueFilter | null) ?? "any" })}
        options={DUES.slice(1).map(([v, l]) => ({ value: v, label: l, count: null }))}
        anyLabel={DUES[0]![1]}
      />
    </div>
  );
}

/** A compact filter pill over a native select: keyboard and screen-reader friendly for free. */
function Select({
  label,
  value,
  options,
  onChange,
  anyLabel,
}: {
  label: string;
  value: string | null;
  options: Array<{ value: string; label: string; count: number | null }>;
  onChange: (value: string | null) => void;
  anyLabel?: string;
}) {
  const current = options.find((o) => o.value === value);
  return (
    <label
      className={clsx(
        "relative flex h-6 max-w-40 min-w-0 shrink items-center gap-1 rounded-md border px-2 text-[11.5px] transition-colors",
        current ? "border-accent/40 bg-accent/10 text-accent" : "border-border text-muted hover:bg-hover hover:text-fg",
      )}
    >
      <span className="truncate">{current ? current.label : label}</span>
      <ChevronDown className="size-3 shrink-0 opacity-70" aria-hidden />
      <select
        aria-label={label}
        value={value ?? ""}
        onChange={(e) => {
          onChange(e.target.value || null);
          // Give the keyboard back to the list: j/k on a focused select would pick options.
          e.currentTarget.blur();
        }}
        className="absolute inset-0 cursor-pointer opacity-0"
      >
        <option value="">{anyLabel ?? `Any ${label.toLowerCase()}`}</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.count === null ? o.label : `${o.label} (${o.count.toLocaleString()})`}
          </option>
        ))}
      </select>
    </label>
  );
}
