// The inspector: a form for the selected node, trigger or (nothing selected) the blueprint,
// generated from the blueprint schema, plus the selected node's dry-run result.
import { clsx } from "clsx";
import { ChevronDown, CircleAlert, Copy, Flag, Play, Plus, Trash2, TriangleAlert } from "lucide-react";
import { useMemo, useState, type ReactNode } from "react";
import { toast } from "sonner";
import type { DiagnosticDto } from "../api/types.gen";
import { Badge } from "../components/ui";
import { copyAction, deleteSelectionAction } from "./actions";
import { formatMs } from "./CanvasNodes";
import {
  agentNames,
  isObj,
  nodeList,
  pointerTarget,
  setBlueprintField,
  setNodeField,
  setTriggerField,
  templateVariables,
  TRIGGER_PREFIX,
  triggerList,
  type Obj,
} from "./graph";
import { defaultObject, Field, FieldShell, getAt, inputCls, type FormCtx, type Path } from "./fields";
import { stepMeta, triggerMeta } from "./kinds";
import { blueprintFields, nodeKindSpec, triggerKindSpec, type FieldSpec, type Schema } from "./schemaForms";
import { useDesigner, type DesignerStore } from "./store";

type Section = { title: string; fields: string[]; hint?: string };

/** How each kind's fields are grouped; fields not listed land in "More". */
const SECTIONS: Record<string, Section[]> = {
  retrieve: [
    { title: "Search", fields: ["collection", "query", "top_k", "filter", "max_tokens"] },
    { title: "Memory", fields: ["memory"] },
  ],
  prompt: [
    { title: "Agent", fields: ["agent", "fallbacks"] },
    { title: "Prompt", fields: ["template", "system", "output_schema", "fallback_text"] },
  ],
  route: [{ title: "Rules", fields: ["rules", "default"], hint: "Checked in order; the first rule that holds wins." }],
  branch: [{ title: "Parallel paths", fields: ["branches"] }],
  transform: [{ title: "Variables", fields: ["set"], hint: "Later templates read these as {{ vars.<name> }}." }],
  review: [
    { title: "Draft", fields: ["task_title", "draft"] },
    { title: "Who decides", fields: ["role", "users", "quorum", "distinct_approvers", "not_by", "actions"] },
    { title: "Deadline", fields: ["sla", "remind_before", "on_breach", "working_hours"] },
    { title: "Escalation", fields: ["escalation", "escalate_when"] },
    { title: "Policy", fields: ["auto_approve_when", "reasons"] },
    { title: "Outcomes", fields: ["on"] },
  ],
  output: [],
};

const COMMON_TOP = ["id", "title"];
const COMMON_FLOW = ["next", "join", "max_visits", "on_exhausted"];
const OUTPUT_TARGETS = ["http", "file", "dataset", "emit"] as const;

const OUTPUT_DEFAULTS: Record<(typeof OUTPUT_TARGETS)[number], Obj> = {
  http: { url: "https://example.com/hook", method: "POST", body: "{}" },
  file: { path: "results/{{ run.id }}.md", content: "" },
  dataset: { path: "datasets/records.jsonl", record: {} },
  emit: { event: "process.done", payload: {} },
};

function SectionBlock({ title, hint, children, defaultOpen = true, count }: { title: string; hint?: string; children: ReactNode; defaultOpen?: boolean; count?: number }) {
  const [open, setOpen] = useState(defaultOpen);
  return (
    <section className="border-b border-border last:border-b-0">
      <button type="button" onClick={() => setOpen(!open)} className="flex w-full items-center gap-1.5 px-4 pt-3 pb-2 text-left" aria-expanded={open}>
        <span className="text-[11px] font-semibold tracking-wide text-faint uppercase">{title}</span>
        {count !== undefined && count > 0 && <span className="text-[11px] text-faint">{count}</span>}
        <ChevronDown className={clsx("ml-auto size-3.5 text-faint transition-transform", !open && "-rotate-90")} />
      </button>
      {open && (
        <div className="flex flex-col gap-3.5 px-4 pb-4">
          {hint && <p className="-mt-1 text-[11.5px] leading-snug text-faint">{hint}</p>}
          {children}
        </div>
      )}
    </section>
  );
}

