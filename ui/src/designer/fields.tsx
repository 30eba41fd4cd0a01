// Inspector form widgets, one per schema field kind (see schemaForms.ts).
import { clsx } from "clsx";
import { ArrowDown, ArrowRight, ArrowUp, CircleAlert, Info, Plus, Trash2, X } from "lucide-react";
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { DiagnosticDto } from "../api/types.gen";
import { isObj, targets, type Obj, type Variable } from "./graph";
import { fieldProblem, humanize, type FieldSpec } from "./schemaForms";
import { TemplateEditor } from "./TemplateEditor";

export type Path = (string | number)[];

export interface FormCtx {
  owner: "node" | "trigger" | "blueprint";
  /** The edited object (node, trigger or blueprint) as plain JS. */
  value: Obj;
  /** Write a value at `path` (undefined deletes). `typing` merges keystrokes into one undo step. */
  set: (path: Path, value: unknown, typing?: boolean) => void;
  /** Server diagnostics whose pointer is at (`exact`) or below `path` of the edited object. */
  problems: (path: Path, exact?: boolean) => DiagnosticDto[];
  variables: Variable[];
  nodeIds: string[];
  selfId: string | null;
  agents: { name: string; model: string }[];
  taken: string[];
  /** Roles used anywhere in the blueprint (suggestions). */
  roles: string[];
}

export function getAt(v: unknown, path: Path): unknown {
  let cur = v;
  for (const k of path) {
    if (typeof k === "number") cur = Array.isArray(cur) ? cur[k] : undefined;
    else cur = isObj(cur) ? cur[k] : undefined;
  }
  return cur;
}

function testIdFor(path: Path): string {
  return `inspector-field-${path.join("-")}`;
}

/** Commit a text value after a pause, or at once on blur. */
function useDebounced<T>(value: T, commit: (v: T) => void, delay = 280): [T, (v: T) => void, () => void] {
  const [draft, setDraft] = useState(value);
  const [seen, setSeen] = useState(value);
  const timer = useRef<number | null>(null);
  const pending = useRef<{ v: T } | null>(null);
  const commitRef = useRef(commit);
  useEffect(() => {
    commitRef.current = commit;
  }, [commit]);
  if (value !== seen) {
    // The document changed underneath (undo, another editor): show it.
    setSeen(value);
    setDraft(value);
  }
  const flush = () => {
    if (timer.current !== null) window.clearTimeout(timer.current);
    timer.current = null;
    const p = pending.current;
    pending.current = null;
    if (p) commitRef.current(p.v);
  };
  const update = (v: T) => {
    setDraft(v);
    pending.current = { v };
    if (timer.current !== null) window.clearTimeout(timer.current);
    timer.current = window.setTimeout(flush, delay);
  };
  useEffect(
    () => () => {
      // Unmounting (another node selected): keep what was typed.
      if (timer.current !== null) window.clearTimeout(timer.current);
      const p = pending.current;
      pending.current = null;
      if (p) commitRef.current(p.v);
    },
    [],
  );
  return [draft, update, flush];
}

export function FieldShell({
  label,
  htmlFor,
  required,
  description,
  error,
  problems,
  children,
  aside,
}: {
  label: ReactNode;
  htmlFor?: string;
  required?: boolean;
  description?: string;
  error?: string | null;
  problems?: DiagnosticDto[];
  children: ReactNode;
  aside?: ReactNode;
}) {
  return (
    <div className="flex flex-col gap-1">
      <div className="flex min-h-5 items-center gap-1">
        <label htmlFor={htmlFor} className="text-[12px] font-medium text-muted">
          {label}
          {required && <span className="ml-0.5 text-danger">*</span>}
        </label>
        {description && (
          <span className="text-faint" title={description}>
            <Info className="size-3" aria-label={description} />
          </span>
        )}
        <div className="ml-auto">{aside}</div>
      </div>
      {children}
      {error && (
        <p role="alert" className="flex items-start gap-1 text-[11.5px] text-danger">
          <CircleAlert className="mt-px size-3 shrink-0" aria-hidden />
          {error}
        </p>
      )}
      {problems?.map((d, i) => (
        <p key={i} className={clsx("flex items-start gap-1 text-[11.5px]", d.severity === "error" ? "text-danger" : "text-warn")} data-testid="inspector-problem">
          <CircleAlert className="mt-px size-3 shrink-0" aria-hidden />
          <span>
            {d.message}
            {d.help && <span className="block text-faint">{d.help}</span>}
          </span>
        </p>
      ))}
    </div>
  );
}

