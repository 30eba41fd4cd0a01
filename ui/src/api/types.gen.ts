// Generated from the Rust types of crates/api and crates/core by
// `PROCESSOPS_BLESS=1 cargo test -p processops-api --test committed`. Do not edit.

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

export type Health = { status: string, version: string, blueprints: number, };

export type Me = { 
/**
 * The name decisions and tags are recorded under (`[profile] name` of processops.toml,
 * else the login name).
 */
name: string, 
/**
 * Roles from `[users.<name>]`; empty in a single-user installation.
 */
roles: Array<string>, 
/**
 * No directory is configured: whoever uses the app may decide anything.
 */
single_user: boolean, 
/**
 * Everyone in the directory, for picking a person to act as.
 */
users: Array<UserDto>, };

export type UserDto = { name: string, roles: Array<string>, };

export type BlueprintSummary = { id: string, name: string, description: string, domain: string | null, 
/**
 * Content hash of the current version.
 */
version: string, stage: string, triggers: Array<TriggerSummary>, nodes: number, };

export type TriggerSummary = { id: string, kind: string, 
/**
 * The JSON Schema of the payload, for forms.
 */
input: JsonValue | null, };

export type DiagnosticDto = { severity: string, code: string, pointer: string, line: number, column: number, message: string, help: string | null, };

export type LoadProblemDto = { file: string, diagnostics: Array<DiagnosticDto>, };

export type ValidationReport = { valid: boolean, 
/**
 * Content hash when valid.
 */
version: string | null, diagnostics: Array<DiagnosticDto>, };

export type ValidateRequest = { 
/**
 * The blueprint's YAML text.
 */
source: string, };

export type BlueprintSource = { id: string, 
/**
 * The file, relative to the project.
 */
file: string, source: string, 
/**
 * Content hash of the loaded version.
 */
version: string, };

export type SaveBlueprintRequest = { 
/**
 * The blueprint's YAML text.
 */
source: string, 
/**
 * The version the edit started from; the save is refused when the file changed since.
 */
base_version?: string | null, };

export type SaveBlueprintResponse = { id: string, file: string, version: string, 
/**
 * False when the text was already the file's (nothing was written).
 */
changed: boolean, };

export type DryRunRequest = { 
/**
 * The blueprint's YAML text (saved or not).
 */
source: string, 
/**
 * Trigger id; the manual (or first) trigger when omitted.
 */
trigger?: string | null, 
/**
 * The sample payload.
 */
payload: unknown, };

export type DryRunReport = { 
/**
 * completed, failed, attention or waiting
 */
status: string, steps: Array<TimelineStep>, error: string | null, 
/**
 * Reviews approved automatically with their drafts.
 */
approvals: number, 
/**
 * Problems that kept the blueprint from running (then `steps` is empty).
 */
diagnostics: Array<DiagnosticDto>, };

export type StartRunRequest = { blueprint: string, 
/**
 * Trigger id; the blueprint's manual trigger (or first trigger) when omitted.
 */
trigger?: string | null, payload?: JsonValue, 
/**
 * Runs with the same key start once.
 */
idempotency_key?: string | null, 
/**
 * Answer only after the run parked at a review or ended.
 */
wait?: boolean, 
/**
 * Who starts it: a member of a pilot's cohort gets the pilot version.
 */
by?: string, };

export type StartRunResponse = { run_id: string, 
/**
 * A run with the same idempotency key existed; nothing new started.
 */
duplicate: boolean, 
/**
 * The run's status when answered (`running` unless `wait` was set).
 */
status: string, };

export type RunsQuery = { blueprint?: string, 
/**
 * running, waiting, attention, completed, failed
 */
status?: string, limit?: number, };

export type TasksQuery = { 
/**
 * pending (default), decided or all
 */
status?: string, blueprint?: string, 
/**
 * Blueprint version (content hash).
 */
version?: string, role?: string, 
/**
 * Claimed by this person.
 */
assignee?: string, run?: string, 
/**
 * Due at or before this time (Unix ms).
 */
due_before?: number, 
/**
 * Words that must all appear in the title or the draft.
 */
q?: string, 
/**
 * due (default), newest or oldest
 */
sort?: string, 
/**
 * 50 by default, at most 100,000.
 */
limit?: number, 
/**
 * Leave out drafts (`draft` is empty): the inbox list. A task's detail has the draft.
 */
summary?: boolean, 
/**
 * Who is looking: tasks of pilot versions whose cohort they are not in are left out.
 */
viewer?: string, };

