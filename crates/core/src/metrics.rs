//! The ProcessOps metrics (DESIGN.md §3) and the process drift index, as pure functions.
//!
//! The store keeps counters per (blueprint, version, UTC day), updated in the transaction of the
//! journal event they come from: [`facts`] says which counters an [`Observation`] adds to. The
//! dashboard sums the counters of a window and [`summarize`] turns the sums into the metrics, so
//! a query over a million runs reads a few thousand counter rows instead of the journal. Because
//! the same [`facts`] run when the store rebuilds its counters from the journal, "incremental
//! equals recomputed" is a test, not a hope.
//!
//! Definitions (each ratio keeps its numerator and denominator, so a number can be explained and
//! an empty window is "no data", never a division by zero):
//! - **Prompt success rate**: prompt steps whose output came from the first agent, first try,
//!   with no schema repair and no fallback / all prompt steps (failed ones included).
//! - **Human override %**: human decisions that edited or rejected / all human decisions
//!   (`policy` and `sla` decisions are not human). With it, the **edit distance** of edits: the
//!   share of the draft's words that changed (0 = untouched, 1 = rewritten), averaged.
//! - **Automation coverage %**: finished runs that no human decided, voted on or retried /
//!   finished runs.
//! - **Escalation latency**: task created → final decision, p50 and p95 from a log-scale
//!   histogram (buckets 2^¼ wide, so a percentile is within ±9 %), with the share of decided
//!   tasks that were escalated and the share that breached their SLA.
//! - **Process drift index**: see [`drift`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::journal::{Action, Decision, FinalStatus, StepMeta};

/// Milliseconds in a UTC day: the counters' time resolution.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since the Unix epoch) a Unix-milliseconds instant falls in.
pub fn day_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS)
}

/// Summed counters, by key.
pub type Counts = BTreeMap<String, f64>;

/// Counter keys. Histogram buckets and tags add `<prefix><n>` / `<prefix><tag>` keys.
pub mod key {
    pub const RUN_STARTED: &str = "run.started";
    pub const RUN_FINISHED: &str = "run.finished";
    pub const RUN_COMPLETED: &str = "run.completed";
    pub const RUN_FAILED: &str = "run.failed";
    pub const RUN_UNTOUCHED: &str = "run.untouched";
    pub const PROMPT_STEPS: &str = "prompt.steps";
    pub const PROMPT_CLEAN: &str = "prompt.clean";
    pub const PROMPT_FALLBACK: &str = "prompt.fallback";
    pub const PROMPT_REPAIRED: &str = "prompt.repaired";
    pub const PROMPT_ATTENTION: &str = "prompt.attention";
    pub const PROMPT_FAILED: &str = "prompt.failed";
    pub const PROMPT_TOKENS: &str = "prompt.tokens";
    pub const TASK_CREATED: &str = "task.created";
    pub const TASK_DECIDED: &str = "task.decided";
    pub const TASK_ESCALATED: &str = "task.escalated";
    pub const TASK_BREACHED: &str = "task.breached";
    pub const REVIEW_AUTO: &str = "review.auto";
    pub const DECISION_HUMAN: &str = "decision.human";
    pub const DECISION_POLICY: &str = "decision.policy";
    pub const EDIT_DISTANCE: &str = "edit.distance";
    pub const EDIT_MEASURED: &str = "edit.measured";
    /// `decision.approve`, `decision.edit`, … (human decisions only).
    pub const DECISION_PREFIX: &str = "decision.";
    /// `latency.b<n>`: decided tasks by time to decision.
    pub const LATENCY_PREFIX: &str = "latency.b";
    /// `len.b<n>`: prompt outputs by length.
    pub const LENGTH_PREFIX: &str = "len.b";
    /// `tag.<tag>`: tags evaluators put on the outputs of runs of the window (summed at query
    /// time from the feedback counters, not stored with the others).
    pub const TAG_PREFIX: &str = "tag.";
}

/// Something the journal says happened, with what the store looked up to judge it.
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    RunStarted,
    /// A node finished; only prompt steps (they carry model exchanges or a fallback) count.
    StepFinished {
        meta: &'a StepMeta,
        output: &'a Value,
    },
    /// A node failed; `prompt` when it was a prompt step.
    StepFailed {
        prompt: bool,
    },
    TaskCreated,
    /// A task moved up its escalation chain: by a person's decision, or by a breached SLA.
    Escalated {
        human: bool,
    },
    /// A task's final decision, with the task's draft and its history.
    Decided {
        decision: &'a Decision,
        draft: &'a str,
        waited_ms: i64,
        escalated: bool,
        breached: bool,
    },
    RunFinished {
        status: FinalStatus,
        human_touched: bool,
    },
}

/// Whether a decision's author is a person (not the auto-approve policy, not an SLA breach).
pub fn is_human(by: &str) -> bool {
    !matches!(by, "policy" | "sla")
}