function problemsFor(diagnostics: DiagnosticDto[], base: string) {
  return (path: Path, exact = false) => {
    const p = path.length ? `${base}/${path.join("/")}` : base;
    return diagnostics.filter((d) => d.pointer === p || (!exact && d.pointer.startsWith(`${p}/`)));
  };
}

function rolesOf(bp: Obj | null): string[] {
  const out = new Set<string>();
  const pilot = isObj(bp?.lifecycle) && isObj(bp.lifecycle.pilot) ? bp.lifecycle.pilot.roles : null;
  if (Array.isArray(pilot)) pilot.forEach((r) => out.add(String(r)));
  for (const n of nodeList(bp)) {
    if (typeof n.role === "string") out.add(n.role);
    if (Array.isArray(n.escalation)) n.escalation.forEach((r) => out.add(String(r)));
  }
  return [...out].sort();
}

function agentsOf(bp: Obj | null): { name: string; model: string }[] {
  return agentNames(bp).map((name) => {
    const a = isObj(bp?.agents) ? bp.agents[name] : null;
    return { name, model: isObj(a) && typeof a.model === "string" ? a.model : "?" };
  });
}

function attempt(what: string, fn: () => void) {
  try {
    fn();
  } catch (e) {
    toast.error(`Could not ${what}`, { description: e instanceof Error ? e.message : String(e) });
  }
}

function ProblemSummary({ list }: { list: DiagnosticDto[] }) {
  if (list.length === 0) return null;
  return (
    <div className="mx-4 mt-3 flex flex-col gap-1.5 rounded-lg border border-danger/25 bg-danger/6 p-2.5" data-testid="inspector-problems">
      {list.map((d, i) => (
        <div key={i} className="flex items-start gap-1.5 text-[12px]">
          {d.severity === "error" ? <CircleAlert className="mt-0.5 size-3.5 shrink-0 text-danger" /> : <TriangleAlert className="mt-0.5 size-3.5 shrink-0 text-warn" />}
          <div className="min-w-0">
            <div className="text-fg">{d.message}</div>
            {d.help && <div className="text-faint">{d.help}</div>}
          </div>
        </div>
      ))}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------

export function Inspector({ store, schema }: { store: DesignerStore; schema: Schema | null }) {
  const selection = useDesigner(store, (s) => s.selection);
  const bp = useDesigner(store, (s) => s.bp);
  let body: ReactNode;
  if (!schema) body = <div className="p-4 text-[13px] text-muted">Loading the blueprint schema…</div>;
  else if (selection.length > 1) body = <MultiInspector store={store} count={selection.length} />;
  else if (selection.length === 1 && selection[0]!.startsWith(TRIGGER_PREFIX)) body = <TriggerInspector key={selection[0]} store={store} schema={schema} triggerId={selection[0]!.slice(TRIGGER_PREFIX.length)} />;
  else if (selection.length === 1 && nodeList(bp).some((n) => n.id === selection[0])) body = <NodeInspector key={selection[0]} store={store} schema={schema} nodeId={selection[0]!} />;
  else body = <BlueprintInspector store={store} schema={schema} />;
  return (
    <aside data-testid="inspector" aria-label="Inspector" className="flex w-[340px] shrink-0 flex-col overflow-hidden border-l border-border bg-panel">
      {body}
    </aside>
  );
}

function MultiInspector({ store, count }: { store: DesignerStore; count: number }) {
  return (
    <div className="flex flex-col gap-3 p-4">
      <div className="text-sm font-semibold">{count} selected</div>
      <p className="text-[12.5px] text-muted">Drag to move them together, copy (⌘C) to paste elsewhere, or delete them.</p>
      <div className="flex gap-2">
        <button type="button" className={clsx(inputCls, "inline-flex w-auto items-center gap-1.5")} onClick={() => copyAction(store)}>
          <Copy className="size-3.5" /> Copy
        </button>
        <button type="button" className={clsx(inputCls, "inline-flex w-auto items-center gap-1.5 text-danger")} onClick={() => deleteSelectionAction(store)}>
          <Trash2 className="size-3.5" /> Delete
        </button>
      </div>
    </div>
  );
}

function Header({ icon, chip, kind, title, sub, actions }: { icon: ReactNode; chip: string; kind: string; title: string; sub: ReactNode; actions?: ReactNode }) {
  return (
    <div className="flex items-start gap-3 border-b border-border px-4 py-3.5">
      <div className={clsx("grid size-9 shrink-0 place-items-center rounded-lg", chip)}>{icon}</div>
      <div className="min-w-0 flex-1">
        <div className="text-[10.5px] font-semibold tracking-wide text-faint uppercase">{kind}</div>
        <div className="truncate text-[14px] leading-tight font-semibold" title={title}>
          {title}
        </div>
        <div className="mt-0.5 truncate text-[11.5px] text-muted">{sub}</div>
      </div>
      <div className="flex shrink-0 items-center gap-0.5">{actions}</div>
    </div>
  );
}

function HeaderButton({ label, onClick, children, danger }: { label: string; onClick: () => void; children: ReactNode; danger?: boolean }) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      onClick={onClick}
      className={clsx("grid size-7 place-items-center rounded-md text-faint hover:bg-hover", danger ? "hover:text-danger" : "hover:text-fg")}
    >
      {children}
    </button>
  );
}

