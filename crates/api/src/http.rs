//! The HTTP transport: handlers parse, call one service function and map the result.
//! Every error, including malformed requests, is a JSON `{code, message}` body.

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::dto::*;
use crate::versions::{
    BlueprintVersions, DiffQuery, GateRequest, ProposeRequest, RollbackRequest, StageRequest,
    VersionDiff, VersionInfo, VersionsQuery,
};
use crate::{
    ApiError, FeedbackQuery, MetricRunsQuery, MetricsQuery, MetricsReport, OutputFeedback,
    QueueItem, QueueQuery, Service, TagRequest, TagResponse, UntagRequest, load_taxonomy,
};

/// Largest request body accepted (webhook payloads included).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// `Json` whose rejections are JSON errors that say what is wrong.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// `Path` whose rejections (say, an id that is not UTF-8 once decoded) are JSON errors.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::new(
                rejection.status().as_u16(),
                "invalid_request",
                format!("bad path: {}", rejection.body_text()),
            )),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            415,
            "invalid_request",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => ApiError::new(
            422,
            "invalid_request",
            format!("the body has the wrong shape: {}", e.body_text()),
        ),
        JsonRejection::BytesRejection(e) => bytes_rejection_text(e.status(), &e.body_text()),
        other => ApiError::bad_request(other.body_text()),
    }
}

fn bytes_rejection_text(status: StatusCode, text: &str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            413,
            "invalid_request",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    } else {
        ApiError::new(status.as_u16(), "invalid_request", text.to_owned())
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ProcessOps engine API",
        description = "Start runs, read their timelines, work the inbox. Served by `processops serve`."
    ),
    components(schemas(ApiError))
)]
struct ApiDoc;

/// Every route, documented: the single list both the server and the document come from.
fn routes() -> OpenApiRouter<Service> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(list_blueprints))
        .routes(routes!(validate))
        .routes(routes!(start_run, list_runs))
        .routes(routes!(get_run))
        .routes(routes!(retry_run))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(decide))
        .routes(routes!(claim))
        .routes(routes!(unclaim))
        .routes(routes!(task_conflicts))
        .routes(routes!(sync_status, sync_now))
        .routes(routes!(enrol_hub))
        .routes(routes!(list_conflicts))
        .routes(routes!(resolve_conflict))
        .routes(routes!(webhook))
        .routes(routes!(me))
        .routes(routes!(settings))
        .routes(routes!(store_key))
        .routes(routes!(create_blueprint))
        .routes(routes!(blueprint_source, save_blueprint))
        .routes(routes!(blueprint_schema))
        .routes(routes!(dry_run))
        .routes(routes!(eval_queue))
        .routes(routes!(eval_progress))
        .routes(routes!(taxonomy))
        .routes(routes!(list_feedback))
        .routes(routes!(tag))
        .routes(routes!(untag))
        .routes(routes!(metrics))
        .routes(routes!(metric_runs))
        .routes(routes!(list_versions))
        .routes(routes!(propose_version))
        .routes(routes!(stage_version))
        .routes(routes!(rollback_version))
        .routes(routes!(version_diff))
        .routes(routes!(gate_version))
        .routes(routes!(drift_alerts))
}

