// Pretty JSON with light syntax colouring, for outputs, inputs and payloads.
import { clsx } from "clsx";
import { Check, Copy } from "lucide-react";
import { useState, type ReactNode } from "react";

const TOKEN = /("(?:\\u[a-fA-F0-9]{4}|\\[^u]|[^\\"])*"(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)/g;

function colour(json: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  for (const m of json.matchAll(TOKEN)) {
    const i = m.index;
    if (i > last) out.push(json.slice(last, i));
    const t = m[0];
    const cls = t.startsWith('"')
      ? m[2]
        ? "text-accent"
        : "text-ok"
      : t === "true" || t === "false" || t === "null"
        ? "text-warn"
        : "text-info";
    out.push(
      <span key={i} className={cls}>
        {t}
      </span>,
    );
    last = i + t.length;
  }
  if (last < json.length) out.push(json.slice(last));
  return out;
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      className="rounded p-1 text-faint transition-colors hover:bg-hover hover:text-fg"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => {
          setCopied(true);
          setTimeout(() => setCopied(false), 1200);
        });
      }}
    >
      {copied ? <Check className="size-3.5 text-ok" /> : <Copy className="size-3.5" />}
    </button>
  );
}

export function JsonBlock({ value, className, maxHeight = true }: { value: unknown; className?: string; maxHeight?: boolean }) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return (
    <div className={clsx("group relative", className)}>
      <pre
        className={clsx(
          "overflow-auto rounded-md border border-border bg-sunken px-3 py-2 font-mono text-[11.5px] leading-relaxed break-words whitespace-pre-wrap",
          maxHeight && "max-h-96",
        )}
      >
        {typeof value === "string" ? text : colour(text)}
      </pre>
      <div className="absolute top-1 right-1 opacity-0 transition-opacity group-hover:opacity-100 focus-within:opacity-100">
        <CopyButton text={text} />
      </div>
    </div>
  );
}

export function TextBlock({ text, className }: { text: string; className?: string }) {
  return (
    <div className={clsx("group relative", className)}>
      <div className="max-h-96 overflow-auto rounded-md border border-border bg-sunken px-3 py-2 text-[12.5px] leading-relaxed whitespace-pre-wrap">
        {text}
      </div>
      <div className="absolute top-1 right-1 opacity-0 transition-opacity group-hover:opacity-100 focus-within:opacity-100">
        <CopyButton text={text} />
      </div>
    </div>
  );
}
