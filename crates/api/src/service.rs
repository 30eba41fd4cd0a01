//! The service functions every transport calls.

use std::str::FromStr as _;

use processops_core::blueprint;
use processops_core::journal::{Action, Decision, Event};
use processops_core::timeline;
use processops_engine::{Engine, LoadProblem};
use processops_store::{RunFilter, RunStatus, TaskFilter, TaskSort, TaskStatus};
use uuid::Uuid;

use crate::dto::*;
use crate::error::ApiError;

/// Most tasks one inbox listing returns: the app's virtualized inbox lists every pending task.
pub const MAX_TASKS_LISTED: u32 = 100_000;

/// Longest a `wait: true` request waits for its run to park or end.
pub const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The service API over one engine.
#[derive(Clone)]
pub struct Service {
    engine: Engine,
    problems: std::sync::Arc<Vec<LoadProblem>>,
    project: Option<std::sync::Arc<ProjectInfo>>,
    /// Set at start when the project is enrolled, or later by [`Service::enrol_hub`].
    hub: std::sync::Arc<std::sync::OnceLock<crate::hub::HubLink>>,
    /// Stops the background work a later enrolment starts (the sync loop).
    background: std::sync::Arc<std::sync::OnceLock<tokio_util::sync::CancellationToken>>,
}

/// The project folder a service works in: where blueprints are saved, settings and the
/// feedback taxonomy are read, and who uses it.
#[derive(Debug, Clone)]
pub struct ProjectInfo {
    pub root: std::path::PathBuf,
    /// Where new blueprints are saved.
    pub blueprints: std::path::PathBuf,
    /// The profile name decisions and tags default to.
    pub user: String,
    /// The data folder (the store, and the hub credentials next to it).
    pub data: std::path::PathBuf,
}

impl Service {
    pub fn new(engine: Engine, problems: Vec<LoadProblem>) -> Self {
        Self {
            engine,
            problems: std::sync::Arc::new(problems),
            project: None,
            hub: std::sync::Arc::default(),
            background: std::sync::Arc::default(),
        }
    }

    /// A service whose project is a device of a hub: decisions wait for the hub's verdict,
    /// and the sync endpoints talk to it.
    pub fn with_hub(self, link: crate::hub::HubLink) -> Self {
        let _ = self.hub.set(link);
        self
    }

    pub fn hub(&self) -> Option<&crate::hub::HubLink> {
        self.hub.get()
    }

    /// Where background work is stopped (set by `local::spawn_background`).
    pub(crate) fn set_background(&self, cancel: tokio_util::sync::CancellationToken) {
        let _ = self.background.set(cancel);
    }

    /// Enrol this project with a hub from the app (Settings → Hub), and start syncing at once.
    pub async fn enrol_hub(&self, req: EnrolHubRequest) -> Result<SyncStatusDto, ApiError> {
        let project = self.project()?;
        if req.url.trim().is_empty() || req.code.trim().is_empty() {
            return Err(ApiError::new(
                422,
                "invalid_request",
                "give the hub's address and the one-time code its admin made (`processops hub code TEAM USER`)",
            ));
        }
        let name = req
            .device_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{}'s ProcessOps", project.user));
        let (creds, _) = crate::hub::enrol(
            &project.data,
            self.engine.store(),
            &req.url,
            &req.code,
            &name,
        )
        .await?;
        let link = crate::hub::HubLink::new(creds)?;
        if self.hub.set(link.clone()).is_ok()
            && let Some(cancel) = self.background.get()
        {
            link.spawn(self.engine.clone(), cancel.clone());
        }
        self.sync_status()
    }