/// How a prompt step turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptOutcome {
    /// The first agent's first reply, valid as it came.
    Clean,
    /// The reply needed a schema repair round.
    Repaired,
    /// Another agent, or the template fallback, produced the output.
    Fallback,
    /// Nothing valid came back; the draft goes to review flagged.
    Attention,
}

/// The outcome of a finished step, or `None` when it was not a prompt step.
pub fn prompt_outcome(meta: &StepMeta) -> Option<PromptOutcome> {
    match meta.fallback.as_deref() {
        Some("needs attention") => Some(PromptOutcome::Attention),
        Some(_) => Some(PromptOutcome::Fallback),
        None if meta.exchanges.is_empty() => None,
        None if meta.exchanges.iter().any(|e| e.purpose == "repair") => {
            Some(PromptOutcome::Repaired)
        }
        None => Some(PromptOutcome::Clean),
    }
}

/// The counters an observation adds to.
pub fn facts(observation: Observation<'_>) -> Vec<(String, f64)> {
    let one = |k: &str| (k.to_owned(), 1.0);
    match observation {
        Observation::RunStarted => vec![one(key::RUN_STARTED)],
        Observation::StepFinished { meta, output } => {
            if output.get("path").and_then(Value::as_str) == Some("auto") {
                return vec![one(key::REVIEW_AUTO)];
            }
            let Some(outcome) = prompt_outcome(meta) else {
                return Vec::new();
            };
            let mut out = vec![one(key::PROMPT_STEPS)];
            out.push(one(match outcome {
                PromptOutcome::Clean => key::PROMPT_CLEAN,
                PromptOutcome::Repaired => key::PROMPT_REPAIRED,
                PromptOutcome::Fallback => key::PROMPT_FALLBACK,
                PromptOutcome::Attention => key::PROMPT_ATTENTION,
            }));
            let tokens = meta.prompt_tokens.unwrap_or(0) + meta.completion_tokens.unwrap_or(0);
            if tokens > 0 {
                out.push((key::PROMPT_TOKENS.to_owned(), f64::from(tokens)));
            }
            if let Some(text) = output.get("text").and_then(Value::as_str) {
                out.push((
                    format!(
                        "{}{}",
                        key::LENGTH_PREFIX,
                        length_bucket(text.chars().count())
                    ),
                    1.0,
                ));
            }
            out
        }
        Observation::StepFailed { prompt: true } => {
            vec![one(key::PROMPT_STEPS), one(key::PROMPT_FAILED)]
        }
        Observation::StepFailed { prompt: false } => Vec::new(),
        Observation::TaskCreated => vec![one(key::TASK_CREATED)],
        Observation::Escalated { human: true } => vec![
            one(key::DECISION_HUMAN),
            (format!("{}escalate", key::DECISION_PREFIX), 1.0),
        ],
        Observation::Escalated { human: false } => Vec::new(),
        Observation::Decided {
            decision,
            draft,
            waited_ms,
            escalated,
            breached,
        } => {
            let mut out = vec![
                one(key::TASK_DECIDED),
                (
                    format!("{}{}", key::LATENCY_PREFIX, latency_bucket(waited_ms)),
                    1.0,
                ),
            ];
            if escalated {
                out.push(one(key::TASK_ESCALATED));
            }
            if breached {
                out.push(one(key::TASK_BREACHED));
            }
            if !is_human(&decision.by) {
                out.push(one(key::DECISION_POLICY));
                return out;
            }
            out.push(one(key::DECISION_HUMAN));
            out.push((
                format!("{}{}", key::DECISION_PREFIX, decision.action.as_str()),
                1.0,
            ));
            if decision.action == Action::Edit
                && let Some(text) = &decision.text
            {
                out.push(one(key::EDIT_MEASURED));
                out.push((key::EDIT_DISTANCE.to_owned(), edit_distance(draft, text)));
            }
            out
        }
        Observation::RunFinished {
            status,
            human_touched,
        } => {
            let mut out = vec![
                one(key::RUN_FINISHED),
                one(match status {
                    FinalStatus::Completed => key::RUN_COMPLETED,
                    FinalStatus::Failed => key::RUN_FAILED,
                }),
            ];
            if !human_touched {
                out.push(one(key::RUN_UNTOUCHED));
            }
            out
        }
    }
}

/// The share of a draft's words an edit changed: 0 when identical, 1 when nothing is left.
/// Words, not characters or whitespace: `1 − 2·kept / (draft words + edited words)`.
pub fn edit_distance(draft: &str, edited: &str) -> f64 {
    if draft == edited {
        return 0.0;
    }
    let old: Vec<&str> = draft.split_whitespace().collect();
    let new: Vec<&str> = edited.split_whitespace().collect();
    // Myers with a deadline: a pathological pair degrades to a coarser diff, never stalls the
    // writer that records the decision.
    let diff = similar::TextDiff::configure()
        .timeout(std::time::Duration::from_millis(50))
        .diff_slices(&old, &new);
    f64::from(1.0 - diff.ratio()).clamp(0.0, 1.0)
}