export type QueueQuery = { by: string, blueprint?: string, 
/**
 * `prompt` (drafts) or `review` (approved texts); both by default.
 */
kind?: string, limit?: number, 
/**
 * Sample with this seed instead of newest first.
 */
seed?: number, };

export type FeedbackQuery = { 
/**
 * `<run>:<node>[:<visit>]`, or just a run id for all of its outputs.
 */
output?: string, by?: string, blueprint?: string, tag?: string, };

export type RunSummary = { id: string, blueprint: string, version: string, trigger: string, 
/**
 * running, waiting, attention, completed, failed
 */
status: string, created_at: number, updated_at: number, error: string | null, events: number, };

export type RunDetail = { run: RunSummary, payload: JsonValue, 
/**
 * One entry per node visit, in order.
 */
steps: Array<TimelineStep>, };

export type StepStatus = "running" | "waiting" | "done" | "failed" | "skipped";

export type TimelineStep = { node: string, visit: number, status: StepStatus, 
/**
 * Unix ms of the first event of this visit.
 */
started_at: number, finished_at: number | null, attempts: number, label: string | null, next: Array<string>, output: JsonValue | null, meta: StepMeta | null, error: string | null, task: Task | null, decision: Decision | null, };

export type StepMeta = { duration_ms?: number | null, model?: string | null, prompt_tokens?: number | null, completion_tokens?: number | null, retries?: number, fallback?: string | null, 
/**
 * The rendered input (prompt text, request body) for the timeline.
 */
input?: JsonValue | null, 
/**
 * Every model call the step made, in order: what `runs replay` plays back.
 */
exchanges?: Array<Exchange>, };

export type Exchange = { 
/**
 * The agent of the blueprint that made the call.
 */
agent: string, provider: string, 
/**
 * `call`, or `repair` for the second try after a reply failed the output schema.
 */
purpose: string, 
/**
 * The provider-neutral request: model, messages, temperature, max tokens, schema.
 */
request: JsonValue, 
/**
 * The reply text, when the call succeeded.
 */
response?: string | null, 
/**
 * The model that answered, as the provider reported it.
 */
model?: string | null, 
/**
 * Why the call failed (or why its reply was refused), when it did.
 */
error?: string | null, prompt_tokens: number, completion_tokens: number, latency_ms: number, 
/**
 * HTTP tries the provider needed (retries included).
 */
attempts: number, };

export type TaskSummary = { id: string, run_id: string, blueprint: string, version: string, node: string, title: string, role: string, 
/**
 * pending or decided
 */
status: string, created_at: number, due_at: number | null, decided_at: number | null, draft: string, decision: Decision | null, 
/**
 * The SLA ran out and its policy left the task for a person to look at.
 */
attention: boolean, 
/**
 * When the SLA ran out, if it did.
 */
breached_at: number | null, 
/**
 * Who holds the task, if anyone.
 */
claimed_by: string | null, 
/**
 * With a hub: `pending` (decided here, waiting for the hub; its output waits too),
 * `accepted`, or `conflict` (a decision on it lost: see the task's conflicts).
 */
sync: string | null, 
/**
 * With a hub: the device whose engine runs the task's run, when it is another one.
 */
owner: string | null, };

export type TaskDetail = { task: TaskSummary, 
/**
 * Trigger payload, earlier steps' outputs (retrieved passages, prompt, model).
 */
context: JsonValue, users: Array<string>, escalation: Array<string>, reasons: Array<string>, 
/**
 * For an edit decision: the unified diff from the draft to the edited text.
 */
diff: string | null, 
/**
 * Time from the task's creation to its decision, in milliseconds.
 */
decision_latency_ms: number | null, };

export type Task = { id: string, node: string, visit: number, title: string, draft: string, role: string, users?: Array<string>, 
/**
 * Remaining escalation chain.
 */
escalation?: Array<string>, reasons?: Array<string>, 
/**
 * Unix milliseconds.
 */
due_at?: number | null, 
/**
 * When to remind the assignees (Unix milliseconds).
 */
remind_at?: number | null, 
/**
 * The context that produced the draft: trigger payload, retrieved passages, prompt and model.
 */
context: JsonValue, 
/**
 * Who may decide, beyond the role: quorum and separation of duties.
 */
policy?: TaskPolicy, };

export type TaskPolicy = { 
/**
 * Approvals needed from different people; any rejection rejects.
 */
approvals: number, 
/**
 * People who may not decide this task (separation of duties).
 */
excluded?: Array<string>, 
/**
 * What approvers may do; everything when empty.
 */
actions?: Array<Action>, };

