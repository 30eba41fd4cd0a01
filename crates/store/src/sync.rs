//! This device's side of hub sync: the outbox of its own events (written in the transaction of
//! the change they describe), the hub's log as applied here (idempotent per event id, in the
//! same transaction as the cursor), and what that log materialises: tasks, conflicts, tags,
//! versions, stage channels, and the accepted decisions this device's engine must act on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use processops_core::feedback::TagState;
use processops_sync::replica::{ConflictView, Cursor, TaskView, View};
use processops_sync::{
    Change, Event, HubEvent, LocalReplica, Position, Report, SyncError, Verdict, is_final,
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

/// Append a change by this device to the outbox, in the caller's transaction. Returns the
/// event (its number is the next one; numbers never repeat or skip).
pub(crate) fn record_in(conn: &Connection, change: Change) -> Result<Option<Event>> {
    let Some(me) = identity_in(conn)? else {
        return Ok(None); // not enrolled: nothing to sync
    };
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
                task, role, body, ..
            },
            Verdict::Accepted,
        ) => {
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
                if owner.as_deref() == Some(me.to_string().as_str()) {
                    let sql = if idempotent {
                        "INSERT OR IGNORE INTO sync_effects (task, event) VALUES (?1, ?2)"
                    } else {
                        "INSERT OR REPLACE INTO sync_effects (task, event) VALUES (?1, ?2)"
                    };
                    conn.prepare_cached(sql)?.execute(params![task_id, id])?;
                }
            }
        }
        (Change::Decided { task, .. }, Verdict::Conflict { reason }) => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO sync_conflicts (event, task, actor, reason) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, task.to_string(), ev.actor, reason])?;
        }
        (Change::ConflictResolved { conflict, .. }, Verdict::Accepted) => {
            conn.prepare_cached("UPDATE sync_conflicts SET resolved_by = ?2 WHERE event = ?1")?
                .execute(params![conflict.to_string(), id])?;
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
            conn.prepare_cached(
                "INSERT OR IGNORE INTO sync_state (id, device, actor) VALUES (1, ?1, ?2)",
            )?
            .execute(params![device.to_string(), actor])?;
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

    /// An evaluator's tag changes and their events, in one transaction.
    pub async fn sync_tag(
        &self,
        changes: Vec<crate::TagChange>,
    ) -> Result<Vec<processops_core::feedback::TagOp>> {
        self.write(move |conn| {
            let ops = crate::feedback::change_tags_in(conn, changes)?;
            for op in &ops {
                record_in(conn, Change::Tagged { op: op.clone() })?;
            }
            Ok(ops)
        })
        .await
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
