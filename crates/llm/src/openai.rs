//! Client for OpenAI-compatible `POST {base_url}/chat/completions`.

use std::error::Error as _;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use rand::Rng;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};

use crate::sse::SseDecoder;
use crate::wire::{
    ResponseFormat, StreamOptions, WireChatRequest, WireChatResponse, WireChunk, WireError,
    WireUsage,
};
use crate::{CallContext, ChatModel, ChatRequest, ChatResponse, LlmError, STEP_HEADER, Usage};

/// A non-streaming body larger than this is refused instead of buffered.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Only the start of an error body is needed for the message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Bytes still read after `[DONE]` so the connection can go back to the pool.
const MAX_DRAIN_BYTES: usize = 64 * 1024;
/// Length of the server message kept in [`LlmError::Status`].
const MAX_EXCERPT_CHARS: usize = 300;

#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Up to and including the API version, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ..` when set.
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Total time for one try, from connecting until the body is read.
    pub request_timeout: Duration,
    /// Tries after the first one, for retryable failures only.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080/v1".to_owned(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_retries: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
        }
    }
}

// Hand-written so the key never reaches logs through `{:?}`.
impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

/// OpenAI-compatible chat client. Cheap to share: hold one per provider and
/// reuse it, so connections are pooled across calls.
pub struct OpenAiCompatible {
    client: reqwest::Client,
    url: String,
    auth: Option<HeaderValue>,
    config: OpenAiConfig,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The outcome of one failed try, with the server's requested wait if any.
struct Failure {
    error: LlmError,
    retry_after: Option<Duration>,
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

struct Answer {
    text: String,
    model: String,
    usage: Option<WireUsage>,
    finish_reason: Option<String>,
}

impl OpenAiCompatible {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let parsed = reqwest::Url::parse(&config.base_url).map_err(|_| {
            LlmError::InvalidConfig(
                "base_url is not a valid URL; use one like http://127.0.0.1:8080/v1".to_owned(),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LlmError::InvalidConfig(
                "base_url must start with http:// or https://".to_owned(),
            ));
        }
        if config.request_timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(LlmError::InvalidConfig(
                "connect_timeout and request_timeout must be greater than zero".to_owned(),
            ));
        }
        let auth = match &config.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    LlmError::InvalidConfig(
                        "the API key contains characters that cannot be sent in an HTTP header; check for stray newlines or quotes".to_owned(),
                    )
                })?;
                // Keeps hyper from indexing it in HPACK and Debug from printing it.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };

        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
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
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            auth,
            config,
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    async fn call(&self, req: ChatRequest, ctx: CallContext) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let requested_model = req.model.clone();
        let stream = req.stream;
        let wire = WireChatRequest {
            model: req.model,
            messages: req.messages,
            temperature: req.temperature,
            max_tokens: req.max_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            response_format: match req.json_schema {
                Some(schema) => Some(ResponseFormat {
                    kind: "json_schema".to_owned(),
                    json_schema: Some(crate::wire::JsonSchemaFormat {
                        name: "output".to_owned(),
                        schema,
                        strict: false,
                    }),
                }),
                None => req.json_mode.then(|| ResponseFormat {
                    kind: "json_object".to_owned(),
                    json_schema: None,
                }),
            },
        };
        let body = Bytes::from(serde_json::to_vec(&wire).map_err(|e| {
            LlmError::InvalidRequest(format!("cannot encode the request as JSON: {e}"))
        })?);
        let step = ctx
            .step_key
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| {
                LlmError::InvalidRequest(
                    "step_key contains characters not allowed in an HTTP header (such as newlines)"
                        .to_owned(),
                )
            })?;

        let max_attempts = self.config.max_retries.saturating_add(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let failure = match self.attempt(&body, stream, step.as_ref()).await {
                Ok(answer) => {
                    let usage = answer.usage.unwrap_or_default();
                    return Ok(ChatResponse {
                        text: answer.text,
                        model: if answer.model.is_empty() {
                            requested_model
                        } else {
                            answer.model
                        },
                        usage: Usage {
                            prompt_tokens: usage.prompt_tokens,
                            completion_tokens: usage.completion_tokens,
                        },
                        finish_reason: answer.finish_reason,
                        latency: started.elapsed(),
                        attempts: attempt,
                    });
                }
                Err(failure) => failure,
            };
            if !failure.error.is_retryable() {
                return Err(failure.error);
            }
            if attempt >= max_attempts {
                return Err(LlmError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(failure.error),
                });
            }
            let delay = match failure.retry_after {
                Some(wait) => wait.min(self.config.backoff_max),
                None => self.backoff(attempt),
            };
            tracing::debug!(attempt, ?delay, error = %failure.error, "retrying model call");
            tokio::time::sleep(delay).await;
        }
    }

    /// Full jitter: uniform in `[0, min(max, base * 2^(failed-1))]`, which
    /// spreads out many callers that failed at the same moment.
    fn backoff(&self, failed: u32) -> Duration {
        let exp = failed.saturating_sub(1).min(31);
        let cap = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=cap_micros))
    }

    async fn attempt(
        &self,
        body: &Bytes,
        stream: bool,
        step: Option<&HeaderValue>,
    ) -> Result<Answer, Failure> {
        let mut request = self
            .client
            .post(&self.url)
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
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(step) = step {
            request = request.header(HeaderName::from_static(STEP_HEADER), step.clone());
        }
        let mut response = request.send().await.map_err(|e| self.send_error(e))?;

        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = if matches!(status, 429 | 503) {
                parse_retry_after(response.headers())
            } else {
                None
            };
            // Best effort: the status alone is enough to act on.
            let body = read_limited(&mut response, MAX_ERROR_BODY_BYTES, true)
                .await
                .unwrap_or_default();
            return Err(Failure {
                error: LlmError::Status {
                    status,
                    message: self.excerpt(&body),
                },
                retry_after,
            });
        }

        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if is_sse {
            self.read_stream(&mut response).await.map_err(Failure::from)
        } else {
            let body = read_limited(&mut response, MAX_BODY_BYTES, false)
                .await
                .map_err(|e| self.body_error(e))?;
            parse_completion(&body).map_err(Failure::from)
        }
    }

    async fn read_stream(&self, response: &mut reqwest::Response) -> Result<Answer, LlmError> {
        let mut decoder = SseDecoder::new();
        let mut acc = StreamAccumulator::default();
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    for data in decoder.push(&bytes)? {
                        if acc.on_event(&data)? {
                            drain(response).await;
                            return Ok(acc.into_answer());
                        }
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(self.timeout_error(&e)),
                Err(e) => return Err(LlmError::StreamCut(describe(e))),
            }
        }
        for data in decoder.finish() {
            if acc.on_event(&data)? {
                return Ok(acc.into_answer());
            }
        }
        Err(LlmError::StreamCut(
            "the connection closed without `data: [DONE]`".to_owned(),
        ))
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

    fn body_error(&self, e: BodyError) -> Failure {
        match e {
            BodyError::TooLarge => LlmError::Malformed(format!(
                "the response body is larger than {MAX_BODY_BYTES} bytes"
            ))
            .into(),
            BodyError::Http(e) if e.is_timeout() => self.timeout_error(&e).into(),
            BodyError::Http(e) => LlmError::Transport(describe(e)).into(),
        }
    }

    fn timeout_error(&self, e: &reqwest::Error) -> LlmError {
        LlmError::Timeout {
            limit: if e.is_connect() {
                self.config.connect_timeout
            } else {
                self.config.request_timeout
            },
        }
    }

    /// A short, single-line, key-free version of the server's error message.
    fn excerpt(&self, body: &[u8]) -> String {
        let raw = match serde_json::from_slice::<WireError>(body) {
            Ok(parsed) if !parsed.error.message.is_empty() => parsed.error.message,
            _ => String::from_utf8_lossy(body).into_owned(),
        };
        let mut text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        text.retain(|c| !c.is_control());
        // A server may echo what it received; never pass the key along.
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            text = text.replace(key, "[redacted]");
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

impl ChatModel for OpenAiCompatible {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.call(req, ctx))
    }
}