export type Action = "approve" | "edit" | "reject" | "escalate";

export type Decision = { action: Action, by: string, 
/**
 * The edited text (for `edit`).
 */
text?: string | null, 
/**
 * Why (required for `reject`).
 */
reason?: string | null, };

export type DecisionRequest = { 
/**
 * approve, edit, reject or escalate
 */
action: string, 
/**
 * Who decides.
 */
by: string, 
/**
 * The edited text (edit).
 */
text?: string | null, 
/**
 * Why (required to reject).
 */
reason?: string | null, };

export type DecisionResponse = { task_id: string, run_id: string, 
/**
 * With a hub: the decision waits for the hub's verdict before the run goes on.
 */
pending_sync: boolean, };

export type SyncStatusDto = { 
/**
 * Whether this project is a device of a hub at all.
 */
enrolled: boolean, hub: string | null, team: string | null, user: string | null, device: string | null, 
/**
 * Whether the last round reached the hub (`null` before the first round).
 */
online: boolean | null, 
/**
 * Own changes the hub has not acknowledged yet.
 */
pending: number, 
/**
 * How far this device has applied the team's log.
 */
cursor: number, last_sync_at: number | null, 
/**
 * Why the last round failed, if it did.
 */
last_error: string | null, open_conflicts: number, };

export type ConflictDto = { 
/**
 * The losing decision's event id.
 */
id: string, task_id: string, 
/**
 * Who made the losing decision, and when (Unix ms).
 */
actor: string, at: number, decision: Decision, reason: string, resolved: boolean, resolved_by: string | null, resolved_at: number | null, note: string | null, };

export type ResolveRequest = { note?: string, };

export type EnrolHubRequest = { 
/**
 * The hub's address, e.g. `https://hub.example.com`.
 */
url: string, 
/**
 * The one-time code from the hub's admin.
 */
code: string, 
/**
 * A name for this device, shown to the hub's admins.
 */
device_name?: string, };

export type ClaimRequest = { 
/**
 * Who takes (or gives back) the task.
 */
by: string, 
/**
 * Give back a task someone else holds.
 */
force?: boolean, };

export type WebhookResponse = { run_id: string, duplicate: boolean, };

export type TagRequest = { 
/**
 * `<run>:<node>[:<visit>]`; the run may be the last 8 characters of its id, the visit
 * defaults to the node's latest.
 */
output: string, tags?: Array<string>, 
/**
 * 1 to 5.
 */
rating?: number | null, 
/**
 * Free text; an empty comment clears the previous one.
 */
comment?: string | null, 
/**
 * The evaluator.
 */
by: string, };

export type UntagRequest = { output: string, tags: Array<string>, by: string, };

export type OutputFeedback = { 
/**
 * `<run>:<node>:<visit>`.
 */
output: string, 
/**
 * The short form people type: `<last 8 of run>:<node>:<visit>`.
 */
handle: string, run: string, node: string, visit: number, blueprint: string | null, evaluator: string, 
/**
 * Tags present, sorted.
 */
tags: Array<string>, rating: number | null, comment: string | null, 
/**
 * Unix ms of the last change.
 */
updated_at: number, };

export type TagResponse = { 
/**
 * Tags whose state this request changed.
 */
changed: Array<string>, 
/**
 * Tags that were already as asked.
 */
unchanged: Array<string>, feedback: OutputFeedback, };

export type QueueItem = { output: string, handle: string, run: string, node: string, visit: number, 
/**
 * `prompt` or `review`.
 */
kind: string, blueprint: string, version: string, 
/**
 * Unix ms.
 */
finished_at: number, 
/**
 * The draft (prompt) or the approved text (review).
 */
text: string, 
/**
 * For reviews: the draft that was reviewed, and whether the reviewer edited it.
 */
draft: string | null, edited: boolean, allowed_tags: Array<string>, };

export type EvalProgress = { evaluator: string, 
/**
 * Outputs this evaluator tagged, rated or commented on.
 */
done: number, 
/**
 * Outputs in scope still waiting for this evaluator.
 */
remaining: number, };

export type ProviderView = { name: string, 
/**
 * openai, anthropic, builtin or scripted
 */
kind: string, base_url: string | null, 
/**
 * The model file of a `builtin` provider.
 */
model: string | null, 
/**
 * Where the API key comes from: `env`, `keychain` or `none`.
 */
key_source: string, 
/**
 * The environment variable or keychain account.
 */
key_name: string | null, 
/**
 * The key is there (the variable is set, or the keychain holds an entry).
 */
key_present: boolean, };

