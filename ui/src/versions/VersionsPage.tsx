// Versions: one blueprint under change control. Its versions with their stages, the moves the
// current user may make next, proposing the file's version, rolling back, who moved what when,
// and what changed between two versions. The engine decides; refusals are shown as it words them.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { clsx } from "clsx";
import { ChevronLeft, FileCode, GitBranch, History as HistoryIcon, RotateCcw, ShieldCheck, Workflow, X } from "lucide-react";
import { useId, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { toast } from "sonner";
import { api } from "../api/client";
import type { BlueprintVersions, StageChangeDto, VersionInfo } from "../api/types.gen";
import { useMe } from "../app/me";
import { LIFECYCLE, stageInfo } from "../blueprints/stage";
import { Badge, Button, EmptyState, ErrorState, inputClass, Modal, PageHeader, relativeTime, Spinner } from "../components/ui";
import { formatTime } from "../runs/status";
import { DiffView } from "./DiffView";
import {
  approvedVersion,
  parseRefs,
  proposePermission,
  reasonLabel,
  rollbackPermission,
  rollbackTarget,
  shortHash,
  unproposedFileVersion,
  versionActions,
  type Actor,
  type Move,
  type VersionAction,
} from "./rules";

export const versionsKey = (blueprint: string) => ["versions", blueprint] as const;

export function VersionsPage() {
  const { id = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const { name, roles, me } = useMe();
  const actor: Actor = { name, roles, singleUser: me?.single_user ?? false };
  const qc = useQueryClient();

  const versions = useQuery({ queryKey: versionsKey(id), queryFn: () => api.versions(id), enabled: id !== "" });
  const blueprints = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints, staleTime: 60_000 });
  const summary = blueprints.data?.find((b) => b.id === id);
  const title = summary?.name ?? versions.data?.versions.find((v) => v.current_file)?.name ?? versions.data?.versions[0]?.name ?? id;

  // The last refusal or failure of a move, as the engine worded it.
  const [refusal, setRefusal] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<{ version: VersionInfo; move: Move } | null>(null);
  const [rollingBack, setRollingBack] = useState(false);

  const settle = (data: BlueprintVersions) => {
    qc.setQueryData(versionsKey(id), data);
    void qc.invalidateQueries({ queryKey: versionsKey(id) });
    void qc.invalidateQueries({ queryKey: ["blueprints"] });
    // A pilot's tasks are hidden from or shown to people as its stage moves.
    void qc.invalidateQueries({ queryKey: ["tasks"] });
  };
  const stage = useMutation({
    mutationFn: ({ version, move, note }: { version: string; move: Move; note?: string }) =>
      api.stageVersion({ blueprint: id, version, stage: move, by: name, ...(note ? { note } : {}) }),
    onMutate: () => setRefusal(null),
    onSuccess: (data, { version, move }) => {
      settle(data);
      setConfirm(null);
      toast.success(`${shortHash(version)} is ${stageInfo(move).label.toLowerCase()}`);
    },
    onError: (e) => {
      setConfirm(null);
      setRefusal(e.message);
    },
  });
  const rollback = useMutation({
    mutationFn: (note: string) => api.rollbackVersion({ blueprint: id, by: name, ...(note ? { note } : {}) }),
    onMutate: () => setRefusal(null),
    onSuccess: (data) => {
      settle(data);
      setRollingBack(false);
      const back = approvedVersion(data);
      toast.success(back ? `Rolled back: ${shortHash(back.version)} is approved again` : "Rolled back");
    },
    onError: (e) => {
      setRollingBack(false);
      setRefusal(e.message);
    },
  });

  // The regression gate replays past approved reviews on a version; approving one whose
  // prompts changed needs its result.
  const gate = useMutation({
    mutationFn: (version: string) => api.gateVersion({ blueprint: id, version, by: name }),
    onMutate: () => setRefusal(null),
    onSuccess: (report) => {
      void qc.invalidateQueries({ queryKey: versionsKey(id) });
      const n = report.cases.length;
      const text = `Gate: ${report.candidate_passed} of ${n} drafts close to what people approved (the version that ran: ${report.baseline_passed} of ${n})`;
      if (report.passed) toast.success(text);
      else toast.error(text);
    },
    onError: (e) => setRefusal(e.message),
  });

  const act = (version: VersionInfo, action: VersionAction) => {
    if (!action.allowed || stage.isPending) return;
    // Retiring cannot be undone; everything else is one step forward.
    if (action.move === "retired") setConfirm({ version, move: action.move });
    else stage.mutate({ version: version.version, move: action.move });
  };

  const diffFrom = params.get("from") ?? "";
  const diffTo = params.get("to") ?? "";
  const setDiff = (from: string, to: string) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of [["from", from], ["to", to]] as const) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  };
  const diffRef = useRef<HTMLDivElement>(null);
  // A link with versions to compare opens at the diff.
  const [linkedDiff] = useState(() => diffFrom !== "" || diffTo !== "");

  const data = versions.data;
  const target = data ? rollbackTarget(data) : null;
  const approved = data ? approvedVersion(data) : null;
  const mayRollback = rollbackPermission(actor);

  return (
    <>
      <PageHeader
        title={
          <span className="flex items-center gap-1.5">
            <Link to="/blueprints" className="inline-flex items-center text-muted hover:text-fg" aria-label="Back to Blueprints" title="Blueprints">
              <ChevronLeft className="size-4" />
            </Link>
            <span className="truncate" data-testid="versions-title">
              {title}
            </span>
            <span className="font-normal text-faint">· Versions</span>
          </span>
        }
      >
        {data && approved && (
          <Button
            size="sm"
            onClick={() => mayRollback.allowed && target && setRollingBack(true)}
            aria-disabled={!mayRollback.allowed || !target}
            className={clsx((!mayRollback.allowed || !target) && "cursor-not-allowed opacity-50")}
            title={!mayRollback.allowed ? mayRollback.reason : !target ? "No earlier approved version to roll back to" : `Make ${shortHash(target.version)} the approved version again`}
            data-testid="versions-rollback"
          >
            <RotateCcw className="size-3.5" /> Roll back
          </Button>
        )}
        <Link
          to={`/designer/${encodeURIComponent(id)}`}
          className="inline-flex h-7 items-center gap-1 rounded-md px-2 text-xs font-medium text-muted transition-colors hover:bg-hover hover:text-fg"
        >
          <Workflow className="size-3.5" /> Designer
        </Link>
      </PageHeader>
      <div className="relative min-h-0 flex-1 overflow-auto">
        {versions.isPending ? (
          <Spinner label="Loading versions…" />
        ) : versions.isError ? (
          <ErrorState error={versions.error} />
        ) : (
          <div className="mx-auto flex max-w-[1400px] flex-col gap-4 p-5 xl:grid xl:grid-cols-[minmax(0,1fr)_300px] xl:items-start">
            <div className="flex min-w-0 flex-col gap-4">
              <Overview data={versions.data} fileStage={summary?.stage} />
              {refusal && (
                <div role="alert" data-testid="versions-refusal" className="flex items-start gap-2 rounded-md border border-danger/40 bg-danger/10 px-3 py-2 text-[13px] text-danger">
                  <span className="min-w-0 flex-1">{refusal}</span>
                  <button type="button" className="rounded p-0.5 hover:bg-danger/15" aria-label="Dismiss" onClick={() => setRefusal(null)}>
                    <X className="size-3.5" />
                  </button>
                </div>
              )}
              <ProposeForm blueprint={id} data={versions.data} actor={actor} />
              <VersionsTable
                data={versions.data}
                actor={actor}
                busy={stage.isPending ? stage.variables : undefined}
                onAct={act}
                onCompare={(v) => {
                  setDiff("", v.version);
                  diffRef.current?.scrollIntoView({ block: "start", behavior: "smooth" });
                }}
                onGate={(v) => {
                  if (!gate.isPending) gate.mutate(v.version);
                }}
                gating={gate.isPending ? gate.variables : undefined}
              />
              <div ref={diffRef} className="scroll-mt-4">
                <DiffView data={versions.data} from={diffFrom} to={diffTo} onChange={setDiff} scrollOnLoad={linkedDiff} />
              </div>
            </div>
            <History data={versions.data} />
          </div>
        )}
      </div>
      <Modal
        open={confirm !== null}
        onClose={() => setConfirm(null)}
        title={`Retire ${confirm ? shortHash(confirm.version.version) : ""}?`}
        description="A retired version starts no new runs and stays retired."
        footer={
          <>
            <Button onClick={() => setConfirm(null)}>Cancel</Button>
            <Button
              variant="danger"
              disabled={stage.isPending}
              onClick={() => confirm && stage.mutate({ version: confirm.version.version, move: confirm.move })}
              data-testid="confirm-retire"
            >
              Retire it
            </Button>
          </>
        }
      >
        <p className="text-[13px] text-muted">
          {confirm?.version.stage === "approved"
            ? "This is the approved version: once it is retired, nothing runs for everyone until another version is approved or you roll back."
            : "Runs already started on it finish on it."}
        </p>
      </Modal>
      {data && (
        <RollbackDialog
          open={rollingBack}
          onClose={() => setRollingBack(false)}
          current={approved}
          target={target}
          busy={rollback.isPending}
          onConfirm={(note) => rollback.mutate(note)}
        />
      )}
    </>
  );
}