export const inputCls =
  "h-8 w-full rounded-md border border-border bg-panel px-2.5 text-[13px] text-fg placeholder:text-faint transition-colors hover:border-faint/60 focus:border-accent focus:ring-[3px] focus:ring-accent/18 focus:outline-none aria-[invalid=true]:border-danger/70";

const MULTILINE = new Set(["template", "system", "draft", "content", "body", "fallback_text", "description"]);

// ---------------------------------------------------------------------------------------------

export function Field({ spec, path, ctx }: { spec: FieldSpec; path: Path; ctx: FormCtx }) {
  const value = getAt(ctx.value, path);
  switch (spec.kind) {
    case "id":
      return <IdField spec={spec} path={path} ctx={ctx} value={typeof value === "string" ? value : ""} />;
    case "text":
      return <TextField spec={spec} path={path} ctx={ctx} value={value} />;
    case "template":
    case "expression":
      return <TemplateField spec={spec} path={path} ctx={ctx} value={value} />;
    case "integer":
    case "number":
      return <NumberField spec={spec} path={path} ctx={ctx} value={value} />;
    case "boolean":
      return <BooleanField spec={spec} path={path} ctx={ctx} value={value} />;
    case "enum":
      return <EnumField spec={spec} path={path} ctx={ctx} value={value} />;
    case "strings":
      return <StringListField spec={spec} path={path} ctx={ctx} value={value} />;
    case "enums":
      return <EnumListField spec={spec} path={path} ctx={ctx} value={value} />;
    case "next":
      return <NextField spec={spec} path={path} ctx={ctx} value={value} />;
    case "map":
      return <MapField spec={spec} path={path} ctx={ctx} value={value} />;
    case "object":
      return <ObjectField spec={spec} path={path} ctx={ctx} value={value} />;
    case "json":
      return <JsonField spec={spec} path={path} ctx={ctx} value={value} />;
    case "rules":
      return <RulesField spec={spec} path={path} ctx={ctx} value={value} />;
    case "branches":
      return <BranchesField spec={spec} path={path} ctx={ctx} value={value} />;
    case "outcomes":
      return <OutcomesField spec={spec} path={path} ctx={ctx} value={value} />;
    case "agent":
      return <AgentField spec={spec} path={path} ctx={ctx} value={value} />;
    case "agents":
      return <AgentListField spec={spec} path={path} ctx={ctx} value={value} />;
  }
}

interface FieldProps {
  spec: FieldSpec;
  path: Path;
  ctx: FormCtx;
  value: unknown;
}

function IdField({ spec, path, ctx, value }: FieldProps & { value: string }) {
  const id = useId();
  const [draft, setDraft] = useState(value);
  const [seen, setSeen] = useState(value);
  if (seen !== value) {
    setSeen(value);
    setDraft(value);
  }
  const problem = fieldProblem(spec, draft, { owner: ctx.owner, taken: ctx.taken });
  const commit = () => {
    if (draft !== value && !problem) ctx.set(path, draft);
  };
  return (
    <FieldShell label="Id" htmlFor={id} required description={spec.description} error={draft !== value ? problem : null} problems={ctx.problems(path)}>
      <input
        id={id}
        data-testid={testIdFor(path)}
        className={clsx(inputCls, "font-mono text-[12.5px]")}
        value={draft}
        aria-invalid={!!problem}
        spellCheck={false}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") commit();
          if (e.key === "Escape") setDraft(value);
        }}
      />
      {draft !== value && !problem && <p className="text-[11px] text-faint">Press Enter to rename; edges and templates follow.</p>}
    </FieldShell>
  );
}

