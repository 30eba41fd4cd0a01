//! This device's side of hub sync: the outbox of its own events (written in the transaction of
//! the change they describe), the hub's log as applied here (idempotent per event id, in the
//! same transaction as the cursor), and what that log materialises: tasks, conflicts, tags,
//! versions, stage channels, and the accepted decisions this device's engine must act on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use processops_core::feedback::{TagOp, TagState};
use processops_core::journal::{Decision, Event as JournalEvent, Task};
use processops_sync::replica::{ConflictView, Cursor, TaskView, View};
use processops_sync::{
    Change, Event, HubEvent, LocalReplica, Position, Principal, Report, Role, SyncError, Verdict,
    is_final,
};
use rusqlite::{Connection, OptionalExtension as _, params};
use uuid::Uuid;

use crate::feedback::upsert_tag;
use crate::{Result, Store, StoreError, now_ms};

/// This device's identity on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncIdentity {
    pub device: Uuid,
    pub actor: String,
}

/// A decision the hub could not accept, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConflictRow {
    /// The losing decision's event id (the conflict's id).
    pub event: Uuid,
    pub task: Uuid,
    /// Who made the losing decision, on which device, when (Unix ms).
    pub actor: String,
    pub device: Uuid,
    pub at: i64,
    pub decision: Decision,
    pub reason: String,
    /// Who closed it and why, once closed.
    pub resolution: Option<Resolution>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolution {
    pub by: String,
    pub at: i64,
    pub note: Option<String>,
}

fn resolution_in(conn: &Connection, event: &str) -> Result<Option<Resolution>> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM sync_log WHERE id = ?1")?
        .query_row([event], |r| r.get(0))
        .optional()?;
    let Some(body) = body else { return Ok(None) };
    let ev: Event = serde_json::from_str(&body)?;
    Ok(match ev.change {
        Change::ConflictResolved { note, .. } => Some(Resolution {
            by: ev.actor,
            at: ev.at,
            note,
        }),
        _ => None,
    })
}

/// What the app shows about sync.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncStatus {
    pub device: Uuid,
    pub actor: String,
    /// Own events the hub has not acknowledged yet.
    pub pending: u64,
    pub cursor: u64,
    pub epoch: u64,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
    /// Conflicts nobody has resolved.
    pub open_conflicts: u64,
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Internal(format!("stored id `{text}`: {e}")))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn identity_in(conn: &Connection) -> Result<Option<SyncIdentity>> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT device, actor FROM sync_state WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(device, actor)| {
        Ok(SyncIdentity {
            device: parse_uuid(&device)?,
            actor,
        })
    })
    .transpose()
}