/** The blueprint's place in the lifecycle: which version sits at which stage, and whether it is governed. */
function Overview({ data, fileStage }: { data: BlueprintVersions; fileStage: string | undefined }) {
  const at = (stage: string) => data.versions.filter((v) => v.stage === stage);
  const file = data.versions.find((v) => v.current_file);
  return (
    <section className="rounded-lg border border-border bg-panel p-4" aria-label="Lifecycle" data-testid="versions-overview" data-managed={data.managed}>
      <ol className="flex items-start" data-testid="versions-stepper">
        {LIFECYCLE.map((s, i) => {
          const info = stageInfo(s);
          const here = data.managed ? at(s) : [];
          const reached = data.managed ? here.length > 0 : fileStage !== undefined && stageInfo(fileStage).step >= i;
          return (
            <li key={s} className="flex min-w-0 flex-1 flex-col gap-1.5" data-stage={s} data-filled={here.length > 0}>
              <div className="flex items-center">
                <span
                  className={clsx(
                    "flex size-6 shrink-0 items-center justify-center rounded-full border text-[11px] font-semibold tabular-nums",
                    here.length > 0
                      ? `border-transparent ${TONE_SOLID[info.tone]}`
                      : reached
                        ? "border-border bg-sunken text-muted"
                        : "border-border text-faint",
                  )}
                  aria-hidden
                >
                  {i + 1}
                </span>
                {i < LIFECYCLE.length - 1 && <span className={clsx("mx-2 h-px flex-1", reached ? "bg-muted/40" : "bg-border")} aria-hidden />}
              </div>
              <div className="pr-3">
                <div className={clsx("text-[12.5px] font-medium", here.length > 0 ? "text-fg" : "text-muted")}>{info.label}</div>
                <div className="text-[11px] leading-snug text-faint">{info.hint}</div>
                {here.length > 0 && (
                  <div className="mt-1 flex flex-wrap gap-1">
                    {here.map((v) => (
                      <span key={v.version} className="rounded bg-sunken px-1 font-mono text-[11px] text-muted" title={v.version}>
                        {shortHash(v.version)}
                      </span>
                    ))}
                  </div>
                )}
              </div>
            </li>
          );
        })}
      </ol>
      <div className="mt-3 flex items-start gap-2 border-t border-border pt-3 text-[12.5px] text-muted">
        {data.managed ? (
          <>
            <ShieldCheck className="mt-0.5 size-4 shrink-0 text-ok" aria-hidden />
            <p data-testid="versions-managed">
              <span className="font-medium text-fg">Under change control.</span> The approved version runs for everyone; a pilot or monitored
              version runs only for the cohort in the blueprint's <code className="font-mono text-[11.5px]">lifecycle.pilot</code>. Saving the file
              makes a new version, which runs only once it is proposed and promoted.
            </p>
          </>
        ) : (
          <>
            <GitBranch className="mt-0.5 size-4 shrink-0 text-faint" aria-hidden />
            <p data-testid="versions-unmanaged">
              <span className="font-medium text-fg">Not under change control — the file's version runs</span>
              {file && (
                <>
                  {" "}
                  (<span className="font-mono">{shortHash(file.version)}</span>)
                </>
              )}
              . Propose it to govern changes from now on: each new version then goes through pilot and approval before it reaches everyone.
            </p>
          </>
        )}
      </div>
    </section>
  );
}

