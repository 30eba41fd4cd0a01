//! The embedded backend: one SQLite file. Writers take the database lock up front
//! (`BEGIN IMMEDIATE`), so pushes are serialised and hub sequence numbers are committed in
//! order even with two hub processes on one file.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use processops_sync::rules::{ConflictState, TaskHead, authorize};
use processops_sync::{Event, HubEvent, Principal, PullResponse, PushResponse, Role, Verdict};
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use super::batch::{BatchHeads, Judged, Wanted, judge_batch};
use super::{
    DeviceRecord, HubStore, NewDevice, PushOutcome, Result, UserRecord, json_list, now_ms,
    parse_uuid, plan_push, to_i64, to_u64,
};
use crate::{HubError, Planted};

const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_hub.sql")),
    (2, include_str!("../../migrations/sqlite/0002_claims.sql")),
];

#[derive(Clone)]
pub struct SqliteHub {
    conn: Arc<Mutex<Connection>>,
    planted: Planted,
}

impl SqliteHub {
    /// Open (creating and migrating) a hub database file.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Planted::None)
    }

    #[doc(hidden)]
    pub fn open_with(path: &Path, planted: Planted) -> Result<Self> {
        let mut conn = Connection::open(path).map_err(|e| {
            HubError::Storage(format!(
                "cannot open the hub database {}: {e}",
                path.display()
            ))
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            planted,
        })
    }

    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| HubError::Storage("the hub database lock was poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| HubError::Storage(format!("hub database task: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS hub_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done: u32 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM hub_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO hub_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn principal_of(conn: &Connection, team: &str, user: &str, device: Uuid) -> Result<Principal> {
    let (roles, scopes): (String, String) = conn
        .prepare_cached("SELECT roles, scopes FROM users WHERE team = ?1 AND name = ?2")?
        .query_row(params![team, user], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_else(|| ("[]".into(), "[]".into()));
    Ok(Principal {
        team: team.to_owned(),
        user: user.to_owned(),
        device,
        roles: json_list::<Role>(&roles)?,
        scopes: json_list(&scopes)?,
    })
}

/// Every head a batch reads (see `batch`), key by key: in-process lookups cost no round trip.
fn read_heads(tx: &Transaction<'_>, team: &str, w: &Wanted) -> Result<BatchHeads> {
    let mut heads = BatchHeads::default();
    let mut stmt = tx.prepare_cached(
        "SELECT head, role, owner, decided_by FROM tasks WHERE team = ?1 AND task = ?2",
    )?;
    for task in &w.tasks {
        let row: Option<(String, String, String, Option<String>)> = stmt
            .query_row(params![team, task], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        if let Some((head, role, owner, decided_by)) = row {
            heads.tasks.insert(
                parse_uuid(task)?,
                TaskHead {
                    head: parse_uuid(&head)?,
                    role,
                    owner: parse_uuid(&owner)?,
                    decided_by: decided_by.as_deref().map(parse_uuid).transpose()?,
                },
            );
        }
    }
    let mut stmt = tx
        .prepare_cached("SELECT task, resolved_by FROM conflicts WHERE team = ?1 AND event = ?2")?;
    for conflict in &w.conflicts {
        let row: Option<(String, Option<String>)> = stmt
            .query_row(params![team, conflict], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((task, resolved_by)) = row {
            heads.conflicts.insert(
                parse_uuid(conflict)?,
                ConflictState {
                    task: parse_uuid(&task)?,
                    resolved_by: resolved_by.as_deref().map(parse_uuid).transpose()?,
                },
            );
        }
    }
    let mut stmt = tx.prepare_cached(
        "SELECT hash FROM channels WHERE team = ?1 AND blueprint = ?2 AND stage = ?3",
    )?;
    for (blueprint, stage) in &w.channels {
        let hash: Option<String> = stmt
            .query_row(params![team, blueprint, stage], |r| r.get(0))
            .optional()?;
        if let Some(hash) = hash {
            heads
                .channels
                .insert((blueprint.clone(), stage.clone()), hash);
        }
    }
    let mut stmt = tx.prepare_cached("SELECT 1 FROM versions WHERE team = ?1 AND hash = ?2")?;
    for hash in &w.versions {
        if stmt.exists(params![team, hash])? {
            heads.versions.insert(hash.clone());
        }
    }
    let mut stmt =
        tx.prepare_cached("SELECT device FROM claims WHERE team = ?1 AND entity = ?2")?;
    for entity in &w.claims {
        let device: Option<String> = stmt
            .query_row(params![team, entity], |r| r.get(0))
            .optional()?;
        if let Some(device) = device {
            heads.claims.insert(entity.clone(), parse_uuid(&device)?);
        }
    }
    // Event ids are unique across teams, as the table's index is.
    let mut stmt = tx.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
    for id in &w.ids {
        if stmt.exists([id])? {
            heads.held.insert(id.clone());
        }
    }
    Ok(heads)
}

/// A judged batch's rows, through cached statements (SQLite has no round trips to save).
fn write_batch(tx: &Transaction<'_>, team: &str, device: &str, judged: &Judged) -> Result<()> {
    let w = &judged.writes;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO tasks (team, task, head, role, owner, decided_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (team, task) DO UPDATE SET head = excluded.head, role = excluded.role,
         decided_by = excluded.decided_by",
    )?;
    for (task, t) in &w.tasks {
        stmt.execute(params![
            team,
            task.to_string(),
            t.head.to_string(),
            t.role,
            t.owner.to_string(),
            t.decided_by.map(|d| d.to_string())
        ])?;
    }
    let mut stmt =
        tx.prepare_cached("INSERT INTO conflicts (team, event, task) VALUES (?1, ?2, ?3)")?;
    for (event, task) in &w.opened {
        stmt.execute(params![team, event.to_string(), task.to_string()])?;
    }
    let mut stmt =
        tx.prepare_cached("UPDATE conflicts SET resolved_by = ?3 WHERE team = ?1 AND event = ?2")?;
    for (conflict, by) in &w.resolved {
        stmt.execute(params![team, conflict.to_string(), by.to_string()])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO tags (team, entity, counter) VALUES (?1, ?2, ?3)
         ON CONFLICT (team, entity) DO UPDATE SET counter = max(counter, excluded.counter)",
    )?;
    for (entity, counter) in &w.tags {
        stmt.execute(params![team, entity, to_i64(*counter)])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO versions (team, hash, blueprint, canonical, source)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (hash, blueprint, canonical, source) in &w.versions {
        stmt.execute(params![team, hash, blueprint, canonical, source])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO channels (team, blueprint, stage, hash) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (team, blueprint, stage) DO UPDATE SET hash = excluded.hash",
    )?;
    for ((blueprint, stage), hash) in &w.channels {
        stmt.execute(params![team, blueprint, stage, hash])?;
    }
    let mut stmt =
        tx.prepare_cached("INSERT INTO claims (team, entity, device) VALUES (?1, ?2, ?3)")?;
    for (entity, holder) in &w.claims {
        stmt.execute(params![team, entity, holder.to_string()])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (team, hub_seq, id, device, seq, entity, verdict, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for r in &judged.rows {
        stmt.execute(params![
            team,
            to_i64(r.hub_seq),
            r.id,
            device,
            to_i64(r.seq),
            r.entity,
            r.verdict,
            r.body
        ])
        .map_err(|err| match err {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                HubError::Conflict(format!("event {} is already held", r.id))
            }
            other => other.into(),
        })?;
    }
    Ok(())
}

fn push_in(
    conn: &mut Connection,
    planted: Planted,
    p: &Principal,
    events: &[Event],
) -> Result<PushOutcome> {
    for e in events {
        authorize(p, e)?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let device = p.device.to_string();
    let last: Option<(i64, Option<i64>)> = tx
        .prepare_cached("SELECT last_seq, revoked_at FROM devices WHERE id = ?1 AND team = ?2")?
        .query_row(params![device, p.team], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (last, skip) = match plan_push(last, events)? {
        Ok(planned) => planned,
        Err(gap) => return Ok(gap),
    };
    // Re-sent events must be the ones the hub holds: a reused number is a device bug.
    for e in &events[..skip] {
        let held: Option<String> = tx
            .prepare_cached("SELECT id FROM events WHERE device = ?1 AND seq = ?2")?
            .query_row(params![device, to_i64(e.seq)], |r| r.get(0))
            .optional()?;
        if held.as_deref() != Some(e.id.to_string().as_str()) {
            return Err(HubError::Conflict(format!(
                "this device's event {} is already held with another id; its store was replaced: enrol it again",
                e.seq
            )));
        }
    }
    let fresh = &events[skip..];
    let mut results = Vec::new();
    if !fresh.is_empty() {
        let n = to_i64(fresh.len() as u64);
        let end: i64 = tx
            .prepare_cached(
                "UPDATE teams SET next_seq = next_seq + ?2 WHERE name = ?1 RETURNING next_seq",
            )?
            .query_row(params![p.team, n], |r| r.get(0))?;
        let hub_seqs: Vec<u64> = (to_u64(end - n) + 1..=to_u64(end)).collect();
        let heads = read_heads(&tx, &p.team, &Wanted::of(fresh))?;
        let judged = judge_batch(planted, p, fresh, &hub_seqs, heads)?;
        write_batch(&tx, &p.team, &device, &judged)?;
        results = judged.results;
        let through = fresh.last().map_or(last, |e| e.seq);
        tx.prepare_cached("UPDATE devices SET last_seq = ?2 WHERE id = ?1")?
            .execute(params![device, to_i64(through)])?;
    }
    tx.commit()?;
    let accepted_through = last.max(events.last().map_or(0, |e| e.seq));
    Ok(PushOutcome::Stored(PushResponse {
        accepted_through,
        results,
    }))
}

impl HubStore for SqliteHub {
    async fn create_team(&self, team: &str) -> Result<()> {
        let team = team.to_owned();
        self.with(move |conn| {
            let n = conn.execute(
                "INSERT OR IGNORE INTO teams (name, created_at) VALUES (?1, ?2)",
                params![team, now_ms()],
            )?;
            if n == 0 {
                return Err(HubError::Conflict(format!("team `{team}` exists already")));
            }
            Ok(())
        })
        .await
    }

    async fn put_user(&self, team: &str, user: &UserRecord) -> Result<()> {
        let (team, user) = (team.to_owned(), user.clone());
        self.with(move |conn| {
            if !conn
                .prepare_cached("SELECT 1 FROM teams WHERE name = ?1")?
                .exists([&team])?
            {
                return Err(HubError::NotFound(format!("no team `{team}`")));
            }
            conn.execute(
                "INSERT INTO users (team, name, roles, scopes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (team, name) DO UPDATE SET roles = excluded.roles, scopes = excluded.scopes",
                params![
                    team,
                    user.name,
                    serde_json::to_string(&user.roles)?,
                    serde_json::to_string(&user.scopes)?
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn users(&self, team: &str) -> Result<Vec<UserRecord>> {
        let team = team.to_owned();
        self.with(move |conn| {
            let rows: Vec<(String, String, String)> = conn
                .prepare_cached(
                    "SELECT name, roles, scopes FROM users WHERE team = ?1 ORDER BY name",
                )?
                .query_map([&team], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(|(name, roles, scopes)| {
                    Ok(UserRecord {
                        name,
                        roles: json_list(&roles)?,
                        scopes: json_list(&scopes)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn add_enrolment(
        &self,
        team: &str,
        user: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        let (team, user, code_hash) = (team.to_owned(), user.to_owned(), code_hash.to_owned());
        self.with(move |conn| {
            if !conn
                .prepare_cached("SELECT 1 FROM users WHERE team = ?1 AND name = ?2")?
                .exists(params![team, user])?
            {
                return Err(HubError::NotFound(format!(
                    "team `{team}` has no user `{user}`; add them first"
                )));
            }
            conn.execute(
                "INSERT INTO enrolments (code_hash, team, member, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![code_hash, team, user, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn redeem_enrolment(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> Result<Option<Principal>> {
        let (code_hash, device) = (code_hash.to_owned(), device.clone());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<(String, String)> = tx
                .query_row(
                    "UPDATE enrolments SET used_at = ?2
                     WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     RETURNING team, member",
                    params![code_hash, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((team, user)) = found else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO devices (id, team, member, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![device.id.to_string(), team, user, device.name, device.token_hash, now],
            )?;
            let p = principal_of(&tx, &team, &user, device.id)?;
            tx.commit()?;
            Ok(Some(p))
        })
        .await
    }

    async fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        let token_hash = token_hash.to_owned();
        self.with(move |conn| {
            let found: Option<(String, String, String)> = conn
                .prepare_cached(
                    "SELECT id, team, member FROM devices WHERE token_hash = ?1 AND revoked_at IS NULL",
                )?
                .query_row([&token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            found
                .map(|(id, team, user)| principal_of(conn, &team, &user, parse_uuid(&id)?))
                .transpose()
        })
        .await
    }

    async fn devices(&self, team: &str) -> Result<Vec<DeviceRecord>> {
        let team = team.to_owned();
        self.with(move |conn| {
            let rows: Vec<(String, String, String, i64, i64, Option<i64>)> = conn
                .prepare_cached(
                    "SELECT id, member, name, last_seq, created_at, revoked_at FROM devices
                     WHERE team = ?1 ORDER BY created_at, id",
                )?
                .query_map([&team], |r| {
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
                .map(|(id, user, name, last_seq, created_at, revoked_at)| {
                    Ok(DeviceRecord {
                        id: parse_uuid(&id)?,
                        user,
                        name,
                        last_seq: to_u64(last_seq),
                        created_at,
                        revoked_at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn revoke_device(&self, team: &str, device: Uuid, now: i64) -> Result<bool> {
        let team = team.to_owned();
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?3) WHERE team = ?1 AND id = ?2",
                params![team, device.to_string(), now],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn push(&self, p: &Principal, events: Vec<Event>) -> Result<PushOutcome> {
        let (p, planted) = (p.clone(), self.planted);
        self.with(move |conn| push_in(conn, planted, &p, &events))
            .await
    }

    async fn pull(&self, team: &str, after: u64, limit: u32) -> Result<PullResponse> {
        let team = team.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let (epoch, head): (i64, i64) = tx
                .prepare_cached("SELECT epoch, next_seq FROM teams WHERE name = ?1")?
                .query_row([&team], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or_else(|| HubError::NotFound(format!("no team `{team}`")))?;
            let rows: Vec<(i64, String, String)> = tx
                .prepare_cached(
                    "SELECT hub_seq, verdict, body FROM events WHERE team = ?1 AND hub_seq > ?2
                     ORDER BY hub_seq LIMIT ?3",
                )?
                .query_map(params![team, to_i64(after), i64::from(limit) + 1], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let more = rows.len() > limit as usize;
            let events = rows
                .into_iter()
                .take(limit as usize)
                .map(|(hub_seq, verdict, body)| {
                    Ok(HubEvent {
                        hub_seq: to_u64(hub_seq),
                        verdict: serde_json::from_str::<Verdict>(&verdict)?,
                        event: serde_json::from_str(&body)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(PullResponse {
                epoch: to_u64(epoch),
                events,
                more,
                head: to_u64(head),
            })
        })
        .await
    }

    async fn bump_epoch(&self, team: &str) -> Result<u64> {
        let team = team.to_owned();
        self.with(move |conn| {
            let epoch: Option<i64> = conn
                .query_row(
                    "UPDATE teams SET epoch = epoch + 1 WHERE name = ?1 RETURNING epoch",
                    [&team],
                    |r| r.get(0),
                )
                .optional()?;
            epoch
                .map(to_u64)
                .ok_or_else(|| HubError::NotFound(format!("no team `{team}`")))
        })
        .await
    }
    async fn stats(&self) -> Result<Vec<super::TeamStats>> {
        self.with(|conn| {
            let rows = conn
                .prepare_cached(super::STATS_SQL)?
                .query_map([], |r| {
                    Ok(super::TeamStats {
                        team: r.get(0)?,
                        events: to_u64(r.get(1)?),
                        devices: to_u64(r.get(2)?),
                        conflicts: to_u64(r.get(3)?),
                        open_conflicts: to_u64(r.get(4)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }
}
