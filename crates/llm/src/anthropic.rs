//! Client for the Anthropic Messages API, `POST {base_url}/v1/messages`,
//! JSON and SSE.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};

use crate::retry::{Failure, RetryPolicy};
use crate::sse::SseDecoder;
use crate::transport::{Transport, drain, is_event_stream, secret_header, step_header};
use crate::wire::anthropic::{
    API_KEY_HEADER, API_VERSION, Content, JSON_INSTRUCTION, Message, MessagesRequest,
    MessagesResponse, MessagesUsage, StreamEvent, VERSION_HEADER, error_status, schema_instruction,
    text_of,
};
use crate::{CallContext, ChatModel, ChatRequest, ChatResponse, LlmError, Role, Usage};

#[derive(Clone, PartialEq, Eq)]
pub struct AnthropicConfig {
    /// The API's root, e.g. `https://api.anthropic.com` (a trailing `/v1` is
    /// tolerated); requests go to `{base_url}/v1/messages`.
    pub base_url: String,
    /// Sent as `x-api-key` when set.
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Total time for one try, from connecting until the body is read.
    pub request_timeout: Duration,
    /// Tries after the first one, for retryable failures only.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// `max_tokens` for requests that set none: Anthropic requires one.
    pub default_max_tokens: u32,
}

impl AnthropicConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.anthropic.com";

    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_retries: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            default_max_tokens: 1024,
        }
    }
}

// Hand-written so the key never reaches logs through `{:?}`.
impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("default_max_tokens", &self.default_max_tokens)
            .finish()
    }
}

/// Anthropic Messages client. Cheap to share: hold one per provider and
/// reuse it, so connections are pooled across calls.
pub struct Anthropic {
    transport: Transport,
    url: String,
    key: Option<HeaderValue>,
    config: AnthropicConfig,
}

impl fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anthropic")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Answer {
    text: String,
    model: String,
    usage: MessagesUsage,
    stop_reason: Option<String>,
}

impl Anthropic {
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let transport = Transport::new(
            &config.base_url,
            AnthropicConfig::DEFAULT_BASE_URL,
            config.connect_timeout,
            config.request_timeout,
            config.api_key.as_deref(),
        )?;
        if config.default_max_tokens == 0 {
            return Err(LlmError::InvalidConfig(
                "default_max_tokens must be greater than zero".to_owned(),
            ));
        }
        let key = config.api_key.as_deref().map(secret_header).transpose()?;
        let root = config.base_url.trim_end_matches('/');
        let root = root.strip_suffix("/v1").unwrap_or(root);
        Ok(Self {
            transport,
            url: format!("{root}/v1/messages"),
            key,
            config,
        })
    }

    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.config.max_retries,
            backoff_base: self.config.backoff_base,
            backoff_max: self.config.backoff_max,
        }
    }

    /// Moves system messages to the top-level `system` field and adds the
    /// structured-output instruction there.
    fn wire_request(&self, req: ChatRequest) -> Result<MessagesRequest, LlmError> {
        let mut system = Vec::new();
        let mut messages = Vec::new();
        for m in req.messages {
            match m.role {
                Role::System => system.push(m.content),
                Role::User | Role::Assistant => messages.push(Message {
                    role: m.role,
                    content: Content::Text(m.content),
                }),
            }
        }
        if messages.is_empty() {
            return Err(LlmError::InvalidRequest(
                "Anthropic needs at least one user message besides the system prompt".to_owned(),
            ));
        }
        match &req.json_schema {
            Some(schema) => system.push(schema_instruction(schema)),
            None if req.json_mode => system.push(JSON_INSTRUCTION.to_owned()),
            None => {}
        }
        Ok(MessagesRequest {
            model: req.model,
            max_tokens: req.max_tokens.unwrap_or(self.config.default_max_tokens),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            temperature: req.temperature,
            stream: req.stream,
        })
    }

    async fn call(&self, req: ChatRequest, ctx: CallContext) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let requested_model = req.model.clone();
        let stream = req.stream;
        let wire = self.wire_request(req)?;
        let body = Bytes::from(serde_json::to_vec(&wire).map_err(|e| {
            LlmError::InvalidRequest(format!("cannot encode the request as JSON: {e}"))
        })?);
        let step = step_header(&ctx)?;

        let (answer, attempts) = self
            .retry_policy()
            .run(|| self.attempt(&body, stream, step.as_ref()))
            .await?;
        Ok(ChatResponse {
            text: answer.text,
            model: if answer.model.is_empty() {
                requested_model
            } else {
                answer.model
            },
            usage: Usage {
                prompt_tokens: answer.usage.prompt_tokens(),
                completion_tokens: answer.usage.output_tokens,
            },
            finish_reason: answer.stop_reason,
            latency: started.elapsed(),
            attempts,
        })
    }

    async fn attempt(
        &self,
        body: &Bytes,
        stream: bool,
        step: Option<&HeaderValue>,
    ) -> Result<Answer, Failure> {
        self.try_once(body, stream, step)
            .await
            .map_err(|failure| Failure {
                error: self.transport.redact(failure.error),
                ..failure
            })
    }

    async fn try_once(
        &self,
        body: &Bytes,
        stream: bool,
        step: Option<&HeaderValue>,
    ) -> Result<Answer, Failure> {
        let mut request = self.transport.post(&self.url, body, stream, step).header(
            HeaderName::from_static(VERSION_HEADER),
            HeaderValue::from_static(API_VERSION),
        );
        if let Some(key) = &self.key {
            request = request.header(HeaderName::from_static(API_KEY_HEADER), key.clone());
        }
        let mut response = self.transport.send(request).await?;
        if is_event_stream(response.headers()) {
            self.read_stream(&mut response).await.map_err(Failure::from)
        } else {
            let body = self.transport.body(&mut response).await?;
            parse_message(&body).map_err(Failure::from)
        }
    }

    async fn read_stream(&self, response: &mut reqwest::Response) -> Result<Answer, LlmError> {
        let mut decoder = SseDecoder::new();
        let mut acc = StreamAccumulator::default();
        while let Some(bytes) = self.transport.chunk(response).await? {
            for data in decoder.push(&bytes)? {
                if acc.on_event(&data, &self.transport)? {
                    drain(response).await;
                    return Ok(acc.into_answer());
                }
            }
        }
        for data in decoder.finish() {
            if acc.on_event(&data, &self.transport)? {
                return Ok(acc.into_answer());
            }
        }
        Err(LlmError::StreamCut(
            "the connection closed without a `message_stop` event".to_owned(),
        ))
    }
}

