//! Model access for ProcessOps.
//!
//! - [`ChatModel`]: the wire-agnostic interface the engine calls.
//! - [`OpenAiCompatible`]: an OpenAI-compatible `/chat/completions` client
//!   (JSON and SSE) with retries, backoff, `Retry-After` and timeouts.
//! - [`Anthropic`]: the same for Anthropic's `/v1/messages`.
//! - [`Breaker`]: a circuit breaker around any [`ChatModel`].
//! - [`scripted::ScriptedServer`]: a real loopback HTTP server speaking both
//!   protocols, for tests, benchmarks and the offline demo.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

mod anthropic;
pub mod breaker;
mod error;
mod openai;
mod retry;
pub mod scripted;
pub mod sse;
mod transport;
pub mod wire;

pub use anthropic::{Anthropic, AnthropicConfig};
pub use breaker::{Breaker, BreakerConfig, CircuitState};
pub use error::LlmError;
pub use openai::{OpenAiCompatible, OpenAiConfig};

/// Header carrying [`CallContext::step_key`], so a receiver can count or
/// deduplicate calls per process step.
pub const STEP_HEADER: &str = "x-processops-step";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Use SSE streaming on the wire; the caller still gets one response.
    pub stream: bool,
    /// Ask for `response_format: {"type": "json_object"}`.
    pub json_mode: bool,
    /// Ask for a reply matching this JSON Schema (`response_format: {"type": "json_schema"}`,
    /// OpenAI's structured outputs); implies JSON mode.
    pub json_schema: Option<serde_json::Value>,
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            ..Self::default()
        }
    }
}

/// Per-call metadata that is not part of the prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// Sent as `X-ProcessOps-Step`.
    pub step_key: Option<String>,
}

impl CallContext {
    pub fn step(key: impl Into<String>) -> Self {
        Self {
            step_key: Some(key.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    pub fn total(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    /// The model the server says answered (falls back to the requested one).
    pub model: String,
    pub usage: Usage,
    /// Why the model stopped, as the provider says it (OpenAI `stop` or
    /// `length`, Anthropic `end_turn` or `max_tokens`).
    pub finish_reason: Option<String>,
    /// Wall time of the whole call, retries and backoff included.
    pub latency: Duration,
    /// Number of HTTP tries, 1 when the first one succeeded.
    pub attempts: u32,
}

/// Turns texts into vectors for semantic search (the built-in MiniLM model, or a test double).
/// Vectors are L2-normalised, so a dot product is the cosine similarity.
pub trait Embedder: Send + Sync {
    /// A stable name of the model and its settings; vectors from different ids never mix.
    fn model_id(&self) -> &str;
    /// Length of every vector.
    fn dimensions(&self) -> usize;
    /// One vector per text, in order. CPU-bound: call it from a blocking thread.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError>;
}

/// Something that answers chat requests. Object safe, so the engine can hold
/// an `Arc<dyn ChatModel>`.
pub trait ChatModel: Send + Sync {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;

    /// Whether a call now is worth making. False while a [`Breaker`] is open,
    /// so a caller with several agents can go straight to the next one; a
    /// call made anyway fails fast with [`LlmError::CircuitOpen`].
    fn healthy(&self) -> bool {
        true
    }

    /// Who serves the model, as OpenTelemetry's `gen_ai.provider.name` (and the older
    /// `gen_ai.system`) names it: `openai`, `anthropic`, `ollama`, … Traces use it.
    fn system(&self) -> &'static str {
        "_OTHER"
    }
}

// Lets wrappers such as `Breaker` hold a shared or boxed model.
impl<M: ChatModel + ?Sized> ChatModel for Arc<M> {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        (**self).chat(req, ctx)
    }

    fn healthy(&self) -> bool {
        (**self).healthy()
    }

    fn system(&self) -> &'static str {
        (**self).system()
    }
}

impl<M: ChatModel + ?Sized> ChatModel for Box<M> {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        (**self).chat(req, ctx)
    }

    fn healthy(&self) -> bool {
        (**self).healthy()
    }

    fn system(&self) -> &'static str {
        (**self).system()
    }
}
