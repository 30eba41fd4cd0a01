//! Replay: re-execute a recorded run from its journal, with no network and no model.
//!
//! The run is started again in a scratch store, on the same blueprint version (or an edited
//! one, to see what a change does), with the same trigger payload. Every model call is
//! answered from the recorded exchanges of the same node and visit; retrieval returns the
//! recorded passages (the knowledge base may have changed since); HTTP calls and emitted
//! events are not repeated, their recorded results stand in; recorded decisions are applied
//! to the tasks as they appear. Templates, routes, branches, transforms and validation run
//! for real, so a replay reproduces the original byte for byte unless the blueprint changed —
//! and then the report shows which steps' prompts and outputs moved.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use processops_core::journal::{Decision, Event, Exchange, Visit};
use processops_llm::{CallContext, ChatModel, ChatRequest, ChatResponse, LlmError, Usage};
use processops_store::{Durability, RunStatus, Store, TaskFilter, TaskStatus};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{Compiled, Engine, EngineConfig, EngineError, Registry};

type StepId = (String, Visit);

/// What the original run recorded, as the replaying engine needs it.
#[derive(Default)]
pub(crate) struct Recording {
    /// Outputs of finished steps, for the steps whose effects are not repeated.
    outputs: HashMap<StepId, Value>,
}

impl Recording {
    pub(crate) fn output(&self, node: &str, visit: Visit) -> Option<&Value> {
        self.outputs.get(&(node.to_owned(), visit))
    }
}

/// `{run}:{node}:{visit}` (see `nodes::idempotency_key`) back into node and visit.
pub(crate) fn parse_step_key(key: &str) -> Option<StepId> {
    let mut parts = key.rsplitn(3, ':');
    let visit = parts.next()?.parse().ok()?;
    let node = parts.next()?.to_owned();
    Some((node, visit))
}

/// How one step of the replay compares with the original.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReplay {
    pub node: String,
    pub visit: Visit,
    /// `same`, `different`, `only_original` (the replay did not reach it) or `only_replay`.
    pub outcome: String,
    /// A model request of this step differs from the recorded one (the prompt changed).
    pub prompt_changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Value>,
}

/// The result of a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    pub run_id: Uuid,
    pub replay_run_id: Uuid,
    pub blueprint: String,
    pub original_version: String,
    pub replay_version: String,
    pub original_status: String,
    pub replay_status: String,
    pub steps: Vec<StepReplay>,
    /// Calls the replay made that the recording cannot answer.
    pub unanswered: Vec<String>,
    /// The drafts the replay's review tasks got (what a reviewer would have read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drafts: Vec<ReplayDraft>,
}

/// A review task's draft in a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayDraft {
    pub node: String,
    pub visit: Visit,
    pub draft: String,
}

impl ReplayReport {
    /// Every step came out the same and the run ended the same way.
    pub fn identical(&self) -> bool {
        self.original_status == self.replay_status
            && self.unanswered.is_empty()
            && self
                .steps
                .iter()
                .all(|s| s.outcome == "same" && !s.prompt_changed)
    }
}

/// Answers model calls from recorded exchanges, step by step.
struct ReplayModel {
    exchanges: Mutex<HashMap<StepId, VecDeque<Exchange>>>,
    /// Steps whose request differed from the recording.
    changed: Mutex<Vec<StepId>>,
    unanswered: Mutex<Vec<String>>,
}

/// One provider's seat in a replay: answered from the recording, or, in a regression gate,
/// by the live provider whenever the request differs from the recorded one.
struct Seat {
    recording: Arc<ReplayModel>,
    live: Option<Arc<dyn ChatModel>>,
}

impl ChatModel for Seat {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let Some(live) = &self.live else {
                return self.recording.chat(req, ctx).await;
            };
            if self.recording.matches(&req, &ctx) {
                return self.recording.chat(req, ctx).await;
            }
            if let Some(step) = ctx.step_key.as_deref().and_then(parse_step_key) {
                self.recording
                    .changed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(step);
            }
            live.chat(req, ctx).await
        })
    }
}

impl ReplayModel {
    /// Whether the next recorded call of this step to this model had exactly this request.
    fn matches(&self, req: &ChatRequest, ctx: &CallContext) -> bool {
        let Some(step) = ctx.step_key.as_deref().and_then(parse_step_key) else {
            return false;
        };
        let wanted = serde_json::to_value(req).ok();
        let all = self
            .exchanges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.get(&step)
            .and_then(|queue| {
                queue.iter().find(|e| {
                    e.request.get("model").and_then(Value::as_str) == Some(req.model.as_str())
                })
            })
            .is_some_and(|e| wanted.as_ref() == Some(&e.request))
    }
}