/// Buckets are 2^¼ wide from one second up; bucket 0 holds everything under a second.
const LATENCY_BUCKETS: u32 = 100;

/// The latency histogram bucket of a wait.
pub fn latency_bucket(waited_ms: i64) -> u32 {
    if waited_ms < 1000 {
        return 0;
    }
    let secs = waited_ms as f64 / 1000.0;
    // bucket b ≥ 1 holds [2^((b-1)/4), 2^(b/4)) seconds.
    let b = (secs.log2() * 4.0).floor() as i64 + 1;
    u32::try_from(b.clamp(1, i64::from(LATENCY_BUCKETS - 1))).unwrap_or(LATENCY_BUCKETS - 1)
}

/// The lower and upper bound of a latency bucket, in milliseconds.
fn latency_bounds(bucket: u32) -> (f64, f64) {
    if bucket == 0 {
        return (0.0, 1000.0);
    }
    let lo = 2f64.powf(f64::from(bucket - 1) / 4.0) * 1000.0;
    let hi = 2f64.powf(f64::from(bucket) / 4.0) * 1000.0;
    (lo, hi)
}

/// Length buckets of a prompt output, in characters: <50, <100, <200, … , ≥3200.
pub fn length_bucket(chars: usize) -> u32 {
    let mut bound = 50;
    for b in 0..7 {
        if chars < bound {
            return b;
        }
        bound *= 2;
    }
    7
}

/// A ratio that keeps what it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ts_rs::TS)]
pub struct Ratio {
    pub num: f64,
    pub den: f64,
    /// `num / den`, or none for an empty window.
    pub value: Option<f64>,
}

impl Ratio {
    pub fn new(num: f64, den: f64) -> Self {
        Self {
            num,
            den,
            value: (den > 0.0).then(|| num / den),
        }
    }
}

/// Human decisions by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ts_rs::TS)]
pub struct DecisionMix {
    pub approve: f64,
    pub edit: f64,
    pub reject: f64,
    pub escalate: f64,
}

/// Prompt steps by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ts_rs::TS)]
pub struct PromptMix {
    pub clean: f64,
    pub repaired: f64,
    pub fallback: f64,
    pub attention: f64,
    pub failed: f64,
}

/// Task created → final decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ts_rs::TS)]
pub struct Escalation {
    pub decided: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Decided tasks that had been escalated / decided tasks.
    pub escalated: Ratio,
    /// Decided tasks whose SLA ran out / decided tasks.
    pub breached: Ratio,
}

/// The five metrics of a window (drift is computed between two windows: [`drift`]).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Summary {
    pub runs_started: f64,
    pub runs_finished: f64,
    pub runs_failed: f64,
    pub prompt_success: Ratio,
    pub prompts: PromptMix,
    pub tokens: f64,
    pub human_override: Ratio,
    pub decisions: DecisionMix,
    /// Mean share of the draft changed by an edit, when any edit was measured.
    pub edit_distance: Option<f64>,
    pub automation_coverage: Ratio,
    pub auto_approved_reviews: f64,
    pub tasks_created: f64,
    pub escalation: Escalation,
}

fn get(counts: &Counts, key: &str) -> f64 {
    counts.get(key).copied().unwrap_or(0.0)
}

/// The metrics of a window from its summed counters.
pub fn summarize(counts: &Counts) -> Summary {
    let g = |k: &str| get(counts, k);
    let decision = |a: Action| g(&format!("{}{}", key::DECISION_PREFIX, a.as_str()));
    let decided = g(key::TASK_DECIDED);
    let histogram = prefixed(counts, key::LATENCY_PREFIX);
    Summary {
        runs_started: g(key::RUN_STARTED),
        runs_finished: g(key::RUN_FINISHED),
        runs_failed: g(key::RUN_FAILED),
        prompt_success: Ratio::new(g(key::PROMPT_CLEAN), g(key::PROMPT_STEPS)),
        prompts: PromptMix {
            clean: g(key::PROMPT_CLEAN),
            repaired: g(key::PROMPT_REPAIRED),
            fallback: g(key::PROMPT_FALLBACK),
            attention: g(key::PROMPT_ATTENTION),
            failed: g(key::PROMPT_FAILED),
        },
        tokens: g(key::PROMPT_TOKENS),
        human_override: Ratio::new(
            decision(Action::Edit) + decision(Action::Reject),
            g(key::DECISION_HUMAN),
        ),
        decisions: DecisionMix {
            approve: decision(Action::Approve),
            edit: decision(Action::Edit),
            reject: decision(Action::Reject),
            escalate: decision(Action::Escalate),
        },
        edit_distance: Ratio::new(g(key::EDIT_DISTANCE), g(key::EDIT_MEASURED)).value,
        automation_coverage: Ratio::new(g(key::RUN_UNTOUCHED), g(key::RUN_FINISHED)),
        auto_approved_reviews: g(key::REVIEW_AUTO),
        tasks_created: g(key::TASK_CREATED),
        escalation: Escalation {
            decided,
            p50_ms: percentile(&histogram, 0.5),
            p95_ms: percentile(&histogram, 0.95),
            escalated: Ratio::new(g(key::TASK_ESCALATED), decided),
            breached: Ratio::new(g(key::TASK_BREACHED), decided),
        },
    }
}

