//! The metrics' counters (see `processops_core::metrics`): kept in step with the journal in
//! the transaction that appends to it, summed over windows for the dashboard and
//! `processops metrics`, and rebuildable from the journal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use processops_core::journal::Event;
use processops_core::metrics::{self, Counts, DAY_MS, Observation, day_of, is_human, key};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension as _, params, params_from_iter};
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store};

/// Update the counters for one journal event of `run_id`, appended at `at` (Unix ms).
pub(crate) fn observe(conn: &Connection, run_id: &str, event: &Event, at: i64) -> Result<()> {
    let mut run = None;
    let facts = match event {
        Event::RunStarted { .. } => metrics::facts(Observation::RunStarted),
        Event::NodeFinished { meta, output, .. } => {
            metrics::facts(Observation::StepFinished { meta, output })
        }
        Event::NodeFailed { prompt, .. } => {
            metrics::facts(Observation::StepFailed { prompt: *prompt })
        }
        Event::TaskCreated { .. } => metrics::facts(Observation::TaskCreated),
        Event::TaskEscalated { task, by, .. } => {
            flag(conn, *task, "escalated")?;
            let human = is_human(by);
            if human {
                touch(conn, run_id)?;
            }
            metrics::facts(Observation::Escalated { human })
        }
        Event::TaskBreached { task, .. } => {
            flag(conn, *task, "breached")?;
            Vec::new()
        }
        Event::VoteRecorded { decision, .. } => {
            if is_human(&decision.by) {
                touch(conn, run_id)?;
            }
            Vec::new()
        }
        Event::RunRetried { by } => {
            if is_human(by) {
                touch(conn, run_id)?;
            }
            Vec::new()
        }
        Event::DecisionRecorded { task, decision } => {
            let id = task.to_string();
            let row: Option<(String, i64, bool, bool)> = conn
                .prepare_cached(
                    "SELECT t.draft, t.created_at, coalesce(f.escalated, 0), coalesce(f.breached, 0)
                     FROM tasks t LEFT JOIN metric_task_flags f ON f.task_id = t.id WHERE t.id = ?1",
                )?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            let Some((draft, created_at, escalated, breached)) = row else {
                return Ok(());
            };
            // A quorum's final decision names every voter ("ana + ben"); each vote touched
            // the run already.
            if is_human(&decision.by) {
                touch(conn, run_id)?;
            }
            metrics::facts(Observation::Decided {
                decision,
                draft: &draft,
                waited_ms: at - created_at,
                escalated,
                breached,
            })
        }
        Event::RunFinished { status, .. } => {
            run = run_row(conn, run_id)?;
            let touches = run.as_ref().map_or(0, |r| r.2);
            metrics::facts(Observation::RunFinished {
                status: *status,
                human_touched: touches > 0,
            })
        }
        Event::NodeStarted { .. }
        | Event::VisitLimitReached { .. }
        | Event::TaskReminded { .. } => Vec::new(),
    };
    if facts.is_empty() {
        return Ok(());
    }
    // RunFinished read the row already; other events read it only when they count something.
    let run = match run {
        Some(row) => Some(row),
        None => run_row(conn, run_id)?,
    };
    let Some((blueprint, version, _)) = run else {
        return Ok(());
    };
    let day = day_of(at);
    let mut add = conn.prepare_cached(
        "INSERT INTO metric_counts (blueprint, version, day, key, n) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (blueprint, version, day, key) DO UPDATE SET n = n + excluded.n",
    )?;
    for (k, n) in facts {
        add.execute(params![blueprint, version, day, k, n])?;
    }
    Ok(())
}

/// A run's blueprint, version and human touches so far.
fn run_row(conn: &Connection, run_id: &str) -> Result<Option<(String, String, i64)>> {
    Ok(conn
        .prepare_cached("SELECT blueprint_id, version, human_touches FROM runs WHERE id = ?1")?
        .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

fn flag(conn: &Connection, task: Uuid, column: &'static str) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO metric_task_flags (task_id, {column}) VALUES (?1, 1)
         ON CONFLICT (task_id) DO UPDATE SET {column} = 1"
    ))?
    .execute([task.to_string()])?;
    Ok(())
}

fn touch(conn: &Connection, run_id: &str) -> Result<()> {
    conn.prepare_cached("UPDATE runs SET human_touches = human_touches + 1 WHERE id = ?1")?
        .execute([run_id])?;
    Ok(())
}

