//! The hub's storage: one trait, two backends. Each push is one transaction that checks the
//! device's sequence, allocates hub sequence numbers so that rows become visible in order,
//! judges every event against its entity's head (with `processops_sync::rules`) and writes
//! the event, its verdict and the new head together.

mod batch;
mod postgres;
mod sqlite;

use std::future::Future;

use processops_sync::rules::{self, Refusal, TaskHead};
use processops_sync::{Event, Principal, PullResponse, PushResponse, Role, Verdict};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use postgres::PgHub;
pub use sqlite::SqliteHub;

use crate::{HubError, Planted};

pub type Result<T, E = HubError> = std::result::Result<T, E>;

/// A team member as the hub knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserRecord {
    pub name: String,
    pub roles: Vec<Role>,
    /// The task roles they may decide (`*`: all).
    pub scopes: Vec<String>,
}

/// An enrolled device (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceRecord {
    pub id: Uuid,
    pub user: String,
    pub name: String,
    /// The highest sequence number the hub holds from it.
    pub last_seq: u64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A device being enrolled: the hashed token it will use.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: Uuid,
    pub name: String,
    pub token_hash: String,
}

/// A team's size and backlog, for the hub's `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamStats {
    pub team: String,
    /// Devices whose token is not revoked.
    pub devices: u64,
    /// Events stored (the team's hub sequence is dense).
    pub events: u64,
    /// Conflicts ever recorded, and those nobody resolved yet.
    pub conflicts: u64,
    pub open_conflicts: u64,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    Stored(PushResponse),
    Gap { expected: u64 },
}