/// The router and the OpenAPI document it implements.
pub fn router(service: Service) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes().split_for_parts();
    let doc = api.clone();
    let telemetry = std::sync::Arc::new(crate::telemetry::Telemetry::new());
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { Json(doc) }),
        )
        // Prometheus text, outside the OpenAPI document (it is not JSON).
        .route(
            "/metrics",
            axum::routing::get(move |State(s): State<Service>| async move {
                metrics_text(&telemetry, &s)
            }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                405,
                "invalid_request",
                "this endpoint does not accept that method; see /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service);
    (router, api)
}

/// `GET /metrics`: the engine's metrics as OpenMetrics text.
fn metrics_text(t: &crate::telemetry::Telemetry, s: &Service) -> Response {
    match t.render(s) {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                crate::telemetry::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The content security policy of the served UI: everything from this origin, nothing else.
/// Inline styles are allowed because the canvas and editor position elements with them.
pub const UI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// Serve the built web UI (`ui/dist`) next to the API: unknown paths outside `/api` and
/// `/hooks` get the UI's `index.html`. Without a built UI, `/` says how to build it.
pub fn with_ui(router: Router, dist: Option<&std::path::Path>) -> Router {
    use axum::http::HeaderValue;
    use axum::http::header::CONTENT_SECURITY_POLICY;
    use tower_http::services::{ServeDir, ServeFile};
    use tower_http::set_header::SetResponseHeaderLayer;
    let csp = SetResponseHeaderLayer::if_not_present(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UI_CSP),
    );
    match dist.filter(|d| d.join("index.html").is_file()) {
        Some(dist) => {
            let ui = tower::ServiceBuilder::new().layer(csp).service(
                ServeDir::new(dist).fallback(ServeFile::new(dist.join("index.html"))),
            );
            router.fallback(move |req: Request| {
                let ui = ui.clone();
                async move {
                    let path = req.uri().path();
                    if path == "/api" || path.starts_with("/api/") || path.starts_with("/hooks/") {
                        return ApiError::not_found("no such endpoint; see /openapi.json")
                            .into_response();
                    }
                    match tower::ServiceExt::oneshot(ui, req).await {
                        Ok(response) => response.into_response(),
                        Err(never) => match never {},
                    }
                }
            })
        }
        None => router.route(
            "/",
            axum::routing::get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "The ProcessOps web UI is not built. Build it with `npm --prefix ui ci && npm --prefix ui run build` and restart `processops serve`; the API is at /openapi.json.\n",
                )
            }),
        ),
    }
}

/// The OpenAPI document (committed as `docs/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// Engine health.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn health(State(s): State<Service>) -> Json<Health> {
    Json(s.health())
}

/// The loaded blueprints.
#[utoipa::path(get, path = "/api/blueprints", responses((status = 200, body = Vec<BlueprintSummary>)))]
async fn list_blueprints(State(s): State<Service>) -> Json<Vec<BlueprintSummary>> {
    Json(s.blueprints())
}

/// Validate a blueprint source; every problem with line and column.
#[utoipa::path(post, path = "/api/validate", request_body = ValidateRequest, responses((status = 200, body = ValidationReport), (status = 400, body = ApiError), (status = 422, body = ApiError)))]
async fn validate(
    State(s): State<Service>,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Json<ValidationReport> {
    Json(s.validate(&req.source))
}

/// Start a run by hand.
#[utoipa::path(post, path = "/api/runs", request_body = StartRunRequest, responses(
    (status = 201, body = StartRunResponse), (status = 200, description = "A run with this idempotency key exists", body = StartRunResponse),
    (status = 404, body = ApiError), (status = 422, description = "The payload does not match the trigger's input schema", body = ApiError)))]
async fn start_run(
    State(s): State<Service>,
    ApiJson(req): ApiJson<StartRunRequest>,
) -> Result<(StatusCode, Json<StartRunResponse>), ApiError> {
    let r = s.start_run(req).await?;
    Ok((
        if r.duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(r),
    ))
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/runs", params(RunsQuery), responses((status = 200, body = Vec<RunSummary>), (status = 400, body = ApiError)))]
async fn list_runs(
    State(s): State<Service>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    Ok(Json(s.runs(&query(q)?)?))
}

/// A run with its timeline (a full id or a unique prefix).
#[utoipa::path(get, path = "/api/runs/{id}", params(("id" = String, Path)), responses((status = 200, body = RunDetail), (status = 404, body = ApiError)))]
async fn get_run(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let id = s.resolve_run(&id)?;
    Ok(Json(s.run(id)?))
}

/// Retry the failed steps of a run that needs attention.
#[utoipa::path(post, path = "/api/runs/{id}/retry", params(("id" = String, Path)), responses((status = 200, body = RunSummary), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn retry_run(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RunSummary>, ApiError> {
    let id = s.resolve_run(&id)?;
    Ok(Json(s.retry(id, "api".into()).await?))
}

/// The inbox: pending tasks by due time, then age.
#[utoipa::path(get, path = "/api/tasks", params(TasksQuery), responses((status = 200, body = Vec<TaskSummary>), (status = 400, body = ApiError)))]
async fn list_tasks(
    State(s): State<Service>,
    q: Result<Query<TasksQuery>, QueryRejection>,
) -> Result<Json<Vec<TaskSummary>>, ApiError> {
    Ok(Json(s.tasks(&query(q)?)?))
}

