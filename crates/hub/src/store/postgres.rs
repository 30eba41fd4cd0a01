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
use processops_sync::rules::{ConflictState, TaskHead, authorize};
use processops_sync::{Event, HubEvent, Principal, PullResponse, PushResponse, Role, Verdict};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::batch::{BatchHeads, Judged, Wanted, judge_batch};
use super::{
    DeviceRecord, HubStore, NewDevice, PushOutcome, Result, UserRecord, json_list, now_ms,
    parse_uuid, plan_push, to_i64, to_u64,
};
use crate::{HubError, Planted};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_hub.sql")),
    (2, include_str!("../../migrations/postgres/0002_claims.sql")),
];

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
    // Every request authenticates: cached statements save a round trip each.
    let stmt = tx
        .prepare_cached("SELECT roles, scopes FROM users WHERE team = $1 AND name = $2")
        .await?;
    let row = tx.query_opt(&stmt, &[&team, &user]).await?;
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

/// Every head a batch reads (see `batch`): one query per kind of entity, after the team row
/// is locked, so each sees every earlier push of the team.
async fn read_heads(tx: &Transaction<'_>, team: &str, w: &Wanted) -> Result<BatchHeads> {
    let mut heads = BatchHeads::default();
    if !w.tasks.is_empty() {
        let stmt = tx
            .prepare_cached(
                "SELECT task, head, role, owner, decided_by FROM tasks
                 WHERE team = $1 AND task = ANY($2)",
            )
            .await?;
        for r in tx.query(&stmt, &[&team, &w.tasks]).await? {
            heads.tasks.insert(
                parse_uuid(r.get(0))?,
                TaskHead {
                    head: parse_uuid(r.get(1))?,
                    role: r.get(2),
                    owner: parse_uuid(r.get(3))?,
                    decided_by: r.get::<_, Option<&str>>(4).map(parse_uuid).transpose()?,
                },
            );
        }
    }
    if !w.conflicts.is_empty() {
        let stmt = tx
            .prepare_cached(
                "SELECT event, task, resolved_by FROM conflicts WHERE team = $1 AND event = ANY($2)",
            )
            .await?;
        for r in tx.query(&stmt, &[&team, &w.conflicts]).await? {
            heads.conflicts.insert(
                parse_uuid(r.get(0))?,
                ConflictState {
                    task: parse_uuid(r.get(1))?,
                    resolved_by: r.get::<_, Option<&str>>(2).map(parse_uuid).transpose()?,
                },
            );
        }
    }
    if !w.channels.is_empty() {
        let (blueprints, stages): (Vec<&str>, Vec<&str>) = w
            .channels
            .iter()
            .map(|(b, s)| (b.as_str(), s.as_str()))
            .unzip();
        let stmt = tx
            .prepare_cached(
                "SELECT c.blueprint, c.stage, c.hash FROM channels c
                 JOIN unnest($2::text[], $3::text[]) AS k (blueprint, stage)
                   ON c.blueprint = k.blueprint AND c.stage = k.stage
                 WHERE c.team = $1",
            )
            .await?;
        for r in tx.query(&stmt, &[&team, &blueprints, &stages]).await? {
            heads.channels.insert((r.get(0), r.get(1)), r.get(2));
        }
    }
    if !w.versions.is_empty() {
        let stmt = tx
            .prepare_cached("SELECT hash FROM versions WHERE team = $1 AND hash = ANY($2)")
            .await?;
        for r in tx.query(&stmt, &[&team, &w.versions]).await? {
            heads.versions.insert(r.get(0));
        }
    }
    if !w.claims.is_empty() {
        let stmt = tx
            .prepare_cached(
                "SELECT entity, device FROM claims WHERE team = $1 AND entity = ANY($2)",
            )
            .await?;
        for r in tx.query(&stmt, &[&team, &w.claims]).await? {
            heads.claims.insert(r.get(0), parse_uuid(r.get(1))?);
        }
    }
    if !w.ids.is_empty() {
        // Event ids are unique across teams, as the table's index is.
        let stmt = tx
            .prepare_cached("SELECT id FROM events WHERE id = ANY($1)")
            .await?;
        for r in tx.query(&stmt, &[&w.ids]).await? {
            heads.held.insert(r.get(0));
        }
    }
    Ok(heads)
}