/// The hub's storage. Both backends pass the same tests (`tests/store.rs`, the simulation).
pub trait HubStore: Send + Sync {
    /// Create a team (409 when it exists).
    fn create_team(&self, team: &str) -> impl Future<Output = Result<()>> + Send;
    /// Create or change a user.
    fn put_user(&self, team: &str, user: &UserRecord) -> impl Future<Output = Result<()>> + Send;
    fn users(&self, team: &str) -> impl Future<Output = Result<Vec<UserRecord>>> + Send;
    /// Store a one-time enrolment code (hashed) for a user.
    fn add_enrolment(
        &self,
        team: &str,
        user: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Spend an enrolment code and enrol the device, in one transaction. `None`: no such
    /// unexpired, unused code.
    fn redeem_enrolment(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> impl Future<Output = Result<Option<Principal>>> + Send;
    /// The principal of a token hash; `None` when unknown or revoked.
    fn principal(&self, token_hash: &str)
    -> impl Future<Output = Result<Option<Principal>>> + Send;
    fn devices(&self, team: &str) -> impl Future<Output = Result<Vec<DeviceRecord>>> + Send;
    /// Revoke a device's token; `false` when the team has no such device.
    fn revoke_device(
        &self,
        team: &str,
        device: Uuid,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Store a device's events (see the module doc).
    fn push(
        &self,
        p: &Principal,
        events: Vec<Event>,
    ) -> impl Future<Output = Result<PushOutcome>> + Send;
    /// A team's events after `after`, at most `limit`, in hub order.
    fn pull(
        &self,
        team: &str,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<PullResponse>> + Send;
    /// Start a new epoch: every device re-bootstraps from cursor 0 on its next pull.
    fn bump_epoch(&self, team: &str) -> impl Future<Output = Result<u64>> + Send;
    /// Every team's counts (one small query; read at each `/metrics` scrape).
    fn stats(&self) -> impl Future<Output = Result<Vec<TeamStats>>> + Send;
}

/// The counts of [`HubStore::stats`], the same SQL in both dialects.
pub(crate) const STATS_SQL: &str = "SELECT t.name, t.next_seq,
    (SELECT count(*) FROM devices d WHERE d.team = t.name AND d.revoked_at IS NULL),
    (SELECT count(*) FROM conflicts c WHERE c.team = t.name),
    (SELECT count(*) FROM conflicts c WHERE c.team = t.name AND c.resolved_by IS NULL)
    FROM teams t ORDER BY t.name";

/// The backend a hub runs on, chosen at start-up.
pub enum AnyStore {
    Sqlite(SqliteHub),
    Postgres(PgHub),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e.await,
            AnyStore::Postgres($s) => $e.await,
        }
    };
}

impl HubStore for AnyStore {
    async fn create_team(&self, team: &str) -> Result<()> {
        dispatch!(self, s => s.create_team(team))
    }
    async fn put_user(&self, team: &str, user: &UserRecord) -> Result<()> {
        dispatch!(self, s => s.put_user(team, user))
    }
    async fn users(&self, team: &str) -> Result<Vec<UserRecord>> {
        dispatch!(self, s => s.users(team))
    }
    async fn add_enrolment(
        &self,
        team: &str,
        user: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        dispatch!(self, s => s.add_enrolment(team, user, code_hash, expires_at))
    }
    async fn redeem_enrolment(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> Result<Option<Principal>> {
        dispatch!(self, s => s.redeem_enrolment(code_hash, device, now))
    }
    async fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        dispatch!(self, s => s.principal(token_hash))
    }
    async fn devices(&self, team: &str) -> Result<Vec<DeviceRecord>> {
        dispatch!(self, s => s.devices(team))
    }
    async fn revoke_device(&self, team: &str, device: Uuid, now: i64) -> Result<bool> {
        dispatch!(self, s => s.revoke_device(team, device, now))
    }
    async fn push(&self, p: &Principal, events: Vec<Event>) -> Result<PushOutcome> {
        dispatch!(self, s => s.push(p, events))
    }
    async fn pull(&self, team: &str, after: u64, limit: u32) -> Result<PullResponse> {
        dispatch!(self, s => s.pull(team, after, limit))
    }
    async fn bump_epoch(&self, team: &str) -> Result<u64> {
        dispatch!(self, s => s.bump_epoch(team))
    }
    async fn stats(&self) -> Result<Vec<TeamStats>> {
        dispatch!(self, s => s.stats())
    }
}

/// The task rules, or the planted last-writer-wins bug.
pub(crate) fn judge_task(
    planted: Planted,
    current: Option<&TaskHead>,
    p: &Principal,
    event: &Event,
) -> Result<(Verdict, Option<TaskHead>), Refusal> {
    if planted == Planted::LastWriterWins
        && let (processops_sync::Change::Decided { decision, .. }, Some(t)) =
            (&event.change, current)
    {
        return Ok((
            Verdict::Accepted,
            Some(TaskHead {
                head: event.id,
                decided_by: processops_sync::is_final(decision.action).then_some(event.id),
                ..t.clone()
            }),
        ));
    }
    rules::judge_task(current, p, event)
}

/// What judging one event changes besides storing it.
#[derive(Debug)]
pub(crate) enum Effect {
    None,
    Task(TaskHead),
    /// A decision stored as a conflict.
    OpenConflict {
        task: Uuid,
    },
    ResolveConflict {
        conflict: Uuid,
    },
    Tag {
        entity: String,
        counter: u64,
    },
    Version,
    Channel {
        blueprint: String,
        stage: String,
        hash: String,
    },
    /// A trigger occurrence's first claim.
    Claim {
        entity: String,
    },
}

/// The state a judgement reads, fetched by the backend inside the push transaction.
pub(crate) enum Head {
    Task(Option<TaskHead>),
    Conflict(Option<rules::ConflictState>),
    Channel {
        current: Option<String>,
        version_known: bool,
    },
    /// The device holding a claim, if any.
    Claim(Option<Uuid>),
    Free,
}

/// Judge one event given the state its backend read.
pub(crate) fn judge(
    planted: Planted,
    p: &Principal,
    event: &Event,
    head: Head,
    task: Option<&TaskHead>,
) -> Result<(Verdict, Effect), Refusal> {
    use processops_sync::Change;
    Ok(match (&event.change, head) {
        (Change::ConflictResolved { task: t, .. }, Head::Conflict(c)) => {
            // The scope check needs the task; the verdict needs the conflict.
            judge_task(planted, task, p, event)?;
            let verdict = rules::judge_resolution(c.as_ref(), *t);
            let effect = match (&verdict, &event.change) {
                (Verdict::Accepted, Change::ConflictResolved { conflict, .. }) => {
                    Effect::ResolveConflict {
                        conflict: *conflict,
                    }
                }
                _ => Effect::None,
            };
            (verdict, effect)
        }
        (Change::Tagged { op }, _) => (
            Verdict::Accepted,
            Effect::Tag {
                entity: event.change.entity(),
                counter: op.counter,
            },
        ),
        (Change::VersionAdded { .. }, _) => (Verdict::Accepted, Effect::Version),
        (
            Change::Published {
                blueprint,
                stage,
                hash,
                base,
            },
            Head::Channel {
                current,
                version_known,
            },
        ) => {
            let verdict = rules::judge_publish(current.as_deref(), base.as_deref(), version_known);
            let effect = if verdict.is_accepted() {
                Effect::Channel {
                    blueprint: blueprint.clone(),
                    stage: stage.clone(),
                    hash: hash.clone(),
                }
            } else {
                Effect::None
            };
            (verdict, effect)
        }
        (Change::Claimed { .. }, Head::Claim(holder)) => {
            let verdict = rules::judge_claim(holder, event.device);
            let effect = if verdict.is_accepted() && holder.is_none() {
                Effect::Claim {
                    entity: event.change.entity(),
                }
            } else {
                Effect::None
            };
            (verdict, effect)
        }
        (_, Head::Task(current)) => {
            let (verdict, next) = judge_task(planted, current.as_ref(), p, event)?;
            let effect = match (&verdict, next, &event.change) {
                (_, Some(next), _) => Effect::Task(next),
                (Verdict::Conflict { .. }, None, Change::Decided { task, .. }) => {
                    Effect::OpenConflict { task: *task }
                }
                _ => Effect::None,
            };
            (verdict, effect)
        }
        _ => {
            return Err(Refusal::Invalid(format!(
                "internal: no head read for {}",
                event.change.kind()
            )));
        }
    })
}

/// How a push lines up with the pushing device's row (`last_seq`, `revoked_at`, read under
/// the push's lock): `Ok((last, skip))`, the device's highest sequence number on the hub and
/// the number of leading re-sent events it holds already, or the gap answer. Shared by both
/// backends.
pub(crate) fn plan_push(
    device_row: Option<(i64, Option<i64>)>,
    events: &[Event],
) -> Result<std::result::Result<(u64, usize), PushOutcome>> {
    let last = match device_row {
        Some((last, None)) => to_u64(last),
        _ => return Err(HubError::Unauthorized("this device is not enrolled".into())),
    };
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    match rules::plan_batch(last, &seqs) {
        rules::BatchPlan::Store { skip } => Ok(Ok((last, skip))),
        rules::BatchPlan::Gap { expected } => Ok(Err(PushOutcome::Gap { expected })),
        rules::BatchPlan::Invalid(m) => Err(HubError::Invalid(m)),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Roles and scopes are stored as JSON arrays in both dialects.
pub(crate) fn json_list<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>> {
    Ok(serde_json::from_str(text)?)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| HubError::Storage(format!("stored id `{s}`: {e}")))
}