fn principal_in(conn: &Connection) -> Result<Option<Principal>> {
    let text: Option<Option<String>> = conn
        .prepare_cached("SELECT principal FROM sync_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    text.flatten()
        .map(|t| Ok(serde_json::from_str(&t)?))
        .transpose()
}

/// Whether the hub would take `change` from this device, judged here with the roles and
/// scopes it had at enrolment: an event the hub refuses (403) would block every later one.
/// `Ok(false)`: the change stays on this device (a task, tag or version this user may not
/// share); an error: the person is told (a decision they may not make on the hub).
fn permitted(conn: &Connection, p: &Principal, change: &Change) -> Result<bool> {
    let refuse = |what: String| {
        Err(StoreError::HubForbidden(format!(
            "`{}` may not {what} on the team's hub (roles: {}); ask the hub's admin to change the user",
            p.user,
            p.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    };
    Ok(match change {
        Change::TaskCreated { .. } | Change::TaskMoved { .. } => p.has(Role::Engine),
        Change::Tagged { .. } => p.has(Role::Evaluator),
        Change::VersionAdded { .. } => p.has(Role::Publisher) || p.has(Role::Engine),
        Change::Decided { task, .. } => {
            let row: Option<(String, Option<String>)> = conn
                .prepare_cached("SELECT role, owner FROM tasks WHERE id = ?1")?
                .query_row([task.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (role, owner) = row.unwrap_or_default();
            let own_task = owner.is_none();
            if !((p.has(Role::Approver) && p.in_scope(&role)) || (p.has(Role::Engine) && own_task))
            {
                return refuse(format!("decide `{role}` tasks"));
            }
            true
        }
        Change::ConflictResolved { .. } => {
            p.has(Role::Approver) || refuse("close conflicts".into())?
        }
        Change::Published { .. } => {
            p.has(Role::Publisher) || refuse("publish blueprint versions".into())?
        }
        Change::Claimed { .. } => p.has(Role::Engine) || refuse("claim triggers".into())?,
    })
}

/// Append a change by this device to the outbox, in the caller's transaction. Returns the
/// event (its number is the next one; numbers never repeat or skip); `None` when the store
/// is not enrolled, or the change stays here (see [`permitted`]).
pub(crate) fn record_in(conn: &Connection, change: Change) -> Result<Option<Event>> {
    let Some(me) = identity_in(conn)? else {
        return Ok(None); // not enrolled: nothing to sync
    };
    if let Some(p) = principal_in(conn)?
        && !permitted(conn, &p, &change)?
    {
        return Ok(None);
    }
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE sync_state SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq",
        )?
        .query_row([], |r| r.get(0))?;
    let event = Event {
        id: Uuid::now_v7(),
        device: me.device,
        seq: to_u64(seq),
        actor: me.actor,
        at: now_ms(),
        change,
    };
    conn.prepare_cached(
        "INSERT INTO sync_outbox (seq, id, kind, task, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        seq,
        event.id.to_string(),
        event.change.kind(),
        event.change.task().map(|t| t.to_string()),
        serde_json::to_string(&event)?
    ])?;
    Ok(Some(event))
}

/// What a published task carries besides the core task: the version it came from.
#[derive(serde::Serialize, serde::Deserialize)]
struct PublishedTask {
    version: String,
    task: Task,
}

/// With a hub: publish the tag ops of this device's user. Each evaluator owns their counters
/// on the hub, so ops in another person's name (an evaluator working under another profile
/// on this machine) stay here rather than block the outbox with a push the hub refuses.
pub(crate) fn publish_tags_in(conn: &Connection, ops: &[TagOp]) -> Result<()> {
    let Some(me) = identity_in(conn)? else {
        return Ok(());
    };
    for op in ops.iter().filter(|op| op.key.evaluator == me.actor) {
        record_in(conn, Change::Tagged { op: op.clone() })?;
    }
    Ok(())
}

/// With a hub: publish this engine's new task (its draft and the context that produced it).
pub(crate) fn publish_task_in(
    conn: &Connection,
    run: &str,
    blueprint: &str,
    version: &str,
    task: &Task,
) -> Result<()> {
    if identity_in(conn)?.is_none() {
        return Ok(());
    }
    let body = serde_json::to_value(PublishedTask {
        version: version.to_owned(),
        task: task.clone(),
    })?;
    record_in(
        conn,
        Change::TaskCreated {
            task: task.id,
            run: parse_uuid(run)?,
            blueprint: blueprint.to_owned(),
            role: task.role.clone(),
            body,
        },
    )?;
    Ok(())
}

/// With a hub: publish that this engine moved its task to another role (an escalation).
pub(crate) fn publish_move_in(conn: &Connection, task: Uuid, role: &str) -> Result<()> {
    if identity_in(conn)?.is_none() {
        return Ok(());
    }
    let base = head_in(conn, task)?;
    record_in(
        conn,
        Change::TaskMoved {
            task,
            base,
            role: role.to_owned(),
        },
    )?;
    Ok(())
}

/// With a hub: send a decision for the hub to judge (closing this device's open conflicts
/// on the task: deciding again is the explicit answer to them). `false` without a hub.
pub(crate) fn send_decision_in(conn: &Connection, task: Uuid, decision: &Decision) -> Result<bool> {
    if identity_in(conn)?.is_none() {
        return Ok(false);
    }
    let open: Vec<String> = conn
        .prepare_cached(
            "SELECT event FROM sync_conflicts WHERE task = ?1 AND resolved_by IS NULL ORDER BY event",
        )?
        .query_map([task.to_string()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for conflict in open {
        record_in(
            conn,
            Change::ConflictResolved {
                task,
                conflict: parse_uuid(&conflict)?,
                note: Some(format!("decided again: {}", decision.action.as_str())),
            },
        )?;
    }
    let base = head_in(conn, task)?;
    record_in(
        conn,
        Change::Decided {
            task,
            base,
            decision: decision.clone(),
        },
    )?;
    conn.prepare_cached("UPDATE tasks SET sync = 'pending' WHERE id = ?1")?
        .execute([task.to_string()])?;
    Ok(true)
}

/// The task head this device's next event on the task is judged against: its own task
/// events the hub has not sent back yet come after everything applied here.
fn head_in(conn: &Connection, task: Uuid) -> Result<Uuid> {
    let head: Option<String> = conn
        .prepare_cached(
            "SELECT coalesce(
                (SELECT o.id FROM sync_outbox o WHERE o.task = ?1
                   AND o.kind IN ('task_created', 'task_moved')
                   AND NOT EXISTS (SELECT 1 FROM sync_log l WHERE l.id = o.id)
                 ORDER BY o.seq DESC LIMIT 1),
                (SELECT head FROM sync_tasks WHERE task = ?1))",
        )?
        .query_row([task.to_string()], |r| r.get(0))?;
    // A task the hub never heard of: the nil head makes the decision a visible conflict.
    head.map_or(Ok(Uuid::nil()), |h| parse_uuid(&h))
}

/// The local task after the hub accepted a final decision on it: decided with the accepted
/// decision (whoever made it); if this engine owns the run, the run is told in this same
/// transaction (and woken by the engine after the round, see `Store::sync_take_effects`).
fn settle_accepted_in(
    conn: &Connection,
    owner_is_me: bool,
    task: Uuid,
    decision: &Decision,
) -> Result<()> {
    let id = task.to_string();
    let draft: Option<String> = conn
        .prepare_cached(
            "UPDATE tasks SET status = 'decided', decided_at = coalesce(decided_at, ?2),
                 decided_by = ?3, decision = ?4,
                 sync = CASE WHEN EXISTS (SELECT 1 FROM sync_conflicts c WHERE c.task = ?1 AND c.resolved_by IS NULL)
                             THEN 'conflict' ELSE 'accepted' END
             WHERE id = ?1 RETURNING draft",
        )?
        .query_row(
            params![id, now_ms(), decision.by, serde_json::to_string(decision)?],
            |r| r.get(0),
        )
        .optional()?;
    let Some(draft) = draft else {
        return Ok(()); // not in this inbox (a device that only syncs)
    };
    crate::tasks::record_diff(conn, &id, &draft, decision)?;
    if owner_is_me {
        let run: Option<String> = conn
            .prepare_cached(
                "SELECT t.run_id FROM tasks t JOIN runs r ON r.id = t.run_id WHERE t.id = ?1",
            )?
            .query_row([&id], |r| r.get(0))
            .optional()?;
        if let Some(run) = run {
            crate::runs::append_events(
                conn,
                &run,
                &[JournalEvent::DecisionRecorded {
                    task,
                    decision: decision.clone(),
                }],
                Some(crate::RunStatus::Running),
            )?;
        }
    }
    Ok(())
}

/// Apply one judged event (see [`View::apply`], which this mirrors row for row).
fn apply_in(conn: &Connection, me: Uuid, e: &HubEvent, idempotent: bool) -> Result<()> {
    let ev = &e.event;
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO sync_log (id, hub_seq, device, kind, task, verdict, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            ev.id.to_string(),
            to_i64(e.hub_seq),
            ev.device.to_string(),
            ev.change.kind(),
            ev.change.task().map(|t| t.to_string()),
            serde_json::to_string(&e.verdict)?,
            serde_json::to_string(ev)?
        ])?;
    if inserted == 0 && idempotent {
        return Ok(()); // applied before
    }
    let id = ev.id.to_string();
    match (&ev.change, &e.verdict) {
        (
            Change::TaskCreated {
                task,
                run,
                blueprint,
                role,
                body,
            },
            Verdict::Accepted,
        ) => {
            // Another engine's task joins this inbox (its run stays there).
            if ev.device != me
                && let Ok(published) = serde_json::from_value::<PublishedTask>(body.clone())
            {
                let known: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?1)")?
                    .query_row([task.to_string()], |r| r.get(0))?;
                if !known {
                    let mut t = published.task;
                    t.role = role.clone();
                    crate::tasks::insert_row(
                        conn,
                        &run.to_string(),
                        blueprint,
                        &published.version,
                        &t,
                        now_ms(),
                        Some(&ev.device.to_string()),
                    )?;
                }
            }
            conn.prepare_cached(
                "INSERT OR REPLACE INTO sync_tasks (task, head, role, owner, decision, body)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
            )?
            .execute(params![
                task.to_string(),
                id,
                role,
                ev.device.to_string(),
                serde_json::to_string(body)?
            ])?;
        }
        (Change::TaskMoved { task, role, .. }, Verdict::Accepted) => {
            conn.prepare_cached("UPDATE sync_tasks SET head = ?2, role = ?3 WHERE task = ?1")?
                .execute(params![task.to_string(), id, role])?;
            if ev.device != me {
                conn.prepare_cached(
                    "UPDATE tasks SET role = ?2 WHERE id = ?1 AND owner IS NOT NULL",
                )?
                .execute(params![task.to_string(), role])?;
            }
        }
        (Change::Decided { task, decision, .. }, Verdict::Accepted) => {
            let task_id = task.to_string();
            conn.prepare_cached("UPDATE sync_tasks SET head = ?2 WHERE task = ?1")?
                .execute(params![task_id, id])?;
            if is_final(decision.action) {
                conn.prepare_cached("UPDATE sync_tasks SET decision = ?2 WHERE task = ?1")?
                    .execute(params![task_id, id])?;
                let owner: Option<String> = conn
                    .prepare_cached("SELECT owner FROM sync_tasks WHERE task = ?1")?
                    .query_row([&task_id], |r| r.get(0))
                    .optional()?;
                let owner_is_me = owner.as_deref() == Some(me.to_string().as_str());
                if owner_is_me {
                    let sql = if idempotent {
                        "INSERT OR IGNORE INTO sync_effects (task, event) VALUES (?1, ?2)"
                    } else {
                        "INSERT OR REPLACE INTO sync_effects (task, event) VALUES (?1, ?2)"
                    };
                    conn.prepare_cached(sql)?.execute(params![task_id, id])?;
                }
                settle_accepted_in(conn, owner_is_me, *task, decision)?;
            }
        }
        (Change::Decided { task, .. }, Verdict::Conflict { reason }) => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO sync_conflicts (event, task, actor, reason) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, task.to_string(), ev.actor, reason])?;
            // Shown in every inbox that has the task. The decider's own copy opens again if
            // nobody's decision stands on the hub (the task changed under them: decide again).
            conn.prepare_cached(
                "UPDATE tasks SET sync = 'conflict',
                     status = CASE WHEN ?2 AND NOT EXISTS (SELECT 1 FROM sync_tasks s WHERE s.task = ?1 AND s.decision IS NOT NULL)
                                   THEN 'pending' ELSE status END
                 WHERE id = ?1",
            )?
            .execute(params![task.to_string(), ev.device == me])?;
            conn.prepare_cached(
                "UPDATE tasks SET decision = NULL, decided_at = NULL, decided_by = NULL, diff = NULL
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute([task.to_string()])?;
        }
        (Change::ConflictResolved { task, conflict, .. }, Verdict::Accepted) => {
            conn.prepare_cached("UPDATE sync_conflicts SET resolved_by = ?2 WHERE event = ?1")?
                .execute(params![conflict.to_string(), id])?;
            conn.prepare_cached(
                "UPDATE tasks SET sync = CASE
                     WHEN EXISTS (SELECT 1 FROM sync_tasks s WHERE s.task = ?1 AND s.decision IS NOT NULL) THEN 'accepted'
                     WHEN status = 'decided' THEN 'pending'
                     ELSE NULL END
                 WHERE id = ?1 AND sync = 'conflict'
                   AND NOT EXISTS (SELECT 1 FROM sync_conflicts c WHERE c.task = ?1 AND c.resolved_by IS NULL)",
            )?
            .execute([task.to_string()])?;
        }
        (Change::Tagged { op }, Verdict::Accepted) => {
            upsert_tag(conn, op, now_ms())?;
        }
        (
            Change::VersionAdded {
                blueprint,
                hash,
                source,
                ..
            },
            Verdict::Accepted,
        ) => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO blueprint_versions (hash, blueprint_id, name, source, created_at)
                 VALUES (?1, ?2, ?2, ?3, ?4)",
            )?
            .execute(params![hash, blueprint, source, now_ms()])?;
        }
        (
            Change::Published {
                blueprint,
                stage,
                hash,
                ..
            },
            Verdict::Accepted,
        ) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO sync_channels (blueprint, stage, hash) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![blueprint, stage, hash])?;
        }
        _ => {}
    }
    Ok(())
}

