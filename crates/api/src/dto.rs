//! The API's types. They are the wire's types: the core's types stay free to change.

use processops_core::journal::{Decision, Task};
use processops_core::timeline::TimelineStep;
use processops_store::{RunRow, SyncMark, TaskRow, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A loaded blueprint.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct BlueprintSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub domain: Option<String>,
    /// Content hash of the current version.
    pub version: String,
    pub stage: String,
    pub triggers: Vec<TriggerSummary>,
    pub nodes: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct TriggerSummary {
    pub id: String,
    pub kind: String,
    /// The JSON Schema of the payload, for forms.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
}

/// A problem in a blueprint.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct DiagnosticDto {
    pub severity: String,
    pub code: String,
    pub pointer: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub help: Option<String>,
}

impl From<&processops_core::Diagnostic> for DiagnosticDto {
    fn from(d: &processops_core::Diagnostic) -> Self {
        Self {
            severity: if d.is_error() {
                "error".into()
            } else {
                "warning".into()
            },
            code: d.code.to_owned(),
            pointer: d.pointer.clone(),
            line: d.line,
            column: d.column,
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }
}

/// A blueprint file that failed to load at start-up.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct LoadProblemDto {
    pub file: String,
    pub diagnostics: Vec<DiagnosticDto>,
}

/// Result of validating a blueprint source.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct ValidationReport {
    pub valid: bool,
    /// Content hash when valid.
    pub version: Option<String>,
    pub diagnostics: Vec<DiagnosticDto>,
}

/// Body of `POST /api/validate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The blueprint's YAML text.
    pub source: String,
}

/// Body of `POST /api/runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct StartRunRequest {
    pub blueprint: String,
    /// Trigger id; the blueprint's manual trigger (or first trigger) when omitted.
    #[serde(default)]
    pub trigger: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    #[ts(as = "Option<Value>", optional)]
    pub payload: Value,
    /// Runs with the same key start once.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Answer only after the run parked at a review or ended.
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub wait: bool,
    /// Who starts it: a member of a pilot's cohort gets the pilot version.
    #[serde(default)]
    #[ts(optional)]
    pub by: Option<String>,
}

/// A started run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct StartRunResponse {
    pub run_id: Uuid,
    /// A run with the same idempotency key existed; nothing new started.
    pub duplicate: bool,
    /// The run's status when answered (`running` unless `wait` was set).
    pub status: String,
}

/// A run as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct RunSummary {
    pub id: Uuid,
    pub blueprint: String,
    pub version: String,
    pub trigger: String,
    /// running, waiting, attention, completed, failed
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub error: Option<String>,
    pub events: u64,
}

impl From<RunRow> for RunSummary {
    fn from(r: RunRow) -> Self {
        Self {
            id: r.id,
            blueprint: r.blueprint_id,
            version: r.version,
            trigger: r.trigger_id,
            status: r.status.as_str().to_owned(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            error: r.error,
            events: r.events,
        }
    }
}

/// A run with its timeline.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct RunDetail {
    pub run: RunSummary,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// One entry per node visit, in order.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<TimelineStep>,
}

/// Query of `GET /api/runs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
#[ts(optional_fields)]
pub struct RunsQuery {
    pub blueprint: Option<String>,
    /// running, waiting, attention, completed, failed
    pub status: Option<String>,
    pub limit: Option<u32>,
}

/// Query of `GET /api/tasks`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
#[ts(optional_fields)]
pub struct TasksQuery {
    /// pending (default), decided or all
    pub status: Option<String>,
    pub blueprint: Option<String>,
    /// Blueprint version (content hash).
    pub version: Option<String>,
    pub role: Option<String>,
    /// Claimed by this person.
    pub assignee: Option<String>,
    pub run: Option<Uuid>,
    /// Due at or before this time (Unix ms).
    pub due_before: Option<i64>,
    /// Words that must all appear in the title or the draft.
    pub q: Option<String>,
    /// due (default), newest or oldest
    pub sort: Option<String>,
    /// 50 by default, at most 100,000.
    pub limit: Option<u32>,
    /// Leave out drafts (`draft` is empty): the inbox list. A task's detail has the draft.
    pub summary: Option<bool>,
    /// Who is looking: tasks of pilot versions whose cohort they are not in are left out.
    pub viewer: Option<String>,
}

/// Body of `POST /api/tasks/{id}/claim` and `/unclaim`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Who takes (or gives back) the task.
    pub by: String,
    /// Give back a task someone else holds.
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub force: bool,
}

