//! The hub's HTTP API: thin handlers over [`Hub`], every error a JSON `{code, message}` body,
//! and an OpenAPI document generated from the same route list (committed as
//! `docs/hub-openapi.json`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use processops_sync::{
    EnrolRequest, EnrolResponse, HubErrorBody, Principal, PullResponse, PushRequest, PushResponse,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::store::{DeviceRecord, UserRecord};
use crate::{EnrolCode, Hub, HubError};

/// Largest request body: a full push of large events.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self, "hub request failed");
        }
        let expected = match &self {
            Self::Gap { expected } => Some(*expected),
            _ => None,
        };
        let body = HubErrorBody {
            code: self.code().to_owned(),
            message: self.to_string(),
            expected,
        };
        (status, Json(body)).into_response()
    }
}

/// `Json` whose rejections are hub errors that say what is wrong.
pub struct HubJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for HubJson<T> {
    type Rejection = HubError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => HubError::Invalid(
                    "send the body as JSON (Content-Type: application/json)".into(),
                ),
                other => HubError::Invalid(format!("bad JSON body: {}", other.body_text())),
            }),
        }
    }
}

/// The caller's address (for rate limits); unknown in-process callers share one bucket.
fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// An authenticated caller.
pub struct Authed(pub Principal);

impl FromRequestParts<Hub> for Authed {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, hub: &Hub) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        hub.authenticate(bearer, client_ip(parts)).await.map(Self)
    }
}

/// The caller's address.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(parts)))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PullQuery {
    /// The last hub sequence number the device applied (0 for everything).
    #[serde(default)]
    pub after: u64,
    /// Page size (at most 5000).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutUser {
    pub roles: Vec<processops_sync::Role>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrolment {
    pub user: String,
}

/// Liveness: no token needed.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, description = "The hub is up")))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "wire": processops_sync::WIRE_VERSION}))
}

/// Enrol a device with a one-time code; the answer carries its token, shown once.
#[utoipa::path(post, path = "/v1/enrol", request_body = EnrolRequest,
    responses((status = 200, body = EnrolResponse), (status = 401, body = HubErrorBody),
              (status = 429, body = HubErrorBody)))]
async fn enrol(
    State(hub): State<Hub>,
    ClientIp(ip): ClientIp,
    HubJson(request): HubJson<EnrolRequest>,
) -> Result<Json<EnrolResponse>, HubError> {
    hub.enrol(request, ip).await.map(Json)
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = Principal), (status = 401, body = HubErrorBody)))]
async fn me(Authed(p): Authed) -> Json<Principal> {
    Json(p)
}

/// Push this device's events (idempotent; 409 `sequence_gap` carries the expected number).
#[utoipa::path(post, path = "/v1/events", request_body = PushRequest,
    responses((status = 200, body = PushResponse), (status = 401, body = HubErrorBody),
              (status = 403, body = HubErrorBody), (status = 409, body = HubErrorBody),
              (status = 422, body = HubErrorBody)))]
async fn push(
    State(hub): State<Hub>,
    Authed(p): Authed,
    HubJson(request): HubJson<PushRequest>,
) -> Result<Json<PushResponse>, HubError> {
    hub.push(&p, request).await.map(Json)
}

/// Pull the team's events after a cursor, in hub order (own events included: they are the
/// acknowledgements).
#[utoipa::path(get, path = "/v1/events", params(PullQuery),
    responses((status = 200, body = PullResponse), (status = 401, body = HubErrorBody)))]
async fn pull(
    State(hub): State<Hub>,
    Authed(p): Authed,
    query: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PullResponse>, HubError> {
    let Query(q) = query.map_err(|e| HubError::Invalid(format!("bad query: {}", e.body_text())))?;
    hub.pull(&p, q.after, q.limit).await.map(Json)
}

/// Admin: the team's users.
#[utoipa::path(get, path = "/v1/users",
    responses((status = 200, body = Vec<UserRecord>), (status = 401, body = HubErrorBody), (status = 403, body = HubErrorBody)))]
async fn users(
    State(hub): State<Hub>,
    Authed(p): Authed,
) -> Result<Json<Vec<UserRecord>>, HubError> {
    hub.users(&p).await.map(Json)
}

/// Admin: create or change a user (roles and approval scopes).
#[utoipa::path(put, path = "/v1/users/{name}", request_body = PutUser,
    params(("name" = String, Path, description = "The user's name")),
    responses((status = 200, body = UserRecord), (status = 401, body = HubErrorBody), (status = 403, body = HubErrorBody)))]
