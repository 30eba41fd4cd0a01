use std::time::Duration;

/// Everything that can go wrong when calling a model.
///
/// Messages never contain the API key or request headers: they are shown to
/// operators and written to logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The client could not be built from its configuration.
    #[error("invalid model client configuration: {0}")]
    InvalidConfig(String),

    /// The request cannot be sent as given.
    #[error("invalid model request: {0}")]
    InvalidRequest(String),

    /// No TCP/TLS connection could be made.
    #[error(
        "could not connect to the model server: {0}; check that it is running and that base_url is right"
    )]
    Connect(String),

    /// The connection was made but broke before a complete response arrived.
    #[error("the connection to the model server was lost: {0}; check the server's logs")]
    Transport(String),

    /// The connect timeout or the total request timeout elapsed.
    #[error(
        "the model server did not answer within {limit:?}; raise request_timeout or reduce the server's load"
    )]
    Timeout { limit: Duration },

    /// The server answered with a non-success HTTP status.
    #[error("the model server answered HTTP {status}: {message} ({hint})", hint = status_hint(*.status))]
    Status { status: u16, message: String },

    /// The body could not be understood as an OpenAI-compatible response.
    #[error(
        "the model server sent a response that could not be read: {0}; check that base_url points at an OpenAI-compatible /v1 endpoint"
    )]
    Malformed(String),

    /// An SSE stream ended before `data: [DONE]`.
    #[error(
        "the model server's stream ended early ({0}); the server or a proxy closed it before it finished"
    )]
    StreamCut(String),

    /// Every try failed with a retryable error.
    #[error("the model call failed after {attempts} attempt(s); last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },
}

impl LlmError {
    /// Whether trying the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(_)
            | Self::Transport(_)
            | Self::Timeout { .. }
            | Self::Malformed(_)
            | Self::StreamCut(_) => true,
            Self::Status { status, .. } => is_retryable_status(*status),
            Self::InvalidConfig(_) | Self::InvalidRequest(_) | Self::RetriesExhausted { .. } => {
                false
            }
        }
    }

    /// The HTTP status behind this error, looking through `RetriesExhausted`.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }
}

pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 | 422 => "the request was rejected; check the model name and parameters",
        401 | 403 => "check the API key and its permissions",
        404 => "check base_url (it should end in /v1) and the model name",
        408 | 504 => "the server timed out; try again or raise its timeouts",
        413 => "the prompt is too large; shorten it",
        429 => "rate limited; lower concurrency or raise the provider's limits",
        500..=599 => "the server failed; try again later or check its logs",
        _ => "see the server's documentation for this status",
    }
}
