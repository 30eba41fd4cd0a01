//! The reqwest plumbing shared by every HTTP provider: building a pooled
//! client with timeouts, sending one try, reading bodies with limits, and
//! turning failures into key-free [`LlmError`]s.

use std::error::Error as _;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::retry::{Failure, honours_retry_after, parse_retry_after};
use crate::wire::WireError;
use crate::{CallContext, LlmError, STEP_HEADER};

/// A non-streaming body larger than this is refused instead of buffered.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Only the start of an error body is needed for the message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Bytes still read after a stream's end marker so the connection can go
/// back to the pool.
const MAX_DRAIN_BYTES: usize = 64 * 1024;
/// Length of the server message kept in [`LlmError::Status`].
pub(crate) const MAX_EXCERPT_CHARS: usize = 300;

/// One provider's HTTP client. It holds the API key only to scrub it from
/// server messages, and deliberately has no `Debug`.
pub(crate) struct Transport {
    client: reqwest::Client,
    connect_timeout: Duration,
    request_timeout: Duration,
    secret: Option<String>,
}

impl Transport {
    /// `example` is a base URL of the right shape, for the error message.
    pub(crate) fn new(
        base_url: &str,
        example: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
        secret: Option<&str>,
    ) -> Result<Self, LlmError> {
        let parsed = reqwest::Url::parse(base_url).map_err(|_| {
            LlmError::InvalidConfig(format!(
                "base_url is not a valid URL; use one like {example}"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LlmError::InvalidConfig(
                "base_url must start with http:// or https://".to_owned(),
            ));
        }
        if request_timeout.is_zero() || connect_timeout.is_zero() {
            return Err(LlmError::InvalidConfig(
                "connect_timeout and request_timeout must be greater than zero".to_owned(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // Per try: covers connecting, the headers and the whole body,
            // streamed or not.
            .timeout(request_timeout)
            // Small request/response writes: Nagle would add latency per call.
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(60))
            // Keep plenty of warm connections: the engine runs many calls at
            // once and a fresh connection per call would dominate on loopback.
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(90))
            // A redirected POST would silently become a GET.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("processops-llm/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&parsed) {
            // A system proxy must not intercept calls to a local server.
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| LlmError::InvalidConfig(format!("HTTP client: {}", describe(e))))?;
        Ok(Self {
            client,
            connect_timeout,
            request_timeout,
            secret: secret.filter(|s| !s.is_empty()).map(str::to_owned),
        })
    }

    /// A POST of a JSON body with the usual headers; the caller adds its
    /// credentials.
    pub(crate) fn post(
        &self,
        url: &str,
        body: &Bytes,
        stream: bool,
        step: Option<&HeaderValue>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                ACCEPT,
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body.clone());
        if let Some(step) = step {
            request = request.header(HeaderName::from_static(STEP_HEADER), step.clone());
        }
        request
    }

    /// Sends one try. A non-success status becomes a [`Failure`] carrying the
    /// server's `Retry-After` where that matters.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let mut response = request.send().await.map_err(|e| self.send_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let retry_after = if honours_retry_after(status) {
            parse_retry_after(response.headers())
        } else {
            None
        };
        // Best effort: the status alone is enough to act on.
        let body = read_limited(&mut response, MAX_ERROR_BODY_BYTES, true)
            .await
            .unwrap_or_default();
        Err(Failure {
            error: LlmError::Status {
                status,
                message: self.excerpt(&body),
            },
            retry_after,
        })
    }