export type AgentView = { blueprint: string, name: string, provider: string, model: string, permissions: Array<string>, };

export type SettingsView = { 
/**
 * The project folder.
 */
project: string, settings_file: string, providers: Array<ProviderView>, 
/**
 * Blueprint agents and the provider each uses.
 */
agents: Array<AgentView>, };

export type StoreKeyRequest = { 
/**
 * The keychain account (the provider's `api_key_keychain`).
 */
account: string, key: string, };

export type MetricsQuery = { blueprint?: string, 
/**
 * Blueprint version (content hash, or a prefix of at least 4 characters).
 */
version?: string, 
/**
 * First day: a date (2026-11-01), `today`, or a span back from today (`30d`, `4w`).
 * Default: 30 days before `until`.
 */
since?: string, 
/**
 * Last day, included; same forms as `since`. Default: today.
 */
until?: string, 
/**
 * Days at the end of the window compared against the baseline for drift (default 7).
 */
recent_days?: number, 
/**
 * Days before the recent ones that drift compares against (default 28).
 */
baseline_days?: number, };

export type MetricRunsQuery = { 
/**
 * Which number to explain: overrides, automated, touched, prompt_issues, escalated,
 * breached, slowest or failed.
 */
metric: string, blueprint?: string, version?: string, since?: string, until?: string, 
/**
 * At most this many runs (default 100, at most 1000).
 */
limit?: number, };

export type MetricsReport = { 
/**
 * The window, both days included.
 */
since: string, until: string, 
/**
 * The drift windows: recent days against the baseline days before them.
 */
recent_since: string, baseline_since: string, total: Summary, 
/**
 * Most runs first.
 */
blueprints: Array<BlueprintMetrics>, series: Array<DayMetrics>, };

export type BlueprintMetrics = { blueprint: string, 
/**
 * Its display name, when the blueprint is still in the project.
 */
name: string | null, summary: Summary, drift: Drift, 
/**
 * Newest activity first.
 */
versions: Array<VersionMetrics>, };

export type VersionMetrics = { version: string, 
/**
 * First and last day (`2026-11-01`) with activity in the window.
 */
first_day: string, last_day: string, summary: Summary, drift: Drift, };

export type DayMetrics = { day: string, summary: Summary, };

export type Summary = { runs_started: number, runs_finished: number, runs_failed: number, prompt_success: Ratio, prompts: PromptMix, tokens: number, human_override: Ratio, decisions: DecisionMix, 
/**
 * Mean share of the draft changed by an edit, when any edit was measured.
 */
edit_distance: number | null, automation_coverage: Ratio, auto_approved_reviews: number, tasks_created: number, escalation: Escalation, };

export type Ratio = { num: number, den: number, 
/**
 * `num / den`, or none for an empty window.
 */
value: number | null, };

export type PromptMix = { clean: number, repaired: number, fallback: number, attention: number, failed: number, };

export type DecisionMix = { approve: number, edit: number, reject: number, escalate: number, };

export type Escalation = { decided: number, p50_ms: number | null, p95_ms: number | null, 
/**
 * Decided tasks that had been escalated / decided tasks.
 */
escalated: Ratio, 
/**
 * Decided tasks whose SLA ran out / decided tasks.
 */
breached: Ratio, };

export type Drift = { 
/**
 * The largest component PSI: one distribution that moved is enough to look. None when no
 * component had enough data in both windows.
 */
index: number | null, flagged: boolean, threshold: number, components: Array<DriftComponent>, };

export type DriftComponent = { 
/**
 * `decisions`, `tags`, `output_length` or `prompt_failures`.
 */
name: string, 
/**
 * The population stability index, or none when a window had too few observations.
 */
psi: number | null, baseline_n: number, recent_n: number, };

export type DriftAlert = { id: number, blueprint: string, version: string, drift: number, 
/**
 * decisions, tags, output_length or prompt_failures: what moved most.
 */
component: string, 
/**
 * The blueprint's `lifecycle.owner` (a person or a role); null when it names none.
 */
owner: string | null, at: number, };

export type AlertsQuery = { 
/**
 * Only alerts this person owns (by name or by one of their roles).
 */
owner?: string, 
/**
 * Since this time (Unix ms); default the last 30 days.
 */
since?: number, };

