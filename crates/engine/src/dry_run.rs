//! The designer's dry run: run a blueprint that may not be saved yet on a sample payload and
//! show what every step produced, without touching the project.
//!
//! The run happens in a scratch store with the project's model providers (prompts are real
//! calls: seeing a draft is the point), reads the project's knowledge and memory, describes
//! HTTP calls, files, datasets and events instead of performing them, and approves every
//! review with its draft unchanged so the whole happy path shows.

use std::path::Path;
use std::sync::Arc;

use processops_core::journal::{Action, Decision};
use processops_core::timeline::{self, TimelineStep};
use processops_store::{Durability, Store, TaskFilter, TaskStatus};
use serde_json::Value;

use crate::{Compiled, Engine, EngineConfig, EngineError, Registry};

/// Reviews approved before a dry run stops (a revise loop could otherwise go on).
pub const MAX_DRY_RUN_DECISIONS: usize = 25;

/// Who a dry run's automatic approvals are recorded as.
pub const DRY_RUN_REVIEWER: &str = "dry-run";

/// What a dry run did.
#[derive(Debug, Clone)]
pub struct DryRunOutcome {
    /// The scratch run's final status (`completed`, `failed`, `attention`, `waiting`).
    pub status: String,
    pub steps: Vec<TimelineStep>,
    /// Why the run stopped early, when it did.
    pub error: Option<String>,
    /// Reviews approved automatically.
    pub approvals: usize,
}

/// Dry-run `blueprint` from `trigger` (its manual or first trigger when `None`) with
/// `payload`, using `live`'s providers, embedder and knowledge, in `scratch`.
pub async fn dry_run(
    live: &Engine,
    blueprint: Arc<Compiled>,
    trigger: Option<&str>,
    payload: Value,
    scratch: &Path,
) -> Result<DryRunOutcome, EngineError> {
    let store = Store::open(&scratch.join("dry-run.sqlite"), Durability::Process)?;
    let registry = Arc::new(Registry::default());
    registry.insert(blueprint.clone());
    let engine = Engine::new(EngineConfig {
        store: store.clone(),
        registry,
        providers: live.inner.providers.clone(),
        outputs_dir: scratch.join("outputs"),
    })?;
    let _ = engine.inner.dry_run.set(());
    let _ = engine.inner.knowledge.set(live.knowledge().clone());
    if let Some(embedder) = live.embedder() {
        engine.set_embedder(embedder.clone());
    }
    engine.record_versions().await?;
    let started = engine
        .start_run(&blueprint.blueprint.id, trigger, payload, None)
        .await?;
    let run_id = started.run_id;
    let mut approvals = 0;
    let mut error = None;
    loop {
        engine.settle_all().await;
        let pending = store.list_tasks(&TaskFilter {
            status: Some(TaskStatus::Pending),
            run_id: Some(run_id),
            ..TaskFilter::default()
        })?;
        let Some(task) = pending.into_iter().next() else {
            break;
        };
        if approvals >= MAX_DRY_RUN_DECISIONS {
            error = Some(format!(
                "stopped after approving {MAX_DRY_RUN_DECISIONS} reviews: the tree seems to loop"
            ));
            break;
        }
        engine
            .decide(
                task.id,
                Decision {
                    action: Action::Approve,
                    by: DRY_RUN_REVIEWER.to_owned(),
                    text: None,
                    reason: None,
                },
            )
            .await?;
        approvals += 1;
    }
    engine.settle_all().await;
    let (row, entries) = store
        .load_run(run_id)?
        .ok_or_else(|| EngineError::Internal("the dry run's run vanished".into()))?;
    Ok(DryRunOutcome {
        status: row.status.as_str().to_owned(),
        steps: timeline::build(entries.iter().map(|e| (e.at, &e.event))),
        error: error.or(row.error),
        approvals,
    })
}
