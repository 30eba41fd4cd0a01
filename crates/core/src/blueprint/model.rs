//! The blueprint file format, as Rust types. The JSON Schema in `blueprints/schema.json`
//! is generated from these types, so doc comments here are what editors show on hover.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A process definition: triggers start runs that flow through a graph of nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blueprint {
    /// Stable identifier: lowercase letters, digits and dashes, e.g. `hr-onboarding`.
    pub id: String,
    /// Human name shown in the app and the inbox.
    pub name: String,
    /// What this process does and who it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Business domain, e.g. `HR & People`, `Finance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Where this version stands in its lifecycle and who may use it.
    #[serde(default, skip_serializing_if = "Lifecycle::is_default")]
    pub lifecycle: Lifecycle,
    /// The node that runs first when a trigger fires (a trigger may override it).
    pub start: String,
    /// What starts a run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// Named model configurations that `prompt` nodes refer to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, Agent>,
    /// The trigger tree: every step of the process.
    pub nodes: Vec<Node>,
}

/// Lifecycle stage of a process version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Being designed; runs only from the designer's dry run or by hand.
    #[default]
    Draft,
    /// Live for the pilot cohort only.
    Pilot,
    /// Live and watched closely (feedback loops, prompt tracing).
    Monitored,
    /// Approved and scaled to the whole organisation.
    Approved,
    /// No longer starts new runs.
    Retired,
}

/// Lifecycle of a blueprint version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Current stage.
    #[serde(default)]
    pub stage: Stage,
    /// Who owns the process (gets drift alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Roles and users that take part in a pilot.
    #[serde(default, skip_serializing_if = "Cohort::is_empty")]
    pub pilot: Cohort,
}

impl Lifecycle {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// A set of roles and users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cohort {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

impl Cohort {
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.users.is_empty()
    }
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// Started by hand from the CLI, the app or the API (a form is generated from `input`).
    Manual(ManualTrigger),
    /// Started by an HTTP POST to `/hooks/{blueprint}/{trigger}` on `processops serve`.
    Webhook(WebhookTrigger),
    /// Started on a cron schedule.
    Schedule(ScheduleTrigger),
    /// Started when a file appears in a folder (JSON, CSV, .eml, text).
    FolderDrop(FolderDropTrigger),
    /// Started when another blueprint's `output` emits this event.
    Event(EventTrigger),
}

/// A manual or form trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {
    /// Trigger id, unique within the blueprint.
    pub id: String,
    /// JSON Schema the payload must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Node to start at instead of the blueprint's `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// An HTTP webhook trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// Trigger id, unique within the blueprint; part of the webhook URL.
    pub id: String,
    /// Name of the environment variable holding the HMAC-SHA256 secret. When set, requests
    /// must carry `X-ProcessOps-Signature: sha256=<hex of HMAC(body)>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// JSON Schema the payload must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Node to start at instead of the blueprint's `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// A cron schedule trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTrigger {
    /// Trigger id, unique within the blueprint.
    pub id: String,
    /// Cron expression (5 fields, or 6 with seconds), evaluated in UTC, e.g. `0 9 * * MON-FRI`.
    pub cron: String,
    /// Payload of every scheduled run (the fire time is added as `scheduled_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Node to start at instead of the blueprint's `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// A folder-drop trigger: each new file becomes one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderDropTrigger {
    /// Trigger id, unique within the blueprint.
    pub id: String,
    /// Folder to watch, relative to the project directory. Handled files move to `<path>/.done/`.
    pub path: String,
    /// File name suffixes to accept, e.g. `[".eml", ".json"]`; empty accepts all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// Node to start at instead of the blueprint's `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// A trigger fired by another blueprint's `output.emit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// Trigger id, unique within the blueprint.
    pub id: String,
    /// Event name to listen for.
    pub event: String,
    /// Node to start at instead of the blueprint's `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

impl Trigger {
    pub fn id(&self) -> &str {
        match self {
            Self::Manual(t) => &t.id,
            Self::Webhook(t) => &t.id,
            Self::Schedule(t) => &t.id,
            Self::FolderDrop(t) => &t.id,
            Self::Event(t) => &t.id,
        }
    }

