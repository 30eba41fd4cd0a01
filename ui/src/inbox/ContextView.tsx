// What produced a draft: the trigger payload and the earlier steps' outputs (retrieved
// passages, model calls with their prompts). The context is free-form JSON, so steps are
// recognised by shape and anything unknown falls back to a generic key/value view.
import { clsx } from "clsx";
import { Bot, FileText, Search, Zap } from "lucide-react";
import { useState, type ReactNode } from "react";
import type { JsonValue, RunDetail, StepMeta } from "../api/types.gen";
import { Badge } from "../components/ui";
import { humanize, isRecord, JsonView, Section } from "./parts";

type Obj = { [key: string]: JsonValue };

interface Passage {
  source: string | null;
  score: number | null;
  text: string;
}

function passagesOf(step: Obj): Passage[] | null {
  const raw = step.passages;
  if (!Array.isArray(raw)) return null;
  return raw.flatMap((p): Passage[] => {
    if (typeof p === "string") return [{ source: null, score: null, text: p }];
    if (!isRecord(p)) return [];
    const text = typeof p.text === "string" ? p.text : typeof p.content === "string" ? p.content : JSON.stringify(p);
    return [
      {
        source: typeof p.source === "string" ? p.source : typeof p.id === "string" ? p.id : null,
        score: typeof p.score === "number" ? p.score : null,
        text,
      },
    ];
  });
}

const isAgentStep = (step: Obj) => typeof step.model === "string" || typeof step.agent === "string";

function num(v: JsonValue | undefined): number | null {
  return typeof v === "number" ? v : null;
}

export function ContextView({ context, run, draft }: { context: JsonValue; run: RunDetail | undefined; draft: string }) {
  if (!isRecord(context)) {
    return context === null ? <p className="text-muted">No context was recorded for this task.</p> : <JsonView value={context} />;
  }
  const { trigger, steps, ...rest } = context;
  const meta = new Map<string, StepMeta>();
  const order: string[] = [];
  for (const s of run?.steps ?? []) {
    if (s.meta) meta.set(s.node, s.meta);
    if (!order.includes(s.node)) order.push(s.node);
  }
  const stepEntries = isRecord(steps) ? Object.entries(steps) : [];
  // In run order when the run is loaded (the order things happened), else as stored.
  if (order.length) stepEntries.sort(([a], [b]) => rank(order, a) - rank(order, b));

  return (
    <div data-testid="task-context">
      {trigger !== undefined && (
        <Section title={<Heading icon={<Zap />} label="Trigger payload" />} testId="context-trigger">
          <JsonView value={trigger} />
        </Section>
      )}
      {stepEntries.map(([node, value]) => (
        <StepSection key={node} node={node} value={value} meta={meta.get(node)} draft={draft} />
      ))}
      {Object.keys(rest).length > 0 && (
        <Section title={<Heading icon={<FileText />} label="Other" />} defaultOpen={false}>
          <JsonView value={rest} />
        </Section>
      )}
    </div>
  );
}

function rank(order: string[], node: string) {
  const i = order.indexOf(node);
  return i < 0 ? order.length : i;
}

function Heading({ icon, label, node }: { icon: ReactNode; label: string; node?: string }) {
  return (
    <span className="flex min-w-0 items-center gap-1.5">
      <span className="text-faint [&>svg]:size-3.5">{icon}</span>
      <span className="text-fg">{label}</span>
      {node && humanize(node) !== label && (
        <span className="truncate font-mono text-[11px] font-normal text-faint">{node}</span>
      )}
    </span>
  );
}

function StepSection({ node, value, meta, draft }: { node: string; value: JsonValue; meta: StepMeta | undefined; draft: string }) {
  if (!isRecord(value)) {
    return (
      <Section title={<Heading icon={<FileText />} label={humanize(node)} node={node} />} defaultOpen={false}>
        <JsonView value={value} />
      </Section>
    );
  }
  const passages = passagesOf(value);
  if (passages) {
    return (
      <Section
        testId="context-passages"
        title={<Heading icon={<Search />} label="Retrieved passages" node={node} />}
        meta={<span>{passages.length} passages</span>}
        defaultOpen={false}
      >
        <Retrieval step={value} passages={passages} />
      </Section>
    );
  }
  if (isAgentStep(value)) {
    const tokens = isRecord(value.tokens) ? value.tokens : null;
    const p = num(tokens?.prompt) ?? meta?.prompt_tokens ?? null;
    const c = num(tokens?.completion) ?? meta?.completion_tokens ?? null;
    const model = typeof value.model === "string" ? value.model : (meta?.model ?? null);
    return (
      <Section
        testId="context-model"
        title={<Heading icon={<Bot />} label={typeof value.agent === "string" ? humanize(value.agent) : "Model call"} node={node} />}
        meta={
          <>
            {model && <Badge className="font-mono">{model}</Badge>}
            {p !== null && c !== null && (
              <span className="tabular-nums" title="Prompt → completion tokens">
                {p.toLocaleString()} → {c.toLocaleString()} tok
              </span>
            )}
          </>
        }
        defaultOpen={false}
      >
        <AgentStep step={value} meta={meta} draft={draft} />
      </Section>
    );
  }
  return (
    <Section title={<Heading icon={<FileText />} label={humanize(node)} node={node} />} defaultOpen={false}>
      <JsonView value={value} />
    </Section>
  );
}