    pub fn sync_status(&self) -> Result<SyncStatusDto, ApiError> {
        let status = self.engine.store().sync_status()?;
        let link = self.hub.get();
        Ok(SyncStatusDto {
            enrolled: status.is_some(),
            hub: link.map(|l| l.url().to_owned()),
            team: link.map(|l| l.team().to_owned()),
            user: status
                .as_ref()
                .map(|s| s.actor.clone())
                .or_else(|| link.map(|l| l.user().to_owned())),
            device: status.as_ref().map(|s| s.device),
            online: link.and_then(crate::hub::HubLink::online),
            pending: status.as_ref().map_or(0, |s| s.pending),
            cursor: status.as_ref().map_or(0, |s| s.cursor),
            last_sync_at: status.as_ref().and_then(|s| s.last_sync_at),
            last_error: status.as_ref().and_then(|s| s.last_error.clone()),
            open_conflicts: status.as_ref().map_or(0, |s| s.open_conflicts),
        })
    }

    /// One sync round now; the status afterwards. An unreachable hub is a 503 whose message
    /// says the changes wait (nothing is lost).
    pub async fn sync_now(&self) -> Result<SyncStatusDto, ApiError> {
        let link = self
            .hub
            .get()
            .ok_or_else(|| ApiError::from(processops_store::StoreError::NotEnrolled))?;
        if let Err(e) = link.round(&self.engine).await {
            let pending = self.engine.store().sync_status()?.map_or(0, |s| s.pending);
            let status = if e.is_transient() { 503 } else { 502 };
            return Err(ApiError::new(
                status,
                "hub_unavailable",
                format!(
                    "cannot sync with {}: {e}. {pending} change(s) wait here and go out with the next sync",
                    link.url()
                ),
            ));
        }
        self.sync_status()
    }

    pub fn conflicts(&self, task: Option<Uuid>) -> Result<Vec<ConflictDto>, ApiError> {
        Ok(self
            .engine
            .store()
            .sync_conflicts(task)?
            .into_iter()
            .map(ConflictDto::from)
            .collect())
    }

    pub async fn resolve_conflict(
        &self,
        id: Uuid,
        req: ResolveRequest,
    ) -> Result<ConflictDto, ApiError> {
        let note = req.note.filter(|n| !n.trim().is_empty());
        self.engine.store().sync_resolve(id, note).await?;
        if let Some(link) = self.hub.get() {
            link.poke();
        }
        self.engine
            .store()
            .sync_conflicts(None)?
            .into_iter()
            .find(|c| c.event == id)
            .map(ConflictDto::from)
            .ok_or_else(|| ApiError::not_found(format!("no conflict has the id {id}")))
    }

    /// A service that can save blueprints, show settings and read the taxonomy.
    pub fn with_project(mut self, project: ProjectInfo) -> Self {
        self.project = Some(std::sync::Arc::new(project));
        self
    }

    /// The project folder (where `processops.toml` and `evaluation.toml` are).
    pub fn project_root(&self) -> Result<std::path::PathBuf, ApiError> {
        Ok(self.project()?.root.clone())
    }

