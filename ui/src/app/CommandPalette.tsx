// ⌘K / Ctrl+K: jump to any screen, task, run or blueprint.
import { useQuery } from "@tanstack/react-query";
import { Command } from "cmdk";
import { useEffect, useState } from "react";
import { useNavigate } from "react-router";
import { api } from "../api/client";
import { shortId } from "../components/ui";

export function CommandPalette() {
  const [open, setOpen] = useState(false);
  const navigate = useNavigate();
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key.toLowerCase() === "k" && (e.metaKey || e.ctrlKey)) {
        e.preventDefault();
        setOpen((o) => !o);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  const tasks = useQuery({ queryKey: ["tasks", "palette"], queryFn: () => api.tasks({ limit: 200 }), enabled: open });
  const runs = useQuery({ queryKey: ["runs", "palette"], queryFn: () => api.runs({ limit: 100 }), enabled: open });
  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints, enabled: open });
  const go = (to: string) => {
    setOpen(false);
    navigate(to);
  };
  return (
    <Command.Dialog
      open={open}
      onOpenChange={setOpen}
      label="Command palette"
      className="fixed top-[15%] left-1/2 z-50 w-[560px] -translate-x-1/2 overflow-hidden rounded-lg border border-border bg-panel shadow-2xl"
      overlayClassName="fixed inset-0 z-40 bg-black/30"
    >
      <Command.Input
        placeholder="Jump to a screen, task, run or blueprint…"
        className="h-11 w-full border-b border-border bg-transparent px-4 text-sm outline-none"
      />
      <Command.List className="max-h-96 overflow-auto p-1.5 [&_[cmdk-group-heading]]:px-2 [&_[cmdk-group-heading]]:py-1 [&_[cmdk-group-heading]]:text-[11px] [&_[cmdk-group-heading]]:text-faint">
        <Command.Empty className="p-4 text-muted">Nothing matches.</Command.Empty>
        <Command.Group heading="Screens">
          {[
            ["Inbox", "/inbox"],
            ["Designer", "/designer"],
            ["Runs", "/runs"],
            ["Evaluate", "/evaluate"],
            ["Metrics", "/metrics"],
            ["Blueprints", "/blueprints"],
            ["Settings", "/settings"],
          ].map(([label, to]) => (
            <Item key={to} onSelect={() => go(to!)}>{label}</Item>
          ))}
        </Command.Group>
        <Command.Group heading="Blueprints">
          {blueprints.data?.map((b) => (
            <Item key={b.id} value={`blueprint ${b.id} ${b.name}`} onSelect={() => go(`/designer/${b.id}`)}>
              {b.name} <span className="text-faint">{b.id}</span>
            </Item>
          ))}
        </Command.Group>
        <Command.Group heading="Versions">
          {blueprints.data?.map((b) => (
            <Item key={b.id} value={`versions ${b.id} ${b.name}`} onSelect={() => go(`/blueprints/${encodeURIComponent(b.id)}/versions`)}>
              {b.name} versions <span className="text-faint">change control</span>
            </Item>
          ))}
        </Command.Group>
        <Command.Group heading="Tasks">
          {tasks.data?.map((t) => (
            <Item key={t.id} value={`task ${t.id} ${t.title}`} onSelect={() => go(`/inbox/${t.id}`)}>
              {t.title} <span className="text-faint">{t.status}</span>
            </Item>
          ))}
        </Command.Group>
        <Command.Group heading="Runs">
          {runs.data?.map((r) => (
            <Item key={r.id} value={`run ${r.id} ${r.blueprint}`} onSelect={() => go(`/runs/${r.id}`)}>
              {r.blueprint} <span className="font-mono text-faint">{shortId(r.id)}</span>{" "}
              <span className="text-faint">{r.status}</span>
            </Item>
          ))}
        </Command.Group>
      </Command.List>
    </Command.Dialog>
  );
}

function Item({ children, onSelect, value }: { children: React.ReactNode; onSelect: () => void; value?: string }) {
  return (
    <Command.Item
      value={value}
      onSelect={onSelect}
      className="flex cursor-pointer items-center gap-2 rounded-md px-2 py-1.5 text-[13px] data-[selected=true]:bg-selected"
    >
      {children}
    </Command.Item>
  );
}
