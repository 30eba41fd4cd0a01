//! The Tauri commands: one per service function, named as the UI's client calls them
//! (`ui/src/api/client.ts`). Each parses its arguments, calls the service and returns its
//! result; errors serialise as the API's `{code, message}`.

use processops_api::*;
use tauri::State;

type Reply<T> = Result<T, ApiError>;

/// The engine lock, held as long as the app runs.
pub struct Held(#[allow(dead_code)] pub std::fs::File);

#[tauri::command]
async fn health(s: State<'_, Service>) -> Reply<Health> {
    Ok(s.health())
}

#[tauri::command]
async fn me(s: State<'_, Service>) -> Reply<Me> {
    s.me()
}

#[tauri::command]
async fn settings(s: State<'_, Service>) -> Reply<SettingsView> {
    s.settings()
}

#[tauri::command]
async fn store_key(s: State<'_, Service>, request: StoreKeyRequest) -> Reply<()> {
    s.store_key(&request).await
}

#[tauri::command]
async fn list_blueprints(s: State<'_, Service>) -> Reply<Vec<BlueprintSummary>> {
    Ok(s.blueprints())
}

#[tauri::command]
async fn blueprint_source(s: State<'_, Service>, id: String) -> Reply<BlueprintSource> {
    s.blueprint_source(&id)
}

#[tauri::command]
async fn save_blueprint(
    s: State<'_, Service>,
    id: String,
    request: SaveBlueprintRequest,
) -> Reply<SaveBlueprintResponse> {
    s.save_blueprint(&id, request).await
}

#[tauri::command]
async fn create_blueprint(
    s: State<'_, Service>,
    request: SaveBlueprintRequest,
) -> Reply<SaveBlueprintResponse> {
    s.create_blueprint(request).await
}

#[tauri::command]
async fn blueprint_schema(s: State<'_, Service>) -> Reply<serde_json::Value> {
    Ok(s.blueprint_schema())
}

#[tauri::command]
async fn validate(s: State<'_, Service>, request: ValidateRequest) -> Reply<ValidationReport> {
    Ok(s.validate(&request.source))
}

#[tauri::command]
async fn dry_run(s: State<'_, Service>, request: DryRunRequest) -> Reply<DryRunReport> {
    s.dry_run(request).await
}

#[tauri::command]
async fn list_runs(s: State<'_, Service>, query: RunsQuery) -> Reply<Vec<RunSummary>> {
    s.runs(&query)
}

#[tauri::command]
async fn get_run(s: State<'_, Service>, id: String) -> Reply<RunDetail> {
    let id = s.resolve_run(&id)?;
    s.run(id)
}

#[tauri::command]
async fn start_run(s: State<'_, Service>, request: StartRunRequest) -> Reply<StartRunResponse> {
    s.start_run(request).await
}

#[tauri::command]
async fn retry_run(s: State<'_, Service>, id: String) -> Reply<RunSummary> {
    let id = s.resolve_run(&id)?;
    let by = s.me()?.name;
    s.retry(id, by).await
}

#[tauri::command]
async fn list_tasks(s: State<'_, Service>, query: TasksQuery) -> Reply<Vec<TaskSummary>> {
    s.tasks(&query)
}

#[tauri::command]
async fn get_task(s: State<'_, Service>, id: String) -> Reply<TaskDetail> {
    let id = s.resolve_task(&id)?;
    s.task(id)
}

#[tauri::command]
async fn decide(
    s: State<'_, Service>,
    id: String,
    request: DecisionRequest,
) -> Reply<DecisionResponse> {
    let id = s.resolve_task(&id)?;
    s.decide(id, request).await
}

#[tauri::command]
async fn claim(s: State<'_, Service>, id: String, request: ClaimRequest) -> Reply<TaskSummary> {
    let id = s.resolve_task(&id)?;
    s.claim(id, request).await
}

#[tauri::command]
async fn unclaim(s: State<'_, Service>, id: String, request: ClaimRequest) -> Reply<TaskSummary> {
    let id = s.resolve_task(&id)?;
    s.unclaim(id, request).await
}

#[tauri::command]
async fn eval_queue(s: State<'_, Service>, query: QueueQuery) -> Reply<Vec<QueueItem>> {
    let taxonomy = load_taxonomy(&s.project_root()?)?;
    s.eval_queue(&taxonomy, &query)
}

#[tauri::command]
async fn eval_progress(
    s: State<'_, Service>,
    blueprint: Option<String>,
) -> Reply<Vec<EvalProgress>> {
    s.eval_progress(blueprint.as_deref())
}

#[tauri::command]
async fn metrics(s: State<'_, Service>, query: MetricsQuery) -> Reply<MetricsReport> {
    s.metrics(&query)
}

#[tauri::command]
async fn metric_runs(s: State<'_, Service>, query: MetricRunsQuery) -> Reply<Vec<DrillRow>> {
    s.metric_runs(&query)
}

#[tauri::command]
async fn list_versions(s: State<'_, Service>, blueprint: String) -> Reply<BlueprintVersions> {
    s.versions(&blueprint)
}

#[tauri::command]
async fn propose_version(s: State<'_, Service>, request: ProposeRequest) -> Reply<VersionInfo> {
    s.propose_version(request).await
}

#[tauri::command]
async fn stage_version(s: State<'_, Service>, request: StageRequest) -> Reply<BlueprintVersions> {
    s.stage_version(request).await
}

#[tauri::command]
async fn rollback_version(
    s: State<'_, Service>,
    request: RollbackRequest,
) -> Reply<BlueprintVersions> {
    s.rollback_version(request).await
}

#[tauri::command]
async fn gate_version(s: State<'_, Service>, request: GateRequest) -> Reply<GateReport> {
    s.gate_version(request).await
}

#[tauri::command]
async fn version_diff(s: State<'_, Service>, query: DiffQuery) -> Reply<VersionDiff> {
    s.version_diff(&query)
}

#[tauri::command]
async fn taxonomy(s: State<'_, Service>, blueprint: String) -> Reply<Vec<String>> {
    let taxonomy = load_taxonomy(&s.project_root()?)?;
    Ok(s.taxonomy(&taxonomy, &blueprint))
}

#[tauri::command]
async fn list_feedback(s: State<'_, Service>, query: FeedbackQuery) -> Reply<Vec<OutputFeedback>> {
    s.feedback(&query)
}

#[tauri::command]
async fn tag(s: State<'_, Service>, request: TagRequest) -> Reply<TagResponse> {
    let taxonomy = load_taxonomy(&s.project_root()?)?;
    s.tag_add(&taxonomy, request).await
}

#[tauri::command]
async fn untag(s: State<'_, Service>, request: UntagRequest) -> Reply<TagResponse> {
    s.tag_remove(request).await
}

#[tauri::command]
async fn task_conflicts(s: State<'_, Service>, id: String) -> Reply<Vec<ConflictDto>> {
    let id = s.resolve_task(&id)?;
    s.conflicts(Some(id))
}

#[tauri::command]
async fn sync_status(s: State<'_, Service>) -> Reply<SyncStatusDto> {
    s.sync_status()
}

#[tauri::command]
async fn sync_now(s: State<'_, Service>) -> Reply<SyncStatusDto> {
    s.sync_now().await
}

#[tauri::command]
async fn enrol_hub(s: State<'_, Service>, request: EnrolHubRequest) -> Reply<SyncStatusDto> {
    s.enrol_hub(request).await
}

#[tauri::command]
async fn resolve_conflict(
    s: State<'_, Service>,
    id: uuid::Uuid,
    request: ResolveRequest,
) -> Reply<ConflictDto> {
    s.resolve_conflict(id, request).await
}

/// Every command, registered (their names are `command_names::ALL`).
pub fn handler() -> impl Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        health,
        me,
        settings,
        store_key,
        list_blueprints,
        blueprint_source,
        save_blueprint,
        create_blueprint,
        blueprint_schema,
        validate,
        dry_run,
        list_runs,
        get_run,
        start_run,
        retry_run,
        list_tasks,
        get_task,
        decide,
        claim,
        unclaim,
        eval_queue,
        eval_progress,
        taxonomy,
        list_feedback,
        tag,
        untag,
        task_conflicts,
        sync_status,
        sync_now,
        resolve_conflict,
        enrol_hub,
        metrics,
        metric_runs,
        list_versions,
        propose_version,
        stage_version,
        rollback_version,
        version_diff,
        gate_version,
    ]
}