    pub fn start(&self) -> Option<&str> {
        match self {
            Self::Manual(t) => t.start.as_deref(),
            Self::Webhook(t) => t.start.as_deref(),
            Self::Schedule(t) => t.start.as_deref(),
            Self::FolderDrop(t) => t.start.as_deref(),
            Self::Event(t) => t.start.as_deref(),
        }
    }

    pub fn input_schema(&self) -> Option<&Value> {
        match self {
            Self::Manual(t) => t.input.as_ref(),
            Self::Webhook(t) => t.input.as_ref(),
            _ => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Manual(_) => "manual",
            Self::Webhook(_) => "webhook",
            Self::Schedule(_) => "schedule",
            Self::FolderDrop(_) => "folder_drop",
            Self::Event(_) => "event",
        }
    }
}

/// A reusable model configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Provider name from the settings file (`processops.toml`), `default` if omitted.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Model name as the provider knows it.
    pub model: String,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// What this agent may do (checked by `route` rules via `agent_allowed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

fn default_provider() -> String {
    "default".to_owned()
}

/// One node id, or several to run in parallel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Next {
    #[default]
    #[schemars(skip)]
    None,
    One(String),
    Many(Vec<String>),
}

impl Next {
    pub fn is_empty(&self) -> bool {
        self.targets().is_empty()
    }

    pub fn targets(&self) -> &[String] {
        match self {
            Self::None => &[],
            Self::One(t) => std::slice::from_ref(t),
            Self::Many(ts) => ts,
        }
    }
}

/// How a node with several incoming paths waits for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Join {
    /// Wait until no other live path of the run can still reach this node, then run once.
    #[default]
    All,
    /// Run once for every arrival.
    Each,
}

impl Join {
    fn is_all(&self) -> bool {
        *self == Self::All
    }
}

/// Declares a node struct with the fields every node kind shares, so the generated
/// JSON Schema is exact per kind (unknown fields are errors) without `serde(flatten)`.
macro_rules! node_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Node id: lowercase letters, digits and `_`, starting with a letter. Templates read
            /// this node's output as `{{ <id>.<field> }}`.
            pub id: String,
            /// Display title in the designer and the run timeline.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub title: Option<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
            /// How many times this node may run in one run (bounds revise loops).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_visits: Option<u32>,
            /// Where the run goes when `max_visits` is reached; without it the run fails.
            #[serde(default, skip_serializing_if = "Next::is_empty")]
            pub on_exhausted: Next,
            /// How this node waits for several incoming paths.
            #[serde(default, skip_serializing_if = "Join::is_all")]
            pub join: Join,
            /// Designer canvas position.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub layout: Option<Layout>,
        }
    };
}

/// Position of a node on the designer canvas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub x: f64,
    pub y: f64,
}

node_struct!(
    /// Fetches context: passages from a knowledge collection and recent memory about a subject.
    RetrieveNode {
        /// Knowledge collection to search.
        pub collection: String,
        /// Search query (template).
        pub query: String,
        /// How many passages to return.
        #[serde(default = "default_top_k")]
        pub top_k: u32,
        /// Only passages whose source matches this glob: the file's path relative to the
        /// ingested folder, with `/` between folders. `*` matches any characters (also `/`),
        /// `?` one character; case-sensitive. E.g. `policies/*.md` or `*.pdf`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub filter: Option<String>,
        /// Token budget for the passages: they are taken in rank order while the estimate
        /// (characters ÷ 4, rounded up, of each `[source] text` entry) stays within it. The
        /// best passage is always kept, even when it alone is over the budget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_tokens: Option<u32>,
        /// Recent memory: the last approved outputs about the same subject.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory: Option<Memory>,
        /// Next node(s).
        #[serde(default, skip_serializing_if = "Next::is_empty")]
        pub next: Next,
    }
);

fn default_top_k() -> u32 {
    5
}

