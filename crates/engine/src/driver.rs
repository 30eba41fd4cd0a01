//! One run's driver: plan, journal, execute, repeat, until the run parks or ends.

use std::collections::BTreeSet;
use std::sync::Arc;

use processops_core::blueprint::Node;
use processops_core::journal::{Event, FinalStatus};
use processops_core::run::{Plan, RunState, Step, plan};
use processops_store::RunStatus;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument as _, Span};
use uuid::Uuid;

use crate::nodes::{self, ReviewStart};
use crate::telemetry;
use crate::{Compiled, Engine, EngineError};

/// Drive a run until it parks or ends, inside its own trace (one per activation).
pub(crate) async fn drive(
    engine: Engine,
    run_id: Uuid,
    wakes: mpsc::UnboundedReceiver<Event>,
    preloaded: Option<(Arc<Compiled>, RunState)>,
) {
    let span = telemetry::run_span(run_id);
    drive_traced(engine, run_id, wakes, preloaded, span.clone())
        .instrument(span)
        .await;
}

async fn drive_traced(
    engine: Engine,
    run_id: Uuid,
    mut wakes: mpsc::UnboundedReceiver<Event>,
    preloaded: Option<(Arc<Compiled>, RunState)>,
    span: Span,
) {
    let loaded = match preloaded {
        Some((compiled, state)) => Ok(Driver::new(&engine, run_id, compiled, state)),
        None => Driver::load(&engine, run_id),
    };
    let mut driver = match loaded {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "cannot load the run");
            telemetry::fail(&span, "load_failed", &e.to_string());
            stop(&engine, run_id);
            return;
        }
    };
    span.record(
        "processops.blueprint.id",
        driver.compiled.blueprint.id.as_str(),
    );
    span.record(
        "processops.blueprint.version",
        driver.compiled.hash.as_str(),
    );
    loop {
        if let Err(e) = driver.run(&mut wakes).await {
            // The run stays `running` in the store, so a restart (or the next wake) resumes it.
            tracing::error!(run = %run_id, error = %e, "run driver stopped");
            telemetry::fail(&span, "driver_stopped", &e.to_string());
            stop(&engine, run_id);
            return;
        }
        // Leave only if no event arrived while we were finishing; otherwise keep going.
        let Ok(mut drivers) = engine.inner.drivers.lock() else {
            return;
        };
        match wakes.try_recv() {
            Ok(event) => {
                drop(drivers);
                driver.state.apply(&driver.compiled.graph, &event);
            }
            Err(_) => {
                if let Some(h) = drivers.remove(&run_id) {
                    h.stopped.send_replace(true);
                }
                drop(drivers);
                engine.inner.settled.notify_waiters();
                return;
            }
        }
    }
}

fn stop(engine: &Engine, run_id: Uuid) {
    if let Ok(mut drivers) = engine.inner.drivers.lock()
        && let Some(h) = drivers.remove(&run_id)
    {
        h.stopped.send_replace(true);
    }
    engine.inner.settled.notify_waiters();
}

/// A step that failed before it did anything outside (a template that does not render): it is
/// journaled as started and failed at once, so the run waits for a retry.
fn failed_before_acting(
    node: String,
    visit: u32,
    attempt: u32,
    error: String,
    prompt: bool,
) -> [Event; 2] {
    [
        Event::NodeStarted {
            node: node.clone(),
            visit,
            attempt,
        },
        Event::NodeFailed {
            node,
            visit,
            attempt,
            error,
            prompt,
        },
    ]
}

type StepResult = (String, u32, Result<nodes::Outcome, String>);

struct Driver {
    engine: Engine,
    run_id: Uuid,
    compiled: Arc<Compiled>,
    state: RunState,
    inflight: BTreeSet<String>,
    running: JoinSet<StepResult>,
    /// Events applied to `state` but not yet committed. Only recomputable facts wait here
    /// (pure nodes, review completions); anything the outside world depends on is flushed
    /// before it happens.
    pending: Vec<Event>,
}