impl ChatModel for ReplayModel {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let step = ctx.step_key.as_deref().and_then(parse_step_key);
            let Some(step) = step else {
                return Err(LlmError::InvalidRequest(
                    "replay: a model call without a step".into(),
                ));
            };
            let recorded = {
                let mut all = self
                    .exchanges
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let queue = all.entry(step.clone()).or_default();
                // The next recorded call of this step to the same model (an agent skipped in
                // the original, e.g. for an open circuit, has no recording).
                let at = queue.iter().position(|e| {
                    e.request.get("model").and_then(Value::as_str) == Some(req.model.as_str())
                });
                at.and_then(|i| queue.remove(i))
            };
            let Some(recorded) = recorded else {
                let what = format!(
                    "{} (visit {}): no recorded call to model `{}`",
                    step.0, step.1, req.model
                );
                self.unanswered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(what.clone());
                return Err(LlmError::InvalidRequest(format!("replay: {what}")));
            };
            if serde_json::to_value(&req).ok().as_ref() != Some(&recorded.request) {
                self.changed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(step);
            }
            match recorded.response {
                Some(text) => Ok(ChatResponse {
                    text,
                    model: recorded.model.unwrap_or(req.model),
                    usage: Usage {
                        prompt_tokens: recorded.prompt_tokens,
                        completion_tokens: recorded.completion_tokens,
                    },
                    finish_reason: None,
                    latency: Duration::from_secs_f64(recorded.latency_ms.max(0.0) / 1000.0),
                    attempts: recorded.attempts.max(1),
                }),
                None => Err(LlmError::Transport(format!(
                    "replaying a recorded failure: {}",
                    recorded.error.unwrap_or_default()
                ))),
            }
        })
    }
}

/// Replay a run of `source` in a scratch folder. `blueprint` replaces the recorded version
/// (same id) to see what an edit changes.
pub async fn replay_run(
    source: &Store,
    run_id: Uuid,
    blueprint: Option<Arc<Compiled>>,
    scratch: &Path,
) -> Result<ReplayReport, EngineError> {
    replay_run_with(source, run_id, blueprint, scratch, None).await
}