    /// The whole (non-streaming) body.
    pub(crate) async fn body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
        read_limited(response, MAX_BODY_BYTES, false)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => LlmError::Malformed(format!(
                    "the response body is larger than {MAX_BODY_BYTES} bytes"
                ))
                .into(),
                BodyError::Http(e) if e.is_timeout() => self.timeout_error(&e).into(),
                BodyError::Http(e) => LlmError::Transport(describe(e)).into(),
            })
    }

    /// The next piece of a streamed body; `None` at its end. A broken
    /// connection is a cut stream, the per-try limit a timeout.
    pub(crate) async fn chunk(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Option<Bytes>, LlmError> {
        match response.chunk().await {
            Ok(chunk) => Ok(chunk),
            Err(e) if e.is_timeout() => Err(self.timeout_error(&e)),
            Err(e) => Err(LlmError::StreamCut(describe(e))),
        }
    }

    fn send_error(&self, e: reqwest::Error) -> Failure {
        let error = if e.is_timeout() {
            self.timeout_error(&e)
        } else if e.is_connect() {
            LlmError::Connect(describe(e))
        } else {
            LlmError::Transport(describe(e))
        };
        error.into()
    }

    fn timeout_error(&self, e: &reqwest::Error) -> LlmError {
        LlmError::Timeout {
            limit: if e.is_connect() {
                self.connect_timeout
            } else {
                self.request_timeout
            },
        }
    }

    /// A short, single-line, key-free version of the server's error message.
    /// Both OpenAI and Anthropic put it at `error.message`.
    pub(crate) fn excerpt(&self, body: &[u8]) -> String {
        let raw = match serde_json::from_slice::<WireError>(body) {
            Ok(parsed) if !parsed.error.message.is_empty() => parsed.error.message,
            _ => String::from_utf8_lossy(body).into_owned(),
        };
        self.scrub(&raw)
    }

    /// The error with the key blanked out of its text. Parse errors can
    /// quote what the server sent, and a server may echo the key.
    pub(crate) fn redact(&self, error: LlmError) -> LlmError {
        let Some(key) = &self.secret else {
            return error;
        };
        let clean = |text: String| text.replace(key.as_str(), "[redacted]");
        match error {
            LlmError::Malformed(m) => LlmError::Malformed(clean(m)),
            LlmError::StreamCut(m) => LlmError::StreamCut(clean(m)),
            LlmError::Transport(m) => LlmError::Transport(clean(m)),
            LlmError::Connect(m) => LlmError::Connect(clean(m)),
            LlmError::Status { status, message } => LlmError::Status {
                status,
                message: clean(message),
            },
            other => other,
        }
    }

    /// One line, no control characters, no key, at most
    /// [`MAX_EXCERPT_CHARS`] characters.
    pub(crate) fn scrub(&self, raw: &str) -> String {
        let mut text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        text.retain(|c| !c.is_control());
        // A server may echo what it received; never pass the key along.
        if let Some(key) = &self.secret {
            text = text.replace(key.as_str(), "[redacted]");
        }
        if text.is_empty() {
            return "(no error message in the body)".to_owned();
        }
        match text.char_indices().nth(MAX_EXCERPT_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
}

/// The API key as a header value that hyper will not index (HPACK) and
/// `Debug` will not print.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, LlmError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        LlmError::InvalidConfig(
            "the API key contains characters that cannot be sent in an HTTP header; check for stray newlines or quotes".to_owned(),
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// [`CallContext::step_key`] as a header value.
pub(crate) fn step_header(ctx: &CallContext) -> Result<Option<HeaderValue>, LlmError> {
    ctx.step_key
        .as_deref()
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|_| {
            LlmError::InvalidRequest(
                "step_key contains characters not allowed in an HTTP header (such as newlines)"
                    .to_owned(),
            )
        })
}

pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

enum BodyError {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads the body up to `limit` bytes; with `truncate` the rest is ignored
/// instead of failing.
async fn read_limited(
    response: &mut reqwest::Response,
    limit: usize,
    truncate: bool,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Http)? {
        if out.len() + chunk.len() > limit {
            if truncate {
                let room = limit - out.len();
                out.extend_from_slice(&chunk[..room]);
                return Ok(out);
            }
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads what follows a stream's end marker (normally nothing but the
/// chunked-encoding end) so hyper can reuse the connection; errors no longer
/// matter here.
pub(crate) async fn drain(response: &mut reqwest::Response) {
    let mut seen = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        seen += chunk.len();
        if seen > MAX_DRAIN_BYTES {
            break;
        }
    }
}

/// The error and its causes on one line, without the URL (it may carry
/// credentials in its userinfo or query).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn transport(secret: Option<&str>) -> Transport {
        Transport::new(
            "http://127.0.0.1:1/v1",
            "http://127.0.0.1:8080/v1",
            Duration::from_secs(1),
            Duration::from_secs(1),
            secret,
        )
        .unwrap()
    }

    #[test]
    fn excerpt_redacts_key_and_truncates() {
        let t = transport(Some("sk-very-secret"));
        let body = br#"{"error":{"message":"bad key sk-very-secret\nfor you","type":"auth"}}"#;
        assert_eq!(t.excerpt(body), "bad key [redacted] for you");
        // Anthropic's shape has the message at the same place.
        let body = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-very-secret"}}"#;
        assert_eq!(t.excerpt(body), "invalid x-api-key [redacted]");
        let long = "x".repeat(1000);
        let cut = t.excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert_eq!(t.excerpt(b""), "(no error message in the body)");
        let err = t.redact(LlmError::Malformed(
            "invalid type: string \"sk-very-secret\"".to_owned(),
        ));
        assert_eq!(err.to_string().matches("[redacted]").count(), 1);
        assert!(!err.to_string().contains("sk-very-secret"));
    }

    #[test]
    fn rejects_bad_urls_and_timeouts() {
        for url in ["ftp://x/v1", "not a url"] {
            let err = Transport::new(
                url,
                "e",
                Duration::from_secs(1),
                Duration::from_secs(1),
                None,
            )
            .err()
            .unwrap();
            assert!(matches!(err, LlmError::InvalidConfig(_)), "{url}");
        }
        let err = Transport::new(
            "http://127.0.0.1:1",
            "e",
            Duration::ZERO,
            Duration::from_secs(1),
            None,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("greater than zero"));
        let err = secret_header("sk-bad\nkey").unwrap_err();
        assert!(!err.to_string().contains("sk-bad"));
        assert!(format!("{:?}", secret_header("sk-fine").unwrap()).contains("Sensitive"));
    }

    #[test]
    fn loopback_hosts() {
        for (url, expected) in [
            ("http://localhost:1/v1", true),
            ("http://127.0.0.2:1", true),
            ("http://[::1]:1", true),
            ("https://api.anthropic.com", false),
        ] {
            assert_eq!(
                is_loopback(&reqwest::Url::parse(url).unwrap()),
                expected,
                "{url}"
            );
        }
    }
}