/// Throw the counters away and replay every journal into them. Returns the events replayed.
pub(crate) fn rebuild(conn: &Connection) -> Result<u64> {
    conn.execute_batch(
        "DELETE FROM metric_counts; DELETE FROM metric_task_flags; UPDATE runs SET human_touches = 0;",
    )?;
    let mut replayed = 0u64;
    let mut entries = conn.prepare("SELECT run_id, at, body FROM journal ORDER BY run_id, seq")?;
    let mut rows = entries.query([])?;
    while let Some(row) = rows.next()? {
        let run_id: String = row.get(0)?;
        let at: i64 = row.get(1)?;
        let body: String = row.get(2)?;
        // An entry this build cannot read (written by a newer one) is skipped, not fatal:
        // the counters are a projection, and the journal stays as it is.
        let Ok(event) = serde_json::from_str::<Event>(&body) else {
            continue;
        };
        observe(conn, &run_id, &event, at)?;
        replayed += 1;
    }
    Ok(replayed)
}

/// Which runs a metrics query covers. Days are UTC days since the Unix epoch; `until_day` is
/// exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsWindow {
    pub blueprint: Option<String>,
    pub version: Option<String>,
    pub since_day: Option<i64>,
    pub until_day: Option<i64>,
}

impl MetricsWindow {
    /// The `WHERE` clause over `metric_counts` and its parameters.
    fn filter(
        &self,
        bp: &str,
        ver: &str,
        day_expr: &str,
        day_scale: i64,
    ) -> (String, Vec<SqlValue>) {
        let mut sql = String::from("1");
        let mut args = Vec::new();
        if let Some(b) = &self.blueprint {
            let _ = write!(sql, " AND {bp} = ?");
            args.push(SqlValue::Text(b.clone()));
        }
        if let Some(v) = &self.version {
            let _ = write!(sql, " AND {ver} = ?");
            args.push(SqlValue::Text(v.clone()));
        }
        if let Some(d) = self.since_day {
            let _ = write!(sql, " AND {day_expr} >= ?");
            args.push(SqlValue::Integer(d.saturating_mul(day_scale)));
        }
        if let Some(d) = self.until_day {
            let _ = write!(sql, " AND {day_expr} < ?");
            args.push(SqlValue::Integer(d.saturating_mul(day_scale)));
        }
        (sql, args)
    }
}

/// The summed counters of one blueprint version over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionCounts {
    pub blueprint: String,
    pub version: String,
    /// The first and last day with any counter in the window.
    pub first_day: i64,
    pub last_day: i64,
    pub counts: Counts,
}

/// A drill-down from a metric to the runs behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Drill {
    /// Runs with a human decision that edited or rejected (human override %).
    Overrides,
    /// Finished runs no human touched (automation coverage %).
    Automated,
    /// Finished runs a human touched.
    Touched,
    /// Runs with a prompt step that needed a repair, a fallback, or failed.
    PromptIssues,
    /// Runs with a decided task that had been escalated.
    Escalated,
    /// Runs with a decided task whose SLA ran out.
    Breached,
    /// Runs with the slowest decisions first (escalation latency).
    Slowest,
    /// Runs that failed.
    Failed,
}

impl Drill {
    pub const ALL: [Drill; 8] = [
        Self::Overrides,
        Self::Automated,
        Self::Touched,
        Self::PromptIssues,
        Self::Escalated,
        Self::Breached,
        Self::Slowest,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overrides => "overrides",
            Self::Automated => "automated",
            Self::Touched => "touched",
            Self::PromptIssues => "prompt_issues",
            Self::Escalated => "escalated",
            Self::Breached => "breached",
            Self::Slowest => "slowest",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s.replace('-', "_"))
    }
}

/// One run behind a metric.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DrillRow {
    #[ts(type = "string")]
    pub run_id: Uuid,
    pub blueprint: String,
    pub version: String,
    /// When the counted thing happened (Unix ms).
    pub at: i64,
    /// What about this run counts: "edit by ana", "decided by ben", "draft: fallback template"…
    pub detail: String,
    /// For decisions: how long the task waited for it (ms).
    pub waited_ms: Option<i64>,
}

