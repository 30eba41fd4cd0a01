// Settings: who I am, how the app looks, model providers and keys, blueprint agents, the hub.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { clsx } from "clsx";
import { Check, CircleAlert, Laptop, Moon, Sun, X } from "lucide-react";
import { Fragment, useMemo, useState, useSyncExternalStore, type ReactNode } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import type { AgentView, ProviderView } from "../api/types.gen";
import { useMe } from "../app/me";
import { setTheme, storedTheme, type Theme } from "../app/theme";
import { Badge, Button, ErrorState, inputClass, PageHeader, Spinner } from "../components/ui";
import { StoreKeyForm } from "./StoreKeyForm";

const SECTIONS = [
  ["profile", "Profile"],
  ["appearance", "Appearance"],
  ["providers", "Providers"],
  ["agents", "Agents"],
  ["hub", "Hub"],
] as const;

export function SettingsPage() {
  const settings = useQuery({ queryKey: ["settings"], queryFn: api.settings });
  return (
    <>
      <PageHeader title="Settings">
        {settings.data && (
          <span className="font-mono text-[11px] text-faint" title="The project folder and settings file the engine uses">
            {settings.data.settings_file}
          </span>
        )}
      </PageHeader>
      <div className="min-h-0 flex-1 overflow-auto">
       <div className="mx-auto flex max-w-5xl gap-6 px-6">
        <nav aria-label="Settings sections" className="sticky top-0 hidden w-40 shrink-0 flex-col gap-0.5 self-start py-6 lg:flex">
          {SECTIONS.map(([id, label]) => (
            <button
              key={id}
              type="button"
              onClick={() => document.getElementById(`settings-${id}`)?.scrollIntoView({ behavior: "smooth", block: "start" })}
              className="rounded-md px-2.5 py-1.5 text-left text-[13px] text-muted transition-colors hover:bg-hover hover:text-fg"
            >
              {label}
            </button>
          ))}
        </nav>
        <div className="flex w-full min-w-0 flex-1 flex-col gap-6 py-6">
          <ProfileSection />
          <AppearanceSection />
          {settings.isPending ? (
            <Spinner label="Loading settings…" />
          ) : settings.isError ? (
            <ErrorState error={settings.error} />
          ) : (
            <>
              <ProvidersSection providers={settings.data.providers} />
              <AgentsSection agents={settings.data.agents} />
            </>
          )}
          <HubSection />
        </div>
       </div>
      </div>
    </>
  );
}

function Section({ id, title, description, children, aside }: { id: string; title: string; description?: ReactNode; children: ReactNode; aside?: ReactNode }) {
  return (
    <section id={`settings-${id}`} aria-labelledby={`settings-${id}-title`} className="scroll-mt-4">
      <div className="mb-2.5 flex items-end gap-3">
        <div className="min-w-0 flex-1">
          <h2 id={`settings-${id}-title`} className="text-sm font-semibold">
            {title}
          </h2>
          {description && <p className="mt-0.5 text-xs text-muted">{description}</p>}
        </div>
        {aside}
      </div>
      <div className="rounded-lg border border-border bg-panel">{children}</div>
    </section>
  );
}

function Row({ label, children, hint }: { label: string; children: ReactNode; hint?: ReactNode }) {
  return (
    <div className="flex items-start gap-4 border-b border-border px-4 py-3 last:border-b-0">
      <div className="w-40 shrink-0 pt-1 text-xs font-medium text-muted">{label}</div>
      <div className="min-w-0 flex-1">
        {children}
        {hint && <div className="mt-1 text-[11.5px] text-faint">{hint}</div>}
      </div>
    </div>
  );
}

