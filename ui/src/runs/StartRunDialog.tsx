// Start a run by hand: pick a blueprint and trigger, edit the payload (prefilled from the
// trigger's input schema), and send it once it parses and fits the schema.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { AlertCircle } from "lucide-react";
import { useId, useMemo, useState } from "react";
import { useNavigate } from "react-router";
import { toast } from "sonner";
import { api } from "../api/client";
import { useMe } from "../app/me";
import type { BlueprintSummary, JsonValue, TriggerSummary } from "../api/types.gen";
import { Button, inputClass, Kbd, Modal } from "../components/ui";
import { checkPayload, exampleFromSchema, optionalFields } from "./payload";

/** The trigger a person would pick: the manual one, else the first. */
export function defaultTrigger(blueprint: BlueprintSummary | undefined): TriggerSummary | undefined {
  return blueprint?.triggers.find((t) => t.kind === "manual") ?? blueprint?.triggers[0];
}

const MOD = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform) ? "⌘" : "Ctrl";

/** The payload text with an optional field added (with a placeholder), if the text is an object. */
function withField(text: string, field: string, schema: JsonValue | null | undefined): string {
  try {
    const value = JSON.parse(text) as JsonValue;
    if (!value || typeof value !== "object" || Array.isArray(value) || field in value) return text;
    const props = schema && typeof schema === "object" && !Array.isArray(schema) ? schema.properties : null;
    const prop = props && typeof props === "object" && !Array.isArray(props) ? props[field] : null;
    return JSON.stringify({ ...value, [field]: exampleFromSchema(prop ?? null) }, null, 2);
  } catch {
    return text;
  }
}

function examplePayload(trigger: TriggerSummary | undefined): string {
  return JSON.stringify(exampleFromSchema(trigger?.input ?? null), null, 2);
}

export function StartRunDialog({
  open,
  onClose,
  blueprintId,
}: {
  open: boolean;
  onClose: () => void;
  /** Preselected blueprint. */
  blueprintId?: string;
}) {
  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints, enabled: open });
  if (!open) return null;
  return (
    <Modal
      open
      onClose={onClose}
      title="Start a run"
      description="The payload is what the trigger would deliver. It is checked against the trigger's schema."
      className="w-[640px]"
    >
      {blueprints.isPending ? (
        <div className="py-6 text-muted">Loading blueprints…</div>
      ) : blueprints.isError ? (
        <div className="py-2 text-danger">{blueprints.error.message}</div>
      ) : (
        <StartRunForm blueprints={blueprints.data} initialId={blueprintId} onDone={onClose} />
      )}
    </Modal>
  );
}