/// A task with the context that produced its draft.
#[utoipa::path(get, path = "/api/tasks/{id}", params(("id" = String, Path)), responses((status = 200, body = TaskDetail), (status = 404, body = ApiError)))]
async fn get_task(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskDetail>, ApiError> {
    let id = s.resolve_task(&id)?;
    Ok(Json(s.task(id)?))
}

/// Decide a task: approve, edit (with text), reject (with a reason) or escalate.
#[utoipa::path(post, path = "/api/tasks/{id}/decision", params(("id" = String, Path)), request_body = DecisionRequest, responses(
    (status = 200, body = DecisionResponse), (status = 404, body = ApiError),
    (status = 403, description = "The decider does not hold the task's role", body = ApiError),
    (status = 409, description = "Someone decided the task already, or holds it", body = ApiError), (status = 422, body = ApiError)))]
async fn decide(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<DecisionResponse>, ApiError> {
    let id = s.resolve_task(&id)?;
    Ok(Json(s.decide(id, req).await?))
}

/// The decisions on a task the hub could not accept, newest first.
#[utoipa::path(get, path = "/api/tasks/{id}/conflicts", params(("id" = String, Path)), responses((status = 200, body = Vec<ConflictDto>), (status = 404, body = ApiError)))]
async fn task_conflicts(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<ConflictDto>>, ApiError> {
    let id = s.resolve_task(&id)?;
    Ok(Json(s.conflicts(Some(id))?))
}

/// This project's link to its hub: last sync, pending changes, open conflicts.
#[utoipa::path(get, path = "/api/sync", responses((status = 200, body = SyncStatusDto)))]
async fn sync_status(State(s): State<Service>) -> Result<Json<SyncStatusDto>, ApiError> {
    Ok(Json(s.sync_status()?))
}

/// Sync with the hub now (push this device's changes, pull the team's).
#[utoipa::path(post, path = "/api/sync", responses(
    (status = 200, body = SyncStatusDto),
    (status = 409, description = "This project is not enrolled with a hub", body = ApiError),
    (status = 503, description = "The hub cannot be reached; changes wait in the outbox", body = ApiError)))]
async fn sync_now(State(s): State<Service>) -> Result<Json<SyncStatusDto>, ApiError> {
    Ok(Json(s.sync_now().await?))
}

/// Enrol this project with a team hub (a one-time code from its admin); syncing starts at once.
#[utoipa::path(post, path = "/api/sync/enrol", request_body = EnrolHubRequest, responses(
    (status = 200, body = SyncStatusDto),
    (status = 409, description = "Already enrolled", body = ApiError),
    (status = 422, description = "The hub refused the code", body = ApiError),
    (status = 503, description = "The hub cannot be reached", body = ApiError)))]
async fn enrol_hub(
    State(s): State<Service>,
    ApiJson(req): ApiJson<EnrolHubRequest>,
) -> Result<Json<SyncStatusDto>, ApiError> {
    Ok(Json(s.enrol_hub(req).await?))
}

/// Every conflict this device knows of, newest first.
#[utoipa::path(get, path = "/api/conflicts", responses((status = 200, body = Vec<ConflictDto>)))]
async fn list_conflicts(State(s): State<Service>) -> Result<Json<Vec<ConflictDto>>, ApiError> {
    Ok(Json(s.conflicts(None)?))
}

/// Close a conflict with a note: the accepted decision stands.
#[utoipa::path(post, path = "/api/conflicts/{id}/resolve", params(("id" = Uuid, Path)), request_body = ResolveRequest, responses(
    (status = 200, body = ConflictDto), (status = 404, body = ApiError),
    (status = 409, description = "Resolved already, or not enrolled with a hub", body = ApiError)))]
async fn resolve_conflict(
    State(s): State<Service>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<ConflictDto>, ApiError> {
    Ok(Json(s.resolve_conflict(id, req).await?))
}

/// Take a task so others do not work on it at the same time.
#[utoipa::path(post, path = "/api/tasks/{id}/claim", params(("id" = String, Path)), request_body = ClaimRequest, responses(
    (status = 200, body = TaskSummary), (status = 404, body = ApiError),
    (status = 409, description = "Someone else holds the task, or it is decided", body = ApiError), (status = 422, body = ApiError)))]