impl Driver {
    fn load(engine: &Engine, run_id: Uuid) -> Result<Self, EngineError> {
        let (row, entries) = engine
            .store()
            .load_run(run_id)?
            .ok_or_else(|| EngineError::Internal(format!("run {run_id} is not stored")))?;
        let compiled = engine.version(&row.version)?;
        let state = RunState::replay(&compiled.graph, entries.iter().map(|e| &e.event));
        Ok(Self::new(engine, run_id, compiled, state))
    }

    fn new(engine: &Engine, run_id: Uuid, compiled: Arc<Compiled>, state: RunState) -> Self {
        Self {
            engine: engine.clone(),
            run_id,
            compiled,
            state,
            inflight: BTreeSet::new(),
            running: JoinSet::new(),
            pending: Vec::new(),
        }
    }

    /// Apply events to the in-memory state and queue them for the journal.
    fn record(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            self.state.apply(&self.compiled.graph, &e);
            self.pending.push(e);
        }
    }

    /// Commit queued events, with the run status they imply.
    async fn flush(&mut self) -> Result<(), EngineError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let status = match plan(&self.compiled.graph, &self.state, &self.inflight) {
            Plan::WaitingForDecision => Some(RunStatus::Waiting),
            Plan::NeedsAttention => Some(RunStatus::Attention),
            _ => None,
        };
        let events = std::mem::take(&mut self.pending);
        self.engine
            .store()
            .append(self.run_id, events, status)
            .await?;
        Ok(())
    }

    async fn run(&mut self, wakes: &mut mpsc::UnboundedReceiver<Event>) -> Result<(), EngineError> {
        loop {
            while let Ok(e) = wakes.try_recv() {
                self.state.apply(&self.compiled.graph, &e);
            }
            match plan(&self.compiled.graph, &self.state, &self.inflight) {
                Plan::Run(steps) => self.take(steps).await?,
                Plan::Busy => {
                    tokio::select! {
                        Some(joined) = self.running.join_next() => {
                            let (node, visit, result) = joined.map_err(|e| EngineError::Internal(format!("step task failed: {e}")))?;
                            self.inflight.remove(&node);
                            let event = match result {
                                Ok(outcome) => outcome.into_event(&node, visit),
                                Err(error) => Event::NodeFailed { node: node.clone(), visit, attempt: self.attempt(&node), error, prompt: self.is_prompt(&node) },
                            };
                            self.record_finished(event);
                        }
                        Some(e) = wakes.recv() => self.state.apply(&self.compiled.graph, &e),
                    }
                }
                parked @ (Plan::WaitingForDecision | Plan::NeedsAttention | Plan::Done) => {
                    self.flush().await?;
                    let status = match parked {
                        Plan::WaitingForDecision => "waiting",
                        Plan::NeedsAttention => "attention",
                        _ => "done",
                    };
                    Span::current().record("processops.run.status", status);
                    return Ok(());
                }
            }
        }
    }

    /// Whether `node` is a prompt step (its failures count against the prompt success rate).
    fn is_prompt(&self, node: &str) -> bool {
        matches!(
            self.compiled.blueprint.node(node),
            Some(processops_core::blueprint::Node::Prompt(_))
        )
    }

    /// Journal a step that failed before acting, with the cause explained where one is known.
    fn fail_before_acting(&mut self, node: String, visit: u32, attempt: u32, error: String) {
        let error = self.explain(error);
        telemetry::fail(&Span::current(), "step_failed", &error);
        let prompt = self.is_prompt(&node);
        self.record(failed_before_acting(node, visit, attempt, error, prompt));
    }

    /// A template that reads the JSON of a step whose structured output failed fails with
    /// "undefined value"; say which step is the cause and what to do.
    fn explain(&self, error: String) -> String {
        let culprits: Vec<&str> = self
            .state
            .outputs
            .iter()
            .filter(|(_, o)| {
                o.get("needs_attention")
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
            })
            .map(|(id, _)| id.as_str())
            .collect();
        if culprits.is_empty() {
            return error;
        }
        format!(
            "{error} (step {} produced no valid JSON: no agent's reply matched its output_schema, even after a repair attempt; use a stronger model or a fallback agent, then retry the run)",
            culprits
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn attempt(&self, node: &str) -> u32 {
        self.state.active.get(node).map_or(1, |a| a.attempt)
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn record_finished(&mut self, event: Event) {
        self.record([event]);
    }

    /// Planted bug for the recovery tests: a finished prompt step is applied in memory but
    /// never journaled, so after a crash it looks cut off and runs again.
    #[cfg(feature = "planted-bugs")]
    fn record_finished(&mut self, event: Event) {
        let skip = std::env::var("PROCESSOPS_PLANTED_BUG")
            .is_ok_and(|b| b == "skip-finish-journal")
            && matches!(&event, Event::NodeFinished { node, .. } if matches!(self.compiled.blueprint.node(node), Some(Node::Prompt(_))));
        if skip {
            self.state.apply(&self.compiled.graph, &event);
        } else {
            self.record([event]);
        }
    }

    /// Carry out one round of the plan: the first step that needs no outside world, or else
    /// every side-effect step at once (their starts committed in one write).
    async fn take(&mut self, steps: Vec<Step>) -> Result<(), EngineError> {
        let compiled = self.compiled.clone();
        let (external, inline): (Vec<Step>, Vec<Step>) = steps.into_iter().partition(|s| match s {
            Step::Execute { node, .. } => matches!(
                compiled.blueprint.node(node),
                Some(Node::Prompt(_) | Node::Output(_))
            ),
            _ => false,
        });
        if let Some(step) = inline.into_iter().next() {
            let span = self.step_span(&step);
            return self.inline(step).instrument(span).await;
        }
        let ctx = nodes::context(&compiled, &self.state, self.run_id);
        let mut launches = Vec::new();
        for step in external {
            let Step::Execute {
                node,
                visit,
                attempt,
            } = step
            else {
                continue;
            };
            let n = compiled.node(&node)?;
            let span = telemetry::node_span(n, visit, attempt);
            match nodes::prepare(
                &self.engine,
                &compiled,
                n,
                &ctx,
                self.run_id,
                visit,
                attempt,
            ) {
                Ok(prepared) => {
                    self.record([Event::NodeStarted {
                        node: node.clone(),
                        visit,
                        attempt,
                    }]);
                    launches.push((node, visit, prepared, span));
                }
                // Rendering failed before anything happened outside: fail the step.
                Err(error) => {
                    let _in_node = span.enter();
                    self.fail_before_acting(node, visit, attempt, error);
                }
            }
        }
        for (node, _, _, _) in &launches {
            self.inflight.insert(node.clone());
        }
        // The starts must be durable before the side effects happen.
        self.flush().await?;
        for (node, visit, prepared, span) in launches {
            let engine = self.engine.clone();
            let step_key = nodes::idempotency_key(self.run_id, &node, visit);
            self.running.spawn(
                async move {
                    let result = nodes::perform(engine, prepared, step_key).await;
                    if let Err(error) = &result {
                        telemetry::fail(&Span::current(), "step_failed", error);
                    }
                    (node, visit, result)
                }
                .instrument(span),
            );
        }
        Ok(())
    }

    /// The span of a step run inline: a node execution or a review's completion. Planner
    /// bookkeeping (finish, abandon, exhaust) is recorded as events of the run span.
    fn step_span(&self, step: &Step) -> Span {
        let (node, visit, attempt) = match step {
            Step::Execute {
                node,
                visit,
                attempt,
            } => (node, *visit, *attempt),
            Step::CompleteReview { node, visit } => (node, *visit, self.attempt(node)),
            _ => return Span::none(),
        };
        match self.compiled.blueprint.node(node) {
            Some(n) => telemetry::node_span(n, visit, attempt),
            None => Span::none(),
        }
    }

    async fn inline(&mut self, step: Step) -> Result<(), EngineError> {
        let compiled = self.compiled.clone();
        match step {
            Step::Execute {
                node,
                visit,
                attempt,
            } => {
                let n = compiled.node(&node)?;
                let ctx = nodes::context(&compiled, &self.state, self.run_id);
                if let Node::Review(r) = n {
                    match nodes::start_review(&compiled, r, visit, &ctx, &self.state) {
                        Ok(ReviewStart::Auto(outcome)) => {
                            self.record([outcome.into_event(&node, visit)])
                        }
                        Ok(ReviewStart::Task(task)) => {
                            tracing::info!(
                                processops.task.id = %task.id,
                                processops.task.role = %task.role,
                                "review task created; the run waits for a decision"
                            );
                            self.record([
                                Event::NodeStarted {
                                    node: node.clone(),
                                    visit,
                                    attempt,
                                },
                                Event::TaskCreated { task },
                            ]);
                        }
                        Err(error) => {
                            self.fail_before_acting(node, visit, attempt, error);
                        }
                    }
                    return Ok(());
                }
                let recorded = match (n, self.engine.inner.replay.get()) {
                    // A replay retrieves what the original retrieved: the knowledge base may
                    // have changed since.
                    (Node::Retrieve(r), Some(recording)) => recording
                        .output(&node, visit)
                        .map(|output| nodes::recorded(output.clone(), r.next.targets())),
                    _ => None,
                };
                let result = match recorded {
                    Some(outcome) => Ok(outcome),
                    None => nodes::run_pure(&self.engine, &compiled, n, &ctx),
                };
                match result {
                    Ok(outcome) => self.record([outcome.into_event(&node, visit)]),
                    Err(error) => {
                        self.fail_before_acting(node, visit, attempt, error);
                    }
                }
            }
            Step::CompleteReview { node, visit } => {
                let Some(Node::Review(r)) = compiled.blueprint.node(&node) else {
                    return Err(EngineError::Internal(format!("`{node}` is not a review")));
                };
                let active = self.state.active.get(&node).cloned();
                let Some((task, decision)) = active.and_then(|a| Some((a.task?, a.decision?)))
                else {
                    return Err(EngineError::Internal(format!(
                        "review `{node}` has no decision"
                    )));
                };
                tracing::info!(
                    processops.task.id = %task.id,
                    processops.decision.action = decision.action.as_str(),
                    processops.decision.by = %decision.by,
                    "human decision"
                );
                let outcome = nodes::complete_review(r, &task, &decision);
                let approved_text = (outcome.label.as_deref() == Some("approved")).then(|| {
                    outcome.output["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                });
                self.record([outcome.into_event(&node, visit)]);
                if let Some(text) = approved_text {
                    self.remember(&text).await?;
                }
            }
            Step::Abandon {
                node,
                visit,
                attempt,
            } => {
                tracing::warn!(processops.node.id = %node, processops.node.visit = i64::from(visit), "step abandoned after two engine stops");
                self.record([Event::NodeFailed {
                prompt: self.is_prompt(&node),
                node,
                visit,
                attempt,
                error: "the engine stopped twice while this step was running, so it was not started a third time \
                        (it may be what stops the engine); retry the run once the cause is fixed"
                    .into(),
            }]);
            }
            Step::Exhaust { node, limit, next } => {
                tracing::info!(processops.node.id = %node, processops.node.max_visits = i64::from(limit), "visit limit reached");
                let end = next.is_empty();
                self.record([Event::VisitLimitReached {
                    node: node.clone(),
                    limit,
                    next,
                }]);
                if end {
                    self.record([Event::RunFinished {
                        status: FinalStatus::Failed,
                        error: Some(format!("`{node}` reached its limit of {limit} visits and has no `on_exhausted` path")),
                    }]);
                }
            }
            Step::Finish => self.record([Event::RunFinished {
                status: FinalStatus::Completed,
                error: None,
            }]),
        }
        Ok(())
    }

    /// Keep an approved text as recent memory for retrieve nodes that recall by subject.
    async fn remember(&mut self, text: &str) -> Result<(), EngineError> {
        let compiled = self.compiled.clone();
        for n in &compiled.blueprint.nodes {
            if let Node::Retrieve(r) = n
                && r.memory.is_some()
            {
                let ctx = nodes::context(&compiled, &self.state, self.run_id);
                if let Ok(subject) = compiled.render(&r.id, "memory.subject", &ctx) {
                    let key = format!("{}:{subject}", compiled.blueprint.id);
                    self.engine
                        .store()
                        .remember(
                            key,
                            compiled.blueprint.id.clone(),
                            self.run_id.to_string(),
                            text.to_owned(),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }
}
