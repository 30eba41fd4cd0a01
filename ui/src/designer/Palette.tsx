// The palette: drag a kind onto the canvas, or click to add (after the selected node).
import { clsx } from "clsx";
import { STEP_KINDS, TRIGGER_KINDS, type StepKind, type TriggerKind } from "./graph";
import { STEP_META, TRIGGER_META, type KindMeta } from "./kinds";

export const DND_MIME = "application/x-processops-kind";

function Item({ kind, group, meta, onAdd }: { kind: string; group: "step" | "trigger"; meta: KindMeta; onAdd: () => void }) {
  const Icon = meta.icon;
  return (
    <button
      type="button"
      data-testid={`palette-item-${kind}`}
      draggable
      onDragStart={(e) => {
        e.dataTransfer.setData(DND_MIME, `${group}:${kind}`);
        e.dataTransfer.effectAllowed = "copy";
      }}
      onClick={onAdd}
      title={`${meta.blurb}. Drag onto the canvas, or click to add${group === "step" ? " after the selected node" : ""}.`}
      className={clsx(
        "group flex h-9 w-full cursor-grab items-center gap-2.5 rounded-lg border border-transparent px-1.5 text-left transition-colors active:cursor-grabbing",
        "hover:border-border hover:bg-panel hover:shadow-[0_1px_2px_rgb(0_0_0/0.04)]",
      )}
    >
      <span className={clsx("grid size-7 shrink-0 place-items-center rounded-md", meta.chip)}>
        <Icon className="size-3.5" aria-hidden />
      </span>
      <span className="min-w-0 flex-1 truncate text-[12.5px] font-medium text-fg">{meta.label}</span>
    </button>
  );
}

export function Palette({ onAddStep, onAddTrigger }: { onAddStep: (k: StepKind) => void; onAddTrigger: (k: TriggerKind) => void }) {
  return (
    <aside aria-label="Node palette" className="flex w-44 shrink-0 flex-col overflow-y-auto border-r border-border bg-panel px-2 py-3">
      <div className="px-2 pb-1.5 text-[11px] font-semibold tracking-wide text-faint uppercase">Steps</div>
      <div className="flex flex-col gap-0.5">
        {STEP_KINDS.map((k) => (
          <Item key={k} kind={k} group="step" meta={STEP_META[k]} onAdd={() => onAddStep(k)} />
        ))}
      </div>
      <div className="mt-4 px-2 pb-1.5 text-[11px] font-semibold tracking-wide text-faint uppercase">Triggers</div>
      <div className="flex flex-col gap-0.5">
        {TRIGGER_KINDS.map((k) => (
          <Item key={k} kind={k} group="trigger" meta={TRIGGER_META[k]} onAdd={() => onAddTrigger(k)} />
        ))}
      </div>
      <div className="mt-auto px-1.5 pt-4 text-[11px] leading-relaxed text-faint">
        Drag onto the canvas, or click to add after the selected node. Drag from a dot to connect.
      </div>
    </aside>
  );
}