/// The `<prefix><n>` counters as (n, count), in bucket order.
fn prefixed(counts: &Counts, prefix: &str) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64)> = counts
        .range(prefix.to_owned()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, n)| Some((k[prefix.len()..].parse().ok()?, *n)))
        .collect();
    out.sort_by_key(|(b, _)| *b);
    out
}

/// The q-quantile (0..=1) of a latency histogram, interpolated within its bucket on a log
/// scale; none when the histogram is empty.
pub fn percentile(histogram: &[(u32, f64)], q: f64) -> Option<f64> {
    let total: f64 = histogram.iter().map(|(_, n)| n).sum();
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut seen = 0.0;
    for &(bucket, n) in histogram {
        if n <= 0.0 {
            continue;
        }
        if seen + n >= rank {
            let (lo, hi) = latency_bounds(bucket);
            let within = ((rank - seen) / n).clamp(0.0, 1.0);
            return Some(if bucket == 0 {
                lo + (hi - lo) * within
            } else {
                lo * (hi / lo).powf(within)
            });
        }
        seen += n;
    }
    histogram.last().map(|&(b, _)| latency_bounds(b).1)
}

/// When a shift counts as drift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DriftOptions {
    /// The index at or above which a version is flagged (0.25: "significant shift" in the
    /// population-stability convention; 0.1–0.25 is "moderate").
    pub threshold: f64,
    /// Observations each window needs before a component is compared at all: a handful of
    /// decisions is noise, not drift.
    pub min_samples: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        Self {
            threshold: 0.25,
            min_samples: 30.0,
        }
    }
}

/// One distribution compared between the baseline and the recent window.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DriftComponent {
    /// `decisions`, `tags`, `output_length` or `prompt_failures`.
    pub name: String,
    /// The population stability index, or none when a window had too few observations.
    pub psi: Option<f64>,
    pub baseline_n: f64,
    pub recent_n: f64,
}

/// The process drift index of a recent window against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Drift {
    /// The largest component PSI: one distribution that moved is enough to look. None when no
    /// component had enough data in both windows.
    pub index: Option<f64>,
    pub flagged: bool,
    pub threshold: f64,
    pub components: Vec<DriftComponent>,
}