async fn claim(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<TaskSummary>, ApiError> {
    let id = s.resolve_task(&id)?;
    Ok(Json(s.claim(id, req).await?))
}

/// Give a task back (`force` to take it from someone else).
#[utoipa::path(post, path = "/api/tasks/{id}/unclaim", params(("id" = String, Path)), request_body = ClaimRequest, responses(
    (status = 200, body = TaskSummary), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn unclaim(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<TaskSummary>, ApiError> {
    let id = s.resolve_task(&id)?;
    Ok(Json(s.unclaim(id, req).await?))
}

/// Webhook trigger. When the trigger has `secret_env`, sign the raw body:
/// `X-ProcessOps-Signature: sha256=<hex HMAC-SHA256>`. An `Idempotency-Key` header makes
/// redeliveries start the run once.
#[utoipa::path(post, path = "/hooks/{blueprint}/{trigger}", params(("blueprint" = String, Path), ("trigger" = String, Path)),
    request_body(content = Object, description = "The JSON payload"),
    responses((status = 202, body = WebhookResponse), (status = 200, description = "Already received (same Idempotency-Key)", body = WebhookResponse),
    (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
async fn webhook(
    State(s): State<Service>,
    ApiPath((blueprint, trigger)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WebhookResponse>), ApiError> {
    let body = body.map_err(|e| bytes_rejection_text(e.status(), &e.body_text()))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let r = s
        .webhook(
            &blueprint,
            &trigger,
            &body,
            header(processops_engine::triggers::SIGNATURE_HEADER),
            header("idempotency-key"),
        )
        .await?;
    Ok((
        if r.duplicate {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        },
        Json(r),
    ))
}

/// Who the app acts as, and the directory of people and roles.
#[utoipa::path(get, path = "/api/me", responses((status = 200, body = Me), (status = 501, body = ApiError)))]
async fn me(State(s): State<Service>) -> Result<Json<Me>, ApiError> {
    Ok(Json(s.me()?))
}

/// Model providers (never their keys) and the agents that use them.
#[utoipa::path(get, path = "/api/settings", responses((status = 200, body = SettingsView), (status = 501, body = ApiError)))]
async fn settings(State(s): State<Service>) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(s.settings()?))
}

/// Store a provider's API key in the OS keychain.
#[utoipa::path(post, path = "/api/settings/keys", request_body = StoreKeyRequest, responses(
    (status = 204, description = "Stored"), (status = 422, body = ApiError),
    (status = 503, description = "No keychain is available on this machine", body = ApiError)))]
async fn store_key(
    State(s): State<Service>,
    ApiJson(req): ApiJson<StoreKeyRequest>,
) -> Result<StatusCode, ApiError> {
    s.store_key(&req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a blueprint file from YAML (`blueprints/<id>.yaml`).
#[utoipa::path(post, path = "/api/blueprints", request_body = SaveBlueprintRequest, responses(
    (status = 201, body = SaveBlueprintResponse), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
async fn create_blueprint(
    State(s): State<Service>,
    ApiJson(req): ApiJson<SaveBlueprintRequest>,
) -> Result<(StatusCode, Json<SaveBlueprintResponse>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_blueprint(req).await?)))
}

/// A blueprint's YAML as it is on disk.
#[utoipa::path(get, path = "/api/blueprints/{id}/source", params(("id" = String, Path)), responses(
    (status = 200, body = BlueprintSource), (status = 404, body = ApiError)))]
async fn blueprint_source(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BlueprintSource>, ApiError> {
    Ok(Json(s.blueprint_source(&id)?))
}

/// Save an edited blueprint over its file; new runs use it at once.
#[utoipa::path(put, path = "/api/blueprints/{id}/source", params(("id" = String, Path)), request_body = SaveBlueprintRequest, responses(
    (status = 200, body = SaveBlueprintResponse), (status = 404, body = ApiError),
    (status = 409, description = "The file changed since `base_version`", body = ApiError),
    (status = 422, description = "The blueprint does not validate", body = ApiError)))]
