//! The team backend: PostgreSQL, shared by any number of stateless hub processes.
//!
//! Ordering: a push allocates its hub sequence numbers with `UPDATE teams SET next_seq = …`,
//! which row-locks the team until the push commits. The next pusher of the team waits for that
//! commit, so numbers are committed in order and a reader that sees number N has already been
//! able to see every number below it — `hub_seq > cursor` never skips a row. (A `SEQUENCE`
//! would not do: `nextval` is not transactional and numbers commit out of order; that is the
//! planted bug the concurrency test must catch.) The price is one writer per team at a time,
//! which is what a total order costs (Linear does the same) and well within the targets.

use std::str::FromStr as _;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use processops_sync::rules::{BatchPlan, ConflictState, TaskHead, authorize, plan_batch};
use processops_sync::{
    Change, Event, HubEvent, Principal, PullResponse, PushResponse, PushResult, Role, Verdict,
};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::{
    DeviceRecord, Effect, Head, HubStore, NewDevice, PushOutcome, Result, UserRecord, json_list,
    judge, now_ms, parse_uuid, to_i64, to_u64,
};
use crate::{HubError, Planted};

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/postgres/0001_hub.sql"))];

/// Any fixed number: the advisory lock that serialises migrations across hub processes.
const MIGRATION_LOCK: i64 = 0x0050_524f_434f_5053;

#[derive(Clone)]
pub struct PgHub {
    pool: Pool,
    planted: Planted,
}

