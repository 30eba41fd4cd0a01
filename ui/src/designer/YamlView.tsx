// The live YAML source, editable. Typing here edits the same history as the canvas; while the
// text does not parse, the canvas keeps showing the last good version.
import { Decoration, EditorView, MatchDecorator, ViewPlugin, type DecorationSet, type ViewUpdate } from "@codemirror/view";
import CodeMirror from "@uiw/react-codemirror";
import { CircleX } from "lucide-react";
import { useEffect, useMemo, useRef, useState } from "react";
import { useDesigner, type DesignerStore } from "./store";

const tokens = new MatchDecorator({
  regexp: /((?:^|\s)#.*$)|(^\s*(?:-\s+)?[A-Za-z_][\w-]*(?=:(?:\s|$)))|(\{\{.*?\}\}|\{%.*?%\})|([&*][A-Za-z_][\w-]*)|(:\s+[|>][+-]?\d*\s*$)/g,
  decoration: (m) =>
    Decoration.mark({ class: m[1] ? "tok-comment" : m[2] ? "tok-key" : m[3] ? "tok-string" : m[4] ? "tok-meta" : "tok-atom" }),
});

const highlighter = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;
    constructor(view: EditorView) {
      this.decorations = tokens.createDeco(view);
    }
    update(u: ViewUpdate) {
      this.decorations = tokens.updateDeco(u, this.decorations);
    }
  },
  { decorations: (v) => v.decorations },
);

const theme = EditorView.theme({
  "&": { color: "var(--fg)" },
  ".cm-cursor": { borderLeftColor: "var(--fg)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground": { backgroundColor: "color-mix(in srgb, var(--accent) 20%, transparent) !important" },
});

function diagnosticLines(lines: number[]) {
  return EditorView.decorations.compute([], (state) => {
    const marks = lines
      .filter((l) => l >= 1 && l <= state.doc.lines)
      .sort((a, b) => a - b)
      .filter((l, i, arr) => arr.indexOf(l) === i)
      .map((l) => Decoration.line({ class: "cm-diag-line" }).range(state.doc.line(l).from));
    return Decoration.set(marks);
  });
}

export function YamlView({ store }: { store: DesignerStore }) {
  const source = useDesigner(store, (s) => s.source);
  const syntaxError = useDesigner(store, (s) => s.syntaxError);
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const file = useDesigner(store, (s) => s.blueprintId);
  const [draft, setDraft] = useState(source);
  const [seen, setSeen] = useState(source);
  if (seen !== source) {
    setSeen(source);
    setDraft(source);
  }
  const timer = useRef<number | null>(null);
  useEffect(() => () => {
    if (timer.current !== null) window.clearTimeout(timer.current);
  }, []);
  const lines = useMemo(() => diagnostics.map((d) => d.line), [diagnostics]);
  const extensions = useMemo(() => [theme, highlighter, diagnosticLines(lines), EditorView.contentAttributes.of({ "aria-label": "Blueprint YAML" })], [lines]);
  return (
    <div className="flex h-full flex-col" data-testid="yaml-view">
      <div className="flex h-8 shrink-0 items-center gap-2 border-b border-border bg-panel px-3 text-[12px] text-muted">
        <span className="font-mono">blueprints/{file}.yaml</span>
        <span className="text-faint">· edits here and on the canvas share one undo history</span>
        {syntaxError && (
          <span className="ml-auto inline-flex items-center gap-1 text-danger">
            <CircleX className="size-3.5" /> {syntaxError}
          </span>
        )}
      </div>
      <div className="yaml-view min-h-0 flex-1 overflow-hidden">
        <CodeMirror
          value={draft}
          height="100%"
          style={{ height: "100%" }}
          theme="none"
          extensions={extensions}
          onChange={(v) => {
            setDraft(v);
            if (timer.current !== null) window.clearTimeout(timer.current);
            timer.current = window.setTimeout(() => store.setSource(v), 400);
          }}
          basicSetup={{ foldGutter: false, autocompletion: false, highlightActiveLine: true, syntaxHighlighting: false }}
        />
      </div>
    </div>
  );
}