async fn save_blueprint(
    State(s): State<Service>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SaveBlueprintRequest>,
) -> Result<Json<SaveBlueprintResponse>, ApiError> {
    Ok(Json(s.save_blueprint(&id, req).await?))
}

/// The JSON Schema of blueprint files.
#[utoipa::path(get, path = "/api/blueprint-schema", responses((status = 200, body = Object)))]
async fn blueprint_schema(State(s): State<Service>) -> Json<serde_json::Value> {
    Json(s.blueprint_schema())
}

/// Run a blueprint (saved or not) on a sample payload, in a scratch store: prompts are real
/// calls, HTTP calls, files, datasets and events are described, reviews are approved.
#[utoipa::path(post, path = "/api/dry-run", request_body = DryRunRequest, responses(
    (status = 200, body = DryRunReport), (status = 422, body = ApiError)))]
async fn dry_run(
    State(s): State<Service>,
    ApiJson(req): ApiJson<DryRunRequest>,
) -> Result<Json<DryRunReport>, ApiError> {
    Ok(Json(s.dry_run(req).await?))
}

/// Outputs waiting for this evaluator's feedback.
#[utoipa::path(get, path = "/api/eval/queue", params(("by" = String, Query), ("blueprint" = Option<String>, Query),
    ("kind" = Option<String>, Query, description = "prompt or review"), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = Vec<QueueItem>), (status = 422, body = ApiError)))]
async fn eval_queue(
    State(s): State<Service>,
    q: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Json<Vec<QueueItem>>, ApiError> {
    let taxonomy = load_taxonomy(&s.project_root()?)?;
    Ok(Json(s.eval_queue(&taxonomy, &query(q)?)?))
}

/// Each evaluator's progress: outputs done and remaining.
#[utoipa::path(get, path = "/api/eval/progress", params(("blueprint" = Option<String>, Query)),
    responses((status = 200, body = Vec<EvalProgress>)))]
async fn eval_progress(
    State(s): State<Service>,
    q: Result<Query<BlueprintQuery>, QueryRejection>,
) -> Result<Json<Vec<EvalProgress>>, ApiError> {
    Ok(Json(s.eval_progress(query(q)?.blueprint.as_deref())?))
}

/// The tags a blueprint's outputs may carry.
#[utoipa::path(get, path = "/api/taxonomy", params(("blueprint" = String, Query)),
    responses((status = 200, body = Vec<String>)))]
async fn taxonomy(
    State(s): State<Service>,
    q: Result<Query<BlueprintQuery>, QueryRejection>,
) -> Result<Json<Vec<String>>, ApiError> {
    let taxonomy = load_taxonomy(&s.project_root()?)?;
    let blueprint = query(q)?.blueprint.unwrap_or_default();
    Ok(Json(s.taxonomy(&taxonomy, &blueprint)))
}

/// Feedback per output and evaluator.
#[utoipa::path(get, path = "/api/feedback", params(("output" = Option<String>, Query), ("by" = Option<String>, Query),
    ("blueprint" = Option<String>, Query), ("tag" = Option<String>, Query)),
    responses((status = 200, body = Vec<OutputFeedback>), (status = 404, body = ApiError)))]
async fn list_feedback(
    State(s): State<Service>,
    q: Result<Query<FeedbackQuery>, QueryRejection>,
) -> Result<Json<Vec<OutputFeedback>>, ApiError> {
    Ok(Json(s.feedback(&query(q)?)?))
}

/// Tag an output (and rate or comment on it).
#[utoipa::path(post, path = "/api/feedback/tags", request_body = TagRequest, responses(
    (status = 200, body = TagResponse), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
async fn tag(
    State(s): State<Service>,
    ApiJson(req): ApiJson<TagRequest>,
) -> Result<Json<TagResponse>, ApiError> {
    let taxonomy = load_taxonomy(&s.project_root()?)?;
    Ok(Json(s.tag_add(&taxonomy, req).await?))
}

/// Remove tags from an output.
#[utoipa::path(post, path = "/api/feedback/untag", request_body = UntagRequest, responses(
    (status = 200, body = TagResponse), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
async fn untag(
    State(s): State<Service>,
    ApiJson(req): ApiJson<UntagRequest>,
) -> Result<Json<TagResponse>, ApiError> {
    Ok(Json(s.tag_remove(req).await?))
}