impl PgHub {
    /// Connect to `url` (`postgres://user@host:port/db`), migrating the schema. With `schema`,
    /// every table lives in that schema (created if missing): tests get one each.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self> {
        Self::connect_with(url, schema, Planted::None).await
    }

    #[doc(hidden)]
    pub async fn connect_with(url: &str, schema: Option<&str>, planted: Planted) -> Result<Self> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            HubError::Invalid(format!(
                "`{}` is not a PostgreSQL URL ({e}); use postgres://USER@HOST:PORT/DATABASE",
                redact(url)
            ))
        })?;
        if let Some(schema) = schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(HubError::Invalid(format!(
                    "schema `{schema}`: use letters, digits and underscores"
                )));
            }
            let (client, connection) = config.connect(NoTls).await.map_err(|e| {
                HubError::Storage(format!("cannot connect to {}: {e}", redact(url)))
            })?;
            let task = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
            drop(client);
            let _ = task.await;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| HubError::Storage(format!("PostgreSQL pool: {e}")))?;
        let hub = Self { pool, planted };
        hub.migrate().await.map_err(|e| match e {
            HubError::Storage(m) => {
                HubError::Storage(format!("PostgreSQL at {}: {m}", redact(url)))
            }
            other => other,
        })?;
        Ok(hub)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS hub_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
        let done: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM hub_migrations", &[])
            .await?
            .get(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO hub_migrations (version, applied_at) VALUES ($1, $2)",
                &[version, &now_ms()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn principal_of(
    tx: &impl deadpool_postgres::GenericClient,
    team: &str,
    user: &str,
    device: Uuid,
) -> Result<Principal> {
    let row = tx
        .query_opt(
            "SELECT roles, scopes FROM users WHERE team = $1 AND name = $2",
            &[&team, &user],
        )
        .await?;
    let (roles, scopes): (String, String) = row
        .map(|r| (r.get(0), r.get(1)))
        .unwrap_or_else(|| ("[]".into(), "[]".into()));
    Ok(Principal {
        team: team.to_owned(),
        user: user.to_owned(),
        device,
        roles: json_list::<Role>(&roles)?,
        scopes: json_list(&scopes)?,
    })
}

async fn read_task(tx: &Transaction<'_>, team: &str, task: Uuid) -> Result<Option<TaskHead>> {
    let row = tx
        .query_opt(
            "SELECT head, role, owner, decided_by FROM tasks WHERE team = $1 AND task = $2",
            &[&team, &task.to_string()],
        )
        .await?;
    row.map(|r| {
        Ok(TaskHead {
            head: parse_uuid(r.get(0))?,
            role: r.get(1),
            owner: parse_uuid(r.get(2))?,
            decided_by: r.get::<_, Option<&str>>(3).map(parse_uuid).transpose()?,
        })
    })
    .transpose()
}

async fn read_head(
    tx: &Transaction<'_>,
    team: &str,
    event: &Event,
) -> Result<(Head, Option<TaskHead>)> {
    Ok(match &event.change {
        Change::TaskCreated { task, .. }
        | Change::TaskMoved { task, .. }
        | Change::Decided { task, .. } => (Head::Task(read_task(tx, team, *task).await?), None),
        Change::ConflictResolved { task, conflict, .. } => {
            let row = tx
                .query_opt(
                    "SELECT task, resolved_by FROM conflicts WHERE team = $1 AND event = $2",
                    &[&team, &conflict.to_string()],
                )
                .await?;
            let c = row
                .map(|r| {
                    Ok::<_, HubError>(ConflictState {
                        task: parse_uuid(r.get(0))?,
                        resolved_by: r.get::<_, Option<&str>>(1).map(parse_uuid).transpose()?,
                    })
                })
                .transpose()?;
            (Head::Conflict(c), read_task(tx, team, *task).await?)
        }
        Change::Published {
            blueprint,
            stage,
            hash,
            ..
        } => {
            let current: Option<String> = tx
                .query_opt(
                    "SELECT hash FROM channels WHERE team = $1 AND blueprint = $2 AND stage = $3",
                    &[&team, blueprint, stage],
                )
                .await?
                .map(|r| r.get(0));
            let version_known = tx
                .query_opt(
                    "SELECT 1 FROM versions WHERE team = $1 AND hash = $2",
                    &[&team, hash],
                )
                .await?
                .is_some();
            (
                Head::Channel {
                    current,
                    version_known,
                },
                None,
            )
        }
        Change::Tagged { .. } | Change::VersionAdded { .. } => (Head::Free, None),
    })
}

async fn write_effect(
    tx: &Transaction<'_>,
    team: &str,
    event: &Event,
    effect: Effect,
) -> Result<()> {
    match effect {
        Effect::None => {}
        Effect::Task(t) => {
            let task = event
                .change
                .task()
                .map(|t| t.to_string())
                .unwrap_or_default();
            tx.execute(
                "INSERT INTO tasks (team, task, head, role, owner, decided_by) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (team, task) DO UPDATE SET head = excluded.head, role = excluded.role,
                 decided_by = excluded.decided_by",
                &[
                    &team,
                    &task,
                    &t.head.to_string(),
                    &t.role,
                    &t.owner.to_string(),
                    &t.decided_by.map(|d| d.to_string()),
                ],
            )
            .await?;
        }
        Effect::OpenConflict { task } => {
            tx.execute(
                "INSERT INTO conflicts (team, event, task) VALUES ($1, $2, $3)",
                &[&team, &event.id.to_string(), &task.to_string()],
            )
            .await?;
        }
        Effect::ResolveConflict { conflict } => {
            tx.execute(
                "UPDATE conflicts SET resolved_by = $3 WHERE team = $1 AND event = $2",
                &[&team, &conflict.to_string(), &event.id.to_string()],
            )
            .await?;
        }
        Effect::Tag { entity, counter } => {
            tx.execute(
                "INSERT INTO tags (team, entity, counter) VALUES ($1, $2, $3)
                 ON CONFLICT (team, entity) DO UPDATE SET counter = greatest(tags.counter, excluded.counter)",
                &[&team, &entity, &to_i64(counter)],
            )
            .await?;
        }
        Effect::Version => {
            if let Change::VersionAdded {
                blueprint,
                hash,
                canonical,
                source,
            } = &event.change
            {
                tx.execute(
                    "INSERT INTO versions (team, hash, blueprint, canonical, source)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&team, hash, blueprint, canonical, source],
                )
                .await?;
            }
        }
        Effect::Channel {
            blueprint,
            stage,
            hash,
        } => {
            tx.execute(
                "INSERT INTO channels (team, blueprint, stage, hash) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (team, blueprint, stage) DO UPDATE SET hash = excluded.hash",
                &[&team, &blueprint, &stage, &hash],
            )
            .await?;
        }
    }
    Ok(())
}

fn unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl HubStore for PgHub {
    async fn create_team(&self, team: &str) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&team, &now_ms()],
            )
            .await?;
        if n == 0 {
            return Err(HubError::Conflict(format!("team `{team}` exists already")));
        }
        Ok(())
    }

    async fn put_user(&self, team: &str, user: &UserRecord) -> Result<()> {
        let client = self.pool.get().await?;
        if client
            .query_opt("SELECT 1 FROM teams WHERE name = $1", &[&team])
            .await?
            .is_none()
        {
            return Err(HubError::NotFound(format!("no team `{team}`")));
        }
        client
            .execute(
                "INSERT INTO users (team, name, roles, scopes) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (team, name) DO UPDATE SET roles = excluded.roles, scopes = excluded.scopes",
                &[
                    &team,
                    &user.name,
                    &serde_json::to_string(&user.roles)?,
                    &serde_json::to_string(&user.scopes)?,
                ],
            )
            .await?;
        Ok(())
    }

    async fn users(&self, team: &str) -> Result<Vec<UserRecord>> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT name, roles, scopes FROM users WHERE team = $1 ORDER BY name",
                &[&team],
            )
            .await?
            .into_iter()
            .map(|r| {
                Ok(UserRecord {
                    name: r.get(0),
                    roles: json_list(r.get(1))?,
                    scopes: json_list(r.get(2))?,
                })
            })
            .collect()
    }

    async fn add_enrolment(
        &self,
        team: &str,
        user: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        if client
            .query_opt(
                "SELECT 1 FROM users WHERE team = $1 AND name = $2",
                &[&team, &user],
            )
            .await?
            .is_none()
        {
            return Err(HubError::NotFound(format!(
                "team `{team}` has no user `{user}`; add them first"
            )));
        }
        client
            .execute(
                "INSERT INTO enrolments (code_hash, team, member, expires_at) VALUES ($1, $2, $3, $4)",
                &[&code_hash, &team, &user, &expires_at],
            )
            .await?;
        Ok(())
    }

    async fn redeem_enrolment(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> Result<Option<Principal>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE enrolments SET used_at = $2
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING team, member",
                &[&code_hash, &now],
            )
            .await?
        else {
            return Ok(None);
        };
        let (team, user): (String, String) = (row.get(0), row.get(1));
        tx.execute(
            "INSERT INTO devices (id, team, member, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&device.id.to_string(), &team, &user, &device.name, &device.token_hash, &now],
        )
        .await?;
        let p = principal_of(&tx, &team, &user, device.id).await?;
        tx.commit().await?;
        Ok(Some(p))
    }

    async fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT id, team, member FROM devices WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&token_hash],
            )
            .await?
        else {
            return Ok(None);
        };
        let (id, team, user): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        Ok(Some(
            principal_of(&client, &team, &user, parse_uuid(&id)?).await?,
        ))
    }

    async fn devices(&self, team: &str) -> Result<Vec<DeviceRecord>> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT id, member, name, last_seq, created_at, revoked_at FROM devices
                 WHERE team = $1 ORDER BY created_at, id",
                &[&team],
            )
            .await?
            .into_iter()
            .map(|r| {
                Ok(DeviceRecord {
                    id: parse_uuid(r.get(0))?,
                    user: r.get(1),
                    name: r.get(2),
                    last_seq: to_u64(r.get(3)),
                    created_at: r.get(4),
                    revoked_at: r.get(5),
                })
            })
            .collect()
    }

    async fn revoke_device(&self, team: &str, device: Uuid, now: i64) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, $3) WHERE team = $1 AND id = $2",
                &[&team, &device.to_string(), &now],
            )
            .await?;
        Ok(n > 0)
    }

    async fn push(&self, p: &Principal, events: Vec<Event>) -> Result<PushOutcome> {
        for e in &events {
            authorize(p, e)?;
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let device = p.device.to_string();
        // Lock order: the device row, then the team row (below); every push takes them so.
        let row = tx
            .query_opt(
                "SELECT last_seq, revoked_at FROM devices WHERE id = $1 AND team = $2 FOR UPDATE",
                &[&device, &p.team],
            )
            .await?;
        let last = match row.map(|r| (r.get::<_, i64>(0), r.get::<_, Option<i64>>(1))) {
            Some((last, None)) => to_u64(last),
            _ => return Err(HubError::Unauthorized("this device is not enrolled".into())),
        };
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        let skip = match plan_batch(last, &seqs) {
            BatchPlan::Store { skip } => skip,
            BatchPlan::Gap { expected } => return Ok(PushOutcome::Gap { expected }),
            BatchPlan::Invalid(m) => return Err(HubError::Invalid(m)),
        };
        if skip > 0 {
            let first = to_i64(events[0].seq);
            let upto = to_i64(events[skip - 1].seq);
            let held: Vec<(i64, String)> = tx
                .query(
                    "SELECT seq, id FROM events WHERE device = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
                    &[&device, &first, &upto],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let matches = held.len() == skip
                && held
                    .iter()
                    .zip(&events[..skip])
                    .all(|((_, id), e)| *id == e.id.to_string());
            if !matches {
                return Err(HubError::Conflict(
                    "some of this device's sequence numbers are already held with other ids; its store was replaced: enrol it again".into(),
                ));
            }
        }
        let fresh = &events[skip..];
        let mut results = Vec::with_capacity(fresh.len());
        if !fresh.is_empty() {
            let n = to_i64(fresh.len() as u64);
            let mut hub_seq = if self.planted == Planted::NaiveSequence {
                0
            } else {
                let end: i64 = tx
                    .query_one(
                        "UPDATE teams SET next_seq = next_seq + $2 WHERE name = $1 RETURNING next_seq",
                        &[&p.team, &n],
                    )
                    .await?
                    .get(0);
                to_u64(end - n)
            };
            let insert = tx
                .prepare_cached(
                    "INSERT INTO events (team, hub_seq, id, device, seq, entity, verdict, body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .await?;
            for e in fresh {
                hub_seq = if self.planted == Planted::NaiveSequence {
                    let v: i64 = tx
                        .query_one("SELECT nextval('naive_hub_seq')", &[])
                        .await?
                        .get(0);
                    to_u64(v)
                } else {
                    hub_seq + 1
                };
                let (head, task) = read_head(&tx, &p.team, e).await?;
                let (verdict, effect) = judge(self.planted, p, e, head, task.as_ref())?;
                write_effect(&tx, &p.team, e, effect).await?;
                tx.execute(
                    &insert,
                    &[
                        &p.team,
                        &to_i64(hub_seq),
                        &e.id.to_string(),
                        &device,
                        &to_i64(e.seq),
                        &e.change.entity(),
                        &serde_json::to_string(&verdict)?,
                        &serde_json::to_string(e)?,
                    ],
                )
                .await
                .map_err(|err| {
                    if unique_violation(&err) {
                        HubError::Conflict(format!("event {} is already held", e.id))
                    } else {
                        err.into()
                    }
                })?;
                results.push(PushResult {
                    id: e.id,
                    seq: e.seq,
                    hub_seq,
                    verdict,
                });
            }
            let through = fresh.last().map_or(last, |e| e.seq);
            tx.execute(
                "UPDATE devices SET last_seq = $2 WHERE id = $1",
                &[&device, &to_i64(through)],
            )
            .await?;
            if self.planted == Planted::NaiveSequence {
                // Widen the window in which a later number commits before an earlier one.
                tx.execute("SELECT pg_sleep(random() * 0.01)", &[]).await?;
            }
        }
        tx.commit().await?;
        let accepted_through = last.max(events.last().map_or(0, |e| e.seq));
        Ok(PushOutcome::Stored(PushResponse {
            accepted_through,
            results,
        }))
    }

    async fn pull(&self, team: &str, after: u64, limit: u32) -> Result<PullResponse> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT epoch, next_seq FROM teams WHERE name = $1",
                &[&team],
            )
            .await?
        else {
            return Err(HubError::NotFound(format!("no team `{team}`")));
        };
        let (epoch, head): (i64, i64) = (row.get(0), row.get(1));
        let rows = client
            .query(
                "SELECT hub_seq, verdict, body FROM events WHERE team = $1 AND hub_seq > $2
                 ORDER BY hub_seq LIMIT $3",
                &[&team, &to_i64(after), &(i64::from(limit) + 1)],
            )
            .await?;
        let more = rows.len() > limit as usize;
        let events = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                Ok(HubEvent {
                    hub_seq: to_u64(r.get(0)),
                    verdict: serde_json::from_str::<Verdict>(r.get(1))?,
                    event: serde_json::from_str(r.get(2))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PullResponse {
            epoch: to_u64(epoch),
            events,
            more,
            head: to_u64(head),
        })
    }

    async fn bump_epoch(&self, team: &str) -> Result<u64> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                "UPDATE teams SET epoch = epoch + 1 WHERE name = $1 RETURNING epoch",
                &[&team],
            )
            .await?
            .map(|r| to_u64(r.get(0)))
            .ok_or_else(|| HubError::NotFound(format!("no team `{team}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://hub:s3cret@db:5432/hub"),
            "postgres://hub:***@db:5432/hub"
        );
        assert_eq!(redact("postgres://hub@db/hub"), "postgres://hub@db/hub");
    }
}
