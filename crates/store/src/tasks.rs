//! Inbox tasks: a projection of review events, and the compare-and-set that makes sure a task
//! is decided once.

use processops_core::journal::{Action, Decision, Event, Task};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use uuid::Uuid;

use crate::runs::append_events;
use crate::{Result, RunStatus, Store, StoreError, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Decided,
}

/// A task as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub blueprint_id: String,
    pub version: String,
    pub status: TaskStatus,
    pub created_at: i64,
    pub due_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub decision: Option<Decision>,
    pub task: Task,
}

/// Filters for the inbox.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub blueprint_id: Option<String>,
    pub role: Option<String>,
    pub run_id: Option<Uuid>,
    pub limit: Option<u32>,
}

pub(crate) fn insert(conn: &Connection, run_id: &str, task: &Task, now: i64) -> Result<()> {
    let (blueprint_id, version): (String, String) = conn
        .prepare_cached("SELECT blueprint_id, version FROM runs WHERE id = ?1")?
        .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    conn.prepare_cached(
        "INSERT INTO tasks (id, run_id, node, visit, blueprint_id, version, title, draft, role, users, status, created_at, due_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13)",
    )?
    .execute(params![
        task.id.to_string(),
        run_id,
        task.node,
        task.visit,
        blueprint_id,
        version,
        task.title,
        task.draft,
        task.role,
        serde_json::to_string(&task.users)?,
        now,
        task.due_at,
        serde_json::to_string(task)?,
    ])?;
    Ok(())
}

const TASK_COLUMNS: &str = "id, run_id, blueprint_id, version, status, created_at, due_at, decided_at, decision, body, role";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(TaskRow, String)> {
    let id: String = r.get(0)?;
    let run_id: String = r.get(1)?;
    let status: String = r.get(4)?;
    let decision: Option<String> = r.get(8)?;
    let body: String = r.get(9)?;
    let role: String = r.get(10)?;
    let task: Task = serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok((
        TaskRow {
            id: Uuid::parse_str(&id).unwrap_or_default(),
            run_id: Uuid::parse_str(&run_id).unwrap_or_default(),
            blueprint_id: r.get(2)?,
            version: r.get(3)?,
            status: if status == "pending" {
                TaskStatus::Pending
            } else {
                TaskStatus::Decided
            },
            created_at: r.get(5)?,
            due_at: r.get(6)?,
            decided_at: r.get(7)?,
            decision: decision.and_then(|d| serde_json::from_str(&d).ok()),
            task,
        },
        role,
    ))
}

fn with_current_role((mut row, role): (TaskRow, String)) -> TaskRow {
    // The body keeps the role the task was created with; escalation moves the column.
    row.task.role = role;
    row
}

impl Store {
    /// Record a decision, unless the task was decided already: exactly one decision wins.
    /// Returns the run to resume.
    pub async fn decide(&self, task_id: Uuid, decision: Decision) -> Result<Uuid> {
        self.write(move |conn| {
            let id = task_id.to_string();
            let now = now_ms();
            let run: Option<String> = conn
                .prepare_cached(
                    "UPDATE tasks SET status = 'decided', decided_at = ?1, decided_by = ?2, decision = ?3
                     WHERE id = ?4 AND status = 'pending' RETURNING run_id",
                )?
                .query_row(params![now, decision.by, serde_json::to_string(&decision)?, id], |r| r.get(0))
                .optional()?;
            let Some(run) = run else { return Err(already_decided(conn, &id)?) };
            append_events(conn, &run, &[Event::DecisionRecorded { task: task_id, decision }], Some(RunStatus::Running))?;
            Ok(Uuid::parse_str(&run).unwrap_or_default())
        })
        .await
    }

    /// Move a pending task to another role (escalation without a dedicated edge).
    pub async fn escalate(&self, task_id: Uuid, role: String, by: String) -> Result<Uuid> {
        self.write(move |conn| {
            let id = task_id.to_string();
            let run: Option<String> = conn
                .prepare_cached("UPDATE tasks SET role = ?1 WHERE id = ?2 AND status = 'pending' RETURNING run_id")?
                .query_row(params![role, id], |r| r.get(0))
                .optional()?;
            let Some(run) = run else { return Err(already_decided(conn, &id)?) };
            append_events(conn, &run, &[Event::TaskEscalated { task: task_id, role, by }], None)?;
            Ok(Uuid::parse_str(&run).unwrap_or_default())
        })
        .await
    }

    pub fn task(&self, id: Uuid) -> Result<Option<TaskRow>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?
                .query_row([id.to_string()], task_row)
                .optional()?
                .map(with_current_role))
        })
    }

    /// Inbox listing: pending tasks by due time (then age); decided ones newest first.
    pub fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRow>> {
        self.read(|conn| {
            let status = filter.status.map(|s| match s {
                TaskStatus::Pending => "pending",
                TaskStatus::Decided => "decided",
            });
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks
                 WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR blueprint_id = ?2)
                   AND (?3 IS NULL OR role = ?3) AND (?4 IS NULL OR run_id = ?4)
                 ORDER BY status = 'decided', due_at IS NULL, due_at, created_at LIMIT ?5"
            ))?;
            let rows = stmt
                .query_map(
                    params![
                        status,
                        filter.blueprint_id,
                        filter.role,
                        filter.run_id.map(|u| u.to_string()),
                        filter.limit.unwrap_or(100)
                    ],
                    task_row,
                )?
                .map(|r| r.map(with_current_role))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Find a task by a unique start or end of its id.
    pub fn resolve_task_prefix(&self, prefix: &str) -> Result<Vec<Uuid>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id FROM tasks WHERE id LIKE ?1 || '%' ESCAPE '\\' OR id LIKE '%' || ?1 ESCAPE '\\' ORDER BY id LIMIT 2")?;
            let ids = stmt
                .query_map([crate::like_literal(&prefix.to_ascii_lowercase())], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| Uuid::parse_str(&s).ok()))
                .collect();
            Ok(ids)
        })
    }
}

fn already_decided(conn: &Connection, id: &str) -> Result<StoreError> {
    let decided: Option<(Option<String>, Option<String>)> = conn
        .prepare_cached("SELECT decided_by, decision FROM tasks WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match decided {
        None => StoreError::TaskNotFound(id.to_owned()),
        Some((by, decision)) => {
            let action = decision
                .and_then(|d| serde_json::from_str::<Decision>(&d).ok())
                .map_or(Action::Approve.as_str(), |d| d.action.as_str());
            StoreError::AlreadyDecided {
                task: id.to_owned(),
                by: by.unwrap_or_else(|| "someone".into()),
                action: action.to_owned(),
            }
        }
    })
}
