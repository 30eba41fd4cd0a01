//! The hub: a shared store that orders, judges and serves a team's sync events.
//!
//! - [`store`]: the [`HubStore`] trait and its two backends, SQLite (one file, the default)
//!   and PostgreSQL (several stateless hub processes over one database). SQL lives only there.
//! - [`service`]: authentication, enrolment, rate limits and the push/pull operations; the
//!   rules themselves are `processops_sync::rules`, shared by both backends.
//! - [`http`]: the axum routes (thin) and the generated OpenAPI document.
//! - [`telemetry`]: the Prometheus `/metrics` counters and their text.
//!
//! Invariants (ARCHITECTURE.md, "Sync"): a team's hub sequence is dense and becomes visible
//! to readers only in order; a device's events are stored once each, in its own order, with a
//! verdict; a task has at most one accepted final decision.

pub mod http;
pub mod service;
pub mod store;
pub mod telemetry;

pub use service::{EnrolCode, Hub, HubOptions};
pub use store::{AnyStore, DeviceRecord, HubStore, PgHub, SqliteHub, UserRecord};

/// Everything that can go wrong on the hub, each with its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// 401: no token, an unknown one, or a revoked one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token is good, but its user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 400/422: the request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// 409: the device's push starts after a gap; send from `expected`.
    #[error("the hub expects this device's event {expected} next; send from there")]
    Gap { expected: u64 },
    /// 409: the request contradicts what the hub holds (a sequence number reused for a
    /// different event, a team that exists).
    #[error("{0}")]
    Conflict(String),
    /// 429
    #[error("too many attempts from this address; wait a minute and try again")]
    RateLimited,
    /// 500: the database failed.
    #[error("the hub's store failed: {0}")]
    Storage(String),
}

impl HubError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Invalid(_) => 422,
            Self::Gap { .. } | Self::Conflict(_) => 409,
            Self::RateLimited => 429,
            Self::Storage(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid_request",
            Self::Gap { .. } => "sequence_gap",
            Self::Conflict(_) => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Storage(_) => "storage",
        }
    }
}

impl From<rusqlite::Error> for HubError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<tokio_postgres::Error> for HubError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for HubError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for HubError {
    fn from(e: serde_json::Error) -> Self {
        Self::Storage(format!("stored JSON: {e}"))
    }
}

impl From<processops_sync::rules::Refusal> for HubError {
    fn from(r: processops_sync::rules::Refusal) -> Self {
        match r {
            processops_sync::rules::Refusal::Forbidden(m) => Self::Forbidden(m),
            processops_sync::rules::Refusal::Invalid(m) => Self::Invalid(m),
        }
    }
}

/// Deliberately broken behaviours, for the tests that prove the simulation and the
/// concurrency checks catch them. Never set outside tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    #[default]
    None,
    /// Every decision is accepted and overwrites the task's head.
    LastWriterWins,
    /// PostgreSQL: hub sequence numbers from a `SEQUENCE`, without serialising commits, so
    /// rows can become visible out of order and `seq > cursor` readers skip them.
    NaiveSequence,
}