function TextField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const text = typeof value === "string" || typeof value === "number" ? String(value) : "";
  const [draft, update, flush] = useDebounced(text, (v) => ctx.set(path, v === "" && !spec.required ? undefined : v, true));
  const problem = fieldProblem(spec, draft, { owner: ctx.owner });
  const long = MULTILINE.has(spec.name) || text.includes("\n");
  const suggestions = spec.name === "role" ? ctx.roles : null;
  return (
    <FieldShell label={spec.label} htmlFor={id} required={spec.required} description={spec.description} error={problem} problems={ctx.problems(path)}>
      {long ? (
        <textarea
          id={id}
          data-testid={testIdFor(path)}
          className={clsx(inputCls, "h-auto min-h-16 py-1.5 leading-snug")}
          rows={3}
          value={draft}
          aria-invalid={!!problem}
          onChange={(e) => update(e.target.value)}
          onBlur={flush}
        />
      ) : (
        <input
          id={id}
          data-testid={testIdFor(path)}
          className={inputCls}
          value={draft}
          placeholder={spec.default !== undefined ? `${String(spec.default)} (default)` : undefined}
          aria-invalid={!!problem}
          list={suggestions ? `${id}-list` : undefined}
          onChange={(e) => update(e.target.value)}
          onBlur={flush}
        />
      )}
      {suggestions && (
        <datalist id={`${id}-list`}>
          {suggestions.map((r) => (
            <option key={r} value={r} />
          ))}
        </datalist>
      )}
    </FieldShell>
  );
}

function TemplateField({ spec, path, ctx, value }: FieldProps) {
  const text = typeof value === "string" ? value : value == null ? "" : String(value);
  const [draft, update, flush] = useDebounced(text, (v) => ctx.set(path, v === "" && !spec.required ? undefined : v, true), 350);
  const problem = fieldProblem(spec, draft, { owner: ctx.owner });
  const multiline = MULTILINE.has(spec.name) || text.includes("\n");
  return (
    <FieldShell
      label={spec.label}
      required={spec.required}
      description={spec.description}
      error={problem}
      problems={ctx.problems(path)}
      aside={<span className="font-mono text-[10px] text-faint">{spec.kind === "template" ? "{{ }}" : "expr"}</span>}
    >
      <TemplateEditor
        label={spec.label}
        testId={testIdFor(path)}
        value={draft}
        onChange={update}
        onBlur={flush}
        variables={ctx.variables}
        mode={spec.kind === "expression" ? "expression" : "template"}
        multiline={multiline}
        minHeight={multiline ? 72 : undefined}
        invalid={!!problem || ctx.problems(path).some((d) => d.severity === "error")}
        placeholder={spec.kind === "expression" ? "e.g. trigger.amount > 1000" : multiline ? "Type {{ to insert a variable…" : undefined}
      />
    </FieldShell>
  );
}

function NumberField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const text = typeof value === "number" ? String(value) : "";
  const [draft, update, flush] = useDebounced(text, (v) => {
    if (v.trim() === "") return ctx.set(path, undefined, true);
    const n = Number(v);
    if (fieldProblem(spec, n, { owner: ctx.owner }) === null) ctx.set(path, n, true);
  });
  const problem = draft.trim() === "" ? null : fieldProblem(spec, Number(draft), { owner: ctx.owner });
  return (
    <FieldShell label={spec.label} htmlFor={id} required={spec.required} description={spec.description} error={problem} problems={ctx.problems(path)}>
      <input
        id={id}
        data-testid={testIdFor(path)}
        className={clsx(inputCls, "tabular-nums")}
        inputMode={spec.kind === "integer" ? "numeric" : "decimal"}
        value={draft}
        placeholder={spec.default !== undefined ? `${String(spec.default)} (default)` : "—"}
        aria-invalid={!!problem}
        onChange={(e) => update(e.target.value)}
        onBlur={flush}
      />
    </FieldShell>
  );
}

function BooleanField({ spec, path, ctx, value }: FieldProps) {
  const on = value === true;
  return (
    <div className="flex items-center justify-between gap-3 py-0.5">
      <span className="flex items-center gap-1 text-[12px] font-medium text-muted">
        {spec.label}
        {spec.description && (
          <span className="text-faint" title={spec.description}>
            <Info className="size-3" aria-label={spec.description} />
          </span>
        )}
      </span>
      <button
        type="button"
        role="switch"
        aria-checked={on}
        aria-label={spec.label}
        data-testid={testIdFor(path)}
        onClick={() => ctx.set(path, on ? undefined : true)}
        className={clsx("relative h-[18px] w-8 rounded-full transition-colors", on ? "bg-accent" : "bg-border")}
      >
        <span className={clsx("absolute top-[2px] size-[14px] rounded-full bg-white shadow transition-[left]", on ? "left-[16px]" : "left-[2px]")} />
      </button>
    </div>
  );
}