/// Recent-memory settings of a `retrieve` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Subject key (template), e.g. `{{ trigger.customer_id }}`.
    pub subject: String,
    /// How many recent items to include.
    #[serde(default = "default_memory_last")]
    pub last: u32,
}

fn default_memory_last() -> u32 {
    3
}

node_struct!(
    /// Calls an agent with a prompt template; falls back along `fallbacks`.
    PromptNode {
        /// Agent name (see `agents`).
        pub agent: String,
        /// Agents to try, in order, when the first fails.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub fallbacks: Vec<String>,
        /// The user message (template).
        pub template: String,
        /// System message (template), overriding the agent's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub system: Option<String>,
        /// Text to use (template) when every agent failed; without it the run needs attention.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fallback_text: Option<String>,
        /// JSON Schema the reply must satisfy (the reply is then parsed as JSON into `json`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output_schema: Option<Value>,
        /// Next node(s).
        #[serde(default, skip_serializing_if = "Next::is_empty")]
        pub next: Next,
    }
);

node_struct!(
    /// Picks one path by rules over the run's context; the first matching rule wins.
    RouteNode {
        /// Rules, checked in order.
        pub rules: Vec<RouteRule>,
        /// Where to go when no rule matches.
        #[serde(default, skip_serializing_if = "Next::is_empty")]
        pub default: Next,
    }
);

/// One rule of a `route` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Rule name; it labels the edge and is recorded in the run.
    pub name: String,
    /// Condition (expression), e.g. `trigger.amount > 10000`.
    pub when: String,
    /// Where to go when it matches.
    pub to: Next,
}

node_struct!(
    /// Runs several paths in parallel; each path runs when its condition holds (or always).
    BranchNode {
        /// Paths to start.
        pub branches: Vec<BranchPath>,
    }
);

/// One path of a `branch` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchPath {
    /// Condition (expression); the path always runs without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Where the path goes.
    pub to: Next,
}

node_struct!(
    /// Sets values (templates) readable later as `{{ vars.<name> }}`.
    TransformNode {
        /// Values to set.
        pub set: BTreeMap<String, String>,
        /// Next node(s).
        #[serde(default, skip_serializing_if = "Next::is_empty")]
        pub next: Next,
    }
);

node_struct!(
    /// A human review checkpoint: creates an inbox task and waits for a decision.
    ReviewNode {
        /// Task title (template).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub task_title: Option<String>,
        /// The draft the approver reads and may edit (template).
        pub draft: String,
        /// Role whose members may decide.
        pub role: String,
        /// Named users who may decide (in addition to the role).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub users: Vec<String>,
        /// Skip the human when this holds (expression): the draft is approved by policy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auto_approve_when: Option<String>,
        /// Send straight to the first role of `escalation` when this holds (expression).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub escalate_when: Option<String>,
        /// Roles to escalate to, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub escalation: Vec<String>,
        /// Time to decide, e.g. `4h`, `2d`, `30m` (counted in `working_hours` when set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sla: Option<String>,
        /// Remind the assignees this long before the SLA runs out, e.g. `1h`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub remind_before: Option<String>,
        /// What happens when the SLA runs out: escalate to the next role of `escalation`
        /// (the default when there is a chain), approve or reject by policy, or flag the task
        /// as needing attention (the default without a chain, and when the chain is used up).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub on_breach: Option<BreachAction>,
        /// Count the SLA in working time only, so a Friday-evening task does not breach over
        /// the weekend.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub working_hours: Option<WorkingHours>,
        /// Approvals needed from different people (n of the role's members); any rejection
        /// rejects. With a quorum, approvers approve or reject; edits go through a revise loop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub quorum: Option<u32>,
        /// People who may not decide (templates), e.g. `"{{ trigger.requested_by }}"`, so
        /// nobody approves their own request.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub not_by: Vec<String>,
        /// Whoever decided an earlier review of the same run may not decide this one (a
        /// second pair of eyes).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub distinct_approvers: bool,
        /// What approvers may do; all of approve, edit, reject and escalate when omitted.
        /// (Rejecting along a `rejected` edge that leads back to the drafter is "request
        /// changes": the redraft sees the reason.)
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub actions: Vec<crate::journal::Action>,
        /// Reasons an approver picks from when rejecting; a rejection must start with one of
        /// them and may add free text after it (`Tone is off: too formal`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub reasons: Vec<String>,
        /// Where each decision leads.
        pub on: ReviewEdges,
    }
);