const TONE_SOLID = {
  neutral: "bg-muted text-panel",
  info: "bg-info text-white",
  warn: "bg-warn text-white",
  ok: "bg-ok text-white",
  accent: "bg-accent text-accent-fg",
  danger: "bg-danger text-white",
} as const;

function ProposeForm({ blueprint, data, actor }: { blueprint: string; data: BlueprintVersions; actor: Actor }) {
  const file = unproposedFileVersion(data);
  const qc = useQueryClient();
  const ids = useId();
  const [note, setNote] = useState("");
  const [refs, setRefs] = useState<string[]>([]);
  const [typing, setTyping] = useState("");
  const [touched, setTouched] = useState(false);
  const may = proposePermission(actor);
  const propose = useMutation({
    mutationFn: (version: string) =>
      api.proposeVersion({ blueprint, version, by: actor.name, note: note.trim(), feedback: parseRefs(typing, refs) }),
    onSuccess: (v) => {
      setNote("");
      setRefs([]);
      setTyping("");
      setTouched(false);
      void qc.invalidateQueries({ queryKey: versionsKey(blueprint) });
      void qc.invalidateQueries({ queryKey: ["blueprints"] });
      toast.success(`Proposed ${shortHash(v.version)} as a draft`);
    },
  });
  if (!file) return null;
  const noteMissing = note.trim() === "";
  const submit = () => {
    setTouched(true);
    if (noteMissing || !may.allowed || propose.isPending) return;
    propose.mutate(file.version);
  };
  const onRefKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter" || e.key === ",") {
      e.preventDefault();
      setRefs(parseRefs(typing, refs));
      setTyping("");
    } else if (e.key === "Backspace" && typing === "" && refs.length > 0) {
      setRefs(refs.slice(0, -1));
    }
  };
  return (
    <section aria-labelledby={`${ids}-h`} data-testid="propose-form" className="rounded-lg border border-accent/40 bg-accent/5 p-4">
      <h2 id={`${ids}-h`} className="flex items-center gap-1.5 text-[13px] font-semibold">
        <FileCode className="size-3.5 text-accent" aria-hidden />
        Propose this version <span className="font-mono font-normal text-muted">{shortHash(file.version)}</span>
      </h2>
      <p className="mt-0.5 text-xs text-muted">
        The file's version has not been proposed{data.managed ? ": it does not run until it is proposed, piloted and approved" : ""}. Say what
        changed and why; it starts as a draft.
      </p>
      <form
        className="mt-3 flex flex-col gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <div className="flex flex-col gap-1">
          <label htmlFor={`${ids}-note`} className="text-xs font-medium">
            Change note <span className="text-danger">*</span>
          </label>
          <textarea
            id={`${ids}-note`}
            rows={2}
            value={note}
            onChange={(e) => setNote(e.target.value)}
            onKeyDown={(e) => (e.metaKey || e.ctrlKey) && e.key === "Enter" && (e.preventDefault(), submit())}
            placeholder="What changed and why, e.g. “Name the benefits deadline in the welcome email”"
            aria-invalid={touched && noteMissing}
            aria-describedby={touched && noteMissing ? `${ids}-note-err` : undefined}
            className={clsx(inputClass, "resize-y")}
            data-testid="propose-note"
          />
          {touched && noteMissing && (
            <span id={`${ids}-note-err`} className="text-xs text-danger">
              A change note is required.
            </span>
          )}
        </div>
        <div className="flex flex-col gap-1">
          <label htmlFor={`${ids}-refs`} className="text-xs font-medium">
            Feedback references <span className="font-normal text-faint">task ids, outputs (run:node:visit) or tags; Enter or comma adds one</span>
          </label>
          <div className={clsx(inputClass, "flex min-h-8 flex-wrap items-center gap-1 py-1 focus-within:border-accent focus-within:ring-2 focus-within:ring-accent/20")}>
            {refs.map((r) => (
              <span key={r} className="inline-flex items-center gap-0.5 rounded bg-sunken py-px pr-0.5 pl-1.5 font-mono text-[11.5px]" data-testid="propose-ref">
                {r}
                <button
                  type="button"
                  className="rounded p-0.5 text-faint hover:bg-hover hover:text-fg"
                  aria-label={`Remove ${r}`}
                  onClick={() => setRefs(refs.filter((x) => x !== r))}
                >
                  <X className="size-3" />
                </button>
              </span>
            ))}
            <input
              id={`${ids}-refs`}
              value={typing}
              onChange={(e) => {
                const text = e.target.value;
                // A pasted list becomes chips at once.
                if (/[,\n]/.test(text)) {
                  setRefs(parseRefs(text, refs));
                  setTyping("");
                } else setTyping(text);
              }}
              onKeyDown={onRefKey}
              onBlur={() => typing.trim() && (setRefs(parseRefs(typing, refs)), setTyping(""))}
              placeholder={refs.length ? "" : "tag:missing-deadline"}
              className="min-w-32 flex-1 bg-transparent font-mono text-[12px] outline-none placeholder:text-faint"
              data-testid="propose-feedback"
            />
          </div>
        </div>
        {propose.isError && (
          <div role="alert" className="rounded-md border border-danger/40 bg-danger/10 px-3 py-2 text-[13px] text-danger" data-testid="propose-error">
            {propose.error.message}
          </div>
        )}
        <div className="flex items-center gap-2">
          <Button
            type="submit"
            variant="primary"
            aria-disabled={!may.allowed || propose.isPending}
            className={clsx((!may.allowed || propose.isPending) && "cursor-not-allowed opacity-50")}
            title={may.allowed ? undefined : may.reason}
            data-testid="propose-submit"
          >
            Propose as {actor.name || "me"}
          </Button>
          {!may.allowed && <span className="text-xs text-muted">{may.reason}</span>}
        </div>
      </form>
    </section>
  );
}

