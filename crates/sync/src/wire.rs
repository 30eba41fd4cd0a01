//! The wire format between devices and the hub, version 1. Only these types cross the
//! network; a change to their meaning is a new [`WIRE_VERSION`], never an edit in place.

use processops_core::feedback::TagOp;
use processops_core::journal::{Action, Decision};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// The protocol version a push carries; the hub refuses one it does not speak.
pub const WIRE_VERSION: u16 = 1;
/// Most events in one push.
pub const MAX_PUSH_EVENTS: usize = 1_000;
/// Most events in one pull page.
pub const MAX_PULL_EVENTS: u32 = 5_000;

/// One immutable change, made on one device by one person (or engine). The device numbers its
/// events 1, 2, 3… without gaps; the hub orders all of a team's events with its own sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// UUIDv7: unique, and roughly ordered by creation time.
    pub id: Uuid,
    pub device: Uuid,
    /// Contiguous per device, from 1.
    pub seq: u64,
    /// Who made the change: the enrolled user of `device`.
    pub actor: String,
    /// When, by the device's clock (milliseconds since the epoch); informational only.
    pub at: i64,
    #[schema(value_type = Object)]
    pub change: Change,
}

/// What an event changes. Tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A review task, published by the engine that owns its run (the only writer of tasks).
    TaskCreated {
        task: Uuid,
        run: Uuid,
        blueprint: String,
        /// The role whose members may decide it.
        role: String,
        /// The draft, its context and policy, as the engine's inbox shows them.
        body: Value,
    },
    /// The owning engine moved a pending task to another role (an SLA escalation).
    TaskMoved {
        task: Uuid,
        base: Uuid,
        role: String,
    },
    /// A manager's decision, made on the head they saw (`base`: the id of the task's latest
    /// accepted event).
    Decided {
        task: Uuid,
        base: Uuid,
        decision: Decision,
    },
    /// An explicit answer to a conflict: the conflict is closed, by whom and why.
    ConflictResolved {
        task: Uuid,
        conflict: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// An evaluator's tag counter (one writer per output × tag × evaluator; merge = max).
    Tagged { op: TagOp },
    /// A blueprint version: content-addressed (`hash` = SHA-256 of `canonical`), grow-only.
    VersionAdded {
        blueprint: String,
        hash: String,
        canonical: String,
        source: String,
    },
    /// Move a blueprint's stage channel to a version, if it still points at `base`.
    Published {
        blueprint: String,
        stage: String,
        hash: String,
        #[serde(default)]
        base: Option<String>,
    },
    /// An engine claims one trigger occurrence (a schedule's fire, a dropped file, a webhook
    /// delivery with an idempotency key), so that of several engines serving a blueprint
    /// exactly one starts its run. The first claim of a key wins; the winner may claim it
    /// again (after a restart).
    Claimed { blueprint: String, key: String },
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TaskCreated { .. } => "task_created",
            Self::TaskMoved { .. } => "task_moved",
            Self::Decided { .. } => "decided",
            Self::ConflictResolved { .. } => "conflict_resolved",
            Self::Tagged { .. } => "tagged",
            Self::VersionAdded { .. } => "version_added",
            Self::Published { .. } => "published",
            Self::Claimed { .. } => "claimed",
        }
    }

    /// The entity the event is about: events on one entity are judged against its head.
    pub fn entity(&self) -> String {
        match self {
            Self::TaskCreated { task, .. }
            | Self::TaskMoved { task, .. }
            | Self::Decided { task, .. }
            | Self::ConflictResolved { task, .. } => format!("task:{task}"),
            Self::Tagged { op } => {
                let k = &op.key;
                format!(
                    "tag:{}/{}/{}/{}/{}",
                    k.output.run, k.output.node, k.output.visit, k.evaluator, k.tag
                )
            }
            Self::VersionAdded { hash, .. } => format!("version:{hash}"),
            Self::Published {
                blueprint, stage, ..
            } => format!("channel:{blueprint}/{stage}"),
            Self::Claimed { blueprint, key } => format!("claim:{blueprint}/{key}"),
        }
    }

    /// The task the event is about, if any.
    pub fn task(&self) -> Option<Uuid> {
        match self {
            Self::TaskCreated { task, .. }
            | Self::TaskMoved { task, .. }
            | Self::Decided { task, .. }
            | Self::ConflictResolved { task, .. } => Some(*task),
            _ => None,
        }
    }
}