function ProfileSection() {
  const { me, name, roles, setActAs } = useMe();
  const users = me?.users ?? [];
  const actingAsOther = me !== undefined && name !== me.name;
  return (
    <Section id="profile" title="Profile" description="Decisions and tags are recorded under this name.">
      <Row label="Acting as">
        <div className="flex items-center gap-2.5">
          <span className="grid size-7 place-items-center rounded-full bg-accent/15 text-xs font-semibold text-accent uppercase">
            {name.slice(0, 1) || "?"}
          </span>
          <span className="text-[13px] font-medium" data-testid="settings-name">
            {name || "…"}
          </span>
          {actingAsOther && <Badge tone="warn">not your profile</Badge>}
          {me?.single_user && <Badge>single user</Badge>}
        </div>
      </Row>
      <Row
        label="Roles"
        hint={
          me?.single_user
            ? "No user directory is configured, so whoever uses the app may decide anything."
            : "Roles come from [users.<name>] in processops.toml and decide which review tasks you may act on."
        }
      >
        {roles.length === 0 ? (
          <span className="text-xs text-muted">No roles</span>
        ) : (
          <div className="flex flex-wrap gap-1">
            {roles.map((r) => (
              <Badge key={r} tone="accent">
                {r}
              </Badge>
            ))}
          </div>
        )}
      </Row>
      <Row
        label="Switch user"
        hint={
          users.length === 0
            ? "Add people with [users.<name>] roles = [...] in processops.toml to try the app as someone else."
            : "For trying roles out on this machine; your choice is remembered in this browser."
        }
      >
        <div className="flex items-center gap-2">
          <select
            aria-label="Act as"
            className={clsx(inputClass, "max-w-72")}
            disabled={users.length === 0}
            value={actingAsOther ? name : ""}
            onChange={(e) => setActAs(e.target.value || null)}
            data-testid="settings-act-as"
          >
            <option value="">{me ? `${me.name} (engine profile)` : "Engine profile"}</option>
            {users
              .filter((u) => u.name !== me?.name)
              .map((u) => (
                <option key={u.name} value={u.name}>
                  {u.name}
                  {u.roles.length > 0 ? ` — ${u.roles.join(", ")}` : ""}
                </option>
              ))}
          </select>
          {actingAsOther && (
            <Button size="sm" variant="ghost" onClick={() => setActAs(null)}>
              Back to {me?.name}
            </Button>
          )}
        </div>
      </Row>
    </Section>
  );
}

const THEMES: { id: Theme; label: string; icon: ReactNode }[] = [
  { id: "light", label: "Light", icon: <Sun className="size-4" /> },
  { id: "dark", label: "Dark", icon: <Moon className="size-4" /> },
  { id: "system", label: "System", icon: <Laptop className="size-4" /> },
];

// The rail's sun/moon button changes the theme too: follow the <html> class so the choice
// shown here stays right.
const THEME_EVENT = "processops:theme";

function subscribeTheme(onChange: () => void) {
  const observer = new MutationObserver(onChange);
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  // Choosing "system" may leave the class as it was; this event covers that.
  window.addEventListener(THEME_EVENT, onChange);
  return () => {
    observer.disconnect();
    window.removeEventListener(THEME_EVENT, onChange);
  };
}

function chooseTheme(theme: Theme) {
  setTheme(theme);
  window.dispatchEvent(new Event(THEME_EVENT));
}

function AppearanceSection() {
  const theme = useSyncExternalStore(subscribeTheme, storedTheme, storedTheme);
  return (
    <Section id="appearance" title="Appearance" description="Stored in this browser. System follows the operating system's setting.">
      <div className="flex gap-2 p-3" role="radiogroup" aria-label="Theme">
        {THEMES.map((t) => (
          <button
            key={t.id}
            type="button"
            role="radio"
            aria-checked={theme === t.id}
            data-testid={`settings-theme-${t.id}`}
            onClick={() => chooseTheme(t.id)}
            className={clsx(
              "flex flex-1 flex-col items-start gap-2 rounded-md border p-2 text-left transition-colors",
              theme === t.id ? "border-accent ring-2 ring-accent/20" : "border-border hover:bg-hover",
            )}
          >
            <ThemePreview theme={t.id} />
            <span className="flex w-full items-center gap-1.5 text-xs font-medium">
              {t.icon}
              {t.label}
              {theme === t.id && <Check className="ml-auto size-3.5 text-accent" />}
            </span>
          </button>
        ))}
      </div>
    </Section>
  );
}