/// [`replay_run`], with `live` providers (by name) answering every model call whose request
/// differs from the recording: a changed prompt gets a fresh reply, an unchanged one its
/// recorded reply. The regression gate replays eval runs this way.
pub async fn replay_run_with(
    source: &Store,
    run_id: Uuid,
    blueprint: Option<Arc<Compiled>>,
    scratch: &Path,
    live: Option<&HashMap<String, Arc<dyn ChatModel>>>,
) -> Result<ReplayReport, EngineError> {
    let (row, journal) = source
        .load_run(run_id)?
        .ok_or_else(|| EngineError::Internal(format!("run {run_id} does not exist")))?;
    let original = match blueprint {
        Some(b) => b,
        None => {
            let version = source.version(&row.version)?.ok_or_else(|| {
                EngineError::Internal(format!("blueprint version {} is not stored", row.version))
            })?;
            Arc::new(Compiled::from_source(&version.source).map_err(|d| {
                EngineError::Internal(format!(
                    "stored version {} no longer validates: {}",
                    row.version,
                    d.first().map_or("?", |d| d.message.as_str())
                ))
            })?)
        }
    };
    let mut exchanges: HashMap<StepId, VecDeque<Exchange>> = HashMap::new();
    let mut recording = Recording::default();
    let mut finished: Vec<(StepId, Value)> = Vec::new();
    let mut task_steps: HashMap<Uuid, StepId> = HashMap::new();
    let mut decisions: HashMap<StepId, VecDeque<Decision>> = HashMap::new();
    let mut start = None;
    for entry in &journal {
        match &entry.event {
            Event::RunStarted {
                trigger, payload, ..
            } => start = Some((trigger.clone(), payload.clone())),
            Event::NodeFinished {
                node,
                visit,
                output,
                meta,
                ..
            } => {
                let step = (node.clone(), *visit);
                exchanges
                    .entry(step.clone())
                    .or_default()
                    .extend(meta.exchanges.iter().cloned());
                recording.outputs.insert(step.clone(), output.clone());
                finished.push((step, output.clone()));
            }
            Event::TaskCreated { task } => {
                task_steps.insert(task.id, (task.node.clone(), task.visit));
            }
            Event::VoteRecorded { task, decision } | Event::DecisionRecorded { task, decision } => {
                if let Some(step) = task_steps.get(task) {
                    decisions
                        .entry(step.clone())
                        .or_default()
                        .push_back(decision.clone());
                }
            }
            _ => {}
        }
    }
    let (trigger, payload) =
        start.ok_or_else(|| EngineError::Internal(format!("run {run_id} has no start event")))?;

    let model = Arc::new(ReplayModel {
        exchanges: Mutex::new(exchanges),
        changed: Mutex::new(Vec::new()),
        unanswered: Mutex::new(Vec::new()),
    });
    let mut providers: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
    for agent in original.blueprint.agents.values() {
        let seat = Seat {
            recording: model.clone(),
            live: live.and_then(|l| l.get(&agent.provider).cloned()),
        };
        providers.insert(agent.provider.clone(), Arc::new(seat));
    }
    let store = Store::open(&scratch.join("replay.sqlite"), Durability::Process)?;
    let registry = Arc::new(Registry::default());
    registry.insert(original.clone());
    let engine = Engine::new(EngineConfig {
        store: store.clone(),
        registry,
        providers,
        outputs_dir: scratch.join("outputs"),
    })?;
    let _ = engine.inner.replay.set(Arc::new(recording));
    engine.record_versions().await?;
    let started = engine
        .start_run(&original.blueprint.id, Some(&trigger), payload, None)
        .await?;
    let replay_id = started.run_id;
    // Apply the recorded decisions as their tasks appear, until nothing moves.
    let mut task_map: HashMap<String, String> = HashMap::new();
    loop {
        engine.settle_all().await;
        let pending = store.list_tasks(&TaskFilter {
            status: Some(TaskStatus::Pending),
            run_id: Some(replay_id),
            ..TaskFilter::default()
        })?;
        let mut progressed = false;
        for task in pending {
            let step = (task.task.node.clone(), task.task.visit);
            let next = decisions.get_mut(&step).and_then(VecDeque::pop_front);
            if let Some(original_task) = task_steps
                .iter()
                .find(|(_, s)| **s == step)
                .map(|(id, _)| id.to_string())
            {
                task_map.insert(task.id.to_string(), original_task);
            }
            if let Some(decision) = next {
                engine.decide(task.id, decision).await?;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    engine.settle_all().await;

    let (replay_row, replay_journal) = store
        .load_run(replay_id)?
        .ok_or_else(|| EngineError::Internal("the replay run vanished".into()))?;
    // Ids that differ by construction are mapped back before comparing.
    let normalise = |v: &Value| -> Value {
        let mut text = v
            .to_string()
            .replace(&replay_id.to_string(), &run_id.to_string());
        for (new, old) in &task_map {
            text = text.replace(new, old);
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    let mut replayed: Vec<(StepId, Value)> = Vec::new();
    for entry in &replay_journal {
        if let Event::NodeFinished {
            node,
            visit,
            output,
            ..
        } = &entry.event
        {
            replayed.push(((node.clone(), *visit), normalise(output)));
        }
    }
    let changed = model
        .changed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut steps = Vec::new();
    for (step, out) in &finished {
        let again = replayed.iter().find(|(s, _)| s == step).map(|(_, v)| v);
        let outcome = match again {
            Some(v) if v == out => "same",
            Some(_) => "different",
            None => "only_original",
        };
        steps.push(StepReplay {
            node: step.0.clone(),
            visit: step.1,
            outcome: outcome.to_owned(),
            prompt_changed: changed.contains(step),
            original: (outcome != "same").then(|| out.clone()),
            replayed: (outcome == "different").then(|| again.cloned()).flatten(),
        });
    }
    for (step, out) in &replayed {
        if !finished.iter().any(|(s, _)| s == step) {
            steps.push(StepReplay {
                node: step.0.clone(),
                visit: step.1,
                outcome: "only_replay".to_owned(),
                prompt_changed: changed.contains(step),
                original: None,
                replayed: Some(out.clone()),
            });
        }
    }
    let drafts = store
        .list_tasks(&TaskFilter {
            run_id: Some(replay_id),
            limit: Some(10_000),
            ..TaskFilter::default()
        })?
        .into_iter()
        .map(|t| ReplayDraft {
            node: t.task.node,
            visit: t.task.visit,
            draft: t.task.draft,
        })
        .collect();
    let unanswered = model
        .unanswered
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(ReplayReport {
        run_id,
        replay_run_id: replay_id,
        blueprint: original.blueprint.id.clone(),
        original_version: row.version,
        replay_version: original.hash.clone(),
        original_status: status_name(row.status),
        replay_status: status_name(replay_row.status),
        steps,
        unanswered,
        drafts,
    })
}

fn status_name(s: RunStatus) -> String {
    s.as_str().to_owned()
}
