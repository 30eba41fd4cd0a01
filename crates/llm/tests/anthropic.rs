//! The Anthropic Messages client against the scripted server (and, for the
//! wire details, raw HTTP), over real loopback sockets. The fault paths both
//! protocols share are in `faults.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{KEY, Knobs, Protocol, assert_no_key, chat, client, server, server_with};
use processops_llm::scripted::{Fault, ScriptedConfig};
use processops_llm::{
    Anthropic, AnthropicConfig, CallContext, ChatMessage, ChatModel, ChatRequest, LlmError, Role,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn anthropic(server: &processops_llm::scripted::ScriptedServer) -> common::Client {
    client(server, Protocol::Anthropic, Knobs::default())
}

#[tokio::test]
async fn json_and_sse_give_the_same_answer() {
    let server = server().await;
    let client = anthropic(&server);
    let plain = chat(&client, false).await.unwrap();
    let streamed = chat(&client, true).await.unwrap();

    assert!(
        plain.text.starts_with("Draft (scripted model):"),
        "{}",
        plain.text
    );
    assert!(plain.text.contains("Late delivery of order 7731"));
    assert_eq!(plain.text, streamed.text);
    assert_eq!(plain.usage, streamed.usage);
    // System prompt (6 words) and user message (15) both count.
    assert_eq!(plain.usage.prompt_tokens, 6 + 15);
    assert_eq!(
        plain.usage.completion_tokens,
        u32::try_from(plain.text.split_whitespace().count()).unwrap()
    );
    assert_eq!(
        (plain.model.as_str(), streamed.model.as_str()),
        ("scripted-1", "scripted-1")
    );
    assert_eq!(plain.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(streamed.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!((plain.attempts, streamed.attempts), (1, 1));
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn system_prompt_and_default_max_tokens_reach_the_server() {
    // The responder sees what the server parsed.
    let server = server_with(ScriptedConfig::with_responder(|req| {
        let roles: Vec<&str> = req
            .messages
            .iter()
            .map(|m| match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            })
            .collect();
        format!(
            "{} max={:?} first={}",
            roles.join(","),
            req.max_tokens,
            req.messages[0].content
        )
    }))
    .await;
    let client = anthropic(&server);
    for stream in [false, true] {
        let req = ChatRequest {
            stream,
            ..ChatRequest::new(
                "m",
                vec![
                    ChatMessage::system("Be brief."),
                    ChatMessage::user("Hi"),
                    ChatMessage::assistant("Hello"),
                    ChatMessage::user("Again"),
                ],
            )
        };
        let resp = client.chat(req, CallContext::default()).await.unwrap();
        assert_eq!(
            resp.text, "system,user,assistant,user max=Some(1024) first=Be brief.",
            "stream={stream}"
        );
    }
}

#[tokio::test]
async fn max_tokens_cuts_with_max_tokens_stop_reason() {
    let server = server().await;
    let client = anthropic(&server);
    for stream in [false, true] {
        let mut req = common::request(stream);
        req.max_tokens = Some(4);
        let resp = client.chat(req, CallContext::default()).await.unwrap();
        assert_eq!(resp.text, "Draft (scripted model):\nRegarding:");
        assert_eq!(resp.usage.completion_tokens, 4);
        assert_eq!(resp.finish_reason.as_deref(), Some("max_tokens"));
    }
}

#[tokio::test]
async fn json_mode_round_trips_through_the_system_prompt() {
    let server = server().await;
    let client = anthropic(&server);
    for stream in [false, true] {
        let req = ChatRequest {
            json_mode: true,
            stream,
            ..ChatRequest::new(
                "m",
                vec![
                    ChatMessage::system("Classify. keys: category, confidence"),
                    ChatMessage::user("Refund request"),
                ],
            )
        };
        let resp = client.chat(req, CallContext::default()).await.unwrap();
        let value: serde_json::Value = serde_json::from_str(&resp.text).unwrap();
        assert_eq!(value["confidence"], 0.9);
        assert!(value["category"].is_string());
    }
}

#[tokio::test]
async fn one_server_speaks_both_protocols() {
    let server = server().await;
    let openai = client(&server, Protocol::OpenAi, Knobs::default());
    let claude = anthropic(&server);
    let a = chat(&openai, false).await.unwrap();
    let b = chat(&claude, true).await.unwrap();
    assert_eq!(a.text, b.text);
    assert_eq!(a.finish_reason.as_deref(), Some("stop"));
    assert_eq!(b.finish_reason.as_deref(), Some("end_turn"));
    // Faults are shared: the next request of either protocol gets it.
    server.push_fault(Fault::Reply("fixed words here".to_owned()));
    assert_eq!(chat(&claude, false).await.unwrap().text, "fixed words here");
    assert_eq!(server.requests(), 3);
}

/// Raw HTTP to `/v1/messages`, to check the wire itself.
async fn post(
    server: &processops_llm::scripted::ScriptedServer,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/messages", server.root_url()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

const GOOD: &[(&str, &str)] = &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")];

#[tokio::test]
async fn sse_framing_follows_the_messages_protocol() {
    let server = server().await;
    let resp = post(
        &server,
        GOOD,
        r#"{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Hello there friend"}]}"#,
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    for expected in [
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {text}");
    }
    // Every event line is followed by a data line whose `type` repeats it.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("event: ") {
            let data = lines[i + 1].strip_prefix("data: ").unwrap();
            let value: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(value["type"], name, "{data}");
        }
    }
    assert!(
        text.contains(r#""delta":{"type":"text_delta","text":"#),
        "{text}"
    );
    assert!(text.contains(r#""stop_reason":"end_turn""#), "{text}");
}

#[tokio::test]
async fn server_rejects_what_anthropic_rejects() {
    let server = server().await;
    let ok = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    // (headers, body, expected status, expected error type)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, u16, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[("anthropic-version", "2023-06-01")],
            ok,
            401,
            "authentication_error",
        ),
        (
            &[
                ("x-api-key", "sk-wrong"),
                ("anthropic-version", "2023-06-01"),
            ],
            ok,
            401,
            "authentication_error",
        ),
        (&[("x-api-key", KEY)], ok, 400, "invalid_request_error"),
        (GOOD, "{not json", 400, "invalid_request_error"),
        (
            GOOD,
            r#"{"model":"m","messages":[{"role":"user","content":"no max_tokens"}]}"#,
            400,
            "invalid_request_error",
        ),
        (
            GOOD,
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"},{"role":"user","content":"y"}]}"#,
            400,
            "invalid_request_error",
        ),
        (
            GOOD,
            r#"{"model":"m","max_tokens":5,"messages":[]}"#,
            400,
            "invalid_request_error",
        ),
    ];
    for (headers, body, status, kind) in cases {
        let resp = post(&server, headers, body).await;
        assert_eq!(resp.status().as_u16(), *status, "{body} {headers:?}");
        let value: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(value["type"], "error", "{value}");
        assert_eq!(value["error"]["type"], *kind, "{value}");
        assert!(
            !value.to_string().contains("sk-wrong"),
            "the key is echoed: {value}"
        );
    }

    // Faults use Anthropic's error shape and Retry-After.
    server.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(7),
    });
    let resp = post(&server, GOOD, ok).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let value: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(value["error"]["type"], "rate_limit_error");
    server.push_fault(Fault::StreamError);
    let resp = post(&server, GOOD, ok).await;
    assert_eq!(resp.status().as_u16(), 529);
    let value: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(value["error"]["type"], "overloaded_error");
}

/// Reads one HTTP request (headers, then `content-length` bytes of body), so
/// the reply does not race the client's upload.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before sending its request");
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if data.len() >= end + 4 + length {
            return;
        }
    }
}