#[derive(Default)]
struct StreamAccumulator {
    text: String,
    model: String,
    usage: Option<WireUsage>,
    finish_reason: Option<String>,
}

impl StreamAccumulator {
    /// Applies one SSE `data` payload; returns true at `[DONE]`.
    fn on_event(&mut self, data: &str) -> Result<bool, LlmError> {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        let chunk: WireChunk = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("an SSE chunk is not valid JSON ({e})")))?;
        if let Some(error) = chunk.error {
            return Err(LlmError::Malformed(format!(
                "the server reported an error inside the stream: {}",
                error
                    .message
                    .chars()
                    .take(MAX_EXCERPT_CHARS)
                    .collect::<String>()
            )));
        }
        if !chunk.model.is_empty() {
            self.model = chunk.model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) {
            if let Some(content) = choice.delta.content {
                self.text.push_str(&content);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(false)
    }

    fn into_answer(self) -> Answer {
        Answer {
            text: self.text,
            model: self.model,
            usage: self.usage,
            finish_reason: self.finish_reason,
        }
    }
}

fn parse_completion(body: &[u8]) -> Result<Answer, LlmError> {
    let parsed: WireChatResponse = serde_json::from_slice(body).map_err(|e| {
        LlmError::Malformed(format!("the body is not a chat completion JSON ({e})"))
    })?;
    let choice = parsed
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::Malformed("the completion has no choices".to_owned()))?;
    Ok(Answer {
        text: choice.message.content.unwrap_or_default(),
        model: parsed.model,
        usage: parsed.usage,
        finish_reason: choice.finish_reason,
    })
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

