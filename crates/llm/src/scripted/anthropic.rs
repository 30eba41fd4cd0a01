//! `POST /v1/messages`: the Anthropic Messages protocol, JSON and SSE, with
//! the same replies and faults as the OpenAI endpoint.

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{
    ConnHandle, Fault, Frame, Shared, arrive, authorized, compose, event_stream, fault_code,
    first_half, next_fault, responder, with_retry_after, word_pieces,
};
use crate::wire::anthropic::{
    API_KEY_HEADER, BlockDelta, ContentBlock, DeltaUsage, ErrorBody, JSON_INSTRUCTION,
    MessageDeltaBody, MessagesRequest, MessagesResponse, MessagesUsage, StreamEvent,
    VERSION_HEADER, error_type, instruction_schema,
};
use crate::wire::{JsonSchemaFormat, ResponseFormat, WireChatRequest, WireErrorDetail};
use crate::{ChatMessage, Role};

pub(super) async fn messages(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let number = arrive(&shared, &headers);
    let key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    if !authorized(&shared, key) {
        // Never echo what was presented: it may be a real key.
        return error(StatusCode::UNAUTHORIZED, "invalid x-api-key");
    }
    if !headers.contains_key(VERSION_HEADER) {
        return error(
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
        );
    }
    let req: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a valid Messages request: {e}"),
            );
        }
    };
    if req.model.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "model: must not be empty");
    }
    if req.messages.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "messages: at least one message is required",
        );
    }
    if req.messages.iter().any(|m| m.role == Role::System) {
        return error(
            StatusCode::BAD_REQUEST,
            "messages: Unexpected role \"system\"; the Messages API takes the system prompt in the top-level `system` field",
        );
    }
    let chat = as_chat_request(&req);

    let mut reply = None;
    let mut stream_fault = None;
    match next_fault(&shared) {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let status = fault_code(status);
            return with_retry_after(
                error(status, &format!("scripted fault: HTTP {}", status.as_u16())),
                retry_after,
            );
        }
        Some(Fault::StreamError) if !req.stream => {
            return error(overloaded(), "scripted fault: Overloaded");
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Reply(text)) => reply = Some(text),
        Some(Fault::OffSchema) => reply = Some(responder::off_schema_reply(&chat)),
        Some(Fault::DropConnection) if !req.stream => {
            conn.0.kill();
            // Never reaches the client: every write on the socket now fails.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::MalformedJson) if !req.stream => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"id":"msg_broken","type":"message","content":[{"type":"text","text":"#,
            )
                .into_response();
        }
        Some(other) => stream_fault = Some(other),
        None => {}
    }

    let composed = compose(&shared, &chat, reply).await;
    let stop_reason = if composed.truncated {
        "max_tokens"
    } else {
        "end_turn"
    };
    let message =
        |content: Vec<ContentBlock>, stop: Option<&str>, usage: MessagesUsage| MessagesResponse {
            id: format!("msg_scripted_{number}"),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            model: req.model.clone(),
            content,
            stop_reason: stop.map(str::to_owned),
            stop_sequence: None,
            usage,
        };
    let usage = |output_tokens| MessagesUsage {
        input_tokens: composed.prompt_tokens,
        output_tokens,
        ..MessagesUsage::default()
    };

    if !req.stream {
        let body = message(
            vec![ContentBlock::text(composed.text.clone())],
            Some(stop_reason),
            usage(composed.completion_tokens),
        );
        return axum::Json(body).into_response();
    }

    let delta = |piece: &str| StreamEvent::ContentBlockDelta {
        index: 0,
        delta: BlockDelta {
            kind: "text_delta".to_owned(),
            text: Some(piece.to_owned()),
        },
    };
    // Real streams start with one output token already counted.
    let mut events = vec![
        StreamEvent::MessageStart {
            message: message(Vec::new(), None, usage(1)),
        },
        StreamEvent::ContentBlockStart {
            index: 0,
            content_block: ContentBlock::text(""),
        },
        StreamEvent::Ping,
    ];
    let pieces = word_pieces(&composed.text);
    let mut frames: Vec<Frame>;
    match stream_fault {
        Some(Fault::DropConnection) => {
            events.extend(first_half(&pieces).iter().map(|p| delta(p)));
            frames = events.iter().map(frame).collect();
            frames.push(Frame::Cut);
        }
        Some(Fault::MalformedJson) => {
            frames = events.iter().map(frame).collect();
            frames.push(Frame::Data(Bytes::from_static(
                b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"text\":\n\n",
            )));
            frames.push(frame(&StreamEvent::MessageStop));
        }
        Some(Fault::StreamError) => {
            events.extend(first_half(&pieces).iter().map(|p| delta(p)));
            events.push(StreamEvent::Error {
                error: WireErrorDetail {
                    message: "scripted fault: Overloaded".to_owned(),
                    kind: "overloaded_error".to_owned(),
                },
            });
            frames = events.iter().map(frame).collect();
        }
        _ => {
            events.extend(pieces.iter().map(|p| delta(p)));
            events.push(StreamEvent::ContentBlockStop { index: 0 });
            events.push(StreamEvent::MessageDelta {
                delta: MessageDeltaBody {
                    stop_reason: Some(stop_reason.to_owned()),
                    stop_sequence: None,
                },
                usage: Some(DeltaUsage {
                    output_tokens: composed.completion_tokens,
                    input_tokens: None,
                }),
            });
            events.push(StreamEvent::MessageStop);
            frames = events.iter().map(frame).collect();
        }
    }
    event_stream(frames, shared.config.chunk_delay, conn)
}

/// One SSE event with its `event:` name, as Anthropic frames them.
fn frame(event: &StreamEvent) -> Frame {
    let data = serde_json::to_string(event).unwrap_or_default();
    Frame::Data(Bytes::from(format!(
        "event: {}\ndata: {data}\n\n",
        event.name()
    )))
}

fn overloaded() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody::new(error_type(status.as_u16()), message);
    (status, axum::Json(body)).into_response()
}

/// The request as the responder sees it: the system prompt first, and a
/// structured-output instruction turned back into a response format.
fn as_chat_request(req: &MessagesRequest) -> WireChatRequest {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(ChatMessage::system(system.clone()));
    }
    messages.extend(req.messages.iter().map(|m| ChatMessage {
        role: m.role,
        content: m.content.text(),
    }));
    let system = req.system.as_deref().unwrap_or_default();
    let response_format = match instruction_schema(system) {
        Some(schema) => Some(ResponseFormat {
            kind: "json_schema".to_owned(),
            json_schema: Some(JsonSchemaFormat {
                name: "output".to_owned(),
                schema,
                strict: false,
            }),
        }),
        None => system.contains(JSON_INSTRUCTION).then(|| ResponseFormat {
            kind: "json_object".to_owned(),
            json_schema: None,
        }),
    };
    WireChatRequest {
        model: req.model.clone(),
        messages,
        temperature: req.temperature,
        max_tokens: Some(req.max_tokens),
        stream: req.stream,
        stream_options: None,
        response_format,
    }
}
