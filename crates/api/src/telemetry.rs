//! The engine's Prometheus metrics (`GET /metrics`, OpenMetrics text).
//!
//! Nothing in the engine counts for them. At each scrape they are read from the store:
//! - run totals by blueprint and outcome, prompt failures and SLA breaches come from the
//!   metrics' day counters (`metric_counts`), so they survive restarts;
//! - runs by status, the inbox depth and the sync backlog are gauges read with index counts;
//! - node durations and model usage (tokens, calls, errors) come from the steps the journal
//!   recorded since the previous scrape ([`Tail`]). These are process counters: they start at
//!   zero when the server starts, which Prometheus' `rate()` expects.

use std::collections::HashMap;
use std::sync::Mutex;

use processops_store::{StepRecord, now_ms};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use uuid::Uuid;

use crate::{ApiError, Service};

/// The content type of the metrics' text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A step's commit may become visible a little after the time stamped on it (the group
/// commit's batch); each scrape re-reads this much history, deduplicated, so none is missed.
const SLACK_MS: i64 = 10_000;
/// Steps read per scrape at most; the rest are read by the next scrapes.
const MAX_STEPS_PER_SCRAPE: u32 = 20_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Blueprint {
    blueprint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Finished {
    blueprint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeKind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Model {
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tokens {
    provider: String,
    model: String,
    /// `in` (prompt) or `out` (completion).
    direction: String,
}

/// Where the journal was read up to, and the steps already counted there.
#[derive(Debug)]
struct Tail {
    /// Steps committed at or after this instant (Unix ms) are read at the next scrape.
    since: i64,
    /// Per run, the last counted step's sequence number and time: a run's steps commit in
    /// sequence order, so anything at or below it was counted.
    counted: HashMap<Uuid, (u64, i64)>,
    /// A node's kind per (version, node): versions never change.
    kinds: HashMap<(String, String), &'static str>,
}

/// The metrics of one server. Cheap to share; create one per router.
#[derive(Debug)]
pub struct Telemetry {
    tail: Mutex<Tail>,
    node_seconds: Family<NodeKind, Histogram>,
    tokens: Family<Tokens, Counter>,
    calls: Family<Model, Counter>,
    errors: Family<Model, Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Counting starts now: steps finished before are not read.
    pub fn new() -> Self {
        Self {
            tail: Mutex::new(Tail {
                since: now_ms(),
                counted: HashMap::new(),
                kinds: HashMap::new(),
            }),
            // 5 ms to about 3 minutes: pure steps, retrievals and model calls alike.
            node_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 16))
            }),
            tokens: Family::default(),
            calls: Family::default(),
            errors: Family::default(),
        }
    }

    /// The metrics' text now.
    pub fn render(&self, service: &Service) -> Result<String, ApiError> {
        self.catch_up(service)?;
        let store = service.engine().store();
        let mut r = Registry::with_prefix("processops");

        let started = Family::<Blueprint, Counter>::default();
        let finished = Family::<Finished, Counter>::default();
        let prompt_failed = Family::<Blueprint, Counter>::default();
        for t in store.blueprint_totals()? {
            let b = Blueprint {
                blueprint: t.blueprint.clone(),
            };
            started.get_or_create(&b).inc_by(t.runs_started);
            prompt_failed.get_or_create(&b).inc_by(t.prompt_failed);
            for (status, n) in [("completed", t.runs_completed), ("failed", t.runs_failed)] {
                finished
                    .get_or_create(&Finished {
                        blueprint: t.blueprint.clone(),
                        status: status.to_owned(),
                    })
                    .inc_by(n);
            }
        }
        r.register("runs_started", "Runs started, by blueprint", started);
        r.register(
            "runs_finished",
            "Runs finished, by blueprint and final status",
            finished,
        );
        r.register(
            "prompt_steps_failed",
            "Prompt steps that failed outright (every agent and the fallback), by blueprint",
            prompt_failed,
        );

        let runs = Family::<Status, Gauge>::default();
        for (status, n) in store.runs_by_status()? {
            runs.get_or_create(&Status { status }).set(gauge(n));
        }
        r.register("runs", "Runs now, by status", runs);

        let inbox = store.inbox_gauges(now_ms())?;
        r.register(
            "inbox_pending",
            "Review tasks waiting for a decision (the inbox depth)",
            ConstGauge::new(gauge(inbox.pending)),
        );
        r.register(
            "inbox_overdue",
            "Pending review tasks past their due time",
            ConstGauge::new(gauge(inbox.overdue)),
        );
        r.register(
            "inbox_breached",
            "Pending review tasks whose SLA breach was handled but that still wait",
            ConstGauge::new(gauge(inbox.breached)),
        );
        r.register(
            "sla_breaches",
            "Review tasks whose SLA ran out",
            ConstCounter::new(store.sla_breaches()?),
        );

        if let Some(sync) = store.sync_status()? {
            r.register(
                "sync_pending_events",
                "Local changes the hub has not acknowledged yet",
                ConstGauge::new(gauge(sync.pending)),
            );
            r.register(
                "sync_open_conflicts",
                "Sync conflicts nobody has resolved",
                ConstGauge::new(gauge(sync.open_conflicts)),
            );
            if let Some(at) = sync.last_sync_at {
                let age = (now_ms() - at).max(0) as f64 / 1000.0;
                r.register_with_unit(
                    "sync_last_success_age",
                    "Time since the last successful sync round",
                    Unit::Seconds,
                    ConstGauge::new(age),
                );
            }
            if let Some(online) = service.hub().and_then(crate::hub::HubLink::online) {
                r.register(
                    "sync_hub_online",
                    "1 when the last sync round reached the hub",
                    ConstGauge::new(i64::from(online)),
                );
            }
        }

        r.register_with_unit(
            "node_duration",
            "How long steps took, by node kind (steps that record a duration: retrievals, prompts, outputs)",
            Unit::Seconds,
            self.node_seconds.clone(),
        );
        r.register(
            "llm_tokens",
            "Model tokens, by provider, model and direction (in: prompt, out: completion)",
            self.tokens.clone(),
        );
        r.register(
            "llm_calls",
            "Model calls, by provider and model",
            self.calls.clone(),
        );
        r.register(
            "llm_errors",
            "Model calls that failed or whose reply was refused, by provider and model",
            self.errors.clone(),
        );

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r)
            .map_err(|e| internal(format!("cannot encode the metrics: {e}")))?;
        Ok(text)
    }

    /// Count the steps finished since the previous scrape.
    fn catch_up(&self, service: &Service) -> Result<(), ApiError> {
        let mut tail = self
            .tail
            .lock()
            .map_err(|_| internal("the metrics' state is poisoned"))?;
        let read_at = now_ms();
        let steps = service
            .engine()
            .store()
            .steps_finished_since(tail.since, MAX_STEPS_PER_SCRAPE)?;
        let full = steps.len() >= MAX_STEPS_PER_SCRAPE as usize;
        let last_at = steps.last().map(|s| s.at);
        for step in steps {
            let new = tail
                .counted
                .get(&step.run_id)
                .is_none_or(|&(seq, _)| step.seq > seq);
            if new {
                tail.counted.insert(step.run_id, (step.seq, step.at));
                let kind = kind_of(service, &mut tail.kinds, &step);
                self.count(kind, &step);
            }
        }
        let next = read_at - SLACK_MS;
        tail.since = match (full, last_at) {
            // More steps wait: continue from the last one read (deduplicated above).
            (true, Some(at)) => at,
            _ => next.max(tail.since),
        };
        let since = tail.since;
        tail.counted.retain(|_, &mut (_, at)| at >= since);
        Ok(())
    }

    fn count(&self, kind: &str, step: &StepRecord) {
        if let Some(ms) = step.duration_ms {
            self.node_seconds
                .get_or_create(&NodeKind {
                    kind: kind.to_owned(),
                })
                .observe(ms / 1000.0);
        }
        for call in &step.calls {
            let model = Model {
                provider: call.provider.clone(),
                model: call.model.clone(),
            };
            self.calls.get_or_create(&model).inc();
            if call.failed {
                self.errors.get_or_create(&model).inc();
            }
            for (direction, n) in [("in", call.prompt_tokens), ("out", call.completion_tokens)] {
                self.tokens
                    .get_or_create(&Tokens {
                        provider: call.provider.clone(),
                        model: call.model.clone(),
                        direction: direction.to_owned(),
                    })
                    .inc_by(n);
            }
        }
    }
}

/// The node's kind (`prompt`, `retrieve`, …), `unknown` when its version cannot be loaded.
fn kind_of(
    service: &Service,
    kinds: &mut HashMap<(String, String), &'static str>,
    step: &StepRecord,
) -> &'static str {
    let key = (step.version.clone(), step.node.clone());
    if let Some(kind) = kinds.get(&key) {
        return kind;
    }
    let kind = service
        .engine()
        .version(&step.version)
        .ok()
        .and_then(|c| c.node(&step.node).ok().map(|n| n.kind_name()));
    match kind {
        Some(kind) => {
            kinds.insert(key, kind);
            kind
        }
        // Not cached: the version may become loadable (say, synced from the hub).
        None => "unknown",
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn internal(message: impl Into<String>) -> ApiError {
    ApiError::new(500, "internal", message)
}
