//! The durable run engine.
//!
//! A run is driven by one task at a time (its *driver*): it plans with the pure planner of
//! `processops-core`, appends what happened to the journal and waits for the commit before it
//! starts anything that depends on it. Side-effecting nodes write `NodeStarted` before they
//! act, so after a crash the driver knows which step was cut off and runs only that again.
//! Runs parked at a review hold no memory: a decision wakes a driver that replays the journal.

mod compiled;
mod driver;
pub mod dry_run;
mod gate;
mod lifecycle;
mod nodes;
pub mod payload;
pub mod replay;
pub mod settings;
pub mod telemetry;
pub mod triggers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use processops_core::journal::{Action, Decision, Event};
use processops_llm::ChatModel;
use processops_store::{Decided, NewRun, StartOutcome, Store, StoreError};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

pub use compiled::{Compiled, LoadProblem, Registry};
pub use gate::DEFAULT_CASES as DEFAULT_GATE_CASES;

/// Why the engine refused or failed a request.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no blueprint `{id}` is loaded{}", hint(known))]
    UnknownBlueprint { id: String, known: Vec<String> },
    #[error("blueprint `{blueprint}` has no trigger `{trigger}` (its triggers: {})", known.join(", "))]
    UnknownTrigger {
        blueprint: String,
        trigger: String,
        known: Vec<String>,
    },
    #[error("blueprint `{0}` has no trigger; add a `manual` trigger to start it by hand")]
    NoTrigger(String),
    #[error("the payload does not match the input schema of trigger `{trigger}`:\n  - {}", errors.join("\n  - "))]
    InvalidPayload {
        trigger: String,
        errors: Vec<String>,
    },
    #[error(
        "the webhook signature is missing or wrong; sign the raw body with HMAC-SHA256 and send `X-ProcessOps-Signature: sha256=<hex>`"
    )]
    BadSignature,
    #[error("the webhook secret variable `{0}` is not set in the engine's environment")]
    MissingSecret(String),
    #[error("{0}")]
    InvalidDecision(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Io(String),
    /// Another engine of the team claimed this trigger occurrence first (see
    /// [`TriggerClaims`]); it runs it.
    #[error("another engine of the team took this trigger occurrence (`{key}`) and runs it")]
    ClaimedElsewhere { key: String },
    /// The claim of a trigger occurrence got no answer (the hub is unreachable); the
    /// occurrence waits.
    #[error("cannot claim `{key}` with the team's hub, so its run waits: {message}")]
    ClaimUnanswered { key: String, message: String },
    /// Change control has no version this starter may run.
    #[error("{0}")]
    NotLive(String),
    #[error("internal engine error: {0}")]
    Internal(String),
}

fn hint(known: &[String]) -> String {
    if known.is_empty() {
        "; no blueprints are loaded (is the project folder right?)".into()
    } else {
        format!(" (loaded: {})", known.join(", "))
    }
}

/// How the engine is wired.
pub struct EngineConfig {
    pub store: Store,
    pub registry: Arc<Registry>,
    /// Providers by name, as agents refer to them.
    pub providers: HashMap<String, Arc<dyn ChatModel>>,
    /// Where `file` and `dataset` outputs write.
    pub outputs_dir: PathBuf,
}

/// Several engines serving the same blueprints (headless engines behind a load balancer, on
/// a shared folder, with the same schedules) must start each trigger occurrence once: before
/// a run with a dedupe key starts, the engine claims the key, and only the first claimant
/// starts it. Claims go through the team's hub (`processops_api::hub`).
pub trait TriggerClaims: Send + Sync {
    /// `true`: this engine holds the key and starts the run. An error (the hub cannot be
    /// reached) defers the occurrence: nothing starts until a claim is answered.
    fn claim<'a>(
        &'a self,
        blueprint: &'a str,
        key: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, EngineError>> + Send + 'a>>;
}

/// How the engine reaches a run's driver, and how waiters learn that it stopped.
pub(crate) struct DriverHandle {
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) stopped: watch::Sender<bool>,
}

/// A started (or deduplicated) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub run_id: Uuid,
    /// The run existed already (same dedupe key); nothing new started.
    pub duplicate: bool,
}

