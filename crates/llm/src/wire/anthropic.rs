//! Anthropic Messages API wire format (`POST /v1/messages`), shared by the
//! [`crate::Anthropic`] client and the scripted server.
//!
//! Only text content is modelled; other block and delta types (tool use,
//! thinking) are accepted and ignored, as Anthropic asks clients to do with
//! types they do not know.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::wire::WireErrorDetail;

/// Value of the `anthropic-version` header this client speaks.
pub const API_VERSION: &str = "2023-06-01";
pub const VERSION_HEADER: &str = "anthropic-version";
pub const API_KEY_HEADER: &str = "x-api-key";

/// What the client appends to the system prompt for JSON mode: Anthropic has
/// no `response_format`, so the model is asked in words (the engine still
/// validates the reply).
pub const JSON_INSTRUCTION: &str =
    "Respond with only a JSON object: no prose before or after it and no Markdown code fences.";

/// Introduces the schema in [`schema_instruction`]; the scripted server
/// looks for it to find the schema again.
const SCHEMA_MARKER: &str = "JSON Schema:\n";

/// What the client appends to the system prompt for structured output.
pub fn schema_instruction(schema: &serde_json::Value) -> String {
    format!(
        "Respond with only a JSON value that conforms to the JSON Schema below: no prose before or after it and no Markdown code fences.\n{SCHEMA_MARKER}{schema}"
    )
}

/// The schema of a [`schema_instruction`] in a system prompt, if any.
pub fn instruction_schema(system: &str) -> Option<serde_json::Value> {
    let at = system.rfind(SCHEMA_MARKER)?;
    let rest = &system[at + SCHEMA_MARKER.len()..];
    // The schema is one JSON value; anything after it is not ours.
    serde_json::Deserializer::from_str(rest)
        .into_iter::<serde_json::Value>()
        .next()?
        .ok()
}

/// Body of `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    /// Required by Anthropic.
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// One turn; Anthropic only allows `user` and `assistant` here (the system
/// prompt is a top-level field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Content,
}

/// A turn's content: a string, or a list of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl Content {
    /// The text of every text block, joined.
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Blocks(blocks) => text_of(blocks),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ContentBlock {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: "text".to_owned(),
            text: Some(text.into()),
        }
    }
}

/// The text of the `text` blocks, in order.
pub fn text_of(blocks: &[ContentBlock]) -> String {
    blocks
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessagesUsage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Prompt tokens written to or read from Anthropic's prompt cache; they
    /// are prompt tokens too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u32>,
}

impl MessagesUsage {
    pub fn prompt_tokens(&self) -> u32 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }
}

/// A non-streaming response, and the skeleton in `message_start`.
///
/// `content` has no default: a body without it is not a Messages response
/// (for instance an OpenAI completion from a misconfigured `base_url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub model: String,
    pub content: Vec<ContentBlock>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: MessagesUsage,
}

/// One SSE event of a streaming response. The event's `type` field repeats
/// its `event:` name, so the `data` alone is enough.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessagesResponse,
    },
    ContentBlockStart {
        #[serde(default)]
        index: u32,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        #[serde(default)]
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        #[serde(default)]
        index: u32,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: WireErrorDetail,
    },
    /// A type added after this client was written.
    #[serde(other)]
    Unknown,
}

impl StreamEvent {
    /// The SSE `event:` name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
            Self::Unknown => "unknown",
        }
    }
}

/// `delta` of a `content_block_delta`; only `text_delta` carries text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockDelta {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageDeltaBody {
    pub stop_reason: Option<String>,
    pub stop_sequence: Option<String>,
}

/// `usage` of a `message_delta`: running totals, not increments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeltaUsage {
    pub output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u32>,
}

/// Error body: `{"type": "error", "error": {"type": .., "message": ..}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub error: WireErrorDetail,
}

impl ErrorBody {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: "error".to_owned(),
            error: WireErrorDetail {
                message: message.into(),
                kind: kind.to_owned(),
            },
        }
    }
}

/// Anthropic's error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The HTTP status Anthropic gives an error type, for errors reported inside
/// a stream.
pub fn error_status(kind: &str) -> u16 {
    match kind {
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        "invalid_request_error" => 400,
        // `api_error` and anything unknown: the server failed.
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn schema_survives_the_system_prompt() {
        let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let system = format!(
            "You classify.\n\n{}\n\nExtra trailing text",
            schema_instruction(&schema)
        );
        assert_eq!(instruction_schema(&system), Some(schema));
        assert_eq!(instruction_schema("no schema here"), None);
        assert_eq!(instruction_schema("JSON Schema:\n{broken"), None);
    }

    #[test]
    fn events_parse_by_type() {
        let cases = [
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
                "content_block_delta",
            ),
            (r#"{"type": "ping"}"#, "ping"),
            (r#"{"type":"message_stop"}"#, "message_stop"),
            (
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
                "message_delta",
            ),
            (
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "error",
            ),
            (r#"{"type":"something_new","x":1}"#, "unknown"),
        ];
        for (data, name) in cases {
            let event: StreamEvent = serde_json::from_str(data).unwrap();
            assert_eq!(event.name(), name, "{data}");
        }
        let round = StreamEvent::MessageStop;
        let text = serde_json::to_string(&round).unwrap();
        assert_eq!(text, r#"{"type":"message_stop"}"#);
    }

    #[test]
    fn content_accepts_strings_and_blocks() {
        let m: Message = serde_json::from_str(r#"{"role":"user","content":"hi"}"#).unwrap();
        assert_eq!(m.content.text(), "hi");
        let m: Message = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(m.content.text(), "ab");
    }

    #[test]
    fn error_types_and_statuses_agree() {
        for status in [400, 401, 403, 404, 413, 429, 500, 529] {
            assert_eq!(error_status(error_type(status)), status);
        }
    }
}
