// Reject with a reason: pick one of the review's reasons (1–9) and/or write your own.
import { clsx } from "clsx";
import { useEffect, useId, useRef, useState } from "react";
import { Button, Kbd } from "../components/ui";
import { composeReason, reasonAllowed } from "./decisions";

export function RejectDialog({
  count,
  subject,
  reasons,
  onSubmit,
  onClose,
}: {
  count: number;
  /** The task's title when rejecting one. */
  subject?: string;
  /** The review's reasons; undefined while loading, null when batch tasks share none. */
  reasons: string[] | null | undefined;
  onSubmit: (reason: string) => void;
  onClose: () => void;
}) {
  const [picked, setPicked] = useState<string | null>(null);
  const [note, setNote] = useState("");
  const noteRef = useRef<HTMLTextAreaElement>(null);
  const titleId = useId();
  const list = reasons ?? [];
  const reason = composeReason(picked, note);
  const valid = reasons !== null && reasons !== undefined && reasonAllowed(reason, list);

  useEffect(() => {
    if (reasons !== undefined && list.length === 0) noteRef.current?.focus();
  }, [reasons, list.length]);

  const submit = () => {
    if (valid) onSubmit(reason);
  };

  return (
    <div
      className="fixed inset-0 z-40 flex items-start justify-center bg-black/30 pt-[14vh]"
      onMouseDown={(e) => {
        if (e.target === e.currentTarget) onClose();
      }}
    >
      <div
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        data-testid="reject-dialog"
        tabIndex={-1}
        ref={(el) => {
          // Focus the dialog itself so 1–9 pick a reason straight away.
          if (el && !el.contains(document.activeElement)) el.focus();
        }}
        onKeyDown={(e) => {
          e.stopPropagation();
          if (e.key === "Escape") {
            e.preventDefault();
            onClose();
          } else if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) {
            e.preventDefault();
            submit();
          } else if (/^[1-9]$/.test(e.key) && e.target instanceof HTMLElement && e.target.tagName !== "TEXTAREA") {
            const r = list[Number(e.key) - 1];
            if (r) {
              e.preventDefault();
              setPicked(r);
              noteRef.current?.focus();
            }
          }
        }}
        className="w-[480px] overflow-hidden rounded-lg border border-border bg-panel shadow-2xl outline-none"
      >
        <div className="border-b border-border px-4 py-3">
          <h2 id={titleId} className="text-sm font-semibold">
            {count === 1 ? "Reject task" : `Reject ${count} tasks`}
          </h2>
          {subject && <p className="mt-0.5 truncate text-[12px] text-muted">{subject}</p>}
        </div>
        <div className="flex flex-col gap-3 px-4 py-3">
          {reasons === undefined && <p className="text-muted">Loading this review's reasons…</p>}
          {reasons === null && (
            <p role="alert" className="rounded-md bg-warn/10 px-3 py-2 text-[12.5px] text-warn">
              These tasks come from reviews with different reject reasons. Select tasks of one blueprint and reject them
              together.
            </p>
          )}
          {list.length > 0 && (
            <fieldset>
              <legend className="mb-1.5 text-[12px] text-muted">Reason</legend>
              <div className="flex flex-col gap-0.5" role="radiogroup">
                {list.map((r, i) => (
                  <label
                    key={r}
                    data-testid="reject-reason"
                    className={clsx(
                      "flex cursor-pointer items-center gap-2.5 rounded-md px-2 py-1.5 text-[13px]",
                      picked === r ? "bg-selected" : "hover:bg-hover",
                    )}
                  >
                    <input
                      type="radio"
                      name="reject-reason"
                      className="accent-accent"
                      checked={picked === r}
                      onChange={() => setPicked(r)}
                    />
                    <span className="flex-1">{r}</span>
                    {i < 9 && <Kbd>{i + 1}</Kbd>}
                  </label>
                ))}
              </div>
            </fieldset>
          )}
          <label className="flex flex-col gap-1.5">
            <span className="text-[12px] text-muted">{list.length > 0 ? "Details (optional)" : "Why"}</span>
            <textarea
              ref={noteRef}
              data-testid="reject-note"
              value={note}
              rows={3}
              onChange={(e) => setNote(e.target.value)}
              placeholder={list.length > 0 ? "What should change…" : "Tell the process why this draft is wrong…"}
              className="resize-none rounded-md border border-border bg-bg px-2.5 py-2 text-[13px] outline-none focus:border-accent"
            />
          </label>
          {reason && list.length > 0 && (
            <p className="text-[11.5px] text-faint">
              Sent as: <span className="text-muted">“{reason}”</span>
            </p>
          )}
        </div>
        <div className="flex items-center justify-end gap-2 border-t border-border bg-sunken/50 px-4 py-2.5">
          <Button variant="ghost" onClick={onClose}>
            Cancel <Kbd>Esc</Kbd>
          </Button>
          <Button variant="danger" data-testid="submit-reject" disabled={!valid} onClick={submit}>
            {count === 1 ? "Reject" : `Reject ${count}`}
          </Button>
        </div>
      </div>
    </div>
  );
}