/// The engine: cheap to clone, shared by the HTTP API, triggers and the CLI.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) providers: HashMap<String, Arc<dyn ChatModel>>,
    pub(crate) outputs_dir: PathBuf,
    pub(crate) http: reqwest::Client,
    /// The driver of each run that is in memory, fed with events decided elsewhere.
    pub(crate) drivers: Mutex<HashMap<Uuid, DriverHandle>>,
    /// Signalled whenever a driver stops (the run finished or parked).
    pub(crate) settled: Notify,
    /// Who may decide what (empty: a single-user installation).
    pub(crate) directory: std::sync::RwLock<processops_core::identity::Directory>,
    /// Turns retrieval queries into vectors for hybrid search; BM25 only without one.
    pub(crate) embedder: std::sync::OnceLock<Arc<dyn processops_llm::Embedder>>,
    /// Set only in a replay: the recorded results that stand in for outside effects.
    pub(crate) replay: std::sync::OnceLock<Arc<replay::Recording>>,
    /// Set only in a designer's dry run: outside effects are described, not performed.
    pub(crate) dry_run: std::sync::OnceLock<()>,
    /// Where retrieval and memory read from when it is not the run's own store (a dry run
    /// reads the project's knowledge from a scratch engine).
    pub(crate) knowledge: std::sync::OnceLock<Store>,
    /// Set when several engines share the blueprints' triggers.
    pub(crate) claims: std::sync::OnceLock<Arc<dyn TriggerClaims>>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .tcp_nodelay(true)
            .user_agent(concat!("ProcessOps/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                store: config.store,
                registry: config.registry,
                providers: config.providers,
                outputs_dir: config.outputs_dir,
                http,
                drivers: Mutex::new(HashMap::new()),
                settled: Notify::new(),
                directory: std::sync::RwLock::default(),
                replay: std::sync::OnceLock::new(),
                dry_run: std::sync::OnceLock::new(),
                knowledge: std::sync::OnceLock::new(),
                embedder: std::sync::OnceLock::new(),
                claims: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Who may decide what.
    pub fn directory(&self) -> processops_core::identity::Directory {
        self.inner
            .directory
            .read()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Set who may decide what; without it every decision is allowed (single user).
    pub fn set_directory(&self, directory: processops_core::identity::Directory) {
        if let Ok(mut d) = self.inner.directory.write() {
            *d = directory;
        }
    }

    /// Share trigger occurrences with the team's other engines (set once, before triggers
    /// start): each occurrence is claimed before its run starts.
    pub fn set_claims(&self, claims: Arc<dyn TriggerClaims>) {
        let _ = self.inner.claims.set(claims);
    }

    /// Use this embedder for hybrid retrieval (set once, before runs start).
    pub fn set_embedder(&self, embedder: Arc<dyn processops_llm::Embedder>) {
        let _ = self.inner.embedder.set(embedder);
    }

    pub fn embedder(&self) -> Option<&Arc<dyn processops_llm::Embedder>> {
        self.inner.embedder.get()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The store knowledge collections and recent memory are read from.
    pub(crate) fn knowledge(&self) -> &Store {
        self.inner.knowledge.get().unwrap_or(&self.inner.store)
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Record every loaded blueprint's version, so runs can always find the exact version
    /// they started with.
    pub async fn record_versions(&self) -> Result<(), EngineError> {
        for c in self.inner.registry.all() {
            self.inner
                .store
                .put_version(
                    c.hash.clone(),
                    c.blueprint.id.clone(),
                    c.blueprint.name.clone(),
                    c.source.clone(),
                )
                .await?;
            // With a hub, the team gets every version this engine runs.
            self.inner
                .store
                .sync_publish_version(
                    c.blueprint.id.clone(),
                    c.hash.clone(),
                    processops_core::blueprint::canonical(&c.blueprint),
                    c.source.clone(),
                )
                .await?;
        }
        Ok(())
    }

    /// Resume every run that was executing when the engine last stopped.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let ids = self.inner.store.runs_to_resume()?;
        for id in &ids {
            self.wake(*id, None);
        }
        Ok(ids.len())
    }

    pub fn blueprint(&self, id: &str) -> Result<Arc<Compiled>, EngineError> {
        self.inner
            .registry
            .get(id)
            .ok_or_else(|| EngineError::UnknownBlueprint {
                id: id.to_owned(),
                known: self
                    .inner
                    .registry
                    .all()
                    .iter()
                    .map(|c| c.blueprint.id.clone())
                    .collect(),
            })
    }

    /// Start a run of a blueprint from one of its triggers, on the version change control
    /// gives an automatic trigger (the file's version for an unmanaged blueprint).
    pub async fn start_run(
        &self,
        blueprint: &str,
        trigger: Option<&str>,
        payload: Value,
        dedupe_key: Option<String>,
    ) -> Result<Started, EngineError> {
        self.start_run_as(blueprint, trigger, payload, dedupe_key, None)
            .await
    }

    /// Start a run for `starter` (a person starting it by hand), who gets the pilot version
    /// when they are in its cohort.
    pub async fn start_run_as(
        &self,
        blueprint: &str,
        trigger: Option<&str>,
        payload: Value,
        dedupe_key: Option<String>,
        starter: Option<&str>,
    ) -> Result<Started, EngineError> {
        let compiled = self.version_to_start(blueprint, starter)?;
        let trigger = compiled.trigger(trigger)?;
        compiled
            .check_payload(trigger.id(), &payload)
            .map_err(|errors| EngineError::InvalidPayload {
                trigger: trigger.id().to_owned(),
                errors,
            })?;
        let start = trigger
            .start()
            .unwrap_or(&compiled.blueprint.start)
            .to_owned();
        if let (Some(claims), Some(key)) = (self.inner.claims.get(), dedupe_key.as_deref())
            && !claims.claim(&compiled.blueprint.id, key).await?
        {
            return Err(EngineError::ClaimedElsewhere {
                key: key.to_owned(),
            });
        }
        let run_id = Uuid::now_v7();
        let event = Event::RunStarted {
            blueprint: compiled.blueprint.id.clone(),
            version: compiled.hash.clone(),
            trigger: trigger.id().to_owned(),
            start,
            payload,
        };
        // The new run's whole journal is this one event: hand its state to the driver rather
        // than have it read back what we just wrote.
        let initial = processops_core::run::RunState::replay(&compiled.graph, [&event]);
        let outcome = self
            .inner
            .store
            .start_run(NewRun {
                id: run_id,
                blueprint_id: compiled.blueprint.id.clone(),
                version: compiled.hash.clone(),
                trigger_id: trigger.id().to_owned(),
                dedupe_key,
                events: vec![event],
            })
            .await?;
        match outcome {
            StartOutcome::Started(id) => {
                self.spawn_driver(id, Some((compiled, initial)));
                Ok(Started {
                    run_id: id,
                    duplicate: false,
                })
            }
            StartOutcome::Duplicate(id) => Ok(Started {
                run_id: id,
                duplicate: true,
            }),
        }
    }

    /// Decide a task. Exactly one decision per task wins; a late one gets `AlreadyDecided`.
    /// With a hub the decision waits for the hub's verdict (`pending_sync`): the run goes on
    /// in [`Engine::act_on_hub_decisions`] once the hub accepted one.
    pub async fn decide(&self, task_id: Uuid, decision: Decision) -> Result<Decided, EngineError> {
        match decision.action {
            Action::Reject
                if decision
                    .reason
                    .as_deref()
                    .is_none_or(|r| r.trim().is_empty()) =>
            {
                return Err(EngineError::InvalidDecision(
                    "a rejection needs a reason: it goes back to the drafter".into(),
                ));
            }
            Action::Edit if decision.text.as_deref().is_none_or(|t| t.trim().is_empty()) => {
                return Err(EngineError::InvalidDecision(
                    "an edit needs the edited text".into(),
                ));
            }
            _ => {}
        }
        if decision.by.trim().is_empty() {
            return Err(EngineError::InvalidDecision(
                "a decision needs the name of who decides".into(),
            ));
        }
        let row = self
            .inner
            .store
            .task(task_id)?
            .ok_or_else(|| StoreError::TaskNotFound(task_id.to_string()))?;
        self.check_permission(&row, &decision.by)?;
        self.check_cohort(&row.version, &decision.by)?;
        processops_core::journal::check_allowed(
            &decision,
            &row.task.policy.actions,
            &row.task.reasons,
        )
        .map_err(EngineError::InvalidDecision)?;
        if let Some(owner) = row.owner {
            // Escalations and quorums change the run's own state, which lives with its engine.
            if decision.action == Action::Escalate || row.task.policy.approvals > 1 {
                return Err(EngineError::InvalidDecision(format!(
                    "task {task_id} belongs to a run of another engine of your team (device {owner}); {} it on that engine, or approve, edit or reject it here",
                    if decision.action == Action::Escalate {
                        "escalate"
                    } else {
                        "collect its quorum"
                    }
                )));
            }
            return Ok(self.inner.store.decide(task_id, decision).await?);
        }
        if decision.action == Action::Escalate {
            let compiled = self.version(&row.version)?;
            let has_edge = match compiled.blueprint.node(&row.task.node) {
                Some(processops_core::blueprint::Node::Review(r)) => !r.on.escalated.is_empty(),
                _ => false,
            };
            if !has_edge {
                // The chain as created, continued after the role the task sits with now.
                let chain = &row.task.escalation;
                let rest = chain
                    .iter()
                    .position(|r| *r == row.task.role)
                    .map_or(&chain[..], |i| &chain[i + 1..]);
                let Some(next_role) = rest.first().cloned() else {
                    return Err(EngineError::InvalidDecision(format!(
                        "task {task_id} has nowhere to escalate: its review has no `on.escalated` edge and its escalation chain is used up"
                    )));
                };
                let run = self
                    .inner
                    .store
                    .escalate(task_id, next_role.clone(), decision.by.clone(), None)
                    .await?;
                self.wake(
                    run,
                    Some(Event::TaskEscalated {
                        task: task_id,
                        role: next_role,
                        by: decision.by,
                        due_at: None,
                    }),
                );
                return Ok(Decided {
                    run,
                    pending_sync: false,
                });
            }
        }
        let needed = row.task.policy.approvals;
        if needed > 1 {
            match decision.action {
                Action::Edit => {
                    return Err(EngineError::InvalidDecision(format!(
                        "this task needs {needed} approvals, so it cannot be edited by one person; approve it, or reject it with the changes you want"
                    )));
                }
                Action::Approve => {
                    return match self.inner.store.vote(task_id, decision, needed).await? {
                        processops_store::Vote::Counted { run, .. } => Ok(Decided {
                            run,
                            pending_sync: false,
                        }),
                        processops_store::Vote::Decided {
                            run,
                            decision,
                            pending_sync,
                        } => {
                            if !pending_sync {
                                self.wake(
                                    run,
                                    Some(Event::DecisionRecorded {
                                        task: task_id,
                                        decision,
                                    }),
                                );
                            }
                            Ok(Decided { run, pending_sync })
                        }
                    };
                }
                // Any rejection rejects; escalation was handled above.
                Action::Reject | Action::Escalate => {}
            }
        }
        let decided = self.inner.store.decide(task_id, decision.clone()).await?;
        if !decided.pending_sync {
            self.wake(
                decided.run,
                Some(Event::DecisionRecorded {
                    task: task_id,
                    decision,
                }),
            );
        }
        Ok(decided)
    }

    /// After a sync round: wake the runs whose decisions the hub accepted. Applying the hub's
    /// log already wrote each accepted decision into its run's journal (in the transaction
    /// that advanced the cursor), so a crash before this only delays the wake until
    /// [`Engine::recover`]. Returns how many runs were woken.
    pub async fn act_on_hub_decisions(&self) -> Result<usize, EngineError> {
        let mut woken = 0;
        for (task, _event) in self.inner.store.sync_take_effects().await? {
            if let Some(row) = self.inner.store.task(task)? {
                // A driver still busy with another branch learns of it like of a local decision.
                let event = row
                    .decision
                    .map(|decision| Event::DecisionRecorded { task, decision });
                self.wake(row.run_id, event);
                woken += 1;
            }
        }
        Ok(woken)
    }

    /// Refuse `user` unless they hold `role` (always allowed in a single-user installation).
    pub fn check_role(&self, user: &str, role: &str, doing: &str) -> Result<(), EngineError> {
        let directory = self
            .inner
            .directory
            .read()
            .map_err(|_| EngineError::Internal("directory lock poisoned".into()))?;
        directory
            .check_role(user, role, doing)
            .map_err(EngineError::Forbidden)
    }

    /// Refuse a decision by someone who holds neither the task's role nor its named users,
    /// or whom the review excludes (separation of duties).
    fn check_permission(
        &self,
        row: &processops_store::TaskRow,
        by: &str,
    ) -> Result<(), EngineError> {
        if row.task.policy.excluded.iter().any(|x| x == by) {
            return Err(EngineError::Forbidden(format!(
                "`{by}` may not decide this task: the review keeps it from the people it names (its requester, or an earlier approver of this run)"
            )));
        }
        let directory = self
            .inner
            .directory
            .read()
            .map_err(|_| EngineError::Internal("directory lock poisoned".into()))?
            .clone();
        directory
            .check_decide(by, &row.task.role, &row.task.users)
            .map_err(EngineError::Forbidden)
    }

    /// Try a run's failed steps again.
    pub async fn retry(&self, run_id: Uuid, by: String) -> Result<(), EngineError> {
        let event = Event::RunRetried { by };
        self.inner
            .store
            .append(run_id, vec![event.clone()], None)
            .await?;
        self.wake(run_id, Some(event));
        Ok(())
    }

    /// A blueprint version by hash, from memory or the store.
    pub fn version(&self, hash: &str) -> Result<Arc<Compiled>, EngineError> {
        if let Some(c) = self.inner.registry.by_hash(hash) {
            return Ok(c);
        }
        let row = self.inner.store.version(hash)?.ok_or_else(|| {
            EngineError::Internal(format!("blueprint version {hash} is not stored"))
        })?;
        let compiled = Compiled::from_source(&row.source).map_err(|d| {
            EngineError::Internal(format!(
                "stored version {hash} no longer validates: {}",
                d.first().map(|d| d.message.as_str()).unwrap_or("?")
            ))
        })?;
        let compiled = Arc::new(compiled);
        self.inner.registry.remember_version(compiled.clone());
        Ok(compiled)
    }

    /// Hand an event to the run's driver, starting one (which replays the journal) if none runs.
    pub(crate) fn wake(&self, run_id: Uuid, event: Option<Event>) {
        let Ok(mut drivers) = self.inner.drivers.lock() else {
            return;
        };
        if let Some(handle) = drivers.get(&run_id) {
            if let Some(e) = event
                && handle.events.send(e).is_ok()
            {
                return;
            }
            if handle.events.is_closed() {
                drivers.remove(&run_id);
            } else {
                return;
            }
        }
        drop(drivers);
        self.spawn_driver(run_id, None);
    }

    /// Start a driver for a run (with its state, when the caller has it) unless one runs.
    fn spawn_driver(
        &self,
        run_id: Uuid,
        preloaded: Option<(Arc<Compiled>, processops_core::run::RunState)>,
    ) {
        let Ok(mut drivers) = self.inner.drivers.lock() else {
            return;
        };
        if drivers.contains_key(&run_id) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        drivers.insert(
            run_id,
            DriverHandle {
                events: tx,
                stopped: watch::channel(false).0,
            },
        );
        let engine = self.clone();
        tokio::spawn(async move { driver::drive(engine, run_id, rx, preloaded).await });
    }

    /// Whether a driver is working on the run in this process.
    pub fn is_active(&self, run_id: Uuid) -> bool {
        self.inner
            .drivers
            .lock()
            .is_ok_and(|d| d.contains_key(&run_id))
    }

    /// Wait until this process has no driver for the run (it finished, parked or failed).
    pub async fn settle(&self, run_id: Uuid) {
        let stopped = self
            .inner
            .drivers
            .lock()
            .ok()
            .and_then(|d| d.get(&run_id).map(|h| h.stopped.subscribe()));
        if let Some(mut rx) = stopped {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Wait until no run is being driven in this process.
    pub async fn settle_all(&self) {
        loop {
            let notified = self.inner.settled.notified();
            if self.inner.drivers.lock().is_ok_and(|d| d.is_empty()) {
                return;
            }
            notified.await;
        }
    }
}

impl Engine {
    /// Start every blueprint that listens for `event`. Each target starts at most once per
    /// emitting step (the dedupe key includes the step's idempotency key).
    pub async fn emit(
        &self,
        event: &str,
        payload: Value,
        key: &str,
    ) -> Result<Vec<Uuid>, EngineError> {
        let mut started = Vec::new();
        for c in self.inner.registry.all() {
            for t in &c.blueprint.triggers {
                if let processops_core::blueprint::Trigger::Event(e) = t
                    && e.event == event
                {
                    let dedupe = format!("emit:{key}:{}:{}", c.blueprint.id, e.id);
                    let s = self
                        .start_run(&c.blueprint.id, Some(&e.id), payload.clone(), Some(dedupe))
                        .await?;
                    started.push(s.run_id);
                }
            }
        }
        Ok(started)
    }
}