    pub(crate) fn project(&self) -> Result<&ProjectInfo, ApiError> {
        self.project.as_deref().ok_or_else(|| {
            ApiError::new(
                501,
                "unavailable",
                "this engine was started without a project folder",
            )
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn health(&self) -> Health {
        Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            blueprints: self.engine.registry().all().len(),
        }
    }

    pub fn blueprints(&self) -> Vec<BlueprintSummary> {
        // Under change control the stage is the store's (the most advanced live version);
        // otherwise the file's `lifecycle.stage`.
        let governed = self.engine.store().version_stages(None).unwrap_or_default();
        let governed_stage = |id: &str| {
            use processops_core::blueprint::Stage;
            [
                Stage::Approved,
                Stage::Monitored,
                Stage::Pilot,
                Stage::Draft,
                Stage::Retired,
            ]
            .into_iter()
            .find(|s| {
                governed
                    .iter()
                    .any(|r| r.blueprint_id == id && r.stage == *s)
            })
            .map(|s| processops_core::lifecycle::stage_name(s).to_owned())
        };
        self.engine
            .registry()
            .all()
            .iter()
            .map(|c| {
                let bp = &c.blueprint;
                BlueprintSummary {
                    id: bp.id.clone(),
                    name: bp.name.clone(),
                    description: bp.description.clone(),
                    domain: bp.domain.clone(),
                    version: c.hash.clone(),
                    stage: governed_stage(&bp.id).unwrap_or_else(|| {
                        processops_core::lifecycle::stage_name(bp.lifecycle.stage).to_owned()
                    }),
                    triggers: bp
                        .triggers
                        .iter()
                        .map(|t| TriggerSummary {
                            id: t.id().to_owned(),
                            kind: t.kind_name().to_owned(),
                            input: t.input_schema().cloned(),
                        })
                        .collect(),
                    nodes: bp.nodes.len(),
                }
            })
            .collect()
    }

    pub fn load_problems(&self) -> Vec<LoadProblemDto> {
        self.problems
            .iter()
            .map(|p| LoadProblemDto {
                file: p.file.display().to_string(),
                diagnostics: p.diagnostics.iter().map(Into::into).collect(),
            })
            .collect()
    }

    pub fn validate(&self, source: &str) -> ValidationReport {
        let checked = blueprint::check(source);
        ValidationReport {
            valid: checked.blueprint.is_some(),
            version: checked.blueprint.as_ref().map(blueprint::version_hash),
            diagnostics: checked.diagnostics.iter().map(Into::into).collect(),
        }
    }

    pub async fn start_run(&self, req: StartRunRequest) -> Result<StartRunResponse, ApiError> {
        let started = self
            .engine
            .start_run_as(
                &req.blueprint,
                req.trigger.as_deref(),
                req.payload,
                req.idempotency_key,
                req.by.as_deref(),
            )
            .await?;
        if req.wait {
            // A run that keeps working (a slow model) is answered as `running` rather than
            // holding the request open without bound.
            let _ = tokio::time::timeout(WAIT_LIMIT, self.engine.settle(started.run_id)).await;
        }
        let status = match self.engine.store().load_run(started.run_id)? {
            Some((row, _)) => row.status.as_str().to_owned(),
            None => "running".into(),
        };
        Ok(StartRunResponse {
            run_id: started.run_id,
            duplicate: started.duplicate,
            status,
        })
    }

    pub fn runs(&self, q: &RunsQuery) -> Result<Vec<RunSummary>, ApiError> {
        let status = match q.status.as_deref() {
            None | Some("all") => None,
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("unknown status `{s}`; use running, waiting, attention, completed, failed or all"))
            })?),
        };
        let filter = RunFilter {
            blueprint_id: q.blueprint.clone(),
            status,
            limit: Some(q.limit.unwrap_or(50).min(1000)),
        };
        Ok(self
            .engine
            .store()
            .list_runs(&filter)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Resolve a full run id or a unique prefix (or suffix) of one.
    pub fn resolve_run(&self, id: &str) -> Result<Uuid, ApiError> {
        if let Ok(u) = Uuid::parse_str(id) {
            return Ok(u);
        }
        if !is_id_fragment(id) {
            return Err(no_id("run", id));
        }
        resolve(id, "run", &self.engine.store().resolve_run_prefix(id)?)
    }

    pub fn resolve_task(&self, id: &str) -> Result<Uuid, ApiError> {
        if let Ok(u) = Uuid::parse_str(id) {
            return Ok(u);
        }
        if !is_id_fragment(id) {
            return Err(no_id("task", id));
        }
        resolve(id, "task", &self.engine.store().resolve_task_prefix(id)?)
    }

    pub fn run(&self, id: Uuid) -> Result<RunDetail, ApiError> {
        let (row, entries) = self
            .engine
            .store()
            .load_run(id)?
            .ok_or_else(|| ApiError::not_found(format!("no run has the id {id}")))?;
        let payload = entries
            .iter()
            .find_map(|e| match &e.event {
                Event::RunStarted { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let steps = timeline::build(entries.iter().map(|e| (e.at, &e.event)));
        Ok(RunDetail {
            run: row.into(),
            payload,
            steps,
        })
    }

    /// Re-execute a run from its recorded model replies, decisions and outside results, with
    /// no network, and compare every step with the original. `blueprint_source` replays it on
    /// an edited blueprint instead of the recorded version.
    pub async fn replay(
        &self,
        id: Uuid,
        blueprint_source: Option<&str>,
    ) -> Result<processops_engine::replay::ReplayReport, ApiError> {
        let blueprint = match blueprint_source {
            Some(src) => Some(std::sync::Arc::new(
                processops_engine::Compiled::from_source(src).map_err(|d| {
                    ApiError::bad_request(format!(
                        "the blueprint does not validate: {}",
                        d.iter()
                            .map(|d| d.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))
                })?,
            )),
            None => None,
        };
        let scratch = tempfile::tempdir()
            .map_err(|e| ApiError::new(500, "io", format!("cannot make a scratch folder: {e}")))?;
        let report = processops_engine::replay::replay_run(
            self.engine.store(),
            id,
            blueprint,
            scratch.path(),
        )
        .await?;
        Ok(report)
    }

    pub async fn retry(&self, id: Uuid, by: String) -> Result<RunSummary, ApiError> {
        let (row, _) = self
            .engine
            .store()
            .load_run(id)?
            .ok_or_else(|| ApiError::not_found(format!("no run has the id {id}")))?;
        if row.status != RunStatus::Attention {
            return Err(ApiError::new(
                409,
                "conflict",
                format!(
                    "run {id} is {}; only runs that need attention can be retried",
                    row.status.as_str()
                ),
            ));
        }
        self.engine.retry(id, by).await?;
        self.engine.settle(id).await;
        let (row, _) = self
            .engine
            .store()
            .load_run(id)?
            .ok_or_else(|| ApiError::not_found(format!("no run has the id {id}")))?;
        Ok(row.into())
    }

    pub fn tasks(&self, q: &TasksQuery) -> Result<Vec<TaskSummary>, ApiError> {
        let status = match q.status.as_deref() {
            None | Some("pending") => Some(TaskStatus::Pending),
            Some("decided") => Some(TaskStatus::Decided),
            Some("all") => None,
            Some(s) => {
                return Err(ApiError::bad_request(format!(
                    "unknown status `{s}`; use pending, decided or all"
                )));
            }
        };
        let sort = match q.sort.as_deref() {
            None | Some("due") => TaskSort::Due,
            Some("newest") => TaskSort::Newest,
            Some("oldest") => TaskSort::Oldest,
            Some(s) => {
                return Err(ApiError::bad_request(format!(
                    "unknown sort `{s}`; use due, newest or oldest"
                )));
            }
        };
        let filter = TaskFilter {
            status,
            blueprint_id: q.blueprint.clone(),
            version: q.version.clone(),
            role: q.role.clone(),
            assignee: q.assignee.clone(),
            run_id: q.run,
            due_before: q.due_before,
            text: q.q.clone().filter(|t| !t.trim().is_empty()),
            sort,
            limit: Some(q.limit.unwrap_or(50).min(MAX_TASKS_LISTED)),
            summary: q.summary.unwrap_or(false),
            // A pilot's tasks are its cohort's: hidden from anyone else who asks as themselves.
            exclude_versions: match q.viewer.as_deref() {
                Some(viewer) => self.engine.hidden_versions(viewer)?,
                None => Vec::new(),
            },
        };
        Ok(self
            .engine
            .store()
            .list_tasks(&filter)?
            .iter()
            .map(Into::into)
            .collect())
    }

    pub fn task(&self, id: Uuid) -> Result<TaskDetail, ApiError> {
        let row = self
            .engine
            .store()
            .task(id)?
            .ok_or_else(|| ApiError::not_found(format!("no task has the id {id}")))?;
        Ok((&row).into())
    }

    /// Tasks decided together must come from one review policy (same blueprint version and
    /// review node), so a batch never approves different kinds of work at once.
    pub fn check_batch(&self, ids: &[Uuid]) -> Result<(), ApiError> {
        let mut kinds: std::collections::BTreeMap<String, usize> =
            std::collections::BTreeMap::new();
        for id in ids {
            let row = self
                .engine
                .store()
                .task(*id)?
                .ok_or_else(|| ApiError::not_found(format!("no task has the id {id}")))?;
            *kinds
                .entry(format!(
                    "{}/{} (version {})",
                    row.blueprint_id,
                    row.task.node,
                    &row.version[..row.version.len().min(8)]
                ))
                .or_default() += 1;
        }
        if kinds.len() > 1 {
            let listed: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} × {k}")).collect();
            return Err(ApiError::new(
                422,
                "invalid_request",
                format!(
                    "a batch must share one review policy, but these tasks come from {}; decide them separately or narrow the selection",
                    listed.join(", ")
                ),
            ));
        }
        Ok(())
    }

    pub async fn claim(&self, id: Uuid, req: ClaimRequest) -> Result<TaskSummary, ApiError> {
        if req.by.trim().is_empty() {
            return Err(ApiError::new(
                422,
                "invalid_request",
                "say who takes the task (`by`)",
            ));
        }
        self.engine.store().claim(id, req.by).await?;
        Ok((&self
            .engine
            .store()
            .task(id)?
            .ok_or_else(|| ApiError::not_found(format!("no task has the id {id}")))?)
            .into())
    }

    pub async fn unclaim(&self, id: Uuid, req: ClaimRequest) -> Result<TaskSummary, ApiError> {
        self.engine.store().unclaim(id, req.by, req.force).await?;
        Ok((&self
            .engine
            .store()
            .task(id)?
            .ok_or_else(|| ApiError::not_found(format!("no task has the id {id}")))?)
            .into())
    }

    pub async fn decide(
        &self,
        id: Uuid,
        req: DecisionRequest,
    ) -> Result<DecisionResponse, ApiError> {
        let action = Action::from_str(&req.action)
            .map_err(|message| ApiError::new(422, "invalid_request", message))?;
        let decision = Decision {
            action,
            by: req.by,
            text: req.text,
            reason: req.reason,
        };
        let decided = self.engine.decide(id, decision).await?;
        if decided.pending_sync
            && let Some(link) = self.hub.get()
        {
            link.poke();
        }
        Ok(DecisionResponse {
            task_id: id,
            run_id: decided.run,
            pending_sync: decided.pending_sync,
        })
    }

    pub async fn webhook(
        &self,
        blueprint: &str,
        trigger: &str,
        body: &[u8],
        signature: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<WebhookResponse, ApiError> {
        let s = processops_engine::triggers::webhook(
            &self.engine,
            blueprint,
            trigger,
            body,
            signature,
            idempotency_key,
        )
        .await?;
        Ok(WebhookResponse {
            run_id: s.run_id,
            duplicate: s.duplicate,
        })
    }
}

/// Only hex digits and dashes can be part of an id; anything else (notably the SQL `LIKE`
/// wildcards `%` and `_`) must not reach the prefix search, where it would match any id.
fn is_id_fragment(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn no_id(what: &str, prefix: &str) -> ApiError {
    ApiError::not_found(format!("no {what} id starts with `{prefix}`"))
}

pub(crate) fn resolve<T: Clone>(prefix: &str, what: &str, found: &[T]) -> Result<T, ApiError> {
    match found {
        [one] => Ok(one.clone()),
        [] => Err(no_id(what, prefix)),
        _ => Err(ApiError::bad_request(format!(
            "`{prefix}` matches several {what}s; type more of the id"
        ))),
    }
}