function EnumField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const current = typeof value === "string" ? value : "";
  const desc = spec.options?.find((o) => o.value === current)?.description;
  return (
    <FieldShell label={spec.label} htmlFor={id} required={spec.required} description={spec.description} problems={ctx.problems(path)}>
      <select id={id} data-testid={testIdFor(path)} className={inputCls} value={current} onChange={(e) => ctx.set(path, e.target.value || undefined)}>
        {!spec.required && <option value="">{spec.default !== undefined ? `Default (${String(spec.default)})` : "—"}</option>}
        {spec.options?.map((o) => (
          <option key={o.value} value={o.value}>
            {o.value}
          </option>
        ))}
      </select>
      {desc && <p className="text-[11px] leading-snug text-faint">{desc}</p>}
    </FieldShell>
  );
}

function Chip({ children, onRemove, tone = "neutral" }: { children: ReactNode; onRemove?: () => void; tone?: "neutral" | "accent" }) {
  return (
    <span
      className={clsx(
        "inline-flex h-6 max-w-full items-center gap-1 rounded-md border pr-0.5 pl-2 text-[12px]",
        tone === "accent" ? "border-accent/30 bg-accent/8 text-fg" : "border-border bg-sunken text-fg",
      )}
    >
      <span className="truncate">{children}</span>
      {onRemove && (
        <button type="button" className="grid size-5 place-items-center rounded text-faint hover:bg-hover hover:text-fg" onClick={onRemove} aria-label="Remove">
          <X className="size-3" />
        </button>
      )}
    </span>
  );
}

function StringListField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const items = Array.isArray(value) ? value.map(String) : [];
  const [text, setText] = useState("");
  const chain = spec.name === "escalation";
  const add = () => {
    const v = text.trim();
    if (!v || items.includes(v)) return;
    ctx.set(path, [...items, v]);
    setText("");
  };
  const write = (next: string[]) => ctx.set(path, next.length ? next : undefined);
  const long = spec.name === "reasons";
  return (
    <FieldShell label={spec.label} htmlFor={id} required={spec.required} description={spec.description} problems={ctx.problems(path)}>
      {items.length > 0 &&
        (long ? (
          <ul className="flex flex-col divide-y divide-border rounded-md border border-border">
            {items.map((it, i) => (
              <li key={`${it}-${i}`} className="group flex items-center gap-1 py-1 pr-1 pl-2.5 text-[12.5px]">
                <span className="flex-1">{it}</span>
                <IconButton label="Move up" disabled={i === 0} onClick={() => write(move(items, i, -1))}>
                  <ArrowUp className="size-3" />
                </IconButton>
                <IconButton label="Remove" onClick={() => write(items.filter((_, j) => j !== i))}>
                  <X className="size-3" />
                </IconButton>
              </li>
            ))}
          </ul>
        ) : (
          <div className="flex flex-wrap items-center gap-1">
            {items.map((it, i) => (
              <span key={`${it}-${i}`} className="inline-flex items-center gap-1">
                {chain && i > 0 && <ArrowRight className="size-3 text-faint" aria-hidden />}
                <Chip onRemove={() => write(items.filter((_, j) => j !== i))}>{it}</Chip>
              </span>
            ))}
          </div>
        ))}
      <input
        id={id}
        data-testid={testIdFor(path)}
        className={inputCls}
        value={text}
        list={spec.name === "escalation" || spec.name === "roles" ? `${id}-roles` : undefined}
        placeholder={chain ? "Add a role to the chain…" : `Add ${humanize(spec.name).toLowerCase().replace(/s$/, "")}…`}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            add();
          }
        }}
        onBlur={add}
      />
      {(spec.name === "escalation" || spec.name === "roles") && (
        <datalist id={`${id}-roles`}>
          {ctx.roles.filter((r) => !items.includes(r)).map((r) => (
            <option key={r} value={r} />
          ))}
        </datalist>
      )}
    </FieldShell>
  );
}

