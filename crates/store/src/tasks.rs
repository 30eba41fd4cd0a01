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
    pub timers: Timers,
    /// For an edit decision: the unified diff from the draft to the edited text.
    pub diff: Option<String>,
    /// Who holds the task, if anyone.
    pub claimed_by: Option<String>,
    /// With a hub: where the task's decision stands there.
    pub sync: Option<SyncMark>,
    /// With a hub: the device whose engine owns the task's run, when it is not this one.
    pub owner: Option<Uuid>,
}

/// Where a task's decision stands on the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMark {
    /// Decided here; the hub has not judged it yet (its output waits).
    Pending,
    /// The hub accepted a final decision.
    Accepted,
    /// A decision on it lost on the hub (it came late, or on a task that had changed).
    Conflict,
}

impl SyncMark {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "accepted" => Some(Self::Accepted),
            "conflict" => Some(Self::Conflict),
            _ => None,
        }
    }
}

/// A recorded decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub run: Uuid,
    /// With a hub the decision waits for the hub's verdict: the run goes on only once it is
    /// accepted (and may go on with another person's decision that got there first).
    pub pending_sync: bool,
}

/// A task's SLA timers (Unix milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timers {
    pub remind_at: Option<i64>,
    pub reminded_at: Option<i64>,
    pub breached_at: Option<i64>,
    /// The SLA ran out and the policy left the task for a person to look at.
    pub attention: bool,
}

/// What one approval towards a quorum did.
#[derive(Debug, Clone, PartialEq)]
pub enum Vote {
    /// Counted; the task waits for more approvals.
    Counted {
        approvals: u32,
        needed: u32,
        run: Uuid,
    },
    /// It completed the quorum: the task is approved (by everyone who voted) and the run can
    /// go on (with a hub, once the hub accepted it: `pending_sync`).
    Decided {
        run: Uuid,
        decision: Decision,
        pending_sync: bool,
    },
}

/// A timer that came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    Remind,
    Breach,
}

/// What a breached SLA does, decided by the engine from the review's policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Breach {
    /// Move to `role`, due again at `due_at`.
    Escalate { role: String, due_at: i64 },
    /// Decide by policy.
    Decide(Decision),
    /// Leave it pending, flagged.
    Attention,
}

/// Filters for the inbox.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub blueprint_id: Option<String>,
    pub version: Option<String>,
    pub role: Option<String>,
    /// Claimed by this person.
    pub assignee: Option<String>,
    pub run_id: Option<Uuid>,
    /// Due at or before (Unix ms).
    pub due_before: Option<i64>,
    /// Words to find in the title or the draft.
    pub text: Option<String>,
    pub sort: TaskSort,
    pub limit: Option<u32>,
    /// Leave out each task's draft and context (the inbox list): SQLite extracts the few
    /// fields a list shows, so a 100,000-task listing does not parse every context.
    pub summary: bool,
    /// Leave out tasks of these blueprint versions (pilots whose cohort the viewer is not in).
    pub exclude_versions: Vec<String>,
}

/// Inbox order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSort {
    /// Pending first, soonest due first, then oldest (the inbox default).
    #[default]
    Due,
    Newest,
    Oldest,
}

/// A new task of this engine's run; with a hub it is published in the same transaction.
pub(crate) fn insert(conn: &Connection, run_id: &str, task: &Task, now: i64) -> Result<()> {
    let (blueprint_id, version): (String, String) = conn
        .prepare_cached("SELECT blueprint_id, version FROM runs WHERE id = ?1")?
        .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    insert_row(conn, run_id, &blueprint_id, &version, task, now, None)?;
    crate::sync::publish_task_in(conn, run_id, &blueprint_id, &version, task)?;
    Ok(())
}

/// The inbox row of a task: this engine's (`owner` None) or another engine's, from the hub.
pub(crate) fn insert_row(
    conn: &Connection,
    run_id: &str,
    blueprint_id: &str,
    version: &str,
    task: &Task,
    now: i64,
    owner: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tasks (id, run_id, node, visit, blueprint_id, version, title, draft, role, users, status, created_at, due_at, body, remind_at, attention, owner)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13, ?14, ?15, ?16)",
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
        task.remind_at,
        // A draft from a step whose structured output failed every agent and repair.
        task.context.get("needs_attention").is_some(),
        owner,
    ])?;
    conn.prepare_cached("INSERT INTO tasks_fts (task_id, title, draft) VALUES (?1, ?2, ?3)")?
        .execute(params![task.id.to_string(), task.title, task.draft])?;
    Ok(())
}