/// What a breached SLA does to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreachAction {
    /// Move the task to the next role of the escalation chain, with a fresh SLA.
    Escalate,
    /// Approve the draft as it is (recorded as decided by `sla`).
    Approve,
    /// Reject it (recorded as decided by `sla`, with the reason "SLA breached").
    Reject,
    /// Keep it in the inbox, flagged as needing attention.
    Attention,
}

/// A working-hours calendar for SLAs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Working days, e.g. `[mon, tue, wed, thu, fri]` (the default).
    #[serde(default = "default_days")]
    pub days: Vec<String>,
    /// Start of the working day, `HH:MM` (default `09:00`).
    #[serde(default = "default_start")]
    pub start: String,
    /// End of the working day, `HH:MM` (default `17:00`).
    #[serde(default = "default_end")]
    pub end: String,
    /// Offset of the team's local time from UTC, e.g. `+01:00` (default `+00:00`).
    #[serde(default = "default_offset")]
    pub utc_offset: String,
}

fn default_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (*d).to_owned())
        .collect()
}

fn default_start() -> String {
    "09:00".into()
}

fn default_end() -> String {
    "17:00".into()
}

fn default_offset() -> String {
    "+00:00".into()
}

/// Labelled edges out of a `review` node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewEdges {
    /// After approve (or edit, with the edited text).
    #[serde(default, skip_serializing_if = "Next::is_empty")]
    pub approved: Next,
    /// After reject; pointing back at a `prompt` node makes a revise loop (bound it with `max_visits`).
    #[serde(default, skip_serializing_if = "Next::is_empty")]
    pub rejected: Next,
    /// After escalate; without it the task moves to the next role in `escalation`.
    #[serde(default, skip_serializing_if = "Next::is_empty")]
    pub escalated: Next,
}

node_struct!(
    /// Delivers a result: writes a file, calls HTTP, appends to a dataset or emits an event.
    /// Exactly one of `file`, `http`, `dataset`, `emit`.
    OutputNode {
        /// Write a file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<FileOutput>,
        /// Send an HTTP request (with an `Idempotency-Key` header).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<HttpOutput>,
        /// Append one JSON line to a dataset file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dataset: Option<DatasetOutput>,
        /// Start the blueprints that listen for this event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub emit: Option<EmitOutput>,
        /// Next node(s).
        #[serde(default, skip_serializing_if = "Next::is_empty")]
        pub next: Next,
    }
);

/// Write a file under the project's `outputs/` folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    /// Relative path (template); `..` is refused.
    pub path: String,
    /// File content (template).
    pub content: String,
}

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOutput {
    /// URL (template).
    pub url: String,
    /// HTTP method.
    #[serde(default = "default_method")]
    pub method: String,
    /// Headers (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Headers carrying secrets: values name environment variables as `$NAME`, e.g.
    /// `Authorization: "Bearer $NOTES_API_TOKEN"`. They are read when the request is sent and
    /// never written to the journal, the run timeline or the logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_headers: BTreeMap<String, String>,
    /// Body (template). Sent as JSON when it renders to valid JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Retries on connection errors and 5xx/429 responses.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_retries() -> u32 {
    3
}

/// Append a record to a JSONL dataset under `outputs/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetOutput {
    /// Relative path of the `.jsonl` file (template).
    pub path: String,
    /// Fields of the record (values are templates).
    pub record: BTreeMap<String, String>,
}

/// Emit an event that starts other blueprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitOutput {
    /// Event name.
    pub event: String,
    /// Payload fields (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payload: BTreeMap<String, String>,
}