impl ChatModel for Anthropic {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.call(req, ctx))
    }

    fn system(&self) -> &'static str {
        "anthropic"
    }
}

#[derive(Default)]
struct StreamAccumulator {
    text: String,
    model: String,
    usage: MessagesUsage,
    stop_reason: Option<String>,
}

impl StreamAccumulator {
    /// Applies one SSE `data` payload; returns true at `message_stop`.
    fn on_event(&mut self, data: &str, transport: &Transport) -> Result<bool, LlmError> {
        let event: StreamEvent = serde_json::from_str(data).map_err(|e| {
            LlmError::Malformed(format!("an SSE event is not a Messages stream event ({e})"))
        })?;
        match event {
            StreamEvent::MessageStart { message } => {
                self.model = message.model;
                self.usage = message.usage;
                // Usually empty, but a server may start with content.
                self.text.push_str(&text_of(&message.content));
            }
            StreamEvent::ContentBlockStart { content_block, .. } => {
                if content_block.kind == "text" {
                    self.text
                        .push_str(content_block.text.as_deref().unwrap_or_default());
                }
            }
            StreamEvent::ContentBlockDelta { delta, .. } => {
                if delta.kind == "text_delta" {
                    self.text
                        .push_str(delta.text.as_deref().unwrap_or_default());
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                if let Some(usage) = usage {
                    self.usage.output_tokens = usage.output_tokens;
                    if let Some(input) = usage.input_tokens {
                        self.usage.input_tokens = input;
                    }
                }
            }
            StreamEvent::MessageStop => return Ok(true),
            StreamEvent::Error { error } => {
                // Mid-stream errors are what the status would have been
                // (`overloaded_error` is 529), so retries and breakers treat
                // them alike.
                return Err(LlmError::Status {
                    status: error_status(&error.kind),
                    message: transport.scrub(&format!(
                        "error inside the stream: {}: {}",
                        error.kind, error.message
                    )),
                });
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Unknown => {}
        }
        Ok(false)
    }

    fn into_answer(self) -> Answer {
        Answer {
            text: self.text,
            model: self.model,
            usage: self.usage,
            stop_reason: self.stop_reason,
        }
    }
}

fn parse_message(body: &[u8]) -> Result<Answer, LlmError> {
    let parsed: MessagesResponse = serde_json::from_slice(body).map_err(|e| {
        LlmError::Malformed(format!("the body is not a Messages API response ({e})"))
    })?;
    Ok(Answer {
        text: text_of(&parsed.content),
        model: parsed.model,
        usage: parsed.usage,
        stop_reason: parsed.stop_reason,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ChatMessage;

    fn client() -> Anthropic {
        Anthropic::new(AnthropicConfig {
            api_key: Some("sk-ant-very-secret".to_owned()),
            ..AnthropicConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn url_accepts_root_or_v1() {
        for base in [
            "https://api.anthropic.com",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1",
            "https://api.anthropic.com/v1/",
        ] {
            let c = Anthropic::new(AnthropicConfig::new(base)).unwrap();
            assert_eq!(c.url, "https://api.anthropic.com/v1/messages", "{base}");
        }
    }

    #[test]
    fn system_prompt_moves_to_the_top_level() {
        let req = ChatRequest {
            json_schema: Some(serde_json::json!({"type": "object"})),
            ..ChatRequest::new(
                "claude",
                vec![
                    ChatMessage::system("Be brief."),
                    ChatMessage::user("Hi"),
                    ChatMessage::assistant("Hello"),
                    ChatMessage::user("Classify this"),
                ],
            )
        };
        let wire = client().wire_request(req).unwrap();
        assert_eq!(wire.max_tokens, 1024);
        let system = wire.system.unwrap();
        assert!(system.starts_with("Be brief.\n\nRespond with only a JSON value"));
        assert_eq!(
            crate::wire::anthropic::instruction_schema(&system),
            Some(serde_json::json!({"type": "object"}))
        );
        let roles: Vec<Role> = wire.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);

        let only_system = ChatRequest::new("c", vec![ChatMessage::system("x")]);
        assert!(matches!(
            client().wire_request(only_system),
            Err(LlmError::InvalidRequest(_))
        ));
        let plain = ChatRequest {
            max_tokens: Some(7),
            json_mode: true,
            ..ChatRequest::new("c", vec![ChatMessage::user("x")])
        };
        let wire = client().wire_request(plain).unwrap();
        assert_eq!(wire.max_tokens, 7);
        assert_eq!(wire.system.as_deref(), Some(JSON_INSTRUCTION));
    }

    #[test]
    fn debug_hides_key() {
        let c = client();
        for text in [format!("{c:?}"), format!("{:?}", c.config())] {
            assert!(!text.contains("sk-ant-very-secret"), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
        }
        let err = Anthropic::new(AnthropicConfig {
            api_key: Some("sk-ant-bad\nkey".to_owned()),
            ..AnthropicConfig::default()
        })
        .unwrap_err();
        assert!(!err.to_string().contains("sk-ant-bad"));
    }

    #[test]
    fn stream_events_accumulate() {
        let c = client();
        let mut acc = StreamAccumulator::default();
        let events = [
            r#"{"type":"message_start","message":{"id":"m1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":3}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#,
        ];
        for e in events {
            assert!(!acc.on_event(e, &c.transport).unwrap(), "{e}");
        }
        assert!(
            acc.on_event(r#"{"type":"message_stop"}"#, &c.transport)
                .unwrap()
        );
        let answer = acc.into_answer();
        assert_eq!(answer.text, "Hello there");
        assert_eq!(answer.model, "claude-x");
        assert_eq!(answer.usage.prompt_tokens(), 15);
        assert_eq!(answer.usage.output_tokens, 2);
        assert_eq!(answer.stop_reason.as_deref(), Some("end_turn"));

        let mut acc = StreamAccumulator::default();
        let err = acc
            .on_event(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded sk-ant-very-secret"}}"#,
                &c.transport,
            )
            .unwrap_err();
        assert_eq!(err.status(), Some(529));
        assert!(err.is_retryable());
        assert!(!err.to_string().contains("sk-ant-very-secret"), "{err}");
        assert!(matches!(
            acc.on_event("{not json", &c.transport),
            Err(LlmError::Malformed(_))
        ));
    }

    #[test]
    fn non_streaming_body() {
        let answer = parse_message(
            br#"{"id":"m","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"a"},{"type":"tool_use","id":"t"},{"type":"text","text":"b"}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!(answer.text, "ab");
        assert_eq!(answer.stop_reason.as_deref(), Some("max_tokens"));
        assert_eq!(
            (answer.usage.input_tokens, answer.usage.output_tokens),
            (3, 4)
        );
        // An OpenAI completion is not a Messages response.
        assert!(matches!(
            parse_message(br#"{"id":"x","choices":[{"message":{"content":"hi"}}]}"#),
            Err(LlmError::Malformed(_))
        ));
    }
}
