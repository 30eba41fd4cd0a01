// Tag chips (1–9), rating (⇧1–5), comment and submit for the current output.
import { clsx } from "clsx";
import { Star } from "lucide-react";
import type { RefObject } from "react";
import { Button, inputClass, Kbd } from "../components/ui";
import { toggleTag } from "./keys";
import type { Feedback } from "./outbox";

export function TagPanel({
  tags,
  feedback,
  onChange,
  onSubmit,
  onSkip,
  commentRef,
  resubmit,
  disabled,
}: {
  tags: string[];
  feedback: Feedback;
  onChange: (f: Feedback) => void;
  onSubmit: () => void;
  onSkip: () => void;
  commentRef: RefObject<HTMLTextAreaElement | null>;
  /** The output was already submitted in this session: submitting sends the difference. */
  resubmit: boolean;
  disabled: boolean;
}) {
  return (
    <div className="flex flex-col gap-4 border-b border-border p-4">
      <div className="flex flex-col gap-2">
        <div className="flex items-baseline justify-between">
          <h3 className="text-xs font-semibold">Tags</h3>
          <span className="text-[11px] text-faint">{feedback.tags.length} selected</span>
        </div>
        {tags.length === 0 ? (
          <div className="text-xs text-muted">The taxonomy has no tags for this blueprint.</div>
        ) : (
          <div className="flex flex-wrap gap-1.5">
            {tags.map((tag, i) => {
              const on = feedback.tags.includes(tag);
              return (
                <button
                  key={tag}
                  type="button"
                  aria-pressed={on}
                  data-testid={`eval-tag-${tag}`}
                  onClick={() => onChange({ ...feedback, tags: toggleTag(feedback.tags, tag) })}
                  className={clsx(
                    "flex h-7 items-center gap-1.5 rounded-md border pr-2 pl-1.5 text-xs transition-colors",
                    on ? "border-accent bg-accent text-accent-fg" : "border-border bg-panel text-fg hover:border-accent/50 hover:bg-hover",
                  )}
                >
                  {i < 9 && (
                    <span
                      className={clsx(
                        "grid size-4 place-items-center rounded font-mono text-[10px]",
                        on ? "bg-white/20 text-accent-fg" : "bg-sunken text-muted",
                      )}
                    >
                      {i + 1}
                    </span>
                  )}
                  {tag}
                </button>
              );
            })}
          </div>
        )}
      </div>

      <div className="flex flex-col gap-2">
        <div className="flex items-baseline justify-between">
          <h3 className="text-xs font-semibold">Rating</h3>
          <span className="text-[11px] text-faint">
            <Kbd>⇧</Kbd> <Kbd>1</Kbd>–<Kbd>5</Kbd>
          </span>
        </div>
        <div className="flex items-center gap-0.5" role="radiogroup" aria-label="Rating">
          {[1, 2, 3, 4, 5].map((n) => {
            const on = feedback.rating !== null && n <= feedback.rating;
            return (
              <button
                key={n}
                type="button"
                role="radio"
                aria-checked={feedback.rating === n}
                aria-label={`${n} star${n === 1 ? "" : "s"}`}
                data-testid={`eval-rating-${n}`}
                onClick={() => onChange({ ...feedback, rating: feedback.rating === n ? null : n })}
                className="rounded p-0.5 transition-transform hover:scale-110"
              >
                <Star className={clsx("size-5", on ? "fill-warn text-warn" : "text-faint")} />
              </button>
            );
          })}
          <span className="ml-2 text-xs text-muted">{feedback.rating ? `${feedback.rating}/5` : "not rated"}</span>
        </div>
      </div>

      <label className="flex flex-col gap-2">
        <span className="flex items-baseline justify-between">
          <span className="text-xs font-semibold">Comment</span>
          <span className="text-[11px] text-faint">
            <Kbd>C</Kbd> to write · <Kbd>Esc</Kbd> to leave
          </span>
        </span>
        <textarea
          ref={commentRef}
          value={feedback.comment}
          onChange={(e) => onChange({ ...feedback, comment: e.target.value })}
          rows={3}
          maxLength={10_000}
          placeholder="What is right or wrong about this output?"
          className={clsx(inputClass, "resize-y")}
          data-testid="eval-comment"
        />
      </label>

      <div className="flex items-center gap-2">
        <Button variant="primary" className="flex-1 justify-center" onClick={onSubmit} disabled={disabled} data-testid="eval-submit">
          {resubmit ? "Update" : "Submit"} & next <Kbd>N</Kbd>
        </Button>
        <Button variant="ghost" onClick={onSkip} title="Skip without feedback (j)">
          Skip <Kbd>J</Kbd>
        </Button>
      </div>
    </div>
  );
}