/// The ProcessOps metrics per blueprint and version over a window, with drift and a day-by-day
/// series.
#[utoipa::path(get, path = "/api/metrics", params(MetricsQuery),
    responses((status = 200, body = MetricsReport), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn metrics(
    State(s): State<Service>,
    q: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Json<MetricsReport>, ApiError> {
    Ok(Json(s.metrics(&query(q)?)?))
}

/// The runs behind a metric (`metric=overrides`, `automated`, `prompt_issues`, …).
#[utoipa::path(get, path = "/api/metrics/runs", params(MetricRunsQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ApiError)))]
async fn metric_runs(
    State(s): State<Service>,
    q: Result<Query<MetricRunsQuery>, QueryRejection>,
) -> Result<Json<Vec<crate::DrillRow>>, ApiError> {
    Ok(Json(s.metric_runs(&query(q)?)?))
}

/// A blueprint's versions with their lifecycle stages and the history of stage moves.
#[utoipa::path(get, path = "/api/versions", params(("blueprint" = String, Query)),
    responses((status = 200, body = BlueprintVersions), (status = 404, body = ApiError)))]
async fn list_versions(
    State(s): State<Service>,
    q: Result<Query<VersionsQuery>, QueryRejection>,
) -> Result<Json<BlueprintVersions>, ApiError> {
    Ok(Json(s.versions(&query(q)?.blueprint)?))
}

/// Propose a version (the file's by default) with a change note and the feedback behind it.
#[utoipa::path(post, path = "/api/versions/propose", request_body = ProposeRequest, responses(
    (status = 200, body = VersionInfo), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn propose_version(
    State(s): State<Service>,
    ApiJson(req): ApiJson<ProposeRequest>,
) -> Result<Json<VersionInfo>, ApiError> {
    Ok(Json(s.propose_version(req).await?))
}

/// Move a version to pilot, monitored, approved or retired. Promotion past pilot needs the
/// governance role and is refused to the version's author.
#[utoipa::path(post, path = "/api/versions/stage", request_body = StageRequest, responses(
    (status = 200, body = BlueprintVersions), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
async fn stage_version(
    State(s): State<Service>,
    ApiJson(req): ApiJson<StageRequest>,
) -> Result<Json<BlueprintVersions>, ApiError> {
    Ok(Json(s.stage_version(req).await?))
}

/// Retire the approved version and approve again the one before it.
#[utoipa::path(post, path = "/api/versions/rollback", request_body = RollbackRequest, responses(
    (status = 200, body = BlueprintVersions), (status = 403, body = ApiError)))]
async fn rollback_version(
    State(s): State<Service>,
    ApiJson(req): ApiJson<RollbackRequest>,
) -> Result<Json<BlueprintVersions>, ApiError> {
    Ok(Json(s.rollback_version(req).await?))
}

/// What changed between two versions: graph, prompts, policies.
#[utoipa::path(get, path = "/api/versions/diff", params(("blueprint" = String, Query),
    ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = VersionDiff), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn version_diff(
    State(s): State<Service>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<VersionDiff>, ApiError> {
    Ok(Json(s.version_diff(&query(q)?)?))
}

/// The prompt regression gate: replay past approved reviews on a version and compare its
/// drafts with what people approved. Approving a version whose prompts changed needs one.
#[utoipa::path(post, path = "/api/versions/gate", request_body = GateRequest, responses(
    (status = 200, body = Object), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
async fn gate_version(
    State(s): State<Service>,
    ApiJson(req): ApiJson<GateRequest>,
) -> Result<Json<processops_core::gate::GateReport>, ApiError> {
    Ok(Json(s.gate_version(req).await?))
}

/// Drift alerts: versions whose process drift index crossed the threshold, and the owner each
/// was sent to.
#[utoipa::path(get, path = "/api/alerts", params(crate::AlertsQuery),
    responses((status = 200, body = Vec<crate::DriftAlert>)))]
async fn drift_alerts(
    State(s): State<Service>,
    q: Result<Query<crate::AlertsQuery>, QueryRejection>,
) -> Result<Json<Vec<crate::DriftAlert>>, ApiError> {
    Ok(Json(s.drift_alerts(&query(q)?)?))
}
