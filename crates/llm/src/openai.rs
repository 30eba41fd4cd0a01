//! Client for OpenAI-compatible `POST {base_url}/chat/completions`.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::retry::{Failure, RetryPolicy};
use crate::sse::SseDecoder;
use crate::transport::{
    MAX_EXCERPT_CHARS, Transport, drain, is_event_stream, secret_header, step_header,
};
use crate::wire::{
    ResponseFormat, StreamOptions, WireChatRequest, WireChatResponse, WireChunk, WireUsage,
};
use crate::{CallContext, ChatModel, ChatRequest, ChatResponse, LlmError, Usage};

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
    transport: Transport,
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

struct Answer {
    text: String,
    model: String,
    usage: Option<WireUsage>,
    finish_reason: Option<String>,
}

impl OpenAiCompatible {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let transport = Transport::new(
            &config.base_url,
            "http://127.0.0.1:8080/v1",
            config.connect_timeout,
            config.request_timeout,
            config.api_key.as_deref(),
        )?;
        let auth = config
            .api_key
            .as_deref()
            .map(|key| secret_header(&format!("Bearer {key}")))
            .transpose()?;
        Ok(Self {
            transport,
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            auth,
            config,
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.config.max_retries,
            backoff_base: self.config.backoff_base,
            backoff_max: self.config.backoff_max,
        }
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
        let step = step_header(&ctx)?;

        let (answer, attempts) = self
            .retry_policy()
            .run(|| self.attempt(&body, stream, step.as_ref()))
            .await?;
        let usage = answer.usage.unwrap_or_default();
        Ok(ChatResponse {
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
        let mut request = self.transport.post(&self.url, body, stream, step);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let mut response = self.transport.send(request).await?;
        if is_event_stream(response.headers()) {
            self.read_stream(&mut response).await.map_err(Failure::from)
        } else {
            let body = self.transport.body(&mut response).await?;
            parse_completion(&body).map_err(Failure::from)
        }
    }

    async fn read_stream(&self, response: &mut reqwest::Response) -> Result<Answer, LlmError> {
        let mut decoder = SseDecoder::new();
        let mut acc = StreamAccumulator::default();
        while let Some(bytes) = self.transport.chunk(response).await? {
            for data in decoder.push(&bytes)? {
                if acc.on_event(&data)? {
                    drain(response).await;
                    return Ok(acc.into_answer());
                }
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
}

impl ChatModel for OpenAiCompatible {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.call(req, ctx))
    }

    fn system(&self) -> &'static str {
        // Ollama speaks the same protocol; its default port or host name gives it away.
        let url = self.config.base_url.to_ascii_lowercase();
        if url.contains(":11434") || url.contains("ollama") {
            "ollama"
        } else {
            "openai"
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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

    #[test]
    fn stream_error_chunk_is_malformed() {
        let mut acc = StreamAccumulator::default();
        assert!(
            !acc.on_event(r#"{"model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}"#)
                .unwrap()
        );
        let err = acc
            .on_event(r#"{"error":{"message":"overloaded","type":"server_error"}}"#)
            .unwrap_err();
        assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
        assert!(acc.on_event(" [DONE] ").unwrap());
    }
}