export type Drill = "overrides" | "automated" | "touched" | "prompt_issues" | "escalated" | "breached" | "slowest" | "failed";

export type DrillRow = { run_id: string, blueprint: string, version: string, 
/**
 * When the counted thing happened (Unix ms).
 */
at: number, 
/**
 * What about this run counts: "edit by ana", "decided by ben", "draft: fallback template"…
 */
detail: string, 
/**
 * For decisions: how long the task waited for it (ms).
 */
waited_ms: number | null, };

export type VersionsQuery = { blueprint: string, };

export type VersionInfo = { version: string, name: string, 
/**
 * When this engine first stored it (Unix ms).
 */
created_at: number, 
/**
 * draft, pilot, monitored, approved or retired; `null`: never proposed.
 */
stage: string | null, 
/**
 * Whether it is the version in the project's file now.
 */
current_file: boolean, author: string | null, note: string | null, 
/**
 * The feedback that motivated it (task ids, outputs `run:node:visit`, tags).
 */
feedback: Array<string>, proposed_at: number | null, approved_at: number | null, 
/**
 * The latest regression gate's one-line result, and whether it passed.
 */
gate_summary: string | null, gate_passed: boolean | null, };

export type StageChangeDto = { version: string, from: string | null, to: string, 
/**
 * proposed, asked, superseded, rolled_back or restored
 */
reason: string, by: string, at: number, note: string | null, };

export type BlueprintVersions = { blueprint: string, 
/**
 * Whether change control governs it (someone proposed a version); otherwise the file's
 * version runs.
 */
managed: boolean, versions: Array<VersionInfo>, history: Array<StageChangeDto>, };

export type ProposeRequest = { blueprint: string, 
/**
 * The version (hash or prefix); the file's current version when omitted.
 */
version?: string, by: string, 
/**
 * What changed and why.
 */
note: string, 
/**
 * Task ids, outputs (`run:node:visit`) or tags that motivated the change.
 */
feedback?: Array<string>, };

export type StageRequest = { blueprint: string, 
/**
 * Hash or prefix.
 */
version: string, 
/**
 * pilot, monitored, approved or retired
 */
stage: string, by: string, note?: string, };

export type RollbackRequest = { blueprint: string, by: string, note?: string, };

export type DiffQuery = { blueprint: string, 
/**
 * The older version (hash or prefix); default: the approved version, else the newest
 * proposed one other than `to`.
 */
from?: string, 
/**
 * The newer version; default: the file's version.
 */
to?: string, };

export type GateRequest = { blueprint: string, 
/**
 * Hash or prefix; the file's version when omitted.
 */
version?: string, by: string, 
/**
 * The similarity to the approved text a draft needs (default 0.8).
 */
threshold?: number, 
/**
 * How many past reviews to replay (default 20).
 */
cases?: number, };

export type GateReport = { blueprint: string, 
/**
 * The version whose runs are the eval set (what ran).
 */
baseline_version: string, candidate_version: string, threshold: number, 
/**
 * When it ran (Unix ms) and who asked.
 */
at: number, by: string, cases: Array<GateCase>, baseline_passed: number, candidate_passed: number, 
/**
 * The candidate passes as many cases as the baseline (or more) and every case replayed.
 */
passed: boolean, };

export type GateCase = { run_id: string, node: string, 
/**
 * What the person approved (their edit, or the draft they approved as it was).
 */
approved: string, 
/**
 * The draft the person was shown, from the version that ran.
 */
baseline_draft: string, 
/**
 * The candidate's draft for the same input; `None` when its replay did not reach the
 * review (the error says why).
 */
candidate_draft: string | null, baseline_score: number, candidate_score: number | null, baseline_passed: boolean, candidate_passed: boolean, error: string | null, };

export type VersionDiff = { blueprint: string, from: string, to: string, changes: Array<DiffEntry>, };

export type DiffEntry = { area: Area, 
/**
 * What it is about: `node draft (prompt)`, `edge check -approved-> send`, `agent writer`.
 */
subject: string, 
/**
 * The field, as a path inside the subject (`template`, `sla/due`); empty for a whole
 * node, edge or trigger.
 */
field: string, change: ChangeKind, before: string | null, after: string | null, 
/**
 * For text that spans lines (templates), the line diff.
 */
lines?: Array<DiffLine>, };

export type DiffLine = { tag: string, text: string, };

export type Area = "process" | "graph" | "prompts" | "policies";

export type ChangeKind = "added" | "removed" | "changed";