function VersionsTable({
  data,
  actor,
  busy,
  onAct,
  onCompare,
  onGate,
  gating,
}: {
  data: BlueprintVersions;
  actor: Actor;
  busy: { version: string; move: Move } | undefined;
  onAct: (v: VersionInfo, a: VersionAction) => void;
  onCompare: (v: VersionInfo) => void;
  onGate: (v: VersionInfo) => void;
  gating: string | undefined;
}) {
  if (data.versions.length === 0) {
    return <EmptyState title="No versions stored yet">A version is stored when the engine first loads it.</EmptyState>;
  }
  return (
    <section aria-label="Versions" className="overflow-hidden rounded-lg border border-border bg-panel">
      <div className="overflow-x-auto">
        <table className="w-full border-collapse text-left text-[12.5px]" data-testid="versions-table">
          <thead>
            <tr className="border-b border-border text-[11px] font-medium whitespace-nowrap text-faint">
              <th className="px-3 py-2 font-medium">Version</th>
              <th className="px-3 py-2 font-medium">Stage</th>
              <th className="px-3 py-2 font-medium">Proposed by</th>
              <th className="px-3 py-2 font-medium">Change note and feedback</th>
              <th className="px-3 py-2 text-right font-medium">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.versions.map((v) => (
              <VersionRow
                key={v.version}
                version={v}
                actor={actor}
                busy={busy?.version === v.version ? busy.move : undefined}
                onAct={onAct}
                onCompare={onCompare}
                onGate={onGate}
                gating={gating === v.version}
              />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function VersionRow({
  version: v,
  actor,
  busy,
  onAct,
  onCompare,
  onGate,
  gating,
}: {
  version: VersionInfo;
  actor: Actor;
  busy: Move | undefined;
  onAct: (v: VersionInfo, a: VersionAction) => void;
  onCompare: (v: VersionInfo) => void;
  onGate: (v: VersionInfo) => void;
  gating: boolean;
}) {
  const ids = useId();
  const info = v.stage ? stageInfo(v.stage) : null;
  const actions = versionActions(v, actor);
  return (
    <tr
      className={clsx("border-b border-border align-top last:border-b-0", v.stage === "retired" && "text-muted")}
      data-testid="version-row"
      data-version={v.version}
      data-stage={v.stage ?? "unproposed"}
    >
      <td className="px-3 py-2 whitespace-nowrap">
        <span className="font-mono text-[12px]" title={v.version}>
          {shortHash(v.version)}
        </span>
        {v.current_file && (
          <Badge tone="accent" className="ml-1.5" title="The version in the project's blueprint file now">
            file
          </Badge>
        )}
      </td>
      <td className="px-3 py-2">
        <span className="flex flex-col items-start gap-1">
          {info ? (
            <Badge tone={info.tone} title={info.hint}>
              {info.label}
            </Badge>
          ) : (
            <span className="text-[11.5px] whitespace-nowrap text-faint">not proposed</span>
          )}
          {v.gate_summary != null && (
            <Badge tone={v.gate_passed ? "ok" : "danger"} title={`Regression gate: ${v.gate_summary}`}>
              {v.gate_passed ? "gate passed" : "gate failed"}
            </Badge>
          )}
        </span>
      </td>
      <td className="px-3 py-2 whitespace-nowrap">
        {v.author ?? <span className="text-faint">—</span>}
        {v.proposed_at !== null && (
          <div className="text-[11.5px] text-faint tabular-nums">
            <time dateTime={new Date(v.proposed_at).toISOString()} title={formatTime(v.proposed_at)}>
              {relativeTime(v.proposed_at)}
            </time>
          </div>
        )}
      </td>
      <td className="w-full min-w-48 px-3 py-2">
        {v.note ? <p className="line-clamp-3" title={v.note}>{v.note}</p> : <span className="text-faint">—</span>}
        {v.feedback.length > 0 && (
          <span className="mt-1 flex flex-wrap gap-1" aria-label="Feedback references">
            {v.feedback.map((f) => (
              <FeedbackRef key={f} value={f} />
            ))}
          </span>
        )}
      </td>
      <td className="px-3 py-2">
        <span className="flex justify-end gap-1 whitespace-nowrap">
          <Button size="sm" variant="ghost" onClick={() => onCompare(v)} title="Show what changed in this version" data-testid="version-compare">
            Diff
          </Button>
          {(v.stage === "pilot" || v.stage === "monitored") && (
            <Button
              size="sm"
              variant="ghost"
              onClick={() => onGate(v)}
              aria-disabled={gating}
              title="Replay the newest approved reviews on this version and compare its drafts with what people approved (needed to approve a prompt change)"
              data-testid="version-gate"
            >
              {gating ? "Replaying…" : "Run gate"}
            </Button>
          )}
          {actions.map((a) => (
            <span key={a.move} className="contents">
              <Button
                size="sm"
                variant={a.move === "retired" ? "ghost" : a.move === "pilot" ? "default" : "primary"}
                onClick={() => onAct(v, a)}
                aria-disabled={!a.allowed || busy !== undefined}
                aria-describedby={a.allowed ? undefined : `${ids}-${a.move}`}
                title={a.allowed ? a.hint : a.reason}
                className={clsx(!a.allowed && "cursor-not-allowed opacity-50", a.move === "retired" && a.allowed && "hover:text-danger")}
                data-testid={`version-action-${a.move}`}
                data-allowed={a.allowed}
              >
                {busy === a.move ? "…" : a.label}
              </Button>
              {!a.allowed && (
                <span id={`${ids}-${a.move}`} className="sr-only">
                  {a.reason}
                </span>
              )}
            </span>
          ))}
        </span>
      </td>
    </tr>
  );
}

/** A feedback reference: tasks link to the inbox; outputs and tags are shown as they are. */
function FeedbackRef({ value }: { value: string }) {
  const cls = "inline-flex rounded bg-sunken px-1.5 py-px font-mono text-[11px] whitespace-nowrap text-muted";
  if (/^[0-9a-f]{8}-[0-9a-f-]{27}$/i.test(value)) {
    return (
      <Link to={`/inbox/${value}`} className={clsx(cls, "hover:text-accent")} title={`Task ${value}`}>
        task {value.slice(-8)}
      </Link>
    );
  }
  return (
    <span className={cls} title={value}>
      {value.length > 28 ? `${value.slice(0, 27)}…` : value}
    </span>
  );
}

function History({ data }: { data: BlueprintVersions }) {
  const entries = [...data.history].reverse();
  return (
    <section aria-labelledby="history-heading" className="rounded-lg border border-border bg-panel">
      <h2 id="history-heading" className="flex items-center gap-1.5 border-b border-border px-4 py-2.5 text-[13px] font-semibold">
        <HistoryIcon className="size-3.5 text-muted" aria-hidden /> History
      </h2>
      {entries.length === 0 ? (
        <p className="px-4 py-3 text-xs text-muted">No stage changes yet. Proposing a version starts its history.</p>
      ) : (
        <ol className="px-4 py-3" data-testid="versions-history">
          {entries.map((h, i) => (
            <HistoryItem key={`${h.version}-${h.at}-${i}`} entry={h} last={i === entries.length - 1} />
          ))}
        </ol>
      )}
    </section>
  );
}

const DOT = { neutral: "bg-faint", info: "bg-info", warn: "bg-warn", ok: "bg-ok", accent: "bg-accent", danger: "bg-danger" } as const;

function HistoryItem({ entry: h, last }: { entry: StageChangeDto; last: boolean }) {
  const to = stageInfo(h.to);
  const reason = reasonLabel(h.reason);
  return (
    <li className="relative flex gap-3 pb-4 last:pb-0" data-testid="history-entry" data-version={h.version} data-to={h.to} data-reason={h.reason}>
      {!last && <span className="absolute top-3 bottom-0 left-[4px] w-px bg-border" aria-hidden />}
      <span className={clsx("relative mt-1.5 size-[9px] shrink-0 rounded-full ring-2 ring-panel", DOT[to.tone])} aria-hidden />
      <div className="min-w-0 flex-1 text-[12.5px]">
        <div className="flex flex-wrap items-baseline gap-x-1.5">
          <span className="font-mono text-[11.5px] text-muted">{shortHash(h.version)}</span>
          <span>
            {h.from ? (
              <>
                <span className="text-muted">{stageInfo(h.from).label}</span> → <span className="font-medium">{to.label}</span>
              </>
            ) : (
              <span className="font-medium">{h.reason === "proposed" ? `Proposed as ${to.label.toLowerCase()}` : to.label}</span>
            )}
          </span>
          {reason && h.reason !== "proposed" && <Badge tone={h.reason === "rolled_back" ? "danger" : "neutral"}>{reason}</Badge>}
        </div>
        <div className="text-[11.5px] text-faint">
          {h.by} ·{" "}
          <time dateTime={new Date(h.at).toISOString()} title={formatTime(h.at)}>
            {relativeTime(h.at)}
          </time>
        </div>
        {h.note && <p className="mt-0.5 text-[12px] break-words text-muted">“{h.note}”</p>}
      </div>
    </li>
  );
}

function RollbackDialog({
  open,
  onClose,
  current,
  target,
  busy,
  onConfirm,
}: {
  open: boolean;
  onClose: () => void;
  current: VersionInfo | null;
  target: VersionInfo | null;
  busy: boolean;
  onConfirm: (note: string) => void;
}) {
  const [note, setNote] = useState("");
  const ids = useId();
  return (
    <Modal
      open={open}
      onClose={onClose}
      title="Roll back the approved version?"
      description="One step back: the version approved before this one runs for everyone again."
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="danger" disabled={busy || !target} onClick={() => onConfirm(note.trim())} data-testid="confirm-rollback">
            <RotateCcw className="size-3.5" /> Roll back{target ? ` to ${shortHash(target.version)}` : ""}
          </Button>
        </>
      }
    >
      <div className="flex flex-col gap-3 text-[13px]">
        <Swap label="Retires (rolled back)" version={current} tone="danger" />
        <Swap label="Becomes approved again" version={target} tone="ok" />
        <div className="flex flex-col gap-1">
          <label htmlFor={`${ids}-note`} className="text-xs font-medium">
            Why <span className="font-normal text-faint">optional, kept in the history</span>
          </label>
          <textarea id={`${ids}-note`} rows={2} value={note} onChange={(e) => setNote(e.target.value)} className={clsx(inputClass, "resize-y")} data-testid="rollback-note" />
        </div>
      </div>
    </Modal>
  );
}

function Swap({ label, version, tone }: { label: string; version: VersionInfo | null; tone: "ok" | "danger" }): ReactNode {
  return (
    <div className="flex items-start gap-3 rounded-md border border-border bg-sunken px-3 py-2">
      <Badge tone={tone} className="mt-0.5">
        {label}
      </Badge>
      {version ? (
        <div className="min-w-0">
          <div className="font-mono text-[12px]">{shortHash(version.version)}</div>
          <div className="text-xs text-muted">
            {version.note ?? "No change note"}
            {version.author && ` · by ${version.author}`}
            {version.approved_at !== null && ` · approved ${formatTime(version.approved_at)}`}
          </div>
        </div>
      ) : (
        <span className="text-muted">—</span>
      )}
    </div>
  );
}