/** A tiny drawing of the app in each theme (fixed colours: it must not follow the current theme). */
function ThemePreview({ theme }: { theme: Theme }) {
  const pane = (dark: boolean) => (
    <div className={clsx("flex h-full flex-1 gap-1 p-1.5", dark ? "bg-[#141518]" : "bg-[#fbfbfc]")}>
      <div className={clsx("w-1/4 rounded-sm", dark ? "bg-[#1a1c20]" : "bg-white ring-1 ring-[#e3e5e9]")} />
      <div className="flex flex-1 flex-col gap-1">
        <div className={clsx("h-1.5 w-2/3 rounded-sm", dark ? "bg-[#2b2e34]" : "bg-[#e3e5e9]")} />
        <div className={clsx("h-1.5 w-1/2 rounded-sm", dark ? "bg-[#2b2e34]" : "bg-[#e3e5e9]")} />
        <div className={clsx("mt-auto h-2 w-1/3 rounded-sm", dark ? "bg-[#7383f0]" : "bg-[#5466e0]")} />
      </div>
    </div>
  );
  return (
    <div className="flex h-16 w-full overflow-hidden rounded border border-border">
      {theme === "system" ? (
        <>
          {pane(false)}
          {pane(true)}
        </>
      ) : (
        pane(theme === "dark")
      )}
    </div>
  );
}

function KeyStatus({ p }: { p: ProviderView }) {
  if (p.key_source === "none") return <span className="text-xs text-faint">No key needed</span>;
  return (
    <span className={clsx("flex items-center gap-1 text-xs", p.key_present ? "text-ok" : "text-danger")}>
      {p.key_present ? <Check className="size-3.5" /> : <X className="size-3.5" />}
      {p.key_present ? "Present" : "Missing"}
    </span>
  );
}

/** `storing` value for the free-form key form (not tied to a provider row). */
const OTHER = "\u0000other";

