//! OpenAI chat-completions wire format (and, in [`anthropic`], the Anthropic
//! Messages format), shared by the clients and the scripted server so both
//! sides agree by construction.
//!
//! Response types are lenient (`#[serde(default)]`): real servers omit or
//! null fields freely, and a missing field must not fail a call.

use serde::{Deserialize, Serialize};

use crate::ChatMessage;

pub mod anthropic;

/// Body of `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
}

impl WireChatRequest {
    /// Whether the caller asked for JSON (`json_object`, or `json_schema`).
    pub fn json_mode(&self) -> bool {
        self.response_format
            .as_ref()
            .is_some_and(|f| f.kind == "json_object" || f.kind == "json_schema")
    }

    /// The schema of a `json_schema` response format.
    pub fn json_schema(&self) -> Option<&serde_json::Value> {
        self.response_format
            .as_ref()
            .and_then(|f| f.json_schema.as_ref())
            .map(|s| &s.schema)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchemaFormat>,
}

/// The `json_schema` member of a structured-output response format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    pub schema: serde_json::Value,
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// Non-streaming response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireChatResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<WireChoice>,
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireChoice {
    pub index: u32,
    pub message: WireMessage,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireMessage {
    pub role: String,
    pub content: Option<String>,
}

/// One `data:` event of a streaming response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<WireChunkChoice>,
    pub usage: Option<WireUsage>,
    /// Some servers report failures inside the stream instead of by status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WireErrorDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireChunkChoice {
    pub index: u32,
    pub delta: WireDelta,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// OpenAI-style error body: `{"error": {"message": .., "type": ..}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireError {
    pub error: WireErrorDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
}