function move<T>(list: T[], i: number, delta: number): T[] {
  const j = i + delta;
  if (j < 0 || j >= list.length) return list;
  const out = [...list];
  [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
}

function IconButton({ label, onClick, disabled, children }: { label: string; onClick: () => void; disabled?: boolean; children: ReactNode }) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      disabled={disabled}
      onClick={onClick}
      className="grid size-6 place-items-center rounded text-faint hover:bg-hover hover:text-fg disabled:opacity-30 disabled:hover:bg-transparent"
    >
      {children}
    </button>
  );
}

function EnumListField({ spec, path, ctx, value }: FieldProps) {
  const items = Array.isArray(value) ? value.map(String) : [];
  const all = spec.options?.map((o) => o.value) ?? [];
  const effective = items.length ? items : all;
  return (
    <FieldShell label={spec.label} description={spec.description} problems={ctx.problems(path)}>
      <div className="flex flex-wrap gap-1" data-testid={testIdFor(path)}>
        {all.map((o) => {
          const on = effective.includes(o);
          return (
            <button
              key={o}
              type="button"
              aria-pressed={on}
              onClick={() => {
                const next = on ? effective.filter((x) => x !== o) : all.filter((x) => effective.includes(x) || x === o);
                ctx.set(path, next.length === all.length || next.length === 0 ? undefined : next);
              }}
              className={clsx(
                "h-6 rounded-md border px-2 text-[12px] transition-colors",
                on ? "border-accent/40 bg-accent/10 text-accent" : "border-border text-faint hover:text-muted",
              )}
            >
              {o}
            </button>
          );
        })}
      </div>
      {items.length === 0 && <p className="text-[11px] text-faint">All actions allowed (default).</p>}
    </FieldShell>
  );
}

/** Targets of a Next field: chips plus a select to add one (the easiest way to connect by keyboard). */
export function NextField({ spec, path, ctx, value, label, emptyValue }: FieldProps & { label?: ReactNode; emptyValue?: unknown }) {
  const id = useId();
  const list = targets(value);
  const options = ctx.nodeIds.filter((n) => !list.includes(n) && !(n === ctx.selfId && spec.name === "next"));
  const write = (next: string[]) => ctx.set(path, next.length === 0 ? emptyValue : next.length === 1 ? next[0] : next);
  return (
    <FieldShell label={label ?? spec.label} htmlFor={id} required={spec.required} description={spec.description} problems={ctx.problems(path)}>
      {list.length > 0 && (
        <div className="flex flex-wrap gap-1">
          {list.map((t) => (
            <Chip key={t} tone="accent" onRemove={() => write(list.filter((x) => x !== t))}>
              <span className="font-mono text-[11.5px]">{t}</span>
              {!ctx.nodeIds.includes(t) && <span className="ml-1 text-danger">missing</span>}
            </Chip>
          ))}
        </div>
      )}
      <select
        id={id}
        data-testid={testIdFor(path)}
        className={clsx(inputCls, list.length > 0 && "text-faint")}
        value=""
        onChange={(e) => e.target.value && write([...list, e.target.value])}
      >
        <option value="">{list.length ? "Add a parallel target…" : "Connect to…"}</option>
        {options.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </FieldShell>
  );
}

function MapField({ spec, path, ctx, value }: FieldProps) {
  const entries = isObj(value) ? Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : String(v)] as const) : [];
  const [newKey, setNewKey] = useState("");
  const templates = spec.name !== "secret_headers";
  const add = () => {
    const k = newKey.trim();
    if (!k || entries.some(([x]) => x === k)) return;
    ctx.set([...path, k], "");
    setNewKey("");
  };
  return (
    <FieldShell label={spec.label} required={spec.required} description={spec.description} problems={ctx.problems(path, true)}>
      <div className="flex flex-col gap-1.5" data-testid={testIdFor(path)}>
        {entries.map(([k, v]) => (
          <div key={k} className="flex flex-col gap-0.5">
            <div className="flex items-center gap-1">
              <span className="min-w-0 flex-1 truncate font-mono text-[11.5px] text-muted" title={k}>
                {k}
              </span>
              <IconButton label={`Remove ${k}`} onClick={() => ctx.set([...path, k], undefined)}>
                <Trash2 className="size-3" />
              </IconButton>
            </div>
            {templates ? (
              <MapValue value={v} onChange={(nv) => ctx.set([...path, k], nv, true)} variables={ctx.variables} label={k} />
            ) : (
              <PlainMapValue value={v} onChange={(nv) => ctx.set([...path, k], nv, true)} />
            )}
            {ctx.problems([...path, k]).map((d, i) => (
              <p key={i} className="mt-0.5 text-[11.5px] text-danger">
                {d.message}
              </p>
            ))}
          </div>
        ))}
        <div className="flex gap-1.5">
          <input
            className={clsx(inputCls, "font-mono text-[12px]")}
            placeholder="new key"
            value={newKey}
            onChange={(e) => setNewKey(e.target.value)}
            onKeyDown={(e) => e.key === "Enter" && add()}
          />
          <button type="button" onClick={add} className="inline-flex h-8 shrink-0 items-center gap-1 rounded-md border border-border px-2 text-[12px] text-muted hover:bg-hover hover:text-fg">
            <Plus className="size-3.5" /> Add
          </button>
        </div>
      </div>
    </FieldShell>
  );
}

