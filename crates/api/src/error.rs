use processops_engine::EngineError;
use processops_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error as every transport shows it: a stable code and a message that says what to do.
#[derive(Debug, Clone, Serialize, ToSchema, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Stable, machine-readable: `not_found`, `invalid_request`, `invalid_payload`, `conflict`,
    /// `unauthorized`, `internal`.
    pub code: &'static str,
    pub message: String,
    #[serde(skip)]
    pub status: u16,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::UnknownBlueprint { .. }
            | EngineError::UnknownTrigger { .. }
            | EngineError::NoTrigger(_) => Self::new(404, "not_found", message),
            EngineError::InvalidPayload { .. } => Self::new(422, "invalid_payload", message),
            EngineError::BadSignature => Self::new(401, "unauthorized", message),
            EngineError::Forbidden(_) => Self::new(403, "forbidden", message),
            EngineError::InvalidDecision(_) => Self::new(422, "invalid_request", message),
            // Nothing is live for this starter: a state to change (pilot, approve), not a bug.
            EngineError::NotLive(_) => Self::new(409, "not_live", message),
            // The sender did nothing wrong; the engine is not set up to check signatures yet.
            EngineError::MissingSecret(_) | EngineError::ClaimUnanswered { .. } => {
                Self::new(503, "unavailable", message)
            }
            // A redelivery another engine of the team took: nothing for the sender to retry.
            EngineError::ClaimedElsewhere { .. } => Self::new(409, "duplicate", message),
            EngineError::Io(_) | EngineError::Internal(_) => {
                tracing::error!(error = %message, "request failed");
                Self::new(500, "internal", message)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::RunNotFound(_)
            | StoreError::TaskNotFound(_)
            | StoreError::ConflictNotFound(_) => Self::new(404, "not_found", message),
            StoreError::AlreadyDecided { .. }
            | StoreError::Claimed { .. }
            | StoreError::ConflictClosed(_) => Self::new(409, "conflict", message),
            StoreError::NotEnrolled => Self::new(409, "not_enrolled", message),
            StoreError::Lifecycle(_) => Self::new(409, "conflict", message),
            StoreError::HubForbidden(_) => Self::new(403, "forbidden", message),
            _ => {
                tracing::error!(error = %message, "store failure");
                Self::new(500, "internal", message)
            }
        }
    }
}
