//! Helpers shared by the integration tests that run both protocols against
//! the scripted server over real loopback sockets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{
    Anthropic, AnthropicConfig, CallContext, ChatMessage, ChatModel, ChatRequest, ChatResponse,
    LlmError, OpenAiCompatible, OpenAiConfig,
};

/// The API key every test client sends; it must never show up in an error
/// or a `Debug` output.
pub const KEY: &str = "sk-test-DO-NOT-LEAK-4f9a";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
}

pub const PROTOCOLS: [Protocol; 2] = [Protocol::OpenAi, Protocol::Anthropic];

/// Client settings a test varies; fast backoff by default so retry tests do
/// not sleep for long.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    pub max_retries: u32,
    pub request_timeout: Duration,
    pub backoff_max: Duration,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            max_retries: 3,
            request_timeout: Duration::from_secs(10),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Either client, so one test body covers both protocols.
pub enum Client {
    OpenAi(OpenAiCompatible),
    Anthropic(Anthropic),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OpenAi(c) => c.fmt(f),
            Self::Anthropic(c) => c.fmt(f),
        }
    }
}

impl ChatModel for Client {
    fn chat<'a>(
        &'a self,
        req: ChatRequest,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        match self {
            Self::OpenAi(c) => c.chat(req, ctx),
            Self::Anthropic(c) => c.chat(req, ctx),
        }
    }
}

/// A scripted server that insists on [`KEY`], so every successful call also
/// proves the client authenticates the protocol's way.
pub async fn server() -> ScriptedServer {
    server_with(ScriptedConfig::default()).await
}

pub async fn server_with(config: ScriptedConfig) -> ScriptedServer {
    ScriptedServer::start(ScriptedConfig {
        api_key: Some(KEY.to_owned()),
        ..config
    })
    .await
    .unwrap()
}

pub fn client(server: &ScriptedServer, protocol: Protocol, knobs: Knobs) -> Client {
    client_with_key(server, protocol, knobs, KEY)
}

pub fn client_with_key(
    server: &ScriptedServer,
    protocol: Protocol,
    knobs: Knobs,
    key: &str,
) -> Client {
    match protocol {
        Protocol::OpenAi => Client::OpenAi(
            OpenAiCompatible::new(OpenAiConfig {
                base_url: server.base_url(),
                api_key: Some(key.to_owned()),
                connect_timeout: Duration::from_secs(2),
                request_timeout: knobs.request_timeout,
                max_retries: knobs.max_retries,
                backoff_base: Duration::from_millis(5),
                backoff_max: knobs.backoff_max,
            })
            .unwrap(),
        ),
        Protocol::Anthropic => Client::Anthropic(
            Anthropic::new(AnthropicConfig {
                base_url: server.root_url(),
                api_key: Some(key.to_owned()),
                connect_timeout: Duration::from_secs(2),
                request_timeout: knobs.request_timeout,
                max_retries: knobs.max_retries,
                backoff_base: Duration::from_millis(5),
                backoff_max: knobs.backoff_max,
                ..AnthropicConfig::default()
            })
            .unwrap(),
        ),
    }
}

pub fn request(stream: bool) -> ChatRequest {
    ChatRequest {
        stream,
        ..ChatRequest::new(
            "scripted-1",
            vec![
                ChatMessage::system("You write polite replies to customers."),
                ChatMessage::user(
                    "Late delivery of order 7731\nThe parcel was due on Monday.\nPlease advise on compensation.",
                ),
            ],
        )
    }
}

pub async fn chat(client: &impl ChatModel, stream: bool) -> Result<ChatResponse, LlmError> {
    client.chat(request(stream), CallContext::default()).await
}

/// Neither the Display nor the Debug form of `err` carries the key or an
/// auth header.
pub fn assert_no_key(err: &LlmError) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.contains(KEY), "key leaked in Display: {display}");
    assert!(!debug.contains(KEY), "key leaked in Debug: {debug}");
    assert!(!debug.contains("Bearer"), "auth header leaked: {debug}");
}

/// The error inside `RetriesExhausted`, or the error itself.
pub fn last(err: &LlmError) -> &LlmError {
    match err {
        LlmError::RetriesExhausted { last, .. } => last,
        other => other,
    }
}