const TASK_COLUMNS: &str = "id, run_id, blueprint_id, version, status, created_at, due_at, decided_at, decision, body, role, remind_at, reminded_at, breached_at, attention, diff, claimed_by, sync, owner";

/// [`TASK_COLUMNS`] with a body reduced to what a list shows: an empty draft, no context.
const TASK_SUMMARY_COLUMNS: &str = "id, run_id, blueprint_id, version, status, created_at, due_at, decided_at, decision, \
json_object('id', json_extract(body, '$.id'), 'node', json_extract(body, '$.node'), 'visit', json_extract(body, '$.visit'), \
'title', json_extract(body, '$.title'), 'role', json_extract(body, '$.role'), 'draft', '', 'context', json('null')), \
role, remind_at, reminded_at, breached_at, attention, diff, claimed_by, sync, owner";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(TaskRow, String)> {
    let id: String = r.get(0)?;
    let run_id: String = r.get(1)?;
    let status: String = r.get(4)?;
    let decision: Option<String> = r.get(8)?;
    let body: String = r.get(9)?;
    let role: String = r.get(10)?;
    let timers = Timers {
        remind_at: r.get(11)?,
        reminded_at: r.get(12)?,
        breached_at: r.get(13)?,
        attention: r.get::<_, i64>(14)? != 0,
    };
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
            timers,
            diff: r.get(15)?,
            claimed_by: r.get(16)?,
            sync: r
                .get::<_, Option<String>>(17)?
                .as_deref()
                .and_then(SyncMark::parse),
            owner: r
                .get::<_, Option<String>>(18)?
                .and_then(|o| Uuid::parse_str(&o).ok()),
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
    /// Returns the run to resume (with a hub: once the hub accepts).
    pub async fn decide(&self, task_id: Uuid, decision: Decision) -> Result<Decided> {
        self.write(move |conn| decide_in(conn, task_id, decision, false))
            .await
    }

    /// Record one approval towards a quorum of `needed`. When it completes the quorum, the
    /// task is decided (approved by everyone who voted) in the same commit.
    pub async fn vote(&self, task_id: Uuid, decision: Decision, needed: u32) -> Result<Vote> {
        self.write(move |conn| {
            let id = task_id.to_string();
            // The task must be open, and not held by someone else.
            let open: Option<Option<String>> = conn
                .prepare_cached(
                    "SELECT claimed_by FROM tasks WHERE id = ?1 AND status = 'pending'",
                )?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            match open {
                None => return Err(already_decided(conn, &id)?),
                Some(Some(holder)) if holder != decision.by => {
                    return Err(StoreError::Claimed {
                        task: id,
                        by: holder,
                    });
                }
                Some(_) => {}
            }
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO votes (task_id, by, at, body, seq)
                     VALUES (?1, ?2, ?3, ?4, (SELECT count(*) + 1 FROM votes WHERE task_id = ?1))",
                )?
                .execute(params![
                    id,
                    decision.by,
                    now_ms(),
                    serde_json::to_string(&decision)?
                ])?;
            if inserted == 0 {
                return Err(StoreError::AlreadyVoted {
                    task: id,
                    by: decision.by,
                });
            }
            let run: String = conn
                .prepare_cached("SELECT run_id FROM tasks WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))?;
            crate::audit::record_in(
                conn,
                &decision.by,
                "task.voted",
                &id,
                None,
                Some(&serde_json::json!({
                    "action": decision.action.as_str(),
                    "reason": decision.reason,
                    "needed": needed,
                })),
            )?;
            append_events(
                conn,
                &run,
                &[Event::VoteRecorded {
                    task: task_id,
                    decision,
                }],
                None,
            )?;
            let voters: Vec<String> = conn
                .prepare_cached("SELECT by FROM votes WHERE task_id = ?1 ORDER BY seq, at, by")?
                .query_map([&id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let count = u32::try_from(voters.len()).unwrap_or(u32::MAX);
            if count < needed {
                return Ok(Vote::Counted {
                    approvals: count,
                    needed,
                    run: Uuid::parse_str(&run).unwrap_or_default(),
                });
            }
            let final_decision = Decision {
                action: processops_core::journal::Action::Approve,
                by: voters.join(" + "),
                text: None,
                reason: Some(format!("quorum of {needed} reached")),
            };
            let decided = decide_in(conn, task_id, final_decision.clone(), true)?;
            Ok(Vote::Decided {
                run: decided.run,
                decision: final_decision,
                pending_sync: decided.pending_sync,
            })
        })
        .await
    }

    /// The approvals a task has collected so far, oldest first.
    pub fn votes(&self, task_id: Uuid) -> Result<Vec<Decision>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM votes WHERE task_id = ?1 ORDER BY seq, at, by")?;
            let bodies: Vec<String> = stmt
                .query_map([task_id.to_string()], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            bodies
                .iter()
                .map(|b| Ok(serde_json::from_str(b)?))
                .collect()
        })
    }

    /// Move a pending task to another role (escalation without a dedicated edge); `due_at`
    /// re-arms its SLA timers for the new role.
    pub async fn escalate(
        &self,
        task_id: Uuid,
        role: String,
        by: String,
        due_at: Option<i64>,
    ) -> Result<Uuid> {
        self.write(move |conn| escalate_in(conn, task_id, role, by, due_at))
            .await
    }

    /// Pending tasks whose reminder or SLA came due by `now`, oldest first.
    pub fn due_timers(&self, now: i64, limit: u32) -> Result<Vec<(TimerKind, TaskRow)>> {
        self.read(|conn| {
            let mut out = Vec::new();
            for (kind, sql) in [
                // Another engine's tasks (from the hub) run their timers there.
                (TimerKind::Remind, "status = 'pending' AND remind_at <= ?1 AND reminded_at IS NULL AND owner IS NULL ORDER BY remind_at"),
                (TimerKind::Breach, "status = 'pending' AND due_at <= ?1 AND breached_at IS NULL AND owner IS NULL ORDER BY due_at"),
            ] {
                let mut stmt = conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE {sql} LIMIT ?2"))?;
                let rows = stmt.query_map(params![now, limit], task_row)?.map(|r| r.map(with_current_role)).collect::<rusqlite::Result<Vec<_>>>()?;
                out.extend(rows.into_iter().map(|r| (kind, r)));
            }
            Ok(out)
        })
    }

    /// Record that a task's reminder went out. `None` when it already had (exactly once).
    pub async fn remind(&self, task_id: Uuid, now: i64) -> Result<Option<Uuid>> {
        self.write(move |conn| {
            let run: Option<String> = conn
                .prepare_cached(
                    "UPDATE tasks SET reminded_at = ?1
                     WHERE id = ?2 AND status = 'pending' AND reminded_at IS NULL AND remind_at <= ?1 RETURNING run_id",
                )?
                .query_row(params![now, task_id.to_string()], |r| r.get(0))
                .optional()?;
            let Some(run) = run else { return Ok(None) };
            append_events(conn, &run, &[Event::TaskReminded { task: task_id }], None)?;
            Ok(Some(Uuid::parse_str(&run).unwrap_or_default()))
        })
        .await
    }

    /// Apply a breached SLA's policy, once: a second call for the same breach (after a
    /// restart, or from a second engine) is `None`.
    /// Returns the run and the event that changes what its driver does next, if any.
    pub async fn breach(
        &self,
        task_id: Uuid,
        now: i64,
        breach: Breach,
    ) -> Result<Option<(Uuid, Option<Event>)>> {
        self.write(move |conn| {
            let id = task_id.to_string();
            let attention = matches!(breach, Breach::Attention);
            let run: Option<String> = conn
                .prepare_cached(
                    "UPDATE tasks SET breached_at = ?1, attention = ?2
                     WHERE id = ?3 AND status = 'pending' AND breached_at IS NULL AND due_at <= ?1 RETURNING run_id",
                )?
                .query_row(params![now, attention, id], |r| r.get(0))
                .optional()?;
            let Some(run) = run else { return Ok(None) };
            let run_id = Uuid::parse_str(&run).unwrap_or_default();
            let action = match &breach {
                Breach::Escalate { role, .. } => format!("escalated to {role}"),
                Breach::Decide(d) => format!("{} by policy", d.action.as_str()),
                Breach::Attention => "needs attention".to_owned(),
            };
            append_events(conn, &run, &[Event::TaskBreached { task: task_id, action }], None)?;
            let follow_up = match breach {
                Breach::Escalate { role, due_at } => {
                    escalate_in(conn, task_id, role.clone(), "sla".into(), Some(due_at))?;
                    Some(Event::TaskEscalated { task: task_id, role, by: "sla".into(), due_at: Some(due_at) })
                }
                Breach::Decide(decision) => {
                    // With a hub, the run goes on when the hub accepts the policy's decision.
                    let decided = decide_in(conn, task_id, decision.clone(), true)?;
                    (!decided.pending_sync).then_some(Event::DecisionRecorded { task: task_id, decision })
                }
                Breach::Attention => None,
            };
            Ok(Some((run_id, follow_up)))
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
        // The WHERE clause is built from the filters actually set, so SQLite can use the
        // index that fits (a generic `?1 IS NULL OR col = ?1` defeats the planner).
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut push = |sql: &'static str, v: rusqlite::types::Value| {
            conditions.push(sql);
            values.push(v);
        };
        use rusqlite::types::Value as V;
        if let Some(s) = filter.status {
            push(
                "status = ?",
                V::Text(
                    if s == TaskStatus::Pending {
                        "pending"
                    } else {
                        "decided"
                    }
                    .into(),
                ),
            );
        }
        if let Some(b) = &filter.blueprint_id {
            push("blueprint_id = ?", V::Text(b.clone()));
        }
        if let Some(v) = &filter.version {
            push("version = ?", V::Text(v.clone()));
        }
        if let Some(r) = &filter.role {
            push("role = ?", V::Text(r.clone()));
        }
        if !filter.exclude_versions.is_empty() {
            push(
                "version NOT IN (SELECT value FROM json_each(?))",
                V::Text(serde_json::to_string(&filter.exclude_versions)?),
            );
        }
        if let Some(a) = &filter.assignee {
            push("claimed_by = ?", V::Text(a.clone()));
        }
        if let Some(r) = filter.run_id {
            push("run_id = ?", V::Text(r.to_string()));
        }
        if let Some(d) = filter.due_before {
            push("due_at <= ?", V::Integer(d));
        }
        if let Some(text) = &filter.text {
            let Some(q) = crate::knowledge::to_fts_all_words(text) else {
                return Ok(Vec::new());
            };
            push(
                "id IN (SELECT task_id FROM tasks_fts WHERE tasks_fts MATCH ?)",
                V::Text(q),
            );
        }
        let order = match filter.sort {
            // With a status filter the order is exactly an index's (see migration 0004).
            TaskSort::Due if filter.status.is_some() => "due_key, created_at",
            TaskSort::Due => "status = 'decided', due_key, created_at",
            TaskSort::Newest => "created_at DESC",
            TaskSort::Oldest => "created_at",
        };
        let columns = if filter.summary {
            TASK_SUMMARY_COLUMNS
        } else {
            TASK_COLUMNS
        };
        let sql = format!(
            "SELECT {columns} FROM tasks {} {} ORDER BY {order} LIMIT ?",
            if conditions.is_empty() { "" } else { "WHERE" },
            conditions.join(" AND ")
        );
        values.push(V::Integer(i64::from(filter.limit.unwrap_or(100))));
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values.iter()), task_row)?
                .map(|r| r.map(with_current_role))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Take a pending task so others do not work on it. Taking it again is fine; taking one
    /// someone else holds is refused with their name.
    pub async fn claim(&self, task_id: Uuid, by: String) -> Result<()> {
        self.write(move |conn| {
            let id = task_id.to_string();
            let n = conn
                .prepare_cached(
                    "UPDATE tasks SET claimed_by = ?1, claimed_at = ?2
                     WHERE id = ?3 AND status = 'pending' AND (claimed_by IS NULL OR claimed_by = ?1)",
                )?
                .execute(params![by, now_ms(), id])?;
            if n == 1 { Ok(()) } else { Err(claim_refusal(conn, &id)?) }
        })
        .await
    }

    /// Give a task back. Only its holder may, unless `force` (a lead reassigning work).
    pub async fn unclaim(&self, task_id: Uuid, by: String, force: bool) -> Result<()> {
        self.write(move |conn| {
            let id = task_id.to_string();
            let n = conn
                .prepare_cached(
                    "UPDATE tasks SET claimed_by = NULL, claimed_at = NULL
                     WHERE id = ?1 AND status = 'pending' AND (claimed_by = ?2 OR ?3 OR claimed_by IS NULL)",
                )?
                .execute(params![id, by, force])?;
            if n == 1 { Ok(()) } else { Err(claim_refusal(conn, &id)?) }
        })
        .await
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

/// `policy` decisions (a breached SLA) go through claims; people's decisions do not.
/// With a hub the decision is recorded here and sent to the hub; the run is told only once
/// the hub accepts it (see `sync::apply_in`).
fn decide_in(
    conn: &Connection,
    task_id: Uuid,
    decision: Decision,
    policy: bool,
) -> Result<Decided> {
    let id = task_id.to_string();
    let now = now_ms();
    let run: Option<(String, String)> = conn
        .prepare_cached(
            "UPDATE tasks SET status = 'decided', decided_at = ?1, decided_by = ?2, decision = ?3
             WHERE id = ?4 AND status = 'pending' AND (?5 OR claimed_by IS NULL OR claimed_by = ?2) RETURNING run_id, draft",
        )?
        .query_row(params![now, decision.by, serde_json::to_string(&decision)?, id, policy], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .optional()?;
    let Some((run, draft)) = run else {
        return Err(claim_refusal(conn, &id)?);
    };
    record_diff(conn, &id, &draft, &decision)?;
    crate::audit::record_in(
        conn,
        &decision.by,
        "task.decided",
        &id,
        Some(&serde_json::json!({ "status": "pending" })),
        Some(&serde_json::json!({
            "status": "decided",
            "action": decision.action.as_str(),
            "text": decision.text,
            "reason": decision.reason,
        })),
    )?;
    let run_id = Uuid::parse_str(&run).unwrap_or_default();
    if crate::sync::send_decision_in(conn, task_id, &decision)? {
        return Ok(Decided {
            run: run_id,
            pending_sync: true,
        });
    }
    append_events(
        conn,
        &run,
        &[Event::DecisionRecorded {
            task: task_id,
            decision,
        }],
        Some(RunStatus::Running),
    )?;
    Ok(Decided {
        run: run_id,
        pending_sync: false,
    })
}

/// For an edit: keep the unified diff from the draft to the edited text.
pub(crate) fn record_diff(
    conn: &Connection,
    id: &str,
    draft: &str,
    decision: &Decision,
) -> Result<()> {
    let diff = match (decision.action, decision.text.as_deref()) {
        (Action::Edit, Some(edited)) => Some(processops_core::journal::edit_diff(draft, edited)),
        _ => None,
    };
    conn.prepare_cached("UPDATE tasks SET diff = ?1 WHERE id = ?2")?
        .execute(params![diff, id])?;
    Ok(())
}

fn escalate_in(
    conn: &Connection,
    task_id: Uuid,
    role: String,
    by: String,
    due_at: Option<i64>,
) -> Result<Uuid> {
    let id = task_id.to_string();
    let from: Option<String> = conn
        .prepare_cached("SELECT role FROM tasks WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    // A fresh due time re-arms the timers for the new role.
    let run: Option<String> = conn
        .prepare_cached(
            "UPDATE tasks SET role = ?1, due_at = coalesce(?3, due_at),
                 remind_at = CASE WHEN ?3 IS NULL THEN remind_at END,
                 reminded_at = CASE WHEN ?3 IS NULL THEN reminded_at END,
                 breached_at = CASE WHEN ?3 IS NULL THEN breached_at END
             WHERE id = ?2 AND status = 'pending' RETURNING run_id",
        )?
        .query_row(params![role, id, due_at], |r| r.get(0))
        .optional()?;
    let Some(run) = run else {
        return Err(already_decided(conn, &id)?);
    };
    crate::sync::publish_move_in(conn, task_id, &role)?;
    crate::audit::record_in(
        conn,
        &by,
        "task.escalated",
        &id,
        Some(&serde_json::json!({ "role": from })),
        Some(&serde_json::json!({ "role": role, "due_at": due_at })),
    )?;
    append_events(
        conn,
        &run,
        &[Event::TaskEscalated {
            task: task_id,
            role,
            by,
            due_at,
        }],
        None,
    )?;
    Ok(Uuid::parse_str(&run).unwrap_or_default())
}

fn claim_refusal(conn: &Connection, id: &str) -> Result<StoreError> {
    let holder: Option<Option<String>> = conn
        .prepare_cached("SELECT claimed_by FROM tasks WHERE id = ?1 AND status = 'pending'")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(match holder {
        Some(Some(by)) => StoreError::Claimed {
            task: id.to_owned(),
            by,
        },
        _ => already_decided(conn, id)?,
    })
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