impl Store {
    /// Summed counters per blueprint version over a window, with the window's tag mix.
    pub fn metric_counts(&self, window: &MetricsWindow) -> Result<Vec<VersionCounts>> {
        self.read(|conn| {
            let (filter, args) = window.filter("blueprint", "version", "day", 1);
            let mut by_version: BTreeMap<(String, String), VersionCounts> = BTreeMap::new();
            let sql = format!(
                "SELECT blueprint, version, key, sum(n), min(day), max(day) FROM metric_counts
                 WHERE {filter} GROUP BY blueprint, version, key"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            while let Some(r) = rows.next()? {
                let (blueprint, version): (String, String) = (r.get(0)?, r.get(1)?);
                let (k, n, first, last): (String, f64, i64, i64) =
                    (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
                let entry = by_version
                    .entry((blueprint.clone(), version.clone()))
                    .or_insert_with(|| VersionCounts {
                        blueprint,
                        version,
                        first_day: first,
                        last_day: last,
                        counts: Counts::new(),
                    });
                entry.first_day = entry.first_day.min(first);
                entry.last_day = entry.last_day.max(last);
                entry.counts.insert(k, n);
            }
            // Tags present now on outputs of the window's runs, by when they were set. CROSS JOIN
            // keeps SQLite from walking every run of the blueprint to find the few tagged ones.
            let (filter, args) = window.filter("r.blueprint_id", "r.version", "t.updated_at", DAY_MS);
            let sql = format!(
                "SELECT r.blueprint_id, r.version, t.tag, count(*) FROM feedback_tags t CROSS JOIN runs r ON r.id = t.run_id
                 WHERE t.counter % 2 = 1 AND {filter} GROUP BY 1, 2, 3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            while let Some(r) = rows.next()? {
                let (blueprint, version, tag, n): (String, String, String, f64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                if let Some(entry) = by_version.get_mut(&(blueprint, version)) {
                    entry.counts.insert(format!("{}{tag}", key::TAG_PREFIX), n);
                }
            }
            Ok(by_version.into_values().collect())
        })
    }

    /// The window's counters day by day (every selected version summed), for charts.
    pub fn metric_series(&self, window: &MetricsWindow) -> Result<Vec<(i64, Counts)>> {
        self.read(|conn| {
            let (filter, args) = window.filter("blueprint", "version", "day", 1);
            let sql = format!(
                "SELECT day, key, sum(n) FROM metric_counts WHERE {filter} GROUP BY day, key ORDER BY day"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut days: Vec<(i64, Counts)> = Vec::new();
            while let Some(r) = rows.next()? {
                let (day, k, n): (i64, String, f64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                match days.last_mut() {
                    Some((d, counts)) if *d == day => {
                        counts.insert(k, n);
                    }
                    _ => days.push((day, Counts::from([(k, n)]))),
                }
            }
            Ok(days)
        })
    }

    /// The runs behind a metric, newest (or, for `Slowest`, slowest) first.
    pub fn metric_runs(
        &self,
        window: &MetricsWindow,
        drill: Drill,
        limit: u32,
    ) -> Result<Vec<DrillRow>> {
        self.read(|conn| {
            let human = "t.decided_by NOT IN ('policy', 'sla')";
            let (sql, at_column) = match drill {
                Drill::Overrides => (
                    format!(
                        "SELECT t.run_id, t.blueprint_id, t.version, t.decided_at,
                                json_extract(t.decision, '$.action') || ' by ' || t.decided_by,
                                t.decided_at - t.created_at
                         FROM tasks t WHERE t.status = 'decided' AND {human}
                           AND json_extract(t.decision, '$.action') IN ('edit', 'reject') AND {{filter}}
                         ORDER BY t.decided_at DESC LIMIT ?"
                    ),
                    ("t.blueprint_id", "t.version", "t.decided_at"),
                ),
                Drill::Escalated | Drill::Breached => (
                    format!(
                        "SELECT t.run_id, t.blueprint_id, t.version, t.decided_at,
                                'decided by ' || t.decided_by || ' after ' || CASE WHEN f.breached THEN 'its SLA ran out' ELSE 'an escalation' END,
                                t.decided_at - t.created_at
                         FROM tasks t JOIN metric_task_flags f ON f.task_id = t.id
                         WHERE t.status = 'decided' AND f.{} AND {{filter}}
                         ORDER BY t.decided_at DESC LIMIT ?",
                        if drill == Drill::Escalated { "escalated" } else { "breached" }
                    ),
                    ("t.blueprint_id", "t.version", "t.decided_at"),
                ),
                Drill::Slowest => (
                    "SELECT t.run_id, t.blueprint_id, t.version, t.decided_at,
                            json_extract(t.decision, '$.action') || ' by ' || t.decided_by,
                            t.decided_at - t.created_at
                     FROM tasks t WHERE t.status = 'decided' AND t.decided_at IS NOT NULL AND {filter}
                     ORDER BY t.decided_at - t.created_at DESC LIMIT ?"
                        .to_owned(),
                    ("t.blueprint_id", "t.version", "t.decided_at"),
                ),
                Drill::Automated | Drill::Touched | Drill::Failed => (
                    format!(
                        "SELECT r.id, r.blueprint_id, r.version, r.updated_at,
                                CASE WHEN r.human_touches = 0 THEN 'no human touch' ELSE r.human_touches || ' human touch(es)' END
                                || CASE WHEN r.status = 'failed' THEN ', failed' ELSE '' END,
                                NULL
                         FROM runs r WHERE r.status IN ('completed', 'failed') AND {} AND {{filter}}
                         ORDER BY r.updated_at DESC LIMIT ?",
                        match drill {
                            Drill::Automated => "r.human_touches = 0",
                            Drill::Touched => "r.human_touches > 0",
                            _ => "r.status = 'failed'",
                        }
                    ),
                    ("r.blueprint_id", "r.version", "r.updated_at"),
                ),
                Drill::PromptIssues => (
                    "SELECT r.id, r.blueprint_id, r.version, j.at,
                            j.node || ': ' || CASE
                                WHEN j.kind = 'node_failed' THEN 'failed'
                                WHEN json_extract(j.body, '$.meta.fallback') IS NOT NULL THEN 'fallback ' || json_extract(j.body, '$.meta.fallback')
                                ELSE 'schema repair' END,
                            NULL
                     FROM runs r JOIN journal j ON j.run_id = r.id
                     WHERE j.kind IN ('node_finished', 'node_failed') AND {filter}
                       AND ((j.kind = 'node_failed' AND json_extract(j.body, '$.prompt'))
                         OR json_extract(j.body, '$.meta.fallback') IS NOT NULL
                         OR EXISTS (SELECT 1 FROM json_each(j.body, '$.meta.exchanges') e WHERE json_extract(e.value, '$.purpose') = 'repair'))
                     ORDER BY j.at DESC LIMIT ?"
                        .to_owned(),
                    ("r.blueprint_id", "r.version", "j.at"),
                ),
            };
            let (filter, mut args) = window.filter(at_column.0, at_column.1, at_column.2, DAY_MS);
            args.push(SqlValue::Integer(i64::from(limit)));
            let sql = sql.replace("{filter}", &filter);
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| {
                    let id: String = r.get(0)?;
                    Ok(DrillRow {
                        run_id: Uuid::parse_str(&id).unwrap_or_default(),
                        blueprint: r.get(1)?,
                        version: r.get(2)?,
                        at: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                        detail: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        waited_ms: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Recompute every counter from the journal (after a restore, or to check them).
    pub async fn rebuild_metrics(&self) -> Result<u64> {
        self.write(rebuild).await
    }
}

impl Store {
    /// For benchmarks: the counters `runs` finished runs would leave, spread over `blueprints`
    /// blueprints (two versions each, the second for the last third of the days) and `days`
    /// days ending today, computed with the same [`metrics::facts`] the journal path uses.
    /// Also inserts one `runs` row per run, so a scan of the runs is a fair baseline.
    /// With `plant_drift`, managers of `bp0` reject four times as often in the last 7 days.
    /// Returns the counter rows written.
    pub async fn insert_synthetic_metrics(
        &self,
        runs: usize,
        blueprints: usize,
        days: i64,
        seed: u64,
        plant_drift: bool,
    ) -> Result<usize> {
        self.write(move |conn| {
            synthetic_metrics(
                conn,
                runs,
                blueprints.max(1),
                days.max(1),
                seed,
                plant_drift,
            )
        })
        .await
    }
}

fn synthetic_metrics(
    conn: &Connection,
    runs: usize,
    blueprints: usize,
    days: i64,
    seed: u64,
    plant_drift: bool,
) -> Result<usize> {
    use processops_core::journal::{Action, Decision, Exchange, FinalStatus, StepMeta};
    use serde_json::json;
    let mut rng = crate::synthetic::Rng(seed);
    let today = day_of(crate::now_ms());
    let clean = StepMeta {
        exchanges: vec![Exchange {
            purpose: "call".into(),
            ..Exchange::default()
        }],
        ..StepMeta::default()
    };
    let repaired = StepMeta {
        exchanges: vec![
            Exchange {
                purpose: "call".into(),
                ..Exchange::default()
            },
            Exchange {
                purpose: "repair".into(),
                ..Exchange::default()
            },
        ],
        ..StepMeta::default()
    };
    let outputs: Vec<serde_json::Value> = (0..8)
        .map(|b| json!({ "text": "x".repeat(40 << b) }))
        .collect();
    let decisions: Vec<Decision> = [
        Action::Approve,
        Action::Edit,
        Action::Reject,
        Action::Escalate,
    ]
    .into_iter()
    .map(|action| Decision {
        action,
        by: "someone".into(),
        text: (action == Action::Edit).then(|| "an edited draft of a few words".into()),
        reason: None,
    })
    .collect();
    let tx = conn;
    let mut counts: BTreeMap<(usize, usize, i64, String), f64> = BTreeMap::new();
    {
        let mut version = tx.prepare(
            "INSERT OR IGNORE INTO blueprint_versions (hash, blueprint_id, name, source, created_at) VALUES (?1, ?2, ?2, '', 0)",
        )?;
        for b in 0..blueprints {
            for v in 0..2 {
                version.execute(params![format!("bp{b}-v{v}"), format!("bp{b}")])?;
            }
        }
        let mut run = tx.prepare(
            "INSERT INTO runs (id, blueprint_id, version, trigger_id, status, last_seq, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'form', ?4, 0, ?5, ?5)",
        )?;
        for n in 0..runs {
            let b = usize::try_from(rng.below(blueprints as u64)).unwrap_or(0);
            let ago = i64::try_from(rng.below(u64::try_from(days).unwrap_or(1))).unwrap_or(0);
            let v = usize::from(ago < days / 3);
            let day = today - ago;
            let mut observations = vec![Observation::RunStarted];
            let meta = if rng.below(10) == 0 {
                &repaired
            } else {
                &clean
            };
            let output = &outputs[usize::try_from(rng.below(8)).unwrap_or(0)];
            observations.push(Observation::StepFinished { meta, output });
            let touched = rng.below(3) != 0;
            if touched {
                observations.push(Observation::TaskCreated);
                // approve 60 %, edit 20 %, reject 10 %, escalate 10 % (reject 40 % when drifting).
                let mix = if plant_drift && b == 0 && ago < 7 {
                    [0, 0, 0, 1, 2, 2, 2, 2, 3, 0]
                } else {
                    [0, 0, 0, 0, 0, 1, 1, 2, 3, 0]
                };
                let d = &decisions[mix[usize::try_from(rng.below(10)).unwrap_or(0)]];
                observations.push(Observation::Decided {
                    decision: d,
                    draft: "a draft of a few words",
                    waited_ms: i64::try_from(rng.below(3 * DAY_MS as u64)).unwrap_or(0),
                    escalated: rng.below(10) == 0,
                    breached: rng.below(20) == 0,
                });
            }
            let failed = rng.below(50) == 0;
            observations.push(Observation::RunFinished {
                status: if failed {
                    FinalStatus::Failed
                } else {
                    FinalStatus::Completed
                },
                human_touched: touched,
            });
            for o in observations {
                for (k, x) in metrics::facts(o) {
                    *counts.entry((b, v, day, k)).or_default() += x;
                }
            }
            let at = day * DAY_MS + 3_600_000;
            run.execute(params![
                format!("00000000-0000-7000-9000-{n:012x}"),
                format!("bp{b}"),
                format!("bp{b}-v{v}"),
                if failed { "failed" } else { "completed" },
                at
            ])?;
        }
        let mut add = tx.prepare(
            "INSERT INTO metric_counts (blueprint, version, day, key, n) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for ((b, v, day, k), n) in &counts {
            add.execute(params![format!("bp{b}"), format!("bp{b}-v{v}"), day, k, n])?;
        }
    }
    Ok(counts.len())
}
