//! Runs and their journal.

use processops_core::journal::{Event, FinalStatus};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use uuid::Uuid;

use crate::tasks;
use crate::{Result, Store, StoreError, now_ms};

/// Where a run stands, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are executing (or were, when the engine stopped).
    Running,
    /// Parked until a human decides.
    Waiting,
    /// A step failed; someone must retry it.
    Attention,
    Completed,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Attention => "attention",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "waiting" => Self::Waiting,
            "attention" => Self::Attention,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: Uuid,
    pub blueprint_id: String,
    pub version: String,
    pub trigger_id: String,
    pub status: RunStatus,
    pub created_at: i64,
    pub updated_at: i64,
    pub error: Option<String>,
    pub events: u64,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    pub seq: u64,
    /// Unix milliseconds.
    pub at: i64,
    pub event: Event,
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: Uuid,
    pub blueprint_id: String,
    pub version: String,
    pub trigger_id: String,
    /// Runs with the same key start once (webhook idempotency keys, dropped files, cron fires).
    pub dedupe_key: Option<String>,
    /// The `RunStarted` event (and anything to commit with it).
    pub events: Vec<Event>,
}

/// What `start_run` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started(Uuid),
    /// A run with the same dedupe key exists already.
    Duplicate(Uuid),
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub blueprint_id: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: Option<u32>,
}

const RUN_COLUMNS: &str =
    "id, blueprint_id, version, trigger_id, status, created_at, updated_at, error, last_seq";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let id: String = r.get(0)?;
    let status: String = r.get(4)?;
    Ok(RunRow {
        id: Uuid::parse_str(&id).unwrap_or_default(),
        blueprint_id: r.get(1)?,
        version: r.get(2)?,
        trigger_id: r.get(3)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        error: r.get(7)?,
        events: r.get::<_, i64>(8)?.try_into().unwrap_or(0),
    })
}

/// Append events to a run's journal and keep the projections in step. Returns the last seq.
pub(crate) fn append_events(
    conn: &Connection,
    run_id: &str,
    events: &[Event],
    status: Option<RunStatus>,
) -> Result<u64> {
    let now = now_ms();
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: Option<i64> = conn
        .prepare_cached(
            "UPDATE runs SET last_seq = last_seq + ?1, updated_at = ?2, status = coalesce(?3, status)
             WHERE id = ?4 RETURNING last_seq",
        )?
        .query_row(params![n, now, status.map(RunStatus::as_str), run_id], |r| r.get(0))
        .optional()?;
    let last = last.ok_or_else(|| StoreError::RunNotFound(run_id.to_owned()))?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO journal (run_id, seq, at, kind, node, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, event) in events.iter().enumerate() {
        let seq = last - n + 1 + i64::try_from(i).unwrap_or(0);
        insert.execute(params![
            run_id,
            seq,
            now,
            event.kind(),
            event.node(),
            serde_json::to_string(event)?
        ])?;
        project(conn, run_id, event, now)?;
    }
    Ok(u64::try_from(last).unwrap_or(0))
}

/// Keep the `runs` and `tasks` rows, and the metrics' counters, in step with an event.
fn project(conn: &Connection, run_id: &str, event: &Event, now: i64) -> Result<()> {
    project_rows(conn, run_id, event, now)?;
    crate::metrics::observe(conn, run_id, event, now)
}