/// Reads what follows `[DONE]` (normally nothing but the chunked-encoding
/// end) so hyper can reuse the connection; errors no longer matter here.
async fn drain(response: &mut reqwest::Response) {
    let mut seen = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        seen += chunk.len();
        if seen > MAX_DRAIN_BYTES {
            break;
        }
    }
}

/// `Retry-After` as delta-seconds (fractions tolerated) or an HTTP-date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(
            parse_retry_after(&headers),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = parse_retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn excerpt_redacts_key_and_truncates() {
        let client = OpenAiCompatible::new(OpenAiConfig {
            api_key: Some("sk-very-secret".to_owned()),
            ..OpenAiConfig::default()
        })
        .unwrap();
        let body = br#"{"error":{"message":"bad key sk-very-secret\nfor you","type":"auth"}}"#;
        assert_eq!(client.excerpt(body), "bad key [redacted] for you");
        let long = "x".repeat(1000);
        let cut = client.excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert_eq!(client.excerpt(b""), "(no error message in the body)");
    }

    #[test]
    fn backoff_is_capped() {
        let client = OpenAiCompatible::new(OpenAiConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(250),
            ..OpenAiConfig::default()
        })
        .unwrap();
        for failed in [1, 2, 3, 10, 40, u32::MAX] {
            assert!(client.backoff(failed) <= Duration::from_millis(250));
        }
        assert!(client.backoff(1) <= Duration::from_millis(100));
    }

    #[test]
    fn config_debug_hides_key() {
        let config = OpenAiConfig {
            api_key: Some("sk-very-secret".to_owned()),
            ..OpenAiConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("sk-very-secret"));
        assert!(text.contains("[redacted]"));
        let client = OpenAiCompatible::new(config).unwrap();
        assert!(!format!("{client:?}").contains("sk-very-secret"));
    }

    #[test]
    fn rejects_bad_config() {
        assert!(matches!(
            OpenAiCompatible::new(OpenAiConfig::new("ftp://x/v1")),
            Err(LlmError::InvalidConfig(_))
        ));
        assert!(matches!(
            OpenAiCompatible::new(OpenAiConfig::new("not a url")),
            Err(LlmError::InvalidConfig(_))
        ));
        let err = OpenAiCompatible::new(OpenAiConfig {
            api_key: Some("sk-bad\nkey".to_owned()),
            ..OpenAiConfig::default()
        })
        .unwrap_err();
        assert!(!err.to_string().contains("sk-bad"));
    }
}
