// CodeMirror editor for templates (`{{ … }}`, `{% … %}`) and conditions, with autocomplete of
// the variables the node can read: trigger fields, vars, run, earlier nodes' outputs.
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, type CompletionContext, type CompletionResult } from "@codemirror/autocomplete";
import { EditorState, type Extension } from "@codemirror/state";
import { Decoration, EditorView, keymap, MatchDecorator, placeholder as cmPlaceholder, ViewPlugin, type DecorationSet, type ViewUpdate } from "@codemirror/view";
import CodeMirror from "@uiw/react-codemirror";
import { clsx } from "clsx";
import { useEffect, useMemo, useState } from "react";
import type { Variable } from "./graph";

const JINJA_WORDS = ["if", "else", "elif", "endif", "for", "in", "endfor", "and", "or", "not", "is", "defined", "none", "true", "false", "default", "tojson", "lower", "upper", "replace", "title", "length", "join"];

/** Where the cursor is: inside a `{{ }}`/`{% %}` tag (templates), or anywhere (conditions). */
export function insideTag(before: string): boolean {
  const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("{%"));
  const close = Math.max(before.lastIndexOf("}}"), before.lastIndexOf("%}"));
  return open >= 0 && open > close;
}

export function completionSource(getVars: () => Variable[], mode: "template" | "expression") {
  return (ctx: CompletionContext): CompletionResult | null => {
    const before = ctx.state.sliceDoc(Math.max(0, ctx.pos - 4000), ctx.pos);
    if (mode === "template" && !insideTag(before)) return null;
    const word = ctx.matchBefore(/[A-Za-z_][\w.]*/);
    const justOpened = /(\{\{|\{%|\(|\s(and|or|not))\s*$/.test(before) || (mode === "expression" && before.trim() === "");
    if (!word && !ctx.explicit && !justOpened) return null;
    const options = [
      ...getVars().map((v) => ({ label: v.label, detail: v.detail, type: "variable", boost: v.boost })),
      ...JINJA_WORDS.map((w) => ({ label: w, type: "keyword", boost: -5 })),
    ];
    return { from: word?.from ?? ctx.pos, options, validFor: /^[\w.]*$/ };
  };
}

const tagMatcher = new MatchDecorator({
  regexp: /\{\{.*?\}\}|\{%.*?%\}/g,
  decoration: (m) => Decoration.mark({ class: m[0].startsWith("{%") ? "cm-tpl-tag cm-tpl-block" : "cm-tpl-tag" }),
});

const tagHighlighter = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;
    constructor(view: EditorView) {
      this.decorations = tagMatcher.createDeco(view);
    }
    update(u: ViewUpdate) {
      this.decorations = tagMatcher.updateDeco(u, this.decorations);
    }
  },
  { decorations: (v) => v.decorations },
);

const baseTheme = EditorView.theme({
  "&": { color: "var(--fg)", backgroundColor: "var(--panel)" },
  ".cm-cursor": { borderLeftColor: "var(--fg)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "color-mix(in srgb, var(--accent) 22%, transparent) !important",
  },
});

class VariableBox {
  constructor(private vars: Variable[]) {}
  get = () => this.vars;
  set(vars: Variable[]) {
    this.vars = vars;
  }
}

const singleLine = EditorState.transactionFilter.of((tr) => (tr.docChanged && tr.newDoc.lines > 1 ? [] : tr));

export function TemplateEditor({
  value,
  onChange,
  onBlur,
  variables,
  mode = "template",
  multiline = true,
  placeholder,
  testId,
  invalid,
  label,
  minHeight,
}: {
  value: string;
  onChange: (v: string) => void;
  onBlur?: () => void;
  variables: Variable[];
  mode?: "template" | "expression";
  multiline?: boolean;
  placeholder?: string;
  testId?: string;
  invalid?: boolean;
  label: string;
  minHeight?: number;
}) {
  // The completion source reads the latest variables without reconfiguring the editor.
  const [box] = useState(() => new VariableBox(variables));
  useEffect(() => box.set(variables), [box, variables]);

  const extensions = useMemo(() => {
    const ext: Extension[] = [
      baseTheme,
      EditorView.lineWrapping,
      closeBrackets(),
      keymap.of([...closeBracketsKeymap, ...completionKeymap]),
      autocompletion({ override: [completionSource(box.get, mode)], icons: false, maxRenderedOptions: 80 }),
      EditorView.contentAttributes.of({ "aria-label": label }),
    ];
    if (mode === "template") ext.push(tagHighlighter);
    if (!multiline) ext.push(singleLine);
    if (placeholder) ext.push(cmPlaceholder(placeholder));
    return ext;
  }, [box, mode, multiline, placeholder, label]);

  return (
    <div data-testid={testId} className={clsx("tpl-editor", invalid && "invalid")} onBlur={onBlur}>
      <CodeMirror
        value={value}
        onChange={onChange}
        extensions={extensions}
        theme="none"
        minHeight={minHeight ? `${minHeight}px` : undefined}
        maxHeight={multiline ? "420px" : undefined}
        basicSetup={{
          lineNumbers: false,
          foldGutter: false,
          highlightActiveLine: false,
          highlightActiveLineGutter: false,
          autocompletion: false,
          closeBrackets: false,
          bracketMatching: true,
          indentOnInput: false,
          searchKeymap: false,
          history: true,
          drawSelection: true,
          dropCursor: true,
          syntaxHighlighting: false,
        }}
      />
    </div>
  );
}