/// Population stability index: Σ (a − e) · ln(a / e) over the bins' shares. Shares are
/// smoothed (a bin empty on one side gets a tiny share) so a new category scores high but
/// finite.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    const FLOOR: f64 = 1e-4;
    let te: f64 = expected.iter().sum();
    let ta: f64 = actual.iter().sum();
    if te <= 0.0 || ta <= 0.0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let e = (e / te).max(FLOOR);
            let a = (a / ta).max(FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Compare the recent window's distributions with the baseline's (DESIGN.md §3):
/// - `decisions`: the mix of human approve / edit / reject / escalate;
/// - `tags`: the mix of evaluators' tags;
/// - `output_length`: prompt outputs by length bucket;
/// - `prompt_failures`: clean prompt steps against the rest.
pub fn drift(baseline: &Counts, recent: &Counts, options: DriftOptions) -> Drift {
    let actions = [
        Action::Approve,
        Action::Edit,
        Action::Reject,
        Action::Escalate,
    ];
    let decisions = |c: &Counts| -> Vec<f64> {
        actions
            .iter()
            .map(|a| get(c, &format!("{}{}", key::DECISION_PREFIX, a.as_str())))
            .collect()
    };
    let lengths = |c: &Counts| -> Vec<f64> {
        (0..8)
            .map(|b| get(c, &format!("{}{b}", key::LENGTH_PREFIX)))
            .collect()
    };
    let failures = |c: &Counts| -> Vec<f64> {
        let clean = get(c, key::PROMPT_CLEAN);
        vec![clean, (get(c, key::PROMPT_STEPS) - clean).max(0.0)]
    };
    // Tags: the union of both windows' tags, so a tag that appears only recently counts.
    let mut tags: Vec<&String> = baseline
        .keys()
        .chain(recent.keys())
        .filter(|k| k.starts_with(key::TAG_PREFIX))
        .collect();
    tags.sort();
    tags.dedup();
    let tag_mix = |c: &Counts| -> Vec<f64> { tags.iter().map(|t| get(c, t)).collect() };

    let pairs = [
        ("decisions", decisions(baseline), decisions(recent)),
        ("tags", tag_mix(baseline), tag_mix(recent)),
        ("output_length", lengths(baseline), lengths(recent)),
        ("prompt_failures", failures(baseline), failures(recent)),
    ];
    let components: Vec<DriftComponent> = pairs
        .into_iter()
        .map(|(name, e, a)| {
            let baseline_n: f64 = e.iter().sum();
            let recent_n: f64 = a.iter().sum();
            let enough = baseline_n >= options.min_samples && recent_n >= options.min_samples;
            DriftComponent {
                name: name.to_owned(),
                psi: enough.then(|| psi(&e, &a)),
                baseline_n,
                recent_n,
            }
        })
        .collect();
    let index = components
        .iter()
        .filter_map(|c| c.psi)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
    Drift {
        flagged: index.is_some_and(|i| i >= options.threshold),
        index,
        threshold: options.threshold,
        components,
    }
}

/// A window bound as people write it, as a UTC day: `today`, `yesterday`, a date
/// (`2026-11-01`), or `7d` / `4w`: the first day of the last 7 days (4 weeks), today included,
/// so `--since 7d` covers exactly seven days.
pub fn parse_day(text: &str, today: i64) -> Result<i64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{t}` is not a day: write a date (2026-11-01), `today`, or a span back from today (7d, 4w)"
        )
    };
    match t {
        "today" => return Ok(today),
        "yesterday" => return Ok(today - 1),
        _ => {}
    }
    let span = |n: &str, unit: i64| -> Result<i64, String> {
        let n: i64 = n.trim().parse().map_err(|_| bad())?;
        if n < 1 {
            return Err(bad());
        }
        Ok(today - n.saturating_mul(unit) + 1)
    };
    if let Some(n) = t.strip_suffix("days").or_else(|| t.strip_suffix('d')) {
        return span(n, 1);
    }
    if let Some(n) = t.strip_suffix("weeks").or_else(|| t.strip_suffix('w')) {
        return span(n, 7);
    }
    let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| bad())?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(bad)?;
    Ok((date - epoch).num_days())
}

/// A UTC day as a date (`2026-11-01`).
pub fn day_date(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day.saturating_mul(DAY_MS))
        .map_or_else(|| day.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Add one window's counters into another's.
pub fn merge(into: &mut Counts, from: &Counts) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::journal::Exchange;
    use serde_json::json;

    fn counts(pairs: &[(&str, f64)]) -> Counts {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn add(into: &mut Counts, facts: Vec<(String, f64)>) {
        for (k, v) in facts {
            *into.entry(k).or_default() += v;
        }
    }

    fn exchange(purpose: &str) -> Exchange {
        Exchange {
            purpose: purpose.into(),
            ..Exchange::default()
        }
    }

    fn decision(action: Action, by: &str, text: Option<&str>) -> Decision {
        Decision {
            action,
            by: by.into(),
            text: text.map(Into::into),
            reason: None,
        }
    }

    #[test]
    fn prompt_outcomes_from_step_meta() {
        let cases: Vec<(StepMeta, Option<PromptOutcome>)> = vec![
            (StepMeta::default(), None),
            (
                StepMeta {
                    exchanges: vec![exchange("call")],
                    ..StepMeta::default()
                },
                Some(PromptOutcome::Clean),
            ),
            (
                // HTTP retries are not a failure of the prompt.
                StepMeta {
                    exchanges: vec![exchange("call")],
                    retries: 2,
                    ..StepMeta::default()
                },
                Some(PromptOutcome::Clean),
            ),
            (
                StepMeta {
                    exchanges: vec![exchange("call"), exchange("repair")],
                    ..StepMeta::default()
                },
                Some(PromptOutcome::Repaired),
            ),
            (
                StepMeta {
                    exchanges: vec![exchange("call"), exchange("call")],
                    fallback: Some("backup-agent".into()),
                    ..StepMeta::default()
                },
                Some(PromptOutcome::Fallback),
            ),
            (
                // No provider answered at all: the template fallback still is a prompt step.
                StepMeta {
                    fallback: Some("template".into()),
                    ..StepMeta::default()
                },
                Some(PromptOutcome::Fallback),
            ),
            (
                StepMeta {
                    fallback: Some("needs attention".into()),
                    ..StepMeta::default()
                },
                Some(PromptOutcome::Attention),
            ),
        ];
        for (meta, want) in cases {
            assert_eq!(prompt_outcome(&meta), want, "{meta:?}");
        }
    }

    /// A hand-built journal's worth of observations with the answers worked out by hand.
    #[test]
    fn metrics_of_a_hand_built_journal() {
        let clean = StepMeta {
            exchanges: vec![exchange("call")],
            prompt_tokens: Some(100),
            completion_tokens: Some(20),
            ..StepMeta::default()
        };
        let repaired = StepMeta {
            exchanges: vec![exchange("call"), exchange("repair")],
            ..StepMeta::default()
        };
        let text = json!({ "text": "a short draft" });
        let approve = decision(Action::Approve, "ana", None);
        let edit = decision(Action::Edit, "ben", Some("one two three four"));
        let reject = decision(Action::Reject, "ana", None);
        let policy = decision(Action::Approve, "policy", None);
        let sla = decision(Action::Reject, "sla", None);
        let mut c = Counts::new();
        for _ in 0..4 {
            add(&mut c, facts(Observation::RunStarted));
        }
        // Prompt steps: 2 clean, 1 repaired, 1 failed → 2 / 4.
        add(
            &mut c,
            facts(Observation::StepFinished {
                meta: &clean,
                output: &text,
            }),
        );
        add(
            &mut c,
            facts(Observation::StepFinished {
                meta: &clean,
                output: &text,
            }),
        );
        add(
            &mut c,
            facts(Observation::StepFinished {
                meta: &repaired,
                output: &text,
            }),
        );
        add(&mut c, facts(Observation::StepFailed { prompt: true }));
        add(&mut c, facts(Observation::StepFailed { prompt: false }));
        // A review the policy approved on its own is not a decision.
        add(
            &mut c,
            facts(Observation::StepFinished {
                meta: &StepMeta::default(),
                output: &json!({ "path": "auto" }),
            }),
        );
        // Decisions: human approve, edit (half the words changed), reject; policy and sla.
        let d = |decision, waited_ms, escalated, breached| Observation::Decided {
            decision,
            draft: "one two five six",
            waited_ms,
            escalated,
            breached,
        };
        add(&mut c, facts(d(&approve, 60_000, false, false)));
        add(&mut c, facts(d(&edit, 120_000, true, false)));
        add(&mut c, facts(d(&reject, 240_000, true, true)));
        add(&mut c, facts(d(&policy, 10, false, false)));
        add(&mut c, facts(d(&sla, 3_600_000, false, true)));
        // Runs: 3 finished, 1 with no human touch.
        add(
            &mut c,
            facts(Observation::RunFinished {
                status: FinalStatus::Completed,
                human_touched: true,
            }),
        );
        add(
            &mut c,
            facts(Observation::RunFinished {
                status: FinalStatus::Completed,
                human_touched: false,
            }),
        );
        add(
            &mut c,
            facts(Observation::RunFinished {
                status: FinalStatus::Failed,
                human_touched: true,
            }),
        );

        let s = summarize(&c);
        assert_eq!(s.runs_started, 4.0);
        assert_eq!(s.prompt_success, Ratio::new(2.0, 4.0));
        assert_eq!(s.prompt_success.value, Some(0.5));
        assert_eq!(
            s.prompts,
            PromptMix {
                clean: 2.0,
                repaired: 1.0,
                fallback: 0.0,
                attention: 0.0,
                failed: 1.0
            }
        );
        assert_eq!(s.tokens, 240.0);
        assert_eq!(s.human_override, Ratio::new(2.0, 3.0));
        assert_eq!(
            s.decisions,
            DecisionMix {
                approve: 1.0,
                edit: 1.0,
                reject: 1.0,
                escalate: 0.0
            }
        );
        let distance = s.edit_distance.expect("an edit was measured");
        assert!(
            (distance - 0.5).abs() < 0.2,
            "half the words changed: {distance}"
        );
        assert_eq!(s.automation_coverage, Ratio::new(1.0, 3.0));
        assert_eq!(s.runs_failed, 1.0);
        assert_eq!(s.auto_approved_reviews, 1.0);
        assert_eq!(s.escalation.decided, 5.0);
        assert_eq!(s.escalation.escalated, Ratio::new(2.0, 5.0));
        assert_eq!(s.escalation.breached, Ratio::new(2.0, 5.0));
        // Latencies: 10 ms, 1 min, 2 min, 4 min, 1 h → the median is 2 min (±9 %).
        let p50 = s.escalation.p50_ms.expect("decided tasks");
        assert!((p50 / 120_000.0 - 1.0).abs() < 0.1, "p50 {p50}");
        let p95 = s.escalation.p95_ms.expect("decided tasks");
        assert!(p95 > 240_000.0 && p95 <= 3_600_000.0 * 1.1, "p95 {p95}");
    }

    #[test]
    fn empty_windows_have_no_ratios_rather_than_dividing_by_zero() {
        let s = summarize(&Counts::new());
        for r in [
            s.prompt_success,
            s.human_override,
            s.automation_coverage,
            s.escalation.escalated,
            s.escalation.breached,
        ] {
            assert_eq!(r.value, None);
            assert_eq!(r.den, 0.0);
        }
        assert_eq!(s.edit_distance, None);
        assert_eq!(s.escalation.p50_ms, None);
        assert_eq!(s.escalation.p95_ms, None);
        // Numerators without a denominator (counters from a window edge) still give no ratio.
        let s = summarize(&counts(&[(key::PROMPT_CLEAN, 3.0)]));
        assert_eq!(s.prompt_success.value, None);
    }

    #[test]
    fn latency_buckets_and_percentiles() {
        let cases = [
            (0, 0),
            (999, 0),
            (1000, 1),
            (1189, 1),
            (1190, 2),
            (2000, 5),
            (60_000, 24),
            (i64::MAX, LATENCY_BUCKETS - 1),
        ];
        for (ms, bucket) in cases {
            assert_eq!(latency_bucket(ms), bucket, "{ms} ms");
        }
        for ms in [1500_i64, 42_000, 3_600_000, 7 * 86_400_000] {
            let b = latency_bucket(ms);
            let (lo, hi) = latency_bounds(b);
            assert!(lo <= ms as f64 && (ms as f64) < hi, "{ms} in [{lo}, {hi})");
            assert!(hi / lo < 1.19 + 1e-9);
        }
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[(3, 0.0)], 0.5), None);
        // One bucket: the quantiles spread across it.
        let one = [(latency_bucket(60_000), 10.0)];
        let (lo, hi) = latency_bounds(one[0].0);
        let p = percentile(&one, 0.5).unwrap();
        assert!(lo < p && p < hi);
        // 90 fast and 10 slow: p50 is fast, p95 is slow.
        let mix = [
            (latency_bucket(2_000), 90.0),
            (latency_bucket(86_400_000), 10.0),
        ];
        assert!(percentile(&mix, 0.5).unwrap() < 3_000.0);
        assert!(percentile(&mix, 0.95).unwrap() > 80_000_000.0);
    }

    #[test]
    fn days_as_people_write_them() {
        let today = 20_417; // 2025-11-25
        assert_eq!(day_date(today), "2025-11-25");
        let cases = [
            ("today", Ok(today)),
            ("yesterday", Ok(today - 1)),
            ("1d", Ok(today)),
            ("7d", Ok(today - 6)),
            (" 30 days ", Ok(today - 29)),
            ("2w", Ok(today - 13)),
            ("2025-11-01", Ok(today - 24)),
            ("1970-01-01", Ok(0)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_day(text, today), want, "{text}");
        }
        for bad in ["", "soon", "7x", "d", "0d", "-3d", "2025-13-01", "-"] {
            let err = parse_day(bad, today).expect_err(bad);
            assert!(err.contains("2026-11-01") && err.contains("7d"), "{err}");
        }
    }

    #[test]
    fn length_buckets() {
        let cases = [
            (0, 0),
            (49, 0),
            (50, 1),
            (99, 1),
            (100, 2),
            (399, 3),
            (3199, 6),
            (3200, 7),
            (1_000_000, 7),
        ];
        for (chars, bucket) in cases {
            assert_eq!(length_bucket(chars), bucket, "{chars} chars");
        }
    }

    #[test]
    fn edit_distance_is_the_share_of_words_changed() {
        assert_eq!(edit_distance("same text", "same text"), 0.0);
        let whole = edit_distance("alpha beta gamma", "delta epsilon zeta");
        assert!(whole > 0.9, "{whole}");
        let little = edit_distance(
            "Dear Ana, your laptop arrives on Monday with the docking station.",
            "Dear Ana, your laptop arrives on Tuesday with the docking station.",
        );
        assert!(little > 0.0 && little < 0.2, "{little}");
    }

    #[test]
    fn psi_of_known_distributions() {
        assert_eq!(psi(&[50.0, 50.0], &[50.0, 50.0]), 0.0);
        // (0.7−0.5)·ln(0.7/0.5) + (0.3−0.5)·ln(0.3/0.5)
        let want = 0.2 * (0.7f64 / 0.5).ln() + (-0.2) * (0.3f64 / 0.5).ln();
        assert!((psi(&[50.0, 50.0], &[70.0, 30.0]) - want).abs() < 1e-12);
        // Scale does not matter, only shares.
        assert!((psi(&[5.0, 5.0], &[700.0, 300.0]) - want).abs() < 1e-12);
        // A category that appears from nowhere scores high, yet finite.
        let new = psi(&[100.0, 0.0], &[50.0, 50.0]);
        assert!(new.is_finite() && new > 1.0, "{new}");
        assert_eq!(psi(&[], &[]), 0.0);
        assert_eq!(psi(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }

    /// Deterministic pseudo-random draws (a fixed LCG: the test needs no `rand`).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A window of `n` decisions drawn with the given approve/edit/reject/escalate shares, plus
    /// prompt steps with the given clean share and outputs of the given typical length.
    fn window(
        rng: &mut Lcg,
        n: usize,
        mix: [f64; 4],
        clean: f64,
        length: usize,
        tags: &[(&str, f64)],
    ) -> Counts {
        let mut c = Counts::new();
        let actions = [
            Action::Approve,
            Action::Edit,
            Action::Reject,
            Action::Escalate,
        ];
        for _ in 0..n {
            let mut r = rng.next();
            let mut action = Action::Escalate;
            for (a, share) in actions.iter().zip(mix) {
                if r < share {
                    action = *a;
                    break;
                }
                r -= share;
            }
            let d = decision(action, "someone", Some("edited text"));
            add(
                &mut c,
                facts(Observation::Decided {
                    decision: &d,
                    draft: "draft text",
                    waited_ms: 60_000,
                    escalated: false,
                    breached: false,
                }),
            );
            let meta = if rng.next() < clean {
                StepMeta {
                    exchanges: vec![exchange("call")],
                    ..StepMeta::default()
                }
            } else {
                StepMeta {
                    exchanges: vec![exchange("call"), exchange("repair")],
                    ..StepMeta::default()
                }
            };
            let len = (length as f64 * (0.6 + 0.8 * rng.next())) as usize;
            let output = json!({ "text": "x".repeat(len) });
            add(
                &mut c,
                facts(Observation::StepFinished {
                    meta: &meta,
                    output: &output,
                }),
            );
            let mut r = rng.next();
            for (tag, share) in tags {
                if r < *share {
                    *c.entry(format!("{}{tag}", key::TAG_PREFIX)).or_default() += 1.0;
                    break;
                }
                r -= share;
            }
        }
        c
    }

    #[test]
    fn stable_processes_are_not_flagged() {
        let tags = [("tone", 0.2), ("wrong-policy", 0.1), ("great", 0.3)];
        for seed in [1, 7, 42, 1234, 99_999] {
            let mut rng = Lcg(seed);
            let baseline = window(&mut rng, 600, [0.7, 0.2, 0.08, 0.02], 0.9, 400, &tags);
            let recent = window(&mut rng, 200, [0.7, 0.2, 0.08, 0.02], 0.9, 400, &tags);
            let d = drift(&baseline, &recent, DriftOptions::default());
            assert!(!d.flagged, "seed {seed}: {d:?}");
            assert!(d.index.unwrap() < 0.1, "seed {seed}: {d:?}");
            assert_eq!(d.components.iter().filter(|c| c.psi.is_some()).count(), 4);
        }
    }

    #[test]
    fn planted_shifts_are_flagged_by_the_component_that_moved() {
        const TAGS: &[(&str, f64)] = &[("tone", 0.2), ("wrong-policy", 0.1), ("great", 0.3)];
        const SHIFTED: &[(&str, f64)] = &[("tone", 0.2), ("wrong-policy", 0.4), ("great", 0.1)];
        let tags = TAGS;
        type Plant = (
            &'static str,
            [f64; 4],
            f64,
            usize,
            &'static [(&'static str, f64)],
        );
        let plants: [Plant; 4] = [
            // Managers start rejecting a third of the drafts.
            ("decisions", [0.45, 0.2, 0.33, 0.02], 0.9, 400, TAGS),
            // The model starts needing repairs half the time.
            ("prompt_failures", [0.7, 0.2, 0.08, 0.02], 0.5, 400, TAGS),
            // Outputs get four times longer.
            ("output_length", [0.7, 0.2, 0.08, 0.02], 0.9, 1600, TAGS),
            // Evaluators tag "wrong-policy" four times as often.
            ("tags", [0.7, 0.2, 0.08, 0.02], 0.9, 400, SHIFTED),
        ];
        for (moved, mix, clean, length, recent_tags) in plants {
            for seed in [3, 11, 2024] {
                let mut rng = Lcg(seed);
                let baseline = window(&mut rng, 600, [0.7, 0.2, 0.08, 0.02], 0.9, 400, tags);
                let recent = window(&mut rng, 200, mix, clean, length, recent_tags);
                let d = drift(&baseline, &recent, DriftOptions::default());
                assert!(d.flagged, "{moved}, seed {seed}: {d:?}");
                let top = d
                    .components
                    .iter()
                    .max_by(|a, b| a.psi.unwrap_or(0.0).total_cmp(&b.psi.unwrap_or(0.0)))
                    .unwrap();
                assert_eq!(top.name, moved, "seed {seed}: {d:?}");
            }
        }
    }

    #[test]
    fn too_few_observations_are_not_compared() {
        let mut rng = Lcg(5);
        let baseline = window(&mut rng, 600, [0.7, 0.2, 0.08, 0.02], 0.9, 400, &[]);
        // Ten decisions, all rejections: a big shift, but too little data to call it drift.
        let recent = window(&mut rng, 10, [0.0, 0.0, 1.0, 0.0], 0.9, 400, &[]);
        let d = drift(&baseline, &recent, DriftOptions::default());
        assert!(!d.flagged, "{d:?}");
        assert!(d.components.iter().all(|c| c.psi.is_none()));
        assert_eq!(d.index, None);
        // With a lower bar the same data is compared, and flagged.
        let d = drift(
            &baseline,
            &recent,
            DriftOptions {
                min_samples: 5.0,
                ..DriftOptions::default()
            },
        );
        assert!(d.flagged, "{d:?}");
    }
}