function StartRunForm({
  blueprints,
  initialId,
  onDone,
}: {
  blueprints: BlueprintSummary[];
  initialId: string | undefined;
  onDone: () => void;
}) {
  const ids = useId();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  // Who starts it: a member of a pilot's cohort gets the pilot version.
  const { name: me } = useMe();
  const [blueprintId, setBlueprintId] = useState(() => initialId ?? blueprints[0]?.id ?? "");
  const blueprint = blueprints.find((b) => b.id === blueprintId);
  const [triggerId, setTriggerId] = useState(() => defaultTrigger(blueprint)?.id ?? "");
  const trigger = blueprint?.triggers.find((t) => t.id === triggerId);
  const [text, setText] = useState(() => examplePayload(trigger));
  const [touched, setTouched] = useState(false);
  const check = useMemo(() => checkPayload(text, trigger?.input), [text, trigger]);
  const optional = optionalFields(trigger?.input);

  const chooseBlueprint = (id: string) => {
    const b = blueprints.find((x) => x.id === id);
    const t = defaultTrigger(b);
    setBlueprintId(id);
    setTriggerId(t?.id ?? "");
    setText(examplePayload(t));
    setTouched(false);
  };
  const chooseTrigger = (id: string) => {
    setTriggerId(id);
    setText(examplePayload(blueprint?.triggers.find((t) => t.id === id)));
    setTouched(false);
  };

  const start = useMutation({
    mutationFn: (payload: JsonValue) =>
      api.startRun({ blueprint: blueprintId, trigger: triggerId || null, payload, ...(me ? { by: me } : {}) }),
    onSuccess: (res) => {
      void queryClient.invalidateQueries({ queryKey: ["runs"] });
      toast.success(res.duplicate ? "A run with this key already exists" : "Run started", {
        description: `${blueprint?.name ?? blueprintId} · ${res.run_id.slice(-8)}`,
      });
      onDone();
      navigate(`/runs/${res.run_id}`);
    },
    onError: (e) => toast.error(e.message),
  });

  const submit = () => {
    setTouched(true);
    if (!check.ok || !blueprintId) return;
    start.mutate(check.value);
  };
  // Syntax errors show at once (they are typos); schema problems once the text was edited
  // or a start was attempted, so the fresh template is not a wall of red.
  const showErrors = !check.ok && (check.syntax || touched);

  return (
    <form
      className="flex flex-col gap-3"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
      onKeyDown={(e) => {
        if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) {
          e.preventDefault();
          submit();
        }
      }}
    >
      <div className="grid grid-cols-2 gap-3">
        <label className="flex flex-col gap-1">
          <span className="text-xs font-medium text-muted">Blueprint</span>
          <select
            className={inputClass}
            value={blueprintId}
            onChange={(e) => chooseBlueprint(e.target.value)}
            data-testid="start-run-blueprint"
          >
            {blueprints.map((b) => (
              <option key={b.id} value={b.id} disabled={b.triggers.length === 0}>
                {b.name}
              </option>
            ))}
          </select>
        </label>
        <label className="flex flex-col gap-1">
          <span className="text-xs font-medium text-muted">Trigger</span>
          <select
            className={inputClass}
            value={triggerId}
            onChange={(e) => chooseTrigger(e.target.value)}
            disabled={!blueprint || blueprint.triggers.length === 0}
            data-testid="start-run-trigger"
          >
            {blueprint?.triggers.map((t) => (
              <option key={t.id} value={t.id}>
                {t.id} ({t.kind.replace("_", " ")})
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="flex flex-col gap-1">
        <div className="flex items-baseline justify-between">
          <label htmlFor={`${ids}-payload`} className="text-xs font-medium text-muted">
            Payload (JSON)
          </label>
          {!trigger?.input && <span className="text-[11px] text-faint">This trigger declares no schema</span>}
        </div>
        <textarea
          id={`${ids}-payload`}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            setTouched(true);
          }}
          spellCheck={false}
          rows={12}
          aria-invalid={showErrors}
          aria-describedby={`${ids}-errors`}
          data-testid="start-run-payload"
          className={`${inputClass} resize-y font-mono text-xs leading-relaxed`}
        />
        {optional.length > 0 && (
          <div className="flex flex-wrap items-center gap-1 text-[11px] text-faint">
            Optional — click to add:
            {optional.map((f) => (
              <button
                key={f}
                type="button"
                onClick={() => {
                  setText(withField(text, f, trigger?.input));
                  setTouched(true);
                }}
                disabled={!check.ok && check.syntax}
                className="rounded border border-border px-1 font-mono text-muted transition-colors hover:border-accent/50 hover:text-fg disabled:opacity-50"
              >
                {f}
              </button>
            ))}
          </div>
        )}
        <div id={`${ids}-errors`} aria-live="polite">
          {showErrors && !check.ok && (
            <ul className="mt-1 flex flex-col gap-0.5 rounded-md border border-danger/30 bg-danger/5 px-2.5 py-2 text-xs text-danger" data-testid="start-run-errors">
              {check.errors.slice(0, 8).map((e) => (
                <li key={e} className="flex gap-1.5">
                  <AlertCircle className="mt-px size-3.5 shrink-0" aria-hidden />
                  {e}
                </li>
              ))}
              {check.errors.length > 8 && <li>…and {check.errors.length - 8} more</li>}
            </ul>
          )}
        </div>
      </div>
      <div className="-mx-4 -mb-3 flex items-center gap-2 border-t border-border px-4 py-3">
        <span className="text-[11px] text-faint">
          <Kbd>{MOD}</Kbd> <Kbd>↵</Kbd> to start · <Kbd>Esc</Kbd> to cancel
        </span>
        <div className="flex-1" />
        <Button onClick={onDone}>Cancel</Button>
        <Button
          type="submit"
          variant="primary"
          disabled={start.isPending || !blueprintId || (touched && !check.ok) || (!check.ok && check.syntax)}
          data-testid="start-run-submit"
        >
          {start.isPending ? "Starting…" : "Start run"}
        </Button>
      </div>
    </form>
  );
}