fn position_in(conn: &Connection) -> Result<Position> {
    let row: Option<(i64, i64, i64, i64)> = conn
        .prepare_cached("SELECT acked_seq, last_seq, cursor, epoch FROM sync_state WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let (acked, last, cursor, epoch) =
        row.ok_or_else(|| StoreError::Internal("this device is not enrolled with a hub".into()))?;
    Ok(Position {
        acknowledged: to_u64(acked),
        last_seq: to_u64(last),
        cursor: Cursor {
            epoch: to_u64(epoch),
            hub_seq: to_u64(cursor),
        },
    })
}

impl Store {
    /// Make this store a device of a hub (after enrolment). Idempotent for the same device.
    pub async fn sync_enrol(&self, device: Uuid, actor: String) -> Result<()> {
        self.write(move |conn| {
            if let Some(me) = identity_in(conn)?
                && me.device != device
            {
                return Err(StoreError::Internal(format!(
                    "this store is already device {} on a hub; a store syncs as one device",
                    me.device
                )));
            }
            let new = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO sync_state (id, device, actor) VALUES (1, ?1, ?2)",
                )?
                .execute(params![device.to_string(), actor])?;
            if new == 1 {
                // Tasks waiting since before the enrolment join the team's inbox too.
                let waiting: Vec<(String, String, String, String)> = conn
                    .prepare_cached(
                        "SELECT run_id, blueprint_id, version, body FROM tasks
                         WHERE status = 'pending' AND owner IS NULL ORDER BY created_at",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (run, blueprint, version, body) in waiting {
                    let task: Task = serde_json::from_str(&body)?;
                    publish_task_in(conn, &run, &blueprint, &version, &task)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Remember who this device is on the hub (from the enrolment, or `/v1/me`), so changes
    /// the hub would refuse are refused here.
    pub async fn sync_set_principal(&self, principal: Principal) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached("UPDATE sync_state SET principal = ?1 WHERE id = 1")?
                .execute([serde_json::to_string(&principal)?])?;
            Ok(())
        })
        .await
    }

    pub fn sync_identity(&self) -> Result<Option<SyncIdentity>> {
        self.read(identity_in)
    }

    /// Record a change by this device for the hub (a decision, a conflict resolution, a
    /// task…). `None` when the store is not enrolled with a hub.
    pub async fn sync_record(&self, change: Change) -> Result<Option<Event>> {
        self.write(move |conn| record_in(conn, change)).await
    }

    /// With a hub: share a blueprint version with the team (content-addressed: `hash` is the
    /// SHA-256 of `canonical`), once; the hub checks the hash. A no-op without a hub.
    pub async fn sync_publish_version(
        &self,
        blueprint: String,
        hash: String,
        canonical: String,
        source: String,
    ) -> Result<()> {
        self.write(move |conn| {
            if identity_in(conn)?.is_none() {
                return Ok(());
            }
            let known: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM sync_outbox WHERE kind = 'version_added' AND json_extract(body, '$.change.hash') = ?1)
                         OR EXISTS (SELECT 1 FROM sync_log WHERE kind = 'version_added' AND json_extract(body, '$.change.hash') = ?1)",
                )?
                .query_row([&hash], |r| r.get(0))?;
            if !known {
                record_in(
                    conn,
                    Change::VersionAdded {
                        blueprint,
                        hash,
                        canonical,
                        source,
                    },
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Conflicts, newest first: all of them, or one task's.
    pub fn sync_conflicts(&self, task: Option<Uuid>) -> Result<Vec<ConflictRow>> {
        self.read(|conn| {
            let rows: Vec<(String, String, String, Option<String>, i64, String)> = conn
                .prepare_cached(
                    "SELECT c.event, c.actor, c.reason, c.resolved_by, l.hub_seq, l.body
                     FROM sync_conflicts c JOIN sync_log l ON l.id = c.event
                     WHERE ?1 IS NULL OR c.task = ?1 ORDER BY l.hub_seq DESC",
                )?
                .query_map([task.map(|t| t.to_string())], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(|(event, actor, reason, resolved_by, _, body)| {
                    let ev: Event = serde_json::from_str(&body)?;
                    let (task, decision) = match ev.change {
                        Change::Decided { task, decision, .. } => (task, decision),
                        other => {
                            return Err(StoreError::Internal(format!(
                                "conflict {event} is a {} event",
                                other.kind()
                            )));
                        }
                    };
                    let resolution = resolved_by
                        .as_deref()
                        .map(|r| resolution_in(conn, r))
                        .transpose()?
                        .flatten();
                    Ok(ConflictRow {
                        event: parse_uuid(&event)?,
                        task,
                        actor,
                        device: ev.device,
                        at: ev.at,
                        decision,
                        reason,
                        resolution,
                    })
                })
                .collect()
        })
    }

    /// Close a conflict with a note (the explicit answer to it; the accepted decision stands).
    /// The hub judges it: a conflict closed by someone else meanwhile stays closed once.
    pub async fn sync_resolve(&self, conflict: Uuid, note: Option<String>) -> Result<Event> {
        self.write(move |conn| {
            let row: Option<(String, Option<String>)> = conn
                .prepare_cached("SELECT task, resolved_by FROM sync_conflicts WHERE event = ?1")?
                .query_row([conflict.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((task, resolved)) = row else {
                return Err(StoreError::ConflictNotFound(conflict.to_string()));
            };
            if resolved.is_some() {
                return Err(StoreError::ConflictClosed(conflict.to_string()));
            }
            let event = record_in(
                conn,
                Change::ConflictResolved {
                    task: parse_uuid(&task)?,
                    conflict,
                    note: note.clone(),
                },
            )?
            .ok_or(StoreError::NotEnrolled)?;
            crate::audit::record_in(
                conn,
                &event.actor,
                "conflict.resolved",
                &conflict.to_string(),
                Some(&serde_json::json!({ "status": "open", "task": task })),
                Some(&serde_json::json!({ "status": "resolved", "task": task, "note": note })),
            )?;
            Ok(event)
        })
        .await
    }

    /// An evaluator's tag changes and their events, in one transaction (as
    /// [`Store::change_tags`] does with a hub).
    pub async fn sync_tag(
        &self,
        changes: Vec<crate::TagChange>,
    ) -> Result<Vec<processops_core::feedback::TagOp>> {
        self.change_tags(changes).await
    }

    /// Accepted final decisions on this device's own tasks, not acted on yet; each is handed
    /// out once (marked taken in the same transaction).
    pub async fn sync_take_effects(&self) -> Result<Vec<(Uuid, Uuid)>> {
        self.write(|conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached(
                    "SELECT task, event FROM sync_effects WHERE taken_at IS NULL ORDER BY task",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            conn.prepare_cached("UPDATE sync_effects SET taken_at = ?1 WHERE taken_at IS NULL")?
                .execute([now_ms()])?;
            rows.iter()
                .map(|(t, e)| Ok((parse_uuid(t)?, parse_uuid(e)?)))
                .collect()
        })
        .await
    }

    pub fn sync_status(&self) -> Result<Option<SyncStatus>> {
        self.read(|conn| {
            let Some(me) = identity_in(conn)? else {
                return Ok(None);
            };
            let p = position_in(conn)?;
            let (last_sync_at, last_error): (Option<i64>, Option<String>) = conn
                .prepare_cached("SELECT last_sync_at, last_error FROM sync_state WHERE id = 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let open: i64 = conn
                .prepare_cached("SELECT count(*) FROM sync_conflicts WHERE resolved_by IS NULL")?
                .query_row([], |r| r.get(0))?;
            Ok(Some(SyncStatus {
                device: me.device,
                actor: me.actor,
                pending: p.last_seq.saturating_sub(p.acknowledged),
                cursor: p.cursor.hub_seq,
                epoch: p.cursor.epoch,
                last_sync_at,
                last_error,
                open_conflicts: to_u64(open),
            }))
        })
    }

    /// The hub's verdict on an event, once this device has pulled it back.
    pub fn sync_verdict(&self, event: Uuid) -> Result<Option<Verdict>> {
        self.read(|conn| {
            let verdict: Option<String> = conn
                .prepare_cached("SELECT verdict FROM sync_log WHERE id = ?1")?
                .query_row([event.to_string()], |r| r.get(0))
                .optional()?;
            verdict.map(|v| Ok(serde_json::from_str(&v)?)).transpose()
        })
    }

    /// Every event this device made, in order (its outbox, acknowledged or not).
    pub fn sync_own_events(&self) -> Result<Vec<Event>> {
        self.read(|conn| {
            let bodies: Vec<String> = conn
                .prepare_cached("SELECT body FROM sync_outbox ORDER BY seq")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            bodies
                .iter()
                .map(|b| Ok(serde_json::from_str(b)?))
                .collect()
        })
    }

    /// The applied log, in hub order.
    pub fn sync_log(&self) -> Result<Vec<HubEvent>> {
        self.read(|conn| {
            let rows: Vec<(i64, String, String)> = conn
                .prepare_cached("SELECT hub_seq, verdict, body FROM sync_log ORDER BY hub_seq, id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            rows.iter()
                .map(|(s, v, b)| {
                    Ok(HubEvent {
                        hub_seq: to_u64(*s),
                        verdict: serde_json::from_str(v)?,
                        event: serde_json::from_str(b)?,
                    })
                })
                .collect()
        })
    }

    /// What the applied log materialised, in the shape of the reference [`View`].
    pub fn sync_view(&self) -> Result<View> {
        self.read(|conn| {
            let mut view = View::default();
            let tasks: Vec<(String, String, String, String, Option<String>)> = conn
                .prepare_cached("SELECT task, head, role, owner, decision FROM sync_tasks")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (task, head, role, owner, decision) in tasks {
                view.tasks.insert(
                    parse_uuid(&task)?,
                    TaskView {
                        head: parse_uuid(&head)?,
                        role,
                        owner: parse_uuid(&owner)?,
                        decision: decision.as_deref().map(parse_uuid).transpose()?,
                    },
                );
            }
            let conflicts: Vec<(String, String, String, String, Option<String>)> = conn
                .prepare_cached("SELECT event, task, actor, reason, resolved_by FROM sync_conflicts")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (event, task, actor, reason, resolved_by) in conflicts {
                view.conflicts.insert(
                    parse_uuid(&event)?,
                    ConflictView {
                        task: parse_uuid(&task)?,
                        actor,
                        reason,
                        resolved_by: resolved_by.as_deref().map(parse_uuid).transpose()?,
                    },
                );
            }
            view.tags = crate::feedback::all_tag_ops(conn)?
                .into_iter()
                .collect::<TagState>();
            let versions: BTreeSet<String> = conn
                .prepare_cached(
                    "SELECT hash FROM blueprint_versions WHERE hash IN
                     (SELECT json_extract(body, '$.change.hash') FROM sync_log WHERE kind = 'version_added')",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            view.versions = versions;
            let channels: BTreeMap<(String, String), String> = conn
                .prepare_cached("SELECT blueprint, stage, hash FROM sync_channels")?
                .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            view.channels = channels;
            let effects: Vec<(String, String)> = conn
                .prepare_cached("SELECT task, event FROM sync_effects")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (task, event) in effects {
                view.effects.insert(parse_uuid(&task)?, parse_uuid(&event)?);
            }
            Ok(view)
        })
    }

    /// Test only: make `apply` re-apply events it has applied before (the planted bug the
    /// sync simulation must catch).
    #[doc(hidden)]
    pub fn plant_non_idempotent_apply(&self) {
        self.inner.planted_sync.store(true, Ordering::Relaxed);
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        Self::Local(e.to_string())
    }
}

impl LocalReplica for Store {
    async fn sync_position(&self) -> Result<Position, SyncError> {
        self.read(position_in).map_err(SyncError::from)
    }

    async fn outbox(&self, after: u64, limit: usize) -> Result<Vec<Event>, SyncError> {
        self.read(|conn| {
            let bodies: Vec<String> = conn
                .prepare_cached(
                    "SELECT body FROM sync_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![to_i64(after), to_i64(limit as u64)], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            bodies
                .iter()
                .map(|b| Ok(serde_json::from_str(b)?))
                .collect()
        })
        .map_err(SyncError::from)
    }

    async fn acknowledge(&self, through: u64) -> Result<(), SyncError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE sync_state SET acked_seq = min(?1, last_seq) WHERE id = 1",
            )?
            .execute([to_i64(through)])?;
            Ok(())
        })
        .await
        .map_err(SyncError::from)
    }

    async fn apply(&self, events: Vec<HubEvent>, cursor: Cursor) -> Result<(), SyncError> {
        let idempotent = !self.inner.planted_sync.load(Ordering::Relaxed);
        self.write(move |conn| {
            let me = identity_in(conn)?
                .ok_or_else(|| {
                    StoreError::Internal("this device is not enrolled with a hub".into())
                })?
                .device;
            for e in &events {
                apply_in(conn, me, e, idempotent)?;
            }
            conn.prepare_cached("UPDATE sync_state SET cursor = ?1, epoch = ?2 WHERE id = 1")?
                .execute(params![to_i64(cursor.hub_seq), to_i64(cursor.epoch)])?;
            Ok(())
        })
        .await
        .map_err(SyncError::from)
    }

    async fn record_round(&self, outcome: Result<&Report, &SyncError>) -> Result<(), SyncError> {
        let (at, error) = match outcome {
            Ok(_) => (Some(now_ms()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE sync_state SET last_sync_at = coalesce(?1, last_sync_at), last_error = ?2 WHERE id = 1",
            )?
            .execute(params![at, error])?;
            Ok(())
        })
        .await
        .map_err(SyncError::from)
    }
}