/// Whether a decision closes its task (approve, edit, reject) or moves it on (escalate).
pub fn is_final(action: Action) -> bool {
    !matches!(action, Action::Escalate)
}

/// The content address of a version's canonical bytes.
pub fn content_hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The hub's judgement of one event. Every pushed event is stored with one; none is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// It took effect.
    Accepted,
    /// It could not take effect because someone else's change came first (a stale or late
    /// decision, a channel that moved): kept and shown to everyone until resolved.
    Conflict { reason: String },
    /// It changes nothing and needs no one's attention (a conflict already resolved, an
    /// escalation of a task already decided).
    Ignored { reason: String },
}

impl Verdict {
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::Conflict {
            reason: reason.into(),
        }
    }
    pub fn ignored(reason: impl Into<String>) -> Self {
        Self::Ignored {
            reason: reason.into(),
        }
    }
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Conflict { .. } => "conflict",
            Self::Ignored { .. } => "ignored",
        }
    }
}

/// An event as the hub ordered and judged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HubEvent {
    /// The team-wide order: dense (1, 2, 3…) and visible to readers only in this order.
    pub hub_seq: u64,
    pub verdict: Verdict,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// [`WIRE_VERSION`].
    pub wire: u16,
    /// This device's events, in sequence order, starting at or below the hub's expected one.
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    /// The hub holds every event of this device up to this sequence number.
    pub accepted_through: u64,
    /// The newly stored events (re-sent ones are acknowledged by `accepted_through` only).
    pub results: Vec<PushResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushResult {
    pub id: Uuid,
    pub seq: u64,
    pub hub_seq: u64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PullResponse {
    /// Changes when the hub forces every device to start over from cursor 0.
    pub epoch: u64,
    /// Events after the requested cursor, in hub order.
    pub events: Vec<HubEvent>,
    /// Whether more events follow this page.
    pub more: bool,
    /// The hub's latest sequence number when the page was read.
    pub head: u64,
}

/// What a user may do on the hub.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the team's users and devices.
    Admin,
    /// Decides tasks of the roles in their scopes.
    Approver,
    /// Tags outputs.
    Evaluator,
    /// Adds blueprint versions and moves stage channels.
    Publisher,
    /// A headless or desktop engine: publishes the tasks of the runs it owns.
    Engine,
}

impl Role {
    pub const ALL: [Self; 5] = [
        Self::Admin,
        Self::Approver,
        Self::Evaluator,
        Self::Publisher,
        Self::Engine,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Approver => "approver",
            Self::Evaluator => "evaluator",
            Self::Publisher => "publisher",
            Self::Engine => "engine",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a hub role; use admin, approver, evaluator, publisher or engine"
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The one-time code an admin handed out.
    pub code: String,
    /// A name for this device, shown to admins ("Ana's laptop").
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolResponse {
    pub team: String,
    pub user: String,
    pub roles: Vec<Role>,
    /// The task roles this user may decide (`*`: all).
    pub scopes: Vec<String>,
    pub device: Uuid,
    /// The device's bearer token: shown once, stored only hashed on the hub.
    pub token: String,
}

/// Who is calling, as the hub established from the bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    pub team: String,
    pub user: String,
    pub device: Uuid,
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    /// Whether the user may decide tasks for `task_role`.
    pub fn in_scope(&self, task_role: &str) -> bool {
        self.scopes.iter().any(|s| s == "*" || s == task_role)
    }
}

/// The hub's error body: `{code, message}`, plus the expected sequence number on a gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HubErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
}