/// An inbox task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct TaskSummary {
    pub id: Uuid,
    pub run_id: Uuid,
    pub blueprint: String,
    pub version: String,
    pub node: String,
    pub title: String,
    pub role: String,
    /// pending or decided
    pub status: String,
    pub created_at: i64,
    pub due_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub draft: String,
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Decision>,
    /// The SLA ran out and its policy left the task for a person to look at.
    pub attention: bool,
    /// When the SLA ran out, if it did.
    pub breached_at: Option<i64>,
    /// Who holds the task, if anyone.
    pub claimed_by: Option<String>,
    /// With a hub: `pending` (decided here, waiting for the hub; its output waits too),
    /// `accepted`, or `conflict` (a decision on it lost: see the task's conflicts).
    pub sync: Option<String>,
    /// With a hub: the device whose engine runs the task's run, when it is another one.
    pub owner: Option<Uuid>,
}

impl From<&TaskRow> for TaskSummary {
    fn from(t: &TaskRow) -> Self {
        Self {
            id: t.id,
            run_id: t.run_id,
            blueprint: t.blueprint_id.clone(),
            version: t.version.clone(),
            node: t.task.node.clone(),
            title: t.task.title.clone(),
            role: t.task.role.clone(),
            status: match t.status {
                TaskStatus::Pending => "pending".into(),
                TaskStatus::Decided => "decided".into(),
            },
            created_at: t.created_at,
            due_at: t.due_at,
            decided_at: t.decided_at,
            draft: t.task.draft.clone(),
            decision: t.decision.clone(),
            attention: t.timers.attention,
            breached_at: t.timers.breached_at,
            claimed_by: t.claimed_by.clone(),
            sync: t.sync.map(|m| {
                match m {
                    SyncMark::Pending => "pending",
                    SyncMark::Accepted => "accepted",
                    SyncMark::Conflict => "conflict",
                }
                .to_owned()
            }),
            owner: t.owner,
        }
    }
}

/// A task with the context that produced its draft.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct TaskDetail {
    pub task: TaskSummary,
    /// Trigger payload, earlier steps' outputs (retrieved passages, prompt, model).
    #[schema(value_type = Object)]
    pub context: Value,
    pub users: Vec<String>,
    pub escalation: Vec<String>,
    pub reasons: Vec<String>,
    /// For an edit decision: the unified diff from the draft to the edited text.
    pub diff: Option<String>,
    /// Time from the task's creation to its decision, in milliseconds.
    pub decision_latency_ms: Option<i64>,
}

impl From<&TaskRow> for TaskDetail {
    fn from(t: &TaskRow) -> Self {
        let Task {
            context,
            users,
            escalation,
            reasons,
            ..
        } = t.task.clone();
        Self {
            task: t.into(),
            context,
            users,
            escalation,
            reasons,
            diff: t.diff.clone(),
            decision_latency_ms: t.decided_at.map(|d| d - t.created_at),
        }
    }
}

/// Body of `POST /api/tasks/{id}/decision`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct DecisionRequest {
    /// approve, edit, reject or escalate
    pub action: String,
    /// Who decides.
    pub by: String,
    /// The edited text (edit).
    #[serde(default)]
    pub text: Option<String>,
    /// Why (required to reject).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A recorded decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct DecisionResponse {
    pub task_id: Uuid,
    pub run_id: Uuid,
    /// With a hub: the decision waits for the hub's verdict before the run goes on.
    pub pending_sync: bool,
}

/// This project's link to a hub, as the app's status bar shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct SyncStatusDto {
    /// Whether this project is a device of a hub at all.
    pub enrolled: bool,
    pub hub: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub device: Option<Uuid>,
    /// Whether the last round reached the hub (`null` before the first round).
    pub online: Option<bool>,
    /// Own changes the hub has not acknowledged yet.
    pub pending: u64,
    /// How far this device has applied the team's log.
    pub cursor: u64,
    pub last_sync_at: Option<i64>,
    /// Why the last round failed, if it did.
    pub last_error: Option<String>,
    pub open_conflicts: u64,
}

/// A decision the hub could not accept: it came after another was accepted, or was made on
/// a task that had changed since.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct ConflictDto {
    /// The losing decision's event id.
    pub id: Uuid,
    pub task_id: Uuid,
    /// Who made the losing decision, and when (Unix ms).
    pub actor: String,
    pub at: i64,
    #[schema(value_type = Object)]
    pub decision: Decision,
    pub reason: String,
    pub resolved: bool,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub note: Option<String>,
}