function MapValue({ value, onChange, variables, label }: { value: string; onChange: (v: string) => void; variables: Variable[]; label: string }) {
  const [draft, update, flush] = useDebounced(value, onChange, 350);
  return <TemplateEditor label={label} value={draft} onChange={update} onBlur={flush} variables={variables} multiline={draft.includes("\n")} />;
}

function PlainMapValue({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const [draft, update, flush] = useDebounced(value, onChange);
  return <input className={clsx(inputCls, "font-mono text-[12px]")} value={draft} onChange={(e) => update(e.target.value)} onBlur={flush} />;
}

function ObjectField({ spec, path, ctx, value }: FieldProps) {
  const present = isObj(value);
  if (!present && !spec.required) {
    return (
      <div className="flex items-center justify-between gap-2 rounded-md border border-dashed border-border px-2.5 py-2">
        <span className="text-[12px] text-muted" title={spec.description}>
          {spec.label}
        </span>
        <button
          type="button"
          data-testid={testIdFor(path)}
          className="inline-flex items-center gap-1 text-[12px] font-medium text-accent hover:underline"
          onClick={() => ctx.set(path, defaultObject(spec))}
        >
          <Plus className="size-3" /> Add
        </button>
      </div>
    );
  }
  return (
    <fieldset className="flex flex-col gap-2.5 rounded-md border border-border p-2.5" data-testid={testIdFor(path)}>
      <legend className="flex w-full items-center px-1 text-[12px] font-medium text-muted">
        <span title={spec.description}>{spec.label}</span>
      </legend>
      {!spec.required && (
        <button type="button" className="-mt-1 self-end text-[11px] text-faint hover:text-danger" onClick={() => ctx.set(path, undefined)}>
          Remove {spec.label.toLowerCase()}
        </button>
      )}
      {spec.fields?.map((f) => <Field key={f.name} spec={f} path={[...path, f.name]} ctx={ctx} />)}
    </fieldset>
  );
}

/** A minimal value for an optional object: its required fields, empty. */
export function defaultObject(spec: FieldSpec): Obj {
  const out: Obj = {};
  for (const f of spec.fields ?? []) {
    if (!f.required) continue;
    out[f.name] = f.kind === "map" ? {} : f.kind === "object" ? defaultObject(f) : f.kind === "integer" || f.kind === "number" ? 0 : "";
  }
  return out;
}

function JsonField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const text = value === undefined ? "" : stringifyYaml(value, { lineWidth: 0 });
  const [draft, setDraft] = useState(text);
  const [seen, setSeen] = useState(text);
  const [error, setError] = useState<string | null>(null);
  if (seen !== text) {
    setSeen(text);
    setDraft(text);
    setError(null);
  }
  const commit = () => {
    if (draft === text) return;
    if (draft.trim() === "") {
      ctx.set(path, undefined);
      return;
    }
    try {
      const v: unknown = parseYaml(draft);
      setError(null);
      ctx.set(path, v);
    } catch (e) {
      setError(e instanceof Error ? e.message.split("\n")[0]! : "not valid YAML");
    }
  };
  return (
    <FieldShell label={spec.label} htmlFor={id} description={spec.description} error={error} problems={ctx.problems(path)} aside={<span className="text-[10px] text-faint">YAML</span>}>
      <textarea
        id={id}
        data-testid={testIdFor(path)}
        spellCheck={false}
        className={clsx(inputCls, "h-auto min-h-24 py-1.5 font-mono text-[11.5px] leading-relaxed")}
        rows={Math.min(14, Math.max(4, draft.split("\n").length))}
        value={draft}
        placeholder={"type: object\nproperties:\n  field: { type: string }"}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
      />
    </FieldShell>
  );
}