/// A step of the trigger tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    Retrieve(RetrieveNode),
    Prompt(PromptNode),
    Route(RouteNode),
    Branch(BranchNode),
    Transform(TransformNode),
    Review(ReviewNode),
    Output(OutputNode),
}

/// Borrowed view of the fields every node has.
pub struct Common<'a> {
    pub id: &'a str,
    pub title: Option<&'a str>,
    pub max_visits: Option<u32>,
    pub on_exhausted: &'a Next,
    pub join: Join,
}

macro_rules! common {
    ($n:expr) => {
        Common {
            id: &$n.id,
            title: $n.title.as_deref(),
            max_visits: $n.max_visits,
            on_exhausted: &$n.on_exhausted,
            join: $n.join,
        }
    };
}

/// An outgoing edge: its label (for the designer and the journal) and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge<'a> {
    pub label: Option<&'a str>,
    pub target: &'a str,
    /// JSON pointer suffix (relative to the node) of the field that names the target.
    pub field: String,
}

impl Node {
    pub fn common(&self) -> Common<'_> {
        match self {
            Self::Retrieve(n) => common!(n),
            Self::Prompt(n) => common!(n),
            Self::Route(n) => common!(n),
            Self::Branch(n) => common!(n),
            Self::Transform(n) => common!(n),
            Self::Review(n) => common!(n),
            Self::Output(n) => common!(n),
        }
    }

    pub fn id(&self) -> &str {
        self.common().id
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Retrieve(_) => "retrieve",
            Self::Prompt(_) => "prompt",
            Self::Route(_) => "route",
            Self::Branch(_) => "branch",
            Self::Transform(_) => "transform",
            Self::Review(_) => "review",
            Self::Output(_) => "output",
        }
    }

    /// Every outgoing edge, including `on_exhausted`.
    pub fn edges(&self) -> Vec<Edge<'_>> {
        fn push<'a>(out: &mut Vec<Edge<'a>>, label: Option<&'a str>, next: &'a Next, field: &str) {
            match next {
                Next::None => {}
                Next::One(t) => out.push(Edge {
                    label,
                    target: t,
                    field: field.to_owned(),
                }),
                Next::Many(ts) => {
                    for (i, t) in ts.iter().enumerate() {
                        out.push(Edge {
                            label,
                            target: t,
                            field: format!("{field}/{i}"),
                        });
                    }
                }
            }
        }
        let mut out = Vec::new();
        match self {
            Self::Retrieve(n) => push(&mut out, None, &n.next, "/next"),
            Self::Prompt(n) => push(&mut out, None, &n.next, "/next"),
            Self::Transform(n) => push(&mut out, None, &n.next, "/next"),
            Self::Output(n) => push(&mut out, None, &n.next, "/next"),
            Self::Route(n) => {
                for (i, rule) in n.rules.iter().enumerate() {
                    push(
                        &mut out,
                        Some(&rule.name),
                        &rule.to,
                        &format!("/rules/{i}/to"),
                    );
                }
                push(&mut out, Some("default"), &n.default, "/default");
            }
            Self::Branch(n) => {
                for (i, path) in n.branches.iter().enumerate() {
                    push(&mut out, None, &path.to, &format!("/branches/{i}/to"));
                }
            }
            Self::Review(n) => {
                push(&mut out, Some("approved"), &n.on.approved, "/on/approved");
                push(&mut out, Some("rejected"), &n.on.rejected, "/on/rejected");
                push(
                    &mut out,
                    Some("escalated"),
                    &n.on.escalated,
                    "/on/escalated",
                );
            }
        }
        push(
            &mut out,
            Some("exhausted"),
            self.common().on_exhausted,
            "/on_exhausted",
        );
        out
    }

    /// Whether running this node twice has an effect outside the run (or a cost), so the
    /// journal must record that it started; pure nodes are simply recomputed after a crash.
    pub fn has_side_effects(&self) -> bool {
        matches!(self, Self::Prompt(_) | Self::Review(_) | Self::Output(_))
    }
}

impl Blueprint {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id() == id)
    }

    pub fn trigger(&self, id: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| t.id() == id)
    }
}