function ProvidersSection({ providers }: { providers: ProviderView[] }) {
  const keychainAccounts = useMemo(
    () => providers.filter((p) => p.key_source === "keychain" && p.key_name).map((p) => p.key_name ?? ""),
    [providers],
  );
  const [storing, setStoring] = useState<string | null>(null);
  return (
    <>
      <Section
        id="providers"
        title="Providers"
        description={
          <>
            Model endpoints agents call, from <code className="font-mono">[providers.*]</code> in processops.toml. Keys come from the environment or the OS keychain, never from the file.
          </>
        }
      >
        {providers.length === 0 ? (
          <div className="p-4 text-xs text-muted">No providers are configured.</div>
        ) : (
          <table className="w-full text-left text-xs" data-testid="settings-providers">
            <thead className="border-b border-border text-[11px] text-faint">
              <tr>
                <th className="px-4 py-2 font-medium">Name</th>
                <th className="px-3 py-2 font-medium">Kind</th>
                <th className="px-3 py-2 font-medium">Endpoint / model</th>
                <th className="px-3 py-2 font-medium">Key from</th>
                <th className="px-3 py-2 font-medium">Key</th>
                <th className="px-4 py-2" />
              </tr>
            </thead>
            <tbody>
              {providers.map((p) => (
                <Fragment key={p.name}>
                  <tr className="border-b border-border last:border-b-0">
                    <td className="px-4 py-2.5 font-medium">{p.name}</td>
                    <td className="px-3 py-2.5">
                      <Badge>{p.kind}</Badge>
                    </td>
                    <td className="max-w-64 truncate px-3 py-2.5 font-mono text-muted" title={p.base_url ?? p.model ?? undefined}>
                      {p.base_url ?? p.model ?? (p.kind === "builtin" ? "built-in default model" : "—")}
                    </td>
                    <td className="px-3 py-2.5 text-muted">
                      {p.key_source === "none" ? (
                        "—"
                      ) : (
                        <>
                          {p.key_source === "env" ? "env" : "keychain"} <code className="font-mono text-fg">{p.key_name}</code>
                        </>
                      )}
                    </td>
                    <td className="px-3 py-2.5">
                      <KeyStatus p={p} />
                    </td>
                    <td className="px-4 py-2.5 text-right">
                      {p.key_source === "keychain" && (
                        <Button size="sm" onClick={() => setStoring(storing === p.name ? null : p.name)} data-testid={`store-key-${p.name}`}>
                          {p.key_present ? "Replace key" : "Store key"}
                        </Button>
                      )}
                      {p.key_source === "env" && !p.key_present && (
                        <span className="flex items-center justify-end gap-1 text-[11px] text-muted" title={`Set ${p.key_name} before starting the engine`}>
                          <CircleAlert className="size-3 text-warn" /> set ${p.key_name}
                        </span>
                      )}
                    </td>
                  </tr>
                  {storing === p.name && (
                    <tr className="border-b border-border bg-sunken/50 last:border-b-0">
                      <td colSpan={6} className="px-4 py-3">
                        <StoreKeyForm accounts={keychainAccounts} initialAccount={p.key_name ?? ""} onDone={() => setStoring(null)} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        )}
        <div className="border-t border-border px-4 py-2.5">
          {storing === OTHER ? (
            <div className="py-1">
              <div className="mb-2 text-xs text-muted">
                Store a key before pointing a provider at it with <code className="font-mono">api_key_keychain = "&lt;account&gt;"</code> (service{" "}
                <code className="font-mono">processops</code>).
              </div>
              <StoreKeyForm accounts={keychainAccounts} onDone={() => setStoring(null)} />
            </div>
          ) : (
            <button type="button" className="text-xs text-accent hover:underline" onClick={() => setStoring(OTHER)} data-testid="store-key-other">
              Store a key for another keychain account…
            </button>
          )}
        </div>
      </Section>
    </>
  );
}

function AgentsSection({ agents }: { agents: AgentView[] }) {
  const groups = useMemo(() => {
    const m = new Map<string, AgentView[]>();
    for (const a of agents) m.set(a.blueprint, [...(m.get(a.blueprint) ?? []), a]);
    return [...m.entries()];
  }, [agents]);
  return (
    <Section id="agents" title="Agents" description="The agents each blueprint declares, and the provider and model they call.">
      {agents.length === 0 ? (
        <div className="p-4 text-xs text-muted">No blueprint declares an agent.</div>
      ) : (
        <table className="w-full text-left text-xs" data-testid="settings-agents">
          <thead className="border-b border-border text-[11px] text-faint">
            <tr>
              <th className="px-4 py-2 font-medium">Agent</th>
              <th className="px-3 py-2 font-medium">Provider</th>
              <th className="px-3 py-2 font-medium">Model</th>
              <th className="px-4 py-2 font-medium">Permissions</th>
            </tr>
          </thead>
          {groups.map(([blueprint, list]) => (
            <tbody key={blueprint} className="border-b border-border last:border-b-0">
              <tr>
                <th colSpan={4} className="bg-sunken/60 px-4 py-1.5 text-[11px] font-medium text-muted">
                  <Link to={`/designer/${blueprint}`} className="hover:text-accent hover:underline">
                    {blueprint}
                  </Link>
                  <span className="ml-1.5 text-faint">{list.length}</span>
                </th>
              </tr>
              {list.map((a) => (
                <tr key={a.name} className="border-t border-border/60">
                  <td className="px-4 py-2 font-mono">{a.name}</td>
                  <td className="px-3 py-2 text-muted">{a.provider}</td>
                  <td className="px-3 py-2 font-mono text-muted">{a.model}</td>
                  <td className="px-4 py-2">
                    {a.permissions.length === 0 ? (
                      <span className="text-faint">—</span>
                    ) : (
                      <span className="flex flex-wrap gap-1">
                        {a.permissions.map((p) => (
                          <Badge key={p} tone="info">
                            {p}
                          </Badge>
                        ))}
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          ))}
        </table>
      )}
    </Section>
  );
}

function HubSection() {
  const status = useQuery({ queryKey: ["sync"], queryFn: api.syncStatus, refetchInterval: 3_000 });
  const s = status.data;
  return (
    <Section
      id="hub"
      title="Hub"
      description="A team hub shares tasks, decisions, feedback tags and blueprint versions between desktops and headless engines. Decisions made offline sync later; conflicting ones are shown, never lost."
      aside={s?.enrolled ? <Badge tone={s.online === false ? "warn" : "ok"}>{s.online === false ? "Offline" : "Connected"}</Badge> : <Badge>Local only</Badge>}
    >
      {status.isError ? (
        <ErrorState error={status.error} />
      ) : !s ? (
        <Spinner label="Loading…" />
      ) : s.enrolled ? (
        <div data-testid="hub-settings">
          <Row label="Hub">
            <span className="font-mono text-[12.5px]">{s.hub ?? "?"}</span>
          </Row>
          <Row label="Team and user">
            {s.team ?? "?"} · {s.user ?? "?"}
          </Row>
          <Row label="This device" hint="Its token is kept in a file only you can read, next to the project's store.">
            <span className="font-mono text-[12px]">{s.device}</span>
          </Row>
          <Row label="Sync">
            {s.last_sync_at ? `Last synced ${new Date(s.last_sync_at).toLocaleString()}` : "Not synced yet"} · {s.pending} change(s)
            waiting · {s.open_conflicts} open conflict(s) · hub position {s.cursor}
          </Row>
          {s.last_error && (
            <Row label="Last error">
              <span className="text-danger">{s.last_error}</span>
            </Row>
          )}
        </div>
      ) : (
        <EnrolForm />
      )}
    </Section>
  );
}

/** Join a team hub with a one-time code from its admin; syncing starts at once. */
function EnrolForm() {
  const qc = useQueryClient();
  const [url, setUrl] = useState("");
  const [code, setCode] = useState("");
  const enrol = useMutation({
    mutationFn: () => api.enrolHub({ url: url.trim(), code: code.trim() }),
    onSuccess: (status) => {
      qc.setQueryData(["sync"], status);
      void qc.invalidateQueries({ queryKey: ["sync"] });
    },
  });
  return (
    <form
      className="flex flex-col gap-3 p-4"
      data-testid="hub-settings"
      onSubmit={(e) => {
        e.preventDefault();
        enrol.mutate();
      }}
    >
      <p className="text-[13px] text-muted">
        Everything stays on this machine until you join a team hub. Ask its admin for a one-time code (
        <code className="font-mono text-[12px]">processops hub code TEAM USER</code>).
      </p>
      <div className="grid gap-3 sm:grid-cols-2">
        <label className="flex flex-col gap-1">
          <span className="text-xs font-medium text-muted">Hub URL</span>
          <input
            className={inputClass}
            data-testid="hub-url"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            placeholder="https://hub.example.com"
          />
        </label>
        <label className="flex flex-col gap-1">
          <span className="text-xs font-medium text-muted">Enrolment code</span>
          <input
            className={clsx(inputClass, "font-mono")}
            data-testid="hub-code"
            value={code}
            onChange={(e) => setCode(e.target.value)}
            placeholder="XXXXX-XXXXX"
          />
        </label>
      </div>
      <div className="flex items-center gap-3">
        <Button type="submit" variant="primary" data-testid="hub-connect" disabled={enrol.isPending || !url.trim() || !code.trim()}>
          {enrol.isPending ? "Connecting…" : "Connect"}
        </Button>
        {enrol.isError && (
          <span role="alert" className="text-xs text-danger">
            {enrol.error.message}
          </span>
        )}
      </div>
    </form>
  );
}