#[tokio::test]
async fn a_stream_closed_without_message_stop_is_cut() {
    // A server that ends the stream cleanly (no reset) but early.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let mut accepted = 0;
        while accepted < 2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            accepted += 1;
            read_request(&mut socket).await;
            let body = concat!(
                "event: message_start\n",
                r#"data: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"x","usage":{"input_tokens":1,"output_tokens":1}}}"#,
                "\n\nevent: content_block_delta\n",
                r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"half"}}"#,
                "\n\n"
            );
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(body.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    let client = Anthropic::new(AnthropicConfig {
        base_url: format!("http://{addr}"),
        api_key: Some(KEY.to_owned()),
        max_retries: 1,
        backoff_base: Duration::from_millis(1),
        ..AnthropicConfig::default()
    })
    .unwrap();
    let err = chat(&client, true).await.unwrap_err();
    let LlmError::RetriesExhausted { attempts: 2, last } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**last, LlmError::StreamCut(_)), "{last:?}");
    assert!(last.to_string().contains("message_stop"), "{last}");
    assert_no_key(&err);
    served.await.unwrap();
}

#[tokio::test]
async fn connect_errors_are_retried_and_reported() {
    // Bind then drop to get a port with (very likely) nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Anthropic::new(AnthropicConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: Some(KEY.to_owned()),
        max_retries: 1,
        backoff_base: Duration::from_millis(1),
        ..AnthropicConfig::default()
    })
    .unwrap();
    let err = chat(&client, false).await.unwrap_err();
    let LlmError::RetriesExhausted { attempts: 2, last } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**last, LlmError::Connect(_)), "{last:?}");
    assert!(err.to_string().contains("base_url"));
    assert!(err.is_provider_failure());
    assert_no_key(&err);
}

#[tokio::test]
async fn many_concurrent_calls_share_the_pool() {
    let server = server().await;
    let client = std::sync::Arc::new(anthropic(&server));
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let client = std::sync::Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let req = ChatRequest {
                stream: i % 2 == 0,
                ..ChatRequest::new("m", vec![ChatMessage::user(format!("Call number {i}"))])
            };
            client.chat(req, CallContext::step("bulk")).await
        }));
    }
    for task in tasks {
        let resp = task.await.unwrap().unwrap();
        assert_eq!(resp.attempts, 1);
        assert!(resp.usage.completion_tokens > 0);
    }
    assert_eq!(server.calls_for_step("bulk"), 100);
}