async fn put_user(
    State(hub): State<Hub>,
    Authed(p): Authed,
    Path(name): Path<String>,
    HubJson(body): HubJson<PutUser>,
) -> Result<Json<UserRecord>, HubError> {
    let user = UserRecord {
        name,
        roles: body.roles,
        scopes: body.scopes,
    };
    hub.put_user(Some(&p), &p.team.clone(), user)
        .await
        .map(Json)
}

/// Admin: a one-time enrolment code for a user.
#[utoipa::path(post, path = "/v1/enrolments", request_body = NewEnrolment,
    responses((status = 200, body = EnrolCode), (status = 401, body = HubErrorBody), (status = 403, body = HubErrorBody)))]
async fn new_enrolment(
    State(hub): State<Hub>,
    Authed(p): Authed,
    HubJson(body): HubJson<NewEnrolment>,
) -> Result<Json<EnrolCode>, HubError> {
    hub.enrolment(Some(&p), &p.team.clone(), &body.user)
        .await
        .map(Json)
}

/// Admin: the team's devices.
#[utoipa::path(get, path = "/v1/devices",
    responses((status = 200, body = Vec<DeviceRecord>), (status = 401, body = HubErrorBody), (status = 403, body = HubErrorBody)))]
async fn devices(
    State(hub): State<Hub>,
    Authed(p): Authed,
) -> Result<Json<Vec<DeviceRecord>>, HubError> {
    hub.devices(&p).await.map(Json)
}

/// Admin: revoke a device's token.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke",
    params(("id" = Uuid, Path, description = "The device")),
    responses((status = 204), (status = 401, body = HubErrorBody), (status = 403, body = HubErrorBody), (status = 404, body = HubErrorBody)))]
async fn revoke(
    State(hub): State<Hub>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, HubError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| HubError::Invalid(format!("`{id}` is not a device id")))?;
    hub.revoke(Some(&p), &p.team.clone(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ProcessOps hub API",
        description = "Enrol devices and sync a team's events. Served by `processops hub serve`. \
Every endpoint but /v1/health and /v1/enrol needs `Authorization: Bearer <device token>`."
    ),
    components(schemas(HubErrorBody))
)]
struct HubDoc;

fn routes() -> OpenApiRouter<Hub> {
    OpenApiRouter::with_openapi(HubDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(enrol))
        .routes(routes!(me))
        .routes(routes!(push, pull))
        .routes(routes!(users))
        .routes(routes!(put_user))
        .routes(routes!(new_enrolment))
        .routes(routes!(devices))
        .routes(routes!(revoke))
}

/// The router and the OpenAPI document it implements.
pub fn router(hub: Hub) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes().split_for_parts();
    let doc = api.clone();
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { Json(doc) }),
        )
        // Prometheus text, outside the OpenAPI document (it is not JSON).
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async { HubError::NotFound("no such endpoint; see /openapi.json".into()) })
        .method_not_allowed_fallback(|| async {
            HubError::Invalid("this endpoint does not accept that method; see /openapi.json".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            count_request,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(hub);
    (router, api)
}

/// `GET /metrics`: the hub's metrics as OpenMetrics text.
async fn metrics(State(hub): State<Hub>) -> Result<Response, HubError> {
    let text = hub.metrics_text().await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::telemetry::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// Count every answered request by its route's pattern (unknown paths share one label, so a
/// scanner cannot grow the series without bound).
async fn count_request(
    State(hub): State<Hub>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    hub.meters()
        .request(&method, &route, response.status().as_u16());
    response
}

/// The document alone (for the committed copy).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// Where and how `hub serve` listens.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    /// PEM certificate chain and key: serve HTTPS instead of HTTP.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Serve the hub until the process ends. Binding anywhere but loopback without TLS is refused:
/// device tokens would cross the network in the clear.
pub async fn serve(hub: Hub, listen: Listen) -> Result<(), HubError> {
    let (router, _) = router(hub);
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    match listen.tls {
        Some((cert, key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| {
                    HubError::Invalid(format!(
                        "cannot load the TLS certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
            axum_server::bind_rustls(listen.addr, config)
                .serve(app)
                .await
                .map_err(|e| HubError::Storage(format!("the hub server stopped: {e}")))
        }
        None => {
            if !listen.addr.ip().is_loopback() {
                return Err(HubError::Invalid(format!(
                    "{} is not a loopback address: give --tls-cert and --tls-key to serve the network, or bind 127.0.0.1",
                    listen.addr
                )));
            }
            let listener = tokio::net::TcpListener::bind(listen.addr)
                .await
                .map_err(|e| HubError::Invalid(format!("cannot listen on {}: {e}", listen.addr)))?;
            axum::serve(listener, app)
                .await
                .map_err(|e| HubError::Storage(format!("the hub server stopped: {e}")))
        }
    }
}
