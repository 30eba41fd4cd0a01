import { useQuery } from "@tanstack/react-query";
import { clsx } from "clsx";
import {
  BarChart3,
  FlaskConical,
  Inbox,
  LayoutTemplate,
  Moon,
  PlayCircle,
  Settings,
  Sun,
  Workflow,
} from "lucide-react";
import { useEffect, useState, type ReactNode } from "react";
import { NavLink, Outlet } from "react-router";
import { api } from "../api/client";
import { CommandPalette } from "./CommandPalette";
import { HubStatus } from "./HubStatus";
import { useMe } from "./me";
import { setTheme } from "./theme";

function RailLink({ to, icon, label, badge }: { to: string; icon: ReactNode; label: string; badge?: number }) {
  return (
    <NavLink
      to={to}
      className={({ isActive }) =>
        clsx(
          "flex h-8 items-center gap-2.5 rounded-md px-2.5 text-[13px] transition-colors",
          isActive ? "bg-selected font-medium text-fg" : "text-muted hover:bg-hover hover:text-fg",
        )
      }
    >
      <span className="size-4 shrink-0 [&>svg]:size-4">{icon}</span>
      <span className="flex-1">{label}</span>
      {badge !== undefined && badge > 0 && (
        <span
          data-testid={`badge-${label.toLowerCase()}`}
          className="min-w-5 rounded-full bg-accent px-1.5 text-center text-[11px] font-semibold text-accent-fg"
        >
          {badge > 999 ? "999+" : badge}
        </span>
      )}
    </NavLink>
  );
}

/** The app frame: the left rail, the command palette and the current screen. */
export function Layout() {
  const { name, roles, me } = useMe();
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  // Follow the theme wherever it changes (Settings, the OS while on "system").
  useEffect(() => {
    const root = document.documentElement;
    const observer = new MutationObserver(() => setDark(root.classList.contains("dark")));
    observer.observe(root, { attributes: true, attributeFilter: ["class"] });
    return () => observer.disconnect();
  }, []);
  // My pending count: tasks for my roles (everyone's in a single-user installation).
  // A pilot's tasks are not counted for people outside its cohort (`viewer`).
  const viewer = me?.single_user ? "" : name;
  const pending = useQuery({
    queryKey: ["tasks", "badge", viewer],
    queryFn: () => api.tasks({ status: "pending", limit: 1000, viewer: viewer || undefined }),
    refetchInterval: 5_000,
    select: (tasks) =>
      me?.single_user || roles.length === 0 ? tasks.length : tasks.filter((t) => roles.includes(t.role)).length,
  });
  const health = useQuery({ queryKey: ["health"], queryFn: api.health, refetchInterval: 10_000 });

  return (
    <div className="flex h-full">
      <nav aria-label="Main" className="flex w-52 shrink-0 flex-col gap-0.5 border-r border-border bg-panel p-2">
        <div className="mb-3 flex items-center gap-2 px-2.5 pt-1.5">
          <div className="grid size-6 place-items-center rounded-md bg-accent text-[11px] font-bold text-accent-fg">P</div>
          <span className="text-sm font-semibold">ProcessOps</span>
        </div>
        <RailLink to="/inbox" icon={<Inbox />} label="Inbox" badge={pending.data} />
        <RailLink to="/designer" icon={<Workflow />} label="Designer" />
        <RailLink to="/runs" icon={<PlayCircle />} label="Runs" />
        <RailLink to="/evaluate" icon={<FlaskConical />} label="Evaluate" />
        <RailLink to="/metrics" icon={<BarChart3 />} label="Metrics" />
        <RailLink to="/blueprints" icon={<LayoutTemplate />} label="Blueprints" />
        <div className="flex-1" />
        <HubStatus />
        <RailLink to="/settings" icon={<Settings />} label="Settings" />
        <div className="mt-1 flex items-center gap-2 border-t border-border px-2.5 pt-2 text-xs text-muted">
          <span
            className={clsx("size-2 rounded-full", health.isError ? "bg-danger" : health.data ? "bg-ok" : "bg-faint")}
            title={health.isError ? "The engine is unreachable" : "Connected to the engine"}
          />
          <span className="flex-1 truncate" title={`Acting as ${name}`} data-testid="acting-as">
            {name || "…"}
          </span>
          <button
            type="button"
            aria-label={dark ? "Switch to light theme" : "Switch to dark theme"}
            className="rounded p-1 hover:bg-hover"
            onClick={() => {
              setTheme(dark ? "light" : "dark");
            }}
          >
            {dark ? <Sun className="size-3.5" /> : <Moon className="size-3.5" />}
          </button>
        </div>
      </nav>
      <main className="flex min-w-0 flex-1 flex-col">
        <Outlet />
      </main>
      <CommandPalette />
    </div>
  );
}
