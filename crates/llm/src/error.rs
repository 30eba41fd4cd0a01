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
        "the model server did not answer within {limit:?}; raise the provider's timeout_secs (or connect_timeout_secs) or reduce the server's load"
    )]
    Timeout { limit: Duration },

    /// The server answered with a non-success HTTP status (or, inside a
    /// stream, an error event; it is given the status the same error would
    /// have had as a response).
    #[error("the model server answered HTTP {status}: {message} ({hint})", hint = status_hint(*.status))]
    Status { status: u16, message: String },

    /// The body could not be understood as a response of the provider's protocol.
    #[error(
        "the model server sent a response that could not be read: {0}; check that base_url and the provider's kind match the server (an OpenAI-compatible /v1 endpoint, or the Anthropic Messages API)"
    )]
    Malformed(String),

    /// A stream ended before its end marker (`data: [DONE]` for OpenAI,
    /// `message_stop` for Anthropic).
    #[error(
        "the model server's stream ended early ({0}); the server or a proxy closed it before it finished"
    )]
    StreamCut(String),

    /// Every try failed with a retryable error.
    #[error("the model call failed after {attempts} attempt(s); last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },

    /// The provider's circuit breaker is open after repeated failures: the
    /// call was refused without contacting the server.
    #[error("{}", circuit_open_message(provider, *retry_in))]
    CircuitOpen {
        provider: String,
        /// Until the breaker lets a trial call through; zero while a trial
        /// call is already under way.
        retry_in: Duration,
    },
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
            // An open breaker is retried by failing over, not by hammering it.
            Self::InvalidConfig(_)
            | Self::InvalidRequest(_)
            | Self::RetriesExhausted { .. }
            | Self::CircuitOpen { .. } => false,
        }
    }

    /// Whether this error says the provider itself is unhealthy (unreachable,
    /// slow, overloaded, failing or sending garbage), as opposed to a request
    /// it rejected. Circuit breakers count only these.
    pub fn is_provider_failure(&self) -> bool {
        match self {
            Self::Connect(_)
            | Self::Transport(_)
            | Self::Timeout { .. }
            | Self::Malformed(_)
            | Self::StreamCut(_)
            | Self::RetriesExhausted { .. } => true,
            Self::Status { status, .. } => is_retryable_status(*status),
            Self::InvalidConfig(_) | Self::InvalidRequest(_) | Self::CircuitOpen { .. } => false,
        }
    }

    /// A short, stable name of the failure for traces (OpenTelemetry's `error.type`): the
    /// HTTP status for a status error, else the kind, looking through `RetriesExhausted`.
    pub fn kind(&self) -> String {
        match self {
            Self::InvalidConfig(_) => "invalid_config".into(),
            Self::InvalidRequest(_) => "invalid_request".into(),
            Self::Connect(_) => "connect".into(),
            Self::Transport(_) => "transport".into(),
            Self::Timeout { .. } => "timeout".into(),
            Self::Status { status, .. } => status.to_string(),
            Self::Malformed(_) => "malformed".into(),
            Self::StreamCut(_) => "stream_cut".into(),
            Self::RetriesExhausted { last, .. } => last.kind(),
            Self::CircuitOpen { .. } => "circuit_open".into(),
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

/// 529 is Anthropic's "overloaded".
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 | 422 => "the request was rejected; check the model name and parameters",
        401 | 403 => "check the API key and its permissions",
        404 => "check base_url and the model name",
        408 | 504 => "the server timed out; try again or raise its timeouts",
        413 => "the prompt is too large; shorten it",
        429 => "rate limited; lower concurrency or raise the provider's limits",
        529 => "the provider is overloaded; try again later",
        500..=599 => "the server failed; try again later or check its logs",
        _ => "see the server's documentation for this status",
    }
}

fn circuit_open_message(provider: &str, retry_in: Duration) -> String {
    let when = if retry_in.is_zero() {
        "a trial call is under way and decides when it is used again".to_owned()
    } else {
        // Whole seconds are what an operator needs; round up so "0s" never shows.
        let secs = retry_in.as_secs() + u64::from(retry_in.subsec_nanos() > 0);
        format!("a trial call is let through in about {secs}s")
    };
    format!(
        "provider `{provider}` is paused after repeated failures (circuit breaker open), so the call was not sent; {when}. Other agents of the step are tried meanwhile; check the provider's status and earlier errors"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_open_message_is_clear() {
        let e = LlmError::CircuitOpen {
            provider: "claude".to_owned(),
            retry_in: Duration::from_millis(12_300),
        };
        let text = e.to_string();
        assert!(text.contains("`claude`"), "{text}");
        assert!(text.contains("circuit breaker open"), "{text}");
        assert!(text.contains("13s"), "{text}");
        assert!(!e.is_retryable());
        assert!(!e.is_provider_failure());
        let probing = LlmError::CircuitOpen {
            provider: "claude".to_owned(),
            retry_in: Duration::ZERO,
        };
        assert!(probing.to_string().contains("trial call is under way"));
    }

    #[test]
    fn provider_failures_exclude_request_errors() {
        let status = |status| LlmError::Status {
            status,
            message: String::new(),
        };
        for s in [429, 500, 502, 503, 504, 529] {
            assert!(status(s).is_provider_failure(), "{s}");
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!status(s).is_provider_failure(), "{s}");
        }
        assert!(LlmError::StreamCut(String::new()).is_provider_failure());
        assert!(
            LlmError::Timeout {
                limit: Duration::ZERO
            }
            .is_provider_failure()
        );
        assert!(!LlmError::InvalidRequest(String::new()).is_provider_failure());
    }
}