function SubCard({ title, onRemove, onUp, onDown, children }: { title: ReactNode; onRemove: () => void; onUp?: () => void; onDown?: () => void; children: ReactNode }) {
  return (
    <div className="rounded-lg border border-border bg-bg/60">
      <div className="flex items-center gap-1 border-b border-border px-2.5 py-1">
        <div className="min-w-0 flex-1 truncate text-[12px] font-medium">{title}</div>
        {onUp && (
          <IconButton label="Move up" onClick={onUp}>
            <ArrowUp className="size-3" />
          </IconButton>
        )}
        {onDown && (
          <IconButton label="Move down" onClick={onDown}>
            <ArrowDown className="size-3" />
          </IconButton>
        )}
        <IconButton label="Remove" onClick={onRemove}>
          <Trash2 className="size-3" />
        </IconButton>
      </div>
      <div className="flex flex-col gap-2.5 p-2.5">{children}</div>
    </div>
  );
}

const RULE_SPECS: Record<string, FieldSpec> = {
  name: { name: "name", kind: "text", label: "Name", description: "Rule name; it labels the edge and is recorded in the run.", required: true, nullable: false },
  when: { name: "when", kind: "expression", label: "When", description: "Condition (expression), e.g. `trigger.amount > 10000`.", required: true, nullable: false },
  to: { name: "to", kind: "next", label: "Go to", description: "Where to go when it matches.", required: true, nullable: false },
};

function RulesField({ spec, path, ctx, value }: FieldProps) {
  const rules = Array.isArray(value) ? value.filter(isObj) : [];
  const write = (next: Obj[]) => ctx.set(path, next);
  return (
    <FieldShell label={spec.label} description={spec.description} problems={ctx.problems(path, true)}>
      <div className="flex flex-col gap-2" data-testid={testIdFor(path)}>
        {rules.map((r, i) => (
          <SubCard
            key={i}
            title={
              <span className="flex items-center gap-1.5">
                <span className="grid size-4 place-items-center rounded bg-info/15 text-[10px] text-info">{i + 1}</span>
                {typeof r.name === "string" && r.name ? r.name : `Rule ${i + 1}`}
              </span>
            }
            onRemove={() => write(rules.filter((_, j) => j !== i))}
            onUp={i > 0 ? () => write(move(rules, i, -1)) : undefined}
            onDown={i < rules.length - 1 ? () => write(move(rules, i, 1)) : undefined}
          >
            <Field spec={RULE_SPECS.name!} path={[...path, i, "name"]} ctx={ctx} />
            <Field spec={RULE_SPECS.when!} path={[...path, i, "when"]} ctx={ctx} />
            <NextField spec={RULE_SPECS.to!} path={[...path, i, "to"]} ctx={ctx} value={r.to} emptyValue={[]} />
          </SubCard>
        ))}
        <button
          type="button"
          data-testid="inspector-add-rule"
          onClick={() => write([...rules, { name: `rule_${rules.length + 1}`, when: "true", to: [] }])}
          className="inline-flex h-8 items-center justify-center gap-1 rounded-md border border-dashed border-border text-[12px] text-muted hover:border-accent/50 hover:text-accent"
        >
          <Plus className="size-3.5" /> Add rule
        </button>
      </div>
    </FieldShell>
  );
}

const BRANCH_SPECS: Record<string, FieldSpec> = {
  when: { name: "when", kind: "expression", label: "Only when", description: "Condition (expression); the path always runs without one.", required: false, nullable: true },
  to: { name: "to", kind: "next", label: "Go to", description: "Where the path goes.", required: true, nullable: false },
};