function Retrieval({ step, passages }: { step: Obj; passages: Passage[] }) {
  const query = typeof step.query === "string" ? step.query : null;
  return (
    <div className="flex flex-col gap-2">
      {query && (
        <div className="text-[12px] text-muted">
          <span className="text-faint">Query </span>
          <span className="line-clamp-2 whitespace-pre-wrap" title={query}>
            {query}
          </span>
        </div>
      )}
      <ol className="flex flex-col gap-1.5">
        {passages.map((p, i) => (
          <PassageItem key={i} passage={p} index={i} />
        ))}
      </ol>
      {passages.length === 0 && <p className="text-muted">Nothing was retrieved.</p>}
    </div>
  );
}

function PassageItem({ passage, index }: { passage: Passage; index: number }) {
  const [open, setOpen] = useState(false);
  return (
    <li className="rounded-md border border-border/70 bg-panel px-2.5 py-2">
      <div className="mb-1 flex items-center gap-2 text-[11px] text-faint">
        <span className="tabular-nums">{index + 1}</span>
        {passage.source && <span className="truncate font-mono text-muted">{passage.source}</span>}
        {passage.score !== null && (
          <span className="ml-auto tabular-nums" title="Retrieval score">
            {passage.score.toFixed(3)}
          </span>
        )}
      </div>
      <button
        type="button"
        onClick={() => setOpen((o) => !o)}
        aria-expanded={open}
        className={clsx("w-full text-left text-[12.5px] leading-relaxed whitespace-pre-wrap", !open && "line-clamp-3")}
      >
        {passage.text}
      </button>
    </li>
  );
}

interface Message {
  role: string;
  content: string;
}

function messagesOf(input: JsonValue | null | undefined): Message[] | null {
  if (!isRecord(input) || !Array.isArray(input.messages)) return null;
  return input.messages.flatMap((m): Message[] =>
    isRecord(m) && typeof m.content === "string" ? [{ role: typeof m.role === "string" ? m.role : "message", content: m.content }] : [],
  );
}

function AgentStep({ step, meta, draft }: { step: Obj; meta: StepMeta | undefined; draft: string }) {
  const messages = messagesOf(meta?.input);
  const facts: Array<[string, string]> = [];
  if (typeof step.agent === "string") facts.push(["Agent", step.agent]);
  if (num(step.attempts) !== null && num(step.attempts) !== 1) facts.push(["Attempts", String(step.attempts)]);
  if (typeof step.fallback_used === "string") facts.push(["Fallback", step.fallback_used]);
  if (step.repaired === true) facts.push(["Repaired", "the first reply failed the output schema"]);
  if (meta?.duration_ms != null)
    facts.push(["Duration", meta.duration_ms < 1000 ? `${Math.round(meta.duration_ms)} ms` : `${(meta.duration_ms / 1000).toFixed(1)} s`]);
  const text = typeof step.text === "string" ? step.text : null;
  return (
    <div className="flex flex-col gap-3">
      {facts.length > 0 && (
        <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-0.5 text-[12.5px]">
          {facts.map(([k, v]) => (
            <div key={k} className="contents">
              <dt className="text-muted">{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      )}
      <div>
        <div className="mb-1 text-[11px] font-medium text-faint">Prompt</div>
        {messages ? (
          <div className="flex flex-col gap-1.5" data-testid="context-prompt">
            {messages.map((m, i) => (
              <div key={i} className="rounded-md border border-border/70 bg-sunken/60">
                <div className="border-b border-border/60 px-2.5 py-1 text-[11px] font-medium text-muted capitalize">{m.role}</div>
                <pre className="max-h-72 overflow-auto px-2.5 py-2 font-mono text-[11.5px] leading-relaxed whitespace-pre-wrap">
                  {m.content}
                </pre>
              </div>
            ))}
          </div>
        ) : meta?.input != null ? (
          <JsonView value={meta.input} />
        ) : (
          <p className="text-[12px] text-faint">Not recorded for this step.</p>
        )}
      </div>
      {isRecord(step.json) || Array.isArray(step.json) ? (
        <div>
          <div className="mb-1 text-[11px] font-medium text-faint">Structured output</div>
          <JsonView value={step.json} />
        </div>
      ) : null}
      {text && (
        <div>
          <div className="mb-1 text-[11px] font-medium text-faint">Output</div>
          {text.trim() === draft.trim() ? (
            <p className="text-[12px] text-faint">The draft above.</p>
          ) : (
            <pre className="max-h-72 overflow-auto rounded-md border border-border/70 bg-sunken/60 px-2.5 py-2 font-mono text-[11.5px] whitespace-pre-wrap">
              {text}
            </pre>
          )}
        </div>
      )}
    </div>
  );
}