fn project_rows(conn: &Connection, run_id: &str, event: &Event, now: i64) -> Result<()> {
    match event {
        Event::TaskCreated { task } => tasks::insert(conn, run_id, task, now),
        Event::RunFinished { status, error } => {
            let s = match status {
                FinalStatus::Completed => RunStatus::Completed,
                FinalStatus::Failed => RunStatus::Failed,
            };
            conn.prepare_cached("UPDATE runs SET status = ?1, error = ?2 WHERE id = ?3")?
                .execute(params![s.as_str(), error, run_id])?;
            Ok(())
        }
        Event::NodeFailed { node, error, .. } => {
            conn.prepare_cached("UPDATE runs SET status = 'attention', error = ?1 WHERE id = ?2")?
                .execute(params![format!("{node}: {error}"), run_id])?;
            Ok(())
        }
        Event::RunRetried { .. } => {
            conn.prepare_cached("UPDATE runs SET status = 'running', error = NULL WHERE id = ?1")?
                .execute(params![run_id])?;
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Store {
    /// Create a run with its first events, unless its dedupe key was seen before.
    pub async fn start_run(&self, run: NewRun) -> Result<StartOutcome> {
        self.write(move |conn| {
            if let Some(key) = &run.dedupe_key {
                let existing: Option<String> = conn
                    .prepare_cached("SELECT id FROM runs WHERE dedupe_key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?;
                if let Some(id) = existing {
                    return Ok(StartOutcome::Duplicate(Uuid::parse_str(&id).unwrap_or_default()));
                }
            }
            let now = now_ms();
            let id = run.id.to_string();
            conn.prepare_cached(
                "INSERT INTO runs (id, blueprint_id, version, trigger_id, dedupe_key, status, last_seq, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', 0, ?6, ?6)",
            )?
            .execute(params![id, run.blueprint_id, run.version, run.trigger_id, run.dedupe_key, now])?;
            append_events(conn, &id, &run.events, None)?;
            Ok(StartOutcome::Started(run.id))
        })
        .await
    }

    /// Append events to a run's journal; `status` updates the listed status in the same commit.
    pub async fn append(
        &self,
        run_id: Uuid,
        events: Vec<Event>,
        status: Option<RunStatus>,
    ) -> Result<u64> {
        self.write(move |conn| append_events(conn, &run_id.to_string(), &events, status))
            .await
    }

    /// A run's row and whole journal.
    pub fn load_run(&self, run_id: Uuid) -> Result<Option<(RunRow, Vec<JournalEntry>)>> {
        self.read(|conn| {
            let id = run_id.to_string();
            let row = conn
                .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
                .query_row([&id], run_row)
                .optional()?;
            let Some(row) = row else { return Ok(None) };
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at, body FROM journal WHERE run_id = ?1 ORDER BY seq",
            )?;
            let entries = stmt
                .query_map([&id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .map(|r| {
                    let (seq, at, body) = r?;
                    Ok(JournalEntry {
                        seq: u64::try_from(seq).unwrap_or(0),
                        at,
                        event: serde_json::from_str(&body)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some((row, entries)))
        })
    }

    /// Runs, newest first.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR blueprint_id = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(
                    params![
                        filter.blueprint_id,
                        filter.status.map(RunStatus::as_str),
                        filter.limit.unwrap_or(100)
                    ],
                    run_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Runs the engine must pick up again after a restart.
    pub fn runs_to_resume(&self) -> Result<Vec<Uuid>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM runs WHERE status = 'running' ORDER BY created_at",
            )?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| Uuid::parse_str(&s).ok()))
                .collect();
            Ok(ids)
        })
    }

    /// Count runs by status (for the CLI summary and metrics).
    pub fn count_runs(&self, status: RunStatus) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn
                .prepare_cached("SELECT count(*) FROM runs WHERE status = ?1")?
                .query_row([status.as_str()], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Blueprint versions whose hash starts with `prefix` (at most two: enough to tell a unique
    /// prefix from an ambiguous one).
    pub fn resolve_version_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT hash FROM blueprint_versions WHERE hash LIKE ?1 || '%' ESCAPE '\\' ORDER BY hash LIMIT 2")?;
            let hashes = stmt
                .query_map([crate::like_literal(&prefix.to_ascii_lowercase())], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(hashes)
        })
    }

    /// Find a run by a unique start or end of its id (as typed by a person).
    pub fn resolve_run_prefix(&self, prefix: &str) -> Result<Vec<Uuid>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id FROM runs WHERE id LIKE ?1 || '%' ESCAPE '\\' OR id LIKE '%' || ?1 ESCAPE '\\' ORDER BY id LIMIT 2")?;
            let ids = stmt
                .query_map([crate::like_literal(&prefix.to_ascii_lowercase())], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| Uuid::parse_str(&s).ok()))
                .collect();
            Ok(ids)
        })
    }
}