/// A judged batch's rows: one multi-row statement per table (arrays through `unnest`).
async fn write_batch(
    tx: &Transaction<'_>,
    team: &str,
    device: &str,
    judged: &Judged,
) -> Result<()> {
    let w = &judged.writes;
    if !w.tasks.is_empty() {
        let tasks: Vec<String> = w.tasks.iter().map(|(task, _)| task.to_string()).collect();
        let heads: Vec<String> = w.tasks.iter().map(|(_, t)| t.head.to_string()).collect();
        let roles: Vec<&str> = w.tasks.iter().map(|(_, t)| t.role.as_str()).collect();
        let owners: Vec<String> = w.tasks.iter().map(|(_, t)| t.owner.to_string()).collect();
        let decided: Vec<Option<String>> = w
            .tasks
            .iter()
            .map(|(_, t)| t.decided_by.map(|d| d.to_string()))
            .collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO tasks (team, task, head, role, owner, decided_by)
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                 ON CONFLICT (team, task) DO UPDATE SET head = excluded.head, role = excluded.role,
                 decided_by = excluded.decided_by",
            )
            .await?;
        tx.execute(&stmt, &[&team, &tasks, &heads, &roles, &owners, &decided])
            .await?;
    }
    if !w.opened.is_empty() {
        let (events, tasks): (Vec<String>, Vec<String>) = w
            .opened
            .iter()
            .map(|(e, t)| (e.to_string(), t.to_string()))
            .unzip();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO conflicts (team, event, task)
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[])",
            )
            .await?;
        tx.execute(&stmt, &[&team, &events, &tasks]).await?;
    }
    if !w.resolved.is_empty() {
        let (conflicts, by): (Vec<String>, Vec<String>) = w
            .resolved
            .iter()
            .map(|(c, e)| (c.to_string(), e.to_string()))
            .unzip();
        let stmt = tx
            .prepare_cached(
                "UPDATE conflicts AS c SET resolved_by = r.by
                 FROM unnest($2::text[], $3::text[]) AS r (event, by)
                 WHERE c.team = $1 AND c.event = r.event",
            )
            .await?;
        tx.execute(&stmt, &[&team, &conflicts, &by]).await?;
    }
    if !w.tags.is_empty() {
        let (entities, counters): (Vec<&str>, Vec<i64>) =
            w.tags.iter().map(|(e, c)| (e.as_str(), to_i64(*c))).unzip();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO tags (team, entity, counter)
                 SELECT $1::text, * FROM unnest($2::text[], $3::bigint[])
                 ON CONFLICT (team, entity) DO UPDATE SET counter = greatest(tags.counter, excluded.counter)",
            )
            .await?;
        tx.execute(&stmt, &[&team, &entities, &counters]).await?;
    }
    if !w.versions.is_empty() {
        let mut cols: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
        for (hash, blueprint, canonical, source) in &w.versions {
            cols.0.push(hash);
            cols.1.push(blueprint);
            cols.2.push(canonical);
            cols.3.push(source);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO versions (team, hash, blueprint, canonical, source)
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&stmt, &[&team, &cols.0, &cols.1, &cols.2, &cols.3])
            .await?;
    }
    if !w.channels.is_empty() {
        let mut cols: (Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
        for ((blueprint, stage), hash) in &w.channels {
            cols.0.push(blueprint);
            cols.1.push(stage);
            cols.2.push(hash);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO channels (team, blueprint, stage, hash)
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[])
                 ON CONFLICT (team, blueprint, stage) DO UPDATE SET hash = excluded.hash",
            )
            .await?;
        tx.execute(&stmt, &[&team, &cols.0, &cols.1, &cols.2])
            .await?;
    }
    if !w.claims.is_empty() {
        let (entities, devices): (Vec<&str>, Vec<String>) = w
            .claims
            .iter()
            .map(|(e, d)| (e.as_str(), d.to_string()))
            .unzip();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO claims (team, entity, device)
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[])",
            )
            .await?;
        tx.execute(&stmt, &[&team, &entities, &devices]).await?;
    }
    let rows = &judged.rows;
    let hub_seqs: Vec<i64> = rows.iter().map(|r| to_i64(r.hub_seq)).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| to_i64(r.seq)).collect();
    let entities: Vec<&str> = rows.iter().map(|r| r.entity.as_str()).collect();
    let verdicts: Vec<&str> = rows.iter().map(|r| r.verdict.as_str()).collect();
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO events (team, hub_seq, id, device, seq, entity, verdict, body)
             SELECT $1::text, r.hub_seq, r.id, $2::text, r.seq, r.entity, r.verdict, r.body
             FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[])
               AS r (hub_seq, id, seq, entity, verdict, body)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &team, &device, &hub_seqs, &ids, &seqs, &entities, &verdicts, &bodies,
        ],
    )
    .await
    .map_err(|err| {
        if unique_violation(&err) {
            // Only a push racing this one from another team gets here (ids held before were
            // refused while judging); name the event the index refused, if it says.
            let detail = err
                .as_db_error()
                .and_then(|d| d.detail())
                .unwrap_or_default();
            let id = judged
                .rows
                .iter()
                .find(|r| detail.contains(&r.id))
                .or(judged.rows.first())
                .map(|r| r.id.clone())
                .unwrap_or_default();
            HubError::Conflict(format!("event {id} is already held"))
        } else {
            err.into()
        }
    })?;
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
        let stmt = client
            .prepare_cached(
                "SELECT id, team, member FROM devices WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .await?;
        let Some(row) = client.query_opt(&stmt, &[&token_hash]).await? else {
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
        let stmt = tx
            .prepare_cached(
                "SELECT last_seq, revoked_at FROM devices WHERE id = $1 AND team = $2 FOR UPDATE",
            )
            .await?;
        let row = tx.query_opt(&stmt, &[&device, &p.team]).await?;
        let device_row = row.map(|r| (r.get::<_, i64>(0), r.get::<_, Option<i64>>(1)));
        let (last, skip) = match plan_push(device_row, &events)? {
            Ok(planned) => planned,
            Err(gap) => return Ok(gap),
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
        let mut results = Vec::new();
        if !fresh.is_empty() {
            let n = to_i64(fresh.len() as u64);
            let hub_seqs: Vec<u64> = if self.planted == Planted::NaiveSequence {
                let mut seqs = Vec::with_capacity(fresh.len());
                for _ in fresh {
                    let v: i64 = tx
                        .query_one("SELECT nextval('naive_hub_seq')", &[])
                        .await?
                        .get(0);
                    seqs.push(to_u64(v));
                }
                seqs
            } else {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE teams SET next_seq = next_seq + $2 WHERE name = $1 RETURNING next_seq",
                    )
                    .await?;
                let end: i64 = tx.query_one(&stmt, &[&p.team, &n]).await?.get(0);
                (to_u64(end - n) + 1..=to_u64(end)).collect()
            };
            let heads = read_heads(&tx, &p.team, &Wanted::of(fresh)).await?;
            let judged = judge_batch(self.planted, p, fresh, &hub_seqs, heads)?;
            write_batch(&tx, &p.team, &device, &judged).await?;
            results = judged.results;
            let through = fresh.last().map_or(last, |e| e.seq);
            let stmt = tx
                .prepare_cached("UPDATE devices SET last_seq = $2 WHERE id = $1")
                .await?;
            tx.execute(&stmt, &[&device, &to_i64(through)]).await?;
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
        let stmt = client
            .prepare_cached("SELECT epoch, next_seq FROM teams WHERE name = $1")
            .await?;
        let Some(row) = client.query_opt(&stmt, &[&team]).await? else {
            return Err(HubError::NotFound(format!("no team `{team}`")));
        };
        let (epoch, head): (i64, i64) = (row.get(0), row.get(1));
        let stmt = client
            .prepare_cached(
                "SELECT hub_seq, verdict, body FROM events WHERE team = $1 AND hub_seq > $2
                 ORDER BY hub_seq LIMIT $3",
            )
            .await?;
        let rows = client
            .query(&stmt, &[&team, &to_i64(after), &(i64::from(limit) + 1)])
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
    async fn stats(&self) -> Result<Vec<super::TeamStats>> {
        let client = self.pool.get().await?;
        Ok(client
            .query(super::STATS_SQL, &[])
            .await?
            .into_iter()
            .map(|r| super::TeamStats {
                team: r.get(0),
                events: to_u64(r.get(1)),
                devices: to_u64(r.get(2)),
                conflicts: to_u64(r.get(3)),
                open_conflicts: to_u64(r.get(4)),
            })
            .collect())
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