impl From<processops_store::sync::ConflictRow> for ConflictDto {
    fn from(c: processops_store::sync::ConflictRow) -> Self {
        Self {
            id: c.event,
            task_id: c.task,
            actor: c.actor,
            at: c.at,
            decision: c.decision,
            reason: c.reason,
            resolved: c.resolution.is_some(),
            resolved_by: c.resolution.as_ref().map(|r| r.by.clone()),
            resolved_at: c.resolution.as_ref().map(|r| r.at),
            note: c.resolution.and_then(|r| r.note),
        }
    }
}

/// Enrol this project with a team hub.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct EnrolHubRequest {
    /// The hub's address, e.g. `https://hub.example.com`.
    pub url: String,
    /// The one-time code from the hub's admin.
    pub code: String,
    /// A name for this device, shown to the hub's admins.
    #[ts(optional)]
    pub device_name: Option<String>,
}

/// Close a conflict: the accepted decision stands; say why, for the others.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    #[ts(optional)]
    pub note: Option<String>,
}

/// A webhook delivery's result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct WebhookResponse {
    pub run_id: Uuid,
    pub duplicate: bool,
}

/// Engine health.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub blueprints: usize,
}

/// Who uses the app, and what they may do.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct Me {
    /// The name decisions and tags are recorded under (`[profile] name` of processops.toml,
    /// else the login name).
    pub name: String,
    /// Roles from `[users.<name>]`; empty in a single-user installation.
    pub roles: Vec<String>,
    /// No directory is configured: whoever uses the app may decide anything.
    pub single_user: bool,
    /// Everyone in the directory, for picking a person to act as.
    pub users: Vec<UserDto>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct UserDto {
    pub name: String,
    pub roles: Vec<String>,
}

/// A blueprint's YAML text as it is on disk.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct BlueprintSource {
    pub id: String,
    /// The file, relative to the project.
    pub file: String,
    pub source: String,
    /// Content hash of the loaded version.
    pub version: String,
}

/// Body of `PUT /api/blueprints/{id}/source` and `POST /api/blueprints`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct SaveBlueprintRequest {
    /// The blueprint's YAML text.
    pub source: String,
    /// The version the edit started from; the save is refused when the file changed since.
    #[serde(default)]
    pub base_version: Option<String>,
}

/// A saved blueprint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct SaveBlueprintResponse {
    pub id: String,
    pub file: String,
    pub version: String,
    /// False when the text was already the file's (nothing was written).
    pub changed: bool,
}

/// Body of `POST /api/dry-run`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct DryRunRequest {
    /// The blueprint's YAML text (saved or not).
    pub source: String,
    /// Trigger id; the manual (or first) trigger when omitted.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The sample payload.
    #[serde(default)]
    #[schema(value_type = Object)]
    #[ts(type = "unknown")]
    pub payload: Value,
}

/// What a dry run did: every step's output, with outside effects described, not performed.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct DryRunReport {
    /// completed, failed, attention or waiting
    pub status: String,
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<TimelineStep>,
    pub error: Option<String>,
    /// Reviews approved automatically with their drafts.
    pub approvals: usize,
    /// Problems that kept the blueprint from running (then `steps` is empty).
    pub diagnostics: Vec<DiagnosticDto>,
}

/// A model provider as the settings show it (never its key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct ProviderView {
    pub name: String,
    /// openai, anthropic, builtin or scripted
    pub kind: String,
    pub base_url: Option<String>,
    /// The model file of a `builtin` provider.
    pub model: Option<String>,
    /// Where the API key comes from: `env`, `keychain` or `none`.
    pub key_source: String,
    /// The environment variable or keychain account.
    pub key_name: Option<String>,
    /// The key is there (the variable is set, or the keychain holds an entry).
    pub key_present: bool,
}

/// The settings the app shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct SettingsView {
    /// The project folder.
    pub project: String,
    pub settings_file: String,
    pub providers: Vec<ProviderView>,
    /// Blueprint agents and the provider each uses.
    pub agents: Vec<AgentView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct AgentView {
    pub blueprint: String,
    pub name: String,
    pub provider: String,
    pub model: String,
    pub permissions: Vec<String>,
}

/// Body of `POST /api/settings/keys`: store a provider's API key in the OS keychain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct StoreKeyRequest {
    /// The keychain account (the provider's `api_key_keychain`).
    pub account: String,
    pub key: String,
}

/// How far one evaluator got.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct EvalProgress {
    pub evaluator: String,
    /// Outputs this evaluator tagged, rated or commented on.
    pub done: usize,
    /// Outputs in scope still waiting for this evaluator.
    pub remaining: usize,
}

/// A query naming one blueprint, optionally.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlueprintQuery {
    pub blueprint: Option<String>,
}
