// Edit a draft in place. Every keystroke is saved on this device (edits.ts), so a closed
// window or a crash loses nothing; the live diff shows exactly what "edit" will send.
import { useLayoutEffect, useRef, useState } from "react";
import { Button, Kbd } from "../components/ui";
import { clearEdit, loadEdit, saveEdit } from "./edits";
import { InlineDiff } from "./parts";

const MOD = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform) ? "⌘" : "Ctrl";

export function DraftEditor({
  taskId,
  draft,
  onSubmit,
  onClose,
}: {
  taskId: string;
  draft: string;
  onSubmit: (text: string) => void;
  /** Close the editor; the edit stays saved for later. */
  onClose: () => void;
}) {
  const [text, setText] = useState(() => loadEdit(taskId) ?? draft);
  const ref = useRef<HTMLTextAreaElement>(null);
  const changed = text !== draft;

  // Grow with the text instead of scrolling inside a box within a scrolling pane.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${el.scrollHeight + 2}px`;
  }, [text]);

  const update = (value: string) => {
    setText(value);
    if (value === draft) clearEdit(taskId);
    else saveEdit(taskId, value);
  };

  const submit = () => {
    if (changed && text.trim()) onSubmit(text);
  };

  return (
    <div className="flex flex-col gap-3" data-testid="draft-editor">
      <textarea
        ref={ref}
        data-testid="edit-textarea"
        aria-label="Edited draft"
        autoFocus
        value={text}
        spellCheck
        onChange={(e) => update(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) {
            e.preventDefault();
            submit();
          } else if (e.key === "Escape") {
            e.preventDefault();
            onClose();
          }
        }}
        className="min-h-40 w-full resize-none rounded-md border border-accent/60 bg-panel px-3.5 py-3 text-[13.5px] leading-relaxed text-fg shadow-[0_0_0_3px] shadow-accent/15 outline-none"
      />
      <InlineDiff before={draft} after={text} />
      <div className="flex items-center gap-2">
        <Button variant="primary" data-testid="submit-edit" disabled={!changed || !text.trim()} onClick={submit}>
          Submit edit
          <span className="ml-1 text-[11px] opacity-80">{MOD}↵</span>
        </Button>
        <Button variant="ghost" onClick={onClose}>
          Close <Kbd>Esc</Kbd>
        </Button>
        {changed && (
          <Button
            variant="ghost"
            className="ml-auto"
            onClick={() => {
              update(draft);
              ref.current?.focus();
            }}
          >
            Discard changes
          </Button>
        )}
      </div>
      {changed && <p className="text-[11px] text-faint">Saved on this device until you submit or discard it.</p>}
    </div>
  );
}