function BranchesField({ spec, path, ctx, value }: FieldProps) {
  const paths = Array.isArray(value) ? value.filter(isObj) : [];
  return (
    <FieldShell label={spec.label} description={spec.description} problems={ctx.problems(path, true)}>
      <div className="flex flex-col gap-2" data-testid={testIdFor(path)}>
        {paths.map((p, i) => (
          <SubCard key={i} title={`Path ${i + 1}`} onRemove={() => ctx.set(path, paths.filter((_, j) => j !== i))}>
            <NextField spec={BRANCH_SPECS.to!} path={[...path, i, "to"]} ctx={ctx} value={p.to} emptyValue={[]} />
            <Field spec={BRANCH_SPECS.when!} path={[...path, i, "when"]} ctx={ctx} />
          </SubCard>
        ))}
        <select
          className={inputCls}
          value=""
          data-testid="inspector-add-branch"
          onChange={(e) => e.target.value && ctx.set(path, [...paths, { to: e.target.value }])}
        >
          <option value="">Add a parallel path to…</option>
          {ctx.nodeIds.filter((n) => n !== ctx.selfId).map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
    </FieldShell>
  );
}

const OUTCOMES: { key: "approved" | "rejected" | "escalated"; tone: string; help: string }[] = [
  { key: "approved", tone: "bg-ok", help: "After approve (or edit, with the edited text)." },
  { key: "rejected", tone: "bg-danger", help: "After reject; back to a prompt makes a revise loop." },
  { key: "escalated", tone: "bg-warn", help: "After escalate; without it the task moves up the chain." },
];

function OutcomesField({ path, ctx, value }: FieldProps) {
  const on = isObj(value) ? value : {};
  return (
    <div className="flex flex-col gap-2.5" data-testid={testIdFor(path)}>
      {OUTCOMES.map((o) => (
        <NextField
          key={o.key}
          spec={{ name: o.key, kind: "next", label: o.key, description: o.help, required: false, nullable: false }}
          path={[...path, o.key]}
          ctx={ctx}
          value={on[o.key]}
          label={
            <span className="inline-flex items-center gap-1.5 capitalize">
              <span className={clsx("size-2 rounded-full", o.tone)} />
              {o.key}
            </span>
          }
        />
      ))}
    </div>
  );
}

function AgentField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const current = typeof value === "string" ? value : "";
  const known = ctx.agents.some((a) => a.name === current);
  return (
    <FieldShell label="Agent" htmlFor={id} required={spec.required} description={spec.description} problems={ctx.problems(path)}>
      <select id={id} data-testid={testIdFor(path)} className={inputCls} value={current} onChange={(e) => ctx.set(path, e.target.value)}>
        {!known && <option value={current}>{current ? `${current} (not defined)` : "Pick an agent…"}</option>}
        {ctx.agents.map((a) => (
          <option key={a.name} value={a.name}>
            {a.name} · {a.model}
          </option>
        ))}
      </select>
    </FieldShell>
  );
}

function AgentListField({ spec, path, ctx, value }: FieldProps) {
  const id = useId();
  const list = Array.isArray(value) ? value.map(String) : [];
  const primary = typeof ctx.value.agent === "string" ? ctx.value.agent : "";
  const options = ctx.agents.filter((a) => !list.includes(a.name) && a.name !== primary);
  const write = (next: string[]) => ctx.set(path, next.length ? next : undefined);
  return (
    <FieldShell label="Fallback agents" htmlFor={id} description={spec.description} problems={ctx.problems(path)}>
      {list.length > 0 && (
        <div className="flex flex-wrap items-center gap-1">
          {list.map((a, i) => (
            <span key={a} className="inline-flex items-center gap-1">
              {i > 0 && <ArrowRight className="size-3 text-faint" aria-hidden />}
              <Chip onRemove={() => write(list.filter((x) => x !== a))}>{a}</Chip>
            </span>
          ))}
        </div>
      )}
      <select id={id} data-testid={testIdFor(path)} className={clsx(inputCls, "text-muted")} value="" onChange={(e) => e.target.value && write([...list, e.target.value])}>
        <option value="">{options.length ? "Add a fallback…" : "No other agents"}</option>
        {options.map((a) => (
          <option key={a.name} value={a.name}>
            {a.name} · {a.model}
          </option>
        ))}
      </select>
    </FieldShell>
  );
}
