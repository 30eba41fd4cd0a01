//! Cheap reads for the Prometheus `/metrics` endpoint (`processops_api::telemetry`), made at
//! scrape time so the engine needs no counters of its own. Each query is bounded by an index
//! or by the day counters (`metric_counts`), never a scan of the journal.

use processops_core::journal::Event;
use processops_core::metrics::key;
use rusqlite::params;
use uuid::Uuid;

use crate::{Result, Store};

/// The inbox right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxGauges {
    /// Tasks waiting for a decision (the inbox depth).
    pub pending: u64,
    /// Pending tasks past their due time.
    pub overdue: u64,
    /// Pending tasks whose SLA breach was handled (flagged, escalated) but that still wait.
    pub breached: u64,
}

/// All-time totals of a blueprint, summed over the day counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlueprintTotals {
    pub blueprint: String,
    pub runs_started: u64,
    pub runs_completed: u64,
    pub runs_failed: u64,
    /// Prompt steps that failed outright (every agent and the fallback text).
    pub prompt_failed: u64,
}

/// A finished step, as the journal recorded it: what `/metrics` turns into node durations
/// and model usage.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub run_id: Uuid,
    pub seq: u64,
    /// Unix milliseconds of the commit.
    pub at: i64,
    /// The blueprint version the run runs (to look up the node's kind).
    pub version: String,
    pub node: String,
    pub duration_ms: Option<f64>,
    pub calls: Vec<ModelCall>,
}

/// One model call of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    pub provider: String,
    /// The model that answered, else the one asked for, else empty.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub failed: bool,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Pending, overdue and breached tasks (three index range counts).
    pub fn inbox_gauges(&self, now: i64) -> Result<InboxGauges> {
        self.read(|conn| {
            let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64> {
                let n: i64 = conn.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
                Ok(to_u64(n))
            };
            Ok(InboxGauges {
                pending: count("SELECT count(*) FROM tasks WHERE status = 'pending'", &[])?,
                overdue: count(
                    "SELECT count(*) FROM tasks WHERE status = 'pending' AND due_at <= ?1",
                    &[&now],
                )?,
                breached: count(
                    "SELECT count(*) FROM tasks WHERE status = 'pending' AND breached_at IS NOT NULL",
                    &[],
                )?,
            })
        })
    }

    /// Runs per listed status (`running`, `waiting`, …), from the status index.
    pub fn runs_by_status(&self) -> Result<Vec<(String, u64)>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status",
                )?
                .query_map([], |r| Ok((r.get(0)?, to_u64(r.get(1)?))))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Every blueprint's all-time run and prompt-failure totals, from the day counters (their
    /// size grows with days × versions, not with runs).
    pub fn blueprint_totals(&self) -> Result<Vec<BlueprintTotals>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT blueprint, key, sum(n) FROM metric_counts WHERE key IN (?1, ?2, ?3, ?4)
                 GROUP BY blueprint, key ORDER BY blueprint",
            )?;
            let rows = stmt.query_map(
                params![
                    key::RUN_STARTED,
                    key::RUN_COMPLETED,
                    key::RUN_FAILED,
                    key::PROMPT_FAILED
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, f64>(2)?,
                    ))
                },
            )?;
            let mut out: Vec<BlueprintTotals> = Vec::new();
            for row in rows {
                let (blueprint, k, n) = row?;
                if out.last().is_none_or(|t| t.blueprint != blueprint) {
                    out.push(BlueprintTotals {
                        blueprint,
                        ..BlueprintTotals::default()
                    });
                }
                let Some(t) = out.last_mut() else { continue };
                // Counters are whole numbers stored as REAL; negative would be corruption.
                let n = n.max(0.0).round() as u64;
                match k.as_str() {
                    key::RUN_STARTED => t.runs_started = n,
                    key::RUN_COMPLETED => t.runs_completed = n,
                    key::RUN_FAILED => t.runs_failed = n,
                    _ => t.prompt_failed = n,
                }
            }
            Ok(out)
        })
    }

    /// Tasks whose SLA ran out, ever (decided or not).
    pub fn sla_breaches(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn
                .prepare_cached("SELECT count(*) FROM metric_task_flags WHERE breached = 1")?
                .query_row([], |r| r.get(0))?;
            Ok(to_u64(n))
        })
    }

    /// Steps finished at or after `since` (Unix ms), oldest first, at most `limit`. The runs
    /// are found through their status index (a run's `updated_at` moves with every append),
    /// then only their recent journal rows are read.
    pub fn steps_finished_since(&self, since: i64, limit: u32) -> Result<Vec<StepRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT j.run_id, j.seq, j.at, r.version, j.body
                 FROM runs r JOIN journal j ON j.run_id = r.id
                 WHERE r.status IN ('running', 'waiting', 'attention', 'completed', 'failed')
                   AND r.updated_at >= ?1 AND j.at >= ?1 AND j.kind = 'node_finished'
                 ORDER BY j.at, j.run_id, j.seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![since, limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (run, seq, at, version, body) in rows {
                let Event::NodeFinished { node, meta, .. } = serde_json::from_str(&body)? else {
                    continue;
                };
                let calls = meta
                    .exchanges
                    .iter()
                    .map(|e| ModelCall {
                        provider: e.provider.clone(),
                        model: e
                            .model
                            .clone()
                            .or_else(|| e.request["model"].as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        prompt_tokens: u64::from(e.prompt_tokens),
                        completion_tokens: u64::from(e.completion_tokens),
                        failed: e.error.is_some(),
                    })
                    .collect();
                out.push(StepRecord {
                    run_id: Uuid::parse_str(&run).unwrap_or_default(),
                    seq: to_u64(seq),
                    at,
                    version,
                    node,
                    duration_ms: meta.duration_ms,
                    calls,
                });
            }
            Ok(out)
        })
    }
}