function Tabs({ tabs, value, onChange }: { tabs: { id: string; label: ReactNode }[]; value: string; onChange: (v: string) => void }) {
  return (
    <div role="tablist" className="flex gap-4 border-b border-border px-4">
      {tabs.map((t) => (
        <button
          key={t.id}
          type="button"
          role="tab"
          aria-selected={value === t.id}
          data-testid={`inspector-tab-${t.id}`}
          onClick={() => onChange(t.id)}
          className={clsx(
            "-mb-px inline-flex h-9 items-center gap-1.5 border-b-2 text-[12.5px] font-medium transition-colors",
            value === t.id ? "border-accent text-fg" : "border-transparent text-muted hover:text-fg",
          )}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

function renderFields(specs: FieldSpec[], names: string[], ctx: FormCtx) {
  return names.flatMap((name) => {
    const spec = specs.find((f) => f.name === name);
    return spec ? [<Field key={name} spec={spec} path={[name]} ctx={ctx} />] : [];
  });
}

function NodeInspector({ store, schema, nodeId }: { store: DesignerStore; schema: Schema; nodeId: string }) {
  const bp = useDesigner(store, (s) => s.bp);
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const dryRun = useDesigner(store, (s) => s.dryRun);
  const nodes = nodeList(bp);
  const index = nodes.findIndex((n) => n.id === nodeId);
  const node = nodes[index] ?? {};
  const kind = typeof node.kind === "string" ? node.kind : "?";
  const spec = nodeKindSpec(schema, kind);
  const visits = dryRun?.steps.filter((s) => s.node === nodeId) ?? [];
  const [tab, setTab] = useState(visits.length > 0 ? "run" : "props");
  const variables = useMemo(() => templateVariables(bp, nodeId), [bp, nodeId]);
  const meta = stepMeta(kind);
  const Icon = meta.icon;
  const base = `/nodes/${index}`;
  const mine = diagnostics.filter((d) => d.pointer === base || d.pointer.startsWith(`${base}/`));

  const ctx: FormCtx = {
    owner: "node",
    value: node,
    set: (path, value, typing) =>
      attempt("change the node", () => {
        if (path.length === 1 && path[0] === "id" && typeof value === "string") {
          store.apply((d) => setNodeField(d, nodeId, ["id"], value));
          store.renamePosition(nodeId, value);
          store.select([value]);
          return;
        }
        store.apply((d) => setNodeField(d, nodeId, path, value), typing ? `node:${nodeId}:${path.join(".")}` : undefined);
      }),
    problems: problemsFor(diagnostics, base),
    variables,
    nodeIds: nodes.map((n) => String(n.id)),
    selfId: nodeId,
    agents: agentsOf(bp),
    taken: nodes.map((n) => String(n.id)).filter((x) => x !== nodeId),
    roles: rolesOf(bp),
  };

  if (!spec) return <div className="p-4 text-[13px] text-danger">Unknown node kind `{kind}`.</div>;
  const sections = SECTIONS[kind] ?? [];
  const listed = new Set([...COMMON_TOP, ...COMMON_FLOW, ...sections.flatMap((s) => s.fields), ...(kind === "output" ? OUTPUT_TARGETS : [])]);
  const more = spec.fields.filter((f) => !listed.has(f.name)).map((f) => f.name);
  const flow = COMMON_FLOW.filter((f) => spec.fields.some((x) => x.name === f));
  const isStart = bp?.start === nodeId;

  return (
    <>
      <Header
        icon={<Icon className="size-4.5" />}
        chip={meta.chip}
        kind={`${meta.label} node`}
        title={typeof node.title === "string" && node.title ? node.title : nodeId}
        sub={
          <span className="inline-flex items-center gap-1.5">
            <span className="font-mono">{nodeId}</span>
            {isStart && <Badge tone="accent">start</Badge>}
          </span>
        }
        actions={
          <>
            {!isStart && (
              <HeaderButton label="Make this the start node" onClick={() => attempt("set the start", () => store.apply((d) => setBlueprintField(d, ["start"], nodeId)))}>
                <Flag className="size-3.5" />
              </HeaderButton>
            )}
            <HeaderButton label="Copy (⌘C)" onClick={() => copyAction(store)}>
              <Copy className="size-3.5" />
            </HeaderButton>
            <HeaderButton label="Delete (⌫)" danger onClick={() => deleteSelectionAction(store, [nodeId])}>
              <Trash2 className="size-3.5" />
            </HeaderButton>
          </>
        }
      />
      {visits.length > 0 && (
        <Tabs
          value={tab}
          onChange={setTab}
          tabs={[
            { id: "props", label: "Properties" },
            { id: "run", label: <><Play className="size-3" /> Dry run</> },
          ]}
        />
      )}
      <div className="min-h-0 flex-1 overflow-y-auto">
        {tab === "run" && visits.length > 0 ? (
          <RunView visits={visits} />
        ) : (
          <>
            <ProblemSummary list={mine} />
            <SectionBlock title="General">{renderFields(spec.fields, COMMON_TOP, ctx)}</SectionBlock>
            {kind === "output" && <OutputTarget ctx={ctx} spec={spec.fields} />}
            {sections.map((s) => (
              <SectionBlock key={s.title} title={s.title} hint={s.hint}>
                {renderFields(spec.fields, s.fields, ctx)}
              </SectionBlock>
            ))}
            {flow.length > 0 && <SectionBlock title="Flow">{renderFields(spec.fields, flow, ctx)}</SectionBlock>}
            {more.length > 0 && (
              <SectionBlock title="More" defaultOpen={false}>
                {renderFields(spec.fields, more, ctx)}
              </SectionBlock>
            )}
          </>
        )}
      </div>
    </>
  );
}

function OutputTarget({ ctx, spec }: { ctx: FormCtx; spec: FieldSpec[] }) {
  const current = OUTPUT_TARGETS.find((t) => isObj(ctx.value[t])) ?? null;
  const fieldSpec = current ? spec.find((f) => f.name === current) : undefined;
  return (
    <SectionBlock title="Target">
      <div role="radiogroup" aria-label="Output target" className="grid grid-cols-4 gap-0.5 rounded-lg bg-sunken p-0.5" data-testid="inspector-field-target">
        {OUTPUT_TARGETS.map((t) => (
          <button
            key={t}
            type="button"
            role="radio"
            aria-checked={current === t}
            onClick={() => {
              if (current === t) return;
              const s = spec.find((f) => f.name === t);
              // Exactly one target: switching replaces the old one (undo brings it back).
              for (const other of OUTPUT_TARGETS) if (other !== t && isObj(ctx.value[other])) ctx.set([other], undefined);
              ctx.set([t], { ...(s ? defaultObject(s) : {}), ...OUTPUT_DEFAULTS[t] });
            }}
            className={clsx(
              "h-7 rounded-md text-[12px] font-medium uppercase transition-colors",
              current === t ? "bg-panel text-fg shadow-sm" : "text-muted hover:text-fg",
            )}
          >
            {t}
          </button>
        ))}
      </div>
      {fieldSpec?.fields?.map((f) => <Field key={f.name} spec={f} path={[current!, f.name]} ctx={ctx} />)}
    </SectionBlock>
  );
}

function TriggerInspector({ store, schema, triggerId }: { store: DesignerStore; schema: Schema; triggerId: string }) {
  const bp = useDesigner(store, (s) => s.bp);
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const triggers = triggerList(bp);
  const index = triggers.findIndex((t) => t.id === triggerId);
  const trigger = triggers[index] ?? {};
  const kind = typeof trigger.kind === "string" ? trigger.kind : "?";
  const spec = triggerKindSpec(schema, kind);
  const meta = triggerMeta(kind);
  const Icon = meta.icon;
  const base = `/triggers/${index}`;
  const nodes = nodeList(bp).map((n) => String(n.id));
  const ctx: FormCtx = {
    owner: "trigger",
    value: trigger,
    set: (path, value, typing) =>
      attempt("change the trigger", () => {
        store.apply((d) => setTriggerField(d, triggerId, path, value), typing ? `trigger:${triggerId}:${path.join(".")}` : undefined);
        if (path[0] === "id" && typeof value === "string") {
          store.renamePosition(`${TRIGGER_PREFIX}${triggerId}`, `${TRIGGER_PREFIX}${value}`);
          store.select([`${TRIGGER_PREFIX}${value}`]);
        }
      }),
    problems: problemsFor(diagnostics, base),
    variables: [],
    nodeIds: nodes,
    selfId: null,
    agents: [],
    taken: triggers.map((t) => String(t.id)).filter((x) => x !== triggerId),
    roles: [],
  };
  if (!spec) return <div className="p-4 text-[13px] text-danger">Unknown trigger kind `{kind}`.</div>;
  const rest = spec.fields.filter((f) => f.name !== "id" && f.name !== "start");
  const start = typeof trigger.start === "string" ? trigger.start : "";
  const mine = diagnostics.filter((d) => d.pointer === base || d.pointer.startsWith(`${base}/`));
  return (
    <>
      <Header
        icon={<Icon className="size-4.5" />}
        chip={meta.chip}
        kind={`${meta.label} trigger`}
        title={triggerId}
        sub={meta.blurb}
        actions={
          <HeaderButton label="Delete trigger" danger onClick={() => deleteSelectionAction(store, [`${TRIGGER_PREFIX}${triggerId}`])}>
            <Trash2 className="size-3.5" />
          </HeaderButton>
        }
      />
      <div className="min-h-0 flex-1 overflow-y-auto">
        <ProblemSummary list={mine} />
        <SectionBlock title="General">
          {renderFields(spec.fields, ["id"], ctx)}
          <FieldShell label="Starts at" description="Node to start at instead of the blueprint's `start`." problems={ctx.problems(["start"])}>
            <select data-testid="inspector-field-start" className={inputCls} value={start} onChange={(e) => ctx.set(["start"], e.target.value || undefined)}>
              <option value="">Blueprint start ({String(bp?.start ?? "—")})</option>
              {nodes.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </FieldShell>
        </SectionBlock>
        <SectionBlock title="Settings">
          {rest.map((f) => (
            <Field key={f.name} spec={f} path={[f.name]} ctx={ctx} />
          ))}
          {kind === "webhook" && (
            <p className="rounded-md bg-sunken px-2.5 py-2 font-mono text-[11px] text-muted">
              POST /hooks/{String(bp?.id ?? "…")}/{triggerId}
            </p>
          )}
        </SectionBlock>
      </div>
    </>
  );
}

function BlueprintInspector({ store, schema }: { store: DesignerStore; schema: Schema }) {
  const bp = useDesigner(store, (s) => s.bp) ?? {};
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const isNew = useDesigner(store, (s) => s.isNew);
  const fields = blueprintFields(schema);
  const nodes = nodeList(bp).map((n) => String(n.id));
  const ctx: FormCtx = {
    owner: "blueprint",
    value: bp,
    set: (path, value, typing) => attempt("change the blueprint", () => store.apply((d) => setBlueprintField(d, path, value), typing ? `bp:${path.join(".")}` : undefined)),
    problems: problemsFor(diagnostics, ""),
    variables: [],
    nodeIds: nodes,
    selfId: null,
    agents: agentsOf(bp),
    taken: [],
    roles: rolesOf(bp),
  };
  const global = diagnostics.filter((d) => pointerTarget(bp, d.pointer).kind === "blueprint");
  const start = typeof bp.start === "string" ? bp.start : "";
  return (
    <>
      <Header
        icon={<span className="text-[13px] font-bold">{String(bp.name ?? "?").slice(0, 1).toUpperCase()}</span>}
        chip="bg-accent/12 text-accent"
        kind="Blueprint"
        title={String(bp.name ?? "Untitled")}
        sub={<span className="font-mono">{String(bp.id ?? "")}</span>}
      />
      <div className="min-h-0 flex-1 overflow-y-auto">
        <ProblemSummary list={global} />
        <SectionBlock title="About">
          {isNew ? renderFields(fields, ["id"], ctx) : (
            <FieldShell label="Id" description="The id is part of the file name and webhook URLs; it cannot change after the first save.">
              <div className="flex h-8 items-center rounded-md bg-sunken px-2.5 font-mono text-[12.5px] text-muted">{String(bp.id ?? "")}</div>
            </FieldShell>
          )}
          {renderFields(fields, ["name", "description", "domain"], ctx)}
        </SectionBlock>
        <SectionBlock title="Flow">
          <FieldShell label="Start node" required description="The node that runs first when a trigger fires (a trigger may override it)." problems={ctx.problems(["start"])}>
            <select data-testid="inspector-field-start" className={inputCls} value={start} onChange={(e) => ctx.set(["start"], e.target.value)}>
              {!nodes.includes(start) && <option value={start}>{start || "Pick a node…"}</option>}
              {nodes.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </FieldShell>
        </SectionBlock>
        <SectionBlock title="Lifecycle">
          {fields.find((f) => f.name === "lifecycle")?.fields?.map((f) =>
            f.kind === "object" ? (
              f.fields?.map((g) => <Field key={`${f.name}.${g.name}`} spec={{ ...g, label: `${f.label} ${g.label.toLowerCase()}` }} path={["lifecycle", f.name, g.name]} ctx={ctx} />)
            ) : (
              <Field key={f.name} spec={f} path={["lifecycle", f.name]} ctx={ctx} />
            ),
          )}
        </SectionBlock>
        <AgentsSection store={store} schema={schema} bp={bp} diagnostics={diagnostics} />
        <div className="px-4 py-4 text-[11.5px] leading-relaxed text-faint">
          Select a node to edit it. <kbd className="font-mono">⌘Z</kbd> undo, <kbd className="font-mono">⌘⇧Z</kbd> redo, <kbd className="font-mono">⌘S</kbd> save,{" "}
          <kbd className="font-mono">⌘C</kbd>/<kbd className="font-mono">⌘V</kbd> copy and paste nodes, <kbd className="font-mono">⌫</kbd> delete.
        </div>
      </div>
    </>
  );
}

function agentSpecs(schema: Schema): FieldSpec[] {
  const agent = isObj(schema.$defs) && isObj(schema.$defs.Agent) ? schema.$defs.Agent : null;
  if (!agent) return [];
  // Reuse the generic derivation through a synthetic object field.
  const fake = blueprintFields({ ...schema, properties: { agent: { $ref: "#/$defs/Agent" } }, required: [] });
  return fake[0]?.fields ?? [];
}

function AgentsSection({ store, schema, bp, diagnostics }: { store: DesignerStore; schema: Schema; bp: Obj; diagnostics: DiagnosticDto[] }) {
  const agents = isObj(bp.agents) ? bp.agents : {};
  const specs = useMemo(() => agentSpecs(schema), [schema]);
  const [name, setName] = useState("");
  const names = Object.keys(agents);
  const problem = name && !/^[a-z][a-z0-9_-]*$/.test(name) ? "Lowercase letters, digits, - and _." : names.includes(name) ? "Taken." : null;
  const add = () => {
    if (!name || problem) return;
    attempt("add the agent", () => store.apply((d) => setBlueprintField(d, ["agents", name], { provider: "default", model: "gpt-4o-mini" })));
    setName("");
  };
  return (
    <SectionBlock title="Agents" count={names.length} hint="Model configurations that prompt nodes pick from.">
      {names.map((n) => {
        const ctx: FormCtx = {
          owner: "blueprint",
          value: bp,
          set: (path, value, typing) => attempt("change the agent", () => store.apply((d) => setBlueprintField(d, path, value), typing ? `bp:${path.join(".")}` : undefined)),
          problems: problemsFor(diagnostics, ""),
          variables: [],
          nodeIds: [],
          selfId: null,
          agents: [],
          taken: [],
          roles: [],
        };
        return (
          <details key={n} className="group rounded-lg border border-border" data-testid={`agent-${n}`}>
            <summary className="flex cursor-pointer list-none items-center gap-2 px-2.5 py-2 text-[12.5px]">
              <ChevronDown className="size-3.5 -rotate-90 text-faint transition-transform group-open:rotate-0" />
              <span className="font-mono font-medium">{n}</span>
              <span className="truncate text-faint">{String(getAt(agents, [n, "model"]) ?? "")}</span>
              <button
                type="button"
                aria-label={`Remove agent ${n}`}
                className="ml-auto grid size-6 place-items-center rounded text-faint hover:bg-hover hover:text-danger"
                onClick={(e) => {
                  e.preventDefault();
                  attempt("remove the agent", () => store.apply((d) => setBlueprintField(d, ["agents", n], undefined)));
                }}
              >
                <Trash2 className="size-3" />
              </button>
            </summary>
            <div className="flex flex-col gap-3 border-t border-border p-2.5">
              {specs.map((f) => (
                <Field key={f.name} spec={f} path={["agents", n, f.name]} ctx={ctx} />
              ))}
            </div>
          </details>
        );
      })}
      <div className="flex gap-1.5">
        <input className={clsx(inputCls, "font-mono text-[12px]")} placeholder="new_agent" value={name} aria-invalid={!!problem} onChange={(e) => setName(e.target.value)} onKeyDown={(e) => e.key === "Enter" && add()} />
        <button type="button" onClick={add} disabled={!name || !!problem} className="inline-flex h-8 shrink-0 items-center gap-1 rounded-md border border-border px-2 text-[12px] text-muted hover:bg-hover hover:text-fg disabled:opacity-40">
          <Plus className="size-3.5" /> Agent
        </button>
      </div>
      {problem && <p className="text-[11.5px] text-danger">{problem}</p>}
    </SectionBlock>
  );
}

// ---------------------------------------------------------------------------------------------
// Dry-run result of one node

type Visit = NonNullable<ReturnType<DesignerStore["get"]>["dryRun"]>["steps"][number];

function messagesOf(input: unknown): { role: string; content: string }[] | null {
  if (!isObj(input) || !Array.isArray(input.messages)) return null;
  return input.messages.filter(isObj).map((m) => ({ role: String(m.role ?? ""), content: String(m.content ?? "") }));
}

function Pre({ children, testId }: { children: string; testId?: string }) {
  return (
    <pre data-testid={testId} className="max-h-80 overflow-auto rounded-md border border-border bg-sunken p-2.5 font-mono text-[11.5px] leading-relaxed break-words whitespace-pre-wrap text-fg">
      {children}
    </pre>
  );
}

function RunView({ visits }: { visits: Visit[] }) {
  return (
    <div className="flex flex-col" data-testid="inspector-run">
      {visits.map((v, i) => {
        const tone = v.status === "done" ? "ok" : v.status === "failed" ? "danger" : v.status === "skipped" ? "neutral" : "warn";
        const messages = messagesOf(v.meta?.input);
        const output = v.output;
        const text = isObj(output) && typeof output.text === "string" ? output.text : null;
        const json = isObj(output) && output.json !== undefined && output.json !== null ? output.json : null;
        return (
          <div key={i} className="flex flex-col gap-3 border-b border-border px-4 py-3.5">
            <div className="flex flex-wrap items-center gap-1.5">
              <Badge tone={tone}>{v.status === "done" ? "ok" : v.status}</Badge>
              {visits.length > 1 && <Badge>visit {v.visit}</Badge>}
              {v.meta?.duration_ms != null && <span className="text-[11.5px] text-muted">{formatMs(v.meta.duration_ms)}</span>}
              {v.label && <Badge tone="info">{v.label}</Badge>}
              {v.next.length > 0 && <span className="ml-auto truncate font-mono text-[11px] text-faint">→ {v.next.join(", ")}</span>}
            </div>
            {(v.meta?.model || v.meta?.prompt_tokens != null) && (
              <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-[12px]">
                {v.meta?.model && (
                  <>
                    <dt className="text-faint">Model</dt>
                    <dd className="font-mono" data-testid="run-model">{v.meta.model}</dd>
                  </>
                )}
                {v.meta?.prompt_tokens != null && (
                  <>
                    <dt className="text-faint">Tokens</dt>
                    <dd className="tabular-nums">
                      {v.meta.prompt_tokens} in · {v.meta.completion_tokens ?? 0} out
                    </dd>
                  </>
                )}
                {v.meta?.fallback && (
                  <>
                    <dt className="text-faint">Fallback</dt>
                    <dd>{v.meta.fallback}</dd>
                  </>
                )}
              </dl>
            )}
            {v.error && (
              <div className="rounded-md border border-danger/30 bg-danger/8 p-2.5 text-[12px] text-danger" role="alert">
                {v.error}
              </div>
            )}
            {v.decision && (
              <div className="text-[12px] text-muted">
                Decision: <span className="font-medium text-fg">{v.decision.action}</span> by <span className="font-mono">{v.decision.by}</span>
                <span className="text-faint"> (dry runs approve reviews automatically)</span>
              </div>
            )}
            {json !== null ? (
              <div className="flex flex-col gap-1">
                <div className="text-[11px] font-semibold tracking-wide text-faint uppercase">Output · json</div>
                <Pre testId="run-output">{JSON.stringify(json, null, 2)}</Pre>
              </div>
            ) : text !== null ? (
              <div className="flex flex-col gap-1">
                <div className="text-[11px] font-semibold tracking-wide text-faint uppercase">Output · text</div>
                <Pre testId="run-output">{text}</Pre>
              </div>
            ) : output !== null ? (
              <div className="flex flex-col gap-1">
                <div className="text-[11px] font-semibold tracking-wide text-faint uppercase">Output</div>
                <Pre testId="run-output">{JSON.stringify(output, null, 2)}</Pre>
              </div>
            ) : null}
            {messages && (
              <details className="group">
                <summary className="cursor-pointer list-none text-[11px] font-semibold tracking-wide text-faint uppercase">
                  <ChevronDown className="mr-1 inline size-3 -rotate-90 transition-transform group-open:rotate-0" />
                  Prompt sent
                </summary>
                <div className="mt-2 flex flex-col gap-2">
                  {messages.map((m, j) => (
                    <div key={j}>
                      <div className="mb-0.5 text-[10.5px] font-medium text-muted uppercase">{m.role}</div>
                      <Pre>{m.content}</Pre>
                    </div>
                  ))}
                </div>
              </details>
            )}
            {!messages && v.meta?.input != null && (
              <details className="group">
                <summary className="cursor-pointer list-none text-[11px] font-semibold tracking-wide text-faint uppercase">
                  <ChevronDown className="mr-1 inline size-3 -rotate-90 transition-transform group-open:rotate-0" />
                  Input
                </summary>
                <div className="mt-2">
                  <Pre>{typeof v.meta.input === "string" ? v.meta.input : JSON.stringify(v.meta.input, null, 2)}</Pre>
                </div>
              </details>
            )}
          </div>
        );
      })}
    </div>
  );
}
