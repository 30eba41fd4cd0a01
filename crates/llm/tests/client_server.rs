//! The client against the scripted server, over real loopback sockets.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use processops_llm::scripted::{Fault, ScriptedConfig, ScriptedServer};
use processops_llm::{
    CallContext, ChatMessage, ChatModel, ChatRequest, LlmError, OpenAiCompatible, OpenAiConfig,
    Usage,
};

const KEY: &str = "sk-test-DO-NOT-LEAK-4f9a";

async fn server() -> ScriptedServer {
    ScriptedServer::start(ScriptedConfig::default())
        .await
        .unwrap()
}

/// Fast backoff so retry tests do not sleep for long.
fn config(server: &ScriptedServer) -> OpenAiConfig {
    OpenAiConfig {
        base_url: server.base_url(),
        api_key: Some(KEY.to_owned()),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_retries: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_secs(5),
    }
}

fn client(server: &ScriptedServer) -> OpenAiCompatible {
    OpenAiCompatible::new(config(server)).unwrap()
}

fn request(stream: bool) -> ChatRequest {
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

async fn chat(
    client: &OpenAiCompatible,
    stream: bool,
) -> Result<processops_llm::ChatResponse, LlmError> {
    client.chat(request(stream), CallContext::default()).await
}

fn assert_no_key(err: &LlmError) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.contains(KEY), "key leaked in Display: {display}");
    assert!(!debug.contains(KEY), "key leaked in Debug: {debug}");
    assert!(!debug.contains("Bearer"), "auth header leaked: {debug}");
}

#[tokio::test]
async fn json_and_sse_give_the_same_answer() {
    let server = server().await;
    let client = client(&server);
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
    assert_eq!(plain.usage.prompt_tokens, 6 + 15);
    assert_eq!(
        plain.usage.completion_tokens,
        u32::try_from(plain.text.split_whitespace().count()).unwrap()
    );
    assert_eq!(plain.model, "scripted-1");
    assert_eq!(streamed.model, "scripted-1");
    assert_eq!(plain.finish_reason.as_deref(), Some("stop"));
    assert_eq!(streamed.finish_reason.as_deref(), Some("stop"));
    assert_eq!((plain.attempts, streamed.attempts), (1, 1));
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn max_tokens_and_json_mode_round_trip() {
    let server = server().await;
    let client = client(&server);
    for stream in [false, true] {
        let mut req = request(stream);
        req.max_tokens = Some(4);
        let resp = client.chat(req, CallContext::default()).await.unwrap();
        assert_eq!(resp.text, "Draft (scripted model):\nRegarding:");
        assert_eq!(resp.usage.completion_tokens, 4);
        assert_eq!(resp.finish_reason.as_deref(), Some("length"));

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
async fn custom_responder_and_reply_fault() {
    let server = ScriptedServer::start(ScriptedConfig::with_responder(|req| {
        format!("{} messages", req.messages.len())
    }))
    .await
    .unwrap();
    let client = client(&server);
    assert_eq!(chat(&client, false).await.unwrap().text, "2 messages");
    server.push_fault(Fault::Reply("fixed words here".to_owned()));
    let resp = chat(&client, true).await.unwrap();
    assert_eq!(resp.text, "fixed words here");
    assert_eq!(resp.usage.completion_tokens, 3);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let server = server().await;
    let client = client(&server);
    server.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(1),
    });
    let started = Instant::now();
    let resp = chat(&client, false).await.unwrap();
    assert_eq!(resp.attempts, 2);
    // Backoff alone would be at most a few ms; only Retry-After explains this.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert!(resp.latency >= Duration::from_millis(950));
}

#[tokio::test]
async fn retry_after_is_capped_by_backoff_max() {
    let server = server().await;
    let client = OpenAiCompatible::new(OpenAiConfig {
        backoff_max: Duration::from_millis(50),
        ..config(&server)
    })
    .unwrap();
    server.push_fault(Fault::Status {
        status: 503,
        retry_after: Some(3600),
    });
    let resp = chat(&client, true).await.unwrap();
    assert_eq!(resp.attempts, 2);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = server().await;
    let client = client(&server);
    server.push_fault(Fault::Status {
        status: 503,
        retry_after: None,
    });
    assert_eq!(chat(&client, false).await.unwrap().attempts, 2);

    server.push_fault(Fault::Status {
        status: 500,
        retry_after: None,
    });
    server.push_fault(Fault::Status {
        status: 500,
        retry_after: None,
    });
    assert_eq!(chat(&client, true).await.unwrap().attempts, 3);
    assert_eq!(server.requests(), 5);
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = server().await;
    let client = client(&server);
    server.push_fault(Fault::Status {
        status: 400,
        retry_after: None,
    });
    let err = chat(&client, false).await.unwrap_err();
    match &err {
        LlmError::Status { status, message } => {
            assert_eq!(*status, 400);
            assert!(message.contains("scripted fault"), "{message}");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(err.status(), Some(400));
    assert_eq!(server.requests(), 1);
    assert_no_key(&err);
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let server = server().await;
    let client = client(&server);
    // Warm a pooled connection first, so the drop hits a reused one too.
    chat(&client, false).await.unwrap();
    server.push_fault(Fault::DropConnection);
    let resp = chat(&client, false).await.unwrap();
    assert_eq!(resp.attempts, 2);
    assert!(resp.text.starts_with("Draft (scripted model):"));
}

#[tokio::test]
async fn dropped_connection_without_retries_is_a_transport_error() {
    let server = server().await;
    let client = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 0,
        ..config(&server)
    })
    .unwrap();
    server.push_fault(Fault::DropConnection);
    let err = chat(&client, false).await.unwrap_err();
    let LlmError::RetriesExhausted { attempts: 1, last } = &err else {
        panic!("expected RetriesExhausted after 1 attempt, got {err:?}");
    };
    assert!(matches!(**last, LlmError::Transport(_)), "{last:?}");
    assert_no_key(&err);
}

#[tokio::test]
async fn malformed_json_is_retried() {
    let server = server().await;
    let client = client(&server);
    for stream in [false, true] {
        server.push_fault(Fault::MalformedJson);
        let resp = chat(&client, stream).await.unwrap();
        assert_eq!(resp.attempts, 2, "stream={stream}");
    }

    let strict = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 0,
        ..config(&server)
    })
    .unwrap();
    server.push_fault(Fault::MalformedJson);
    let err = chat(&strict, false).await.unwrap_err();
    let LlmError::RetriesExhausted { last, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**last, LlmError::Malformed(_)), "{last:?}");
}

#[tokio::test]
async fn stream_cut_mid_way_is_retried() {
    let server = server().await;
    let client = client(&server);
    server.push_fault(Fault::DropConnection);
    let resp = chat(&client, true).await.unwrap();
    assert_eq!(resp.attempts, 2);
    assert_eq!(resp.text, chat(&client, false).await.unwrap().text);

    let strict = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 0,
        ..config(&server)
    })
    .unwrap();
    server.push_fault(Fault::DropConnection);
    let err = chat(&strict, true).await.unwrap_err();
    let LlmError::RetriesExhausted { last, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**last, LlmError::StreamCut(_)), "{last:?}");
    assert!(last.is_retryable());
}

#[tokio::test]
async fn slow_answer_times_out_then_retry_succeeds() {
    let server = server().await;
    let quick = OpenAiConfig {
        request_timeout: Duration::from_millis(300),
        ..config(&server)
    };
    let client = OpenAiCompatible::new(quick.clone()).unwrap();
    for stream in [false, true] {
        server.push_fault(Fault::Delay(Duration::from_secs(2)));
        let resp = chat(&client, stream).await.unwrap();
        assert_eq!(resp.attempts, 2);
    }

    let once = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 0,
        ..quick
    })
    .unwrap();
    server.push_fault(Fault::Delay(Duration::from_secs(2)));
    let err = chat(&once, false).await.unwrap_err();
    let LlmError::RetriesExhausted { attempts: 1, last } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(**last, LlmError::Timeout { limit } if limit == Duration::from_millis(300)),
        "{last:?}"
    );
}

#[tokio::test]
async fn retries_exhausted_reports_attempts() {
    let server = server().await;
    let client = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 2,
        ..config(&server)
    })
    .unwrap();
    for _ in 0..3 {
        server.push_fault(Fault::Status {
            status: 502,
            retry_after: None,
        });
    }
    let err = chat(&client, false).await.unwrap_err();
    match &err {
        LlmError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(matches!(**last, LlmError::Status { status: 502, .. }));
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(err.status(), Some(502));
    assert_eq!(server.requests(), 3);
    assert!(err.to_string().contains("3 attempt(s)"));
    assert_no_key(&err);
}

#[tokio::test]
async fn connect_errors_are_retried_and_reported() {
    // Bind then drop to get a port with (very likely) nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = OpenAiCompatible::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: Some(KEY.to_owned()),
        max_retries: 1,
        backoff_base: Duration::from_millis(1),
        ..OpenAiConfig::default()
    })
    .unwrap();
    let err = chat(&client, false).await.unwrap_err();
    let LlmError::RetriesExhausted { attempts: 2, last } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**last, LlmError::Connect(_)), "{last:?}");
    assert!(err.to_string().contains("base_url"));
    assert_no_key(&err);
}

#[tokio::test]
async fn step_keys_are_counted_including_retries() {
    let server = server().await;
    let client = client(&server);
    server.push_fault(Fault::Status {
        status: 500,
        retry_after: None,
    });
    for key in ["triage", "triage", "draft"] {
        client
            .chat(request(false), CallContext::step(key))
            .await
            .unwrap();
    }
    client
        .chat(request(true), CallContext::default())
        .await
        .unwrap();
    assert_eq!(server.calls_for_step("triage"), 3);
    assert_eq!(server.calls_for_step("draft"), 1);
    assert_eq!(server.calls_for_step("unknown"), 0);
    assert_eq!(server.step_counts().len(), 2);
    assert_eq!(server.requests(), 5);

    let err = client
        .chat(request(false), CallContext::step("bad\nkey"))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::InvalidRequest(_)));
}

#[tokio::test]
async fn api_key_never_appears_in_errors() {
    let server = server().await;
    let client = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 1,
        request_timeout: Duration::from_millis(200),
        ..config(&server)
    })
    .unwrap();
    let faults = [
        Fault::Status {
            status: 401,
            retry_after: None,
        },
        Fault::Status {
            status: 404,
            retry_after: None,
        },
        Fault::Delay(Duration::from_secs(1)),
        Fault::DropConnection,
        Fault::MalformedJson,
    ];
    let mut errors = Vec::new();
    for fault in faults {
        for stream in [false, true] {
            server.push_fault(fault.clone());
            server.push_fault(fault.clone());
            if let Err(e) = chat(&client, stream).await {
                errors.push(e);
            }
        }
    }
    assert!(errors.len() >= 8, "{errors:?}");
    for err in &errors {
        assert_no_key(err);
    }
    assert!(!format!("{client:?}").contains(KEY));
}

#[tokio::test]
async fn many_concurrent_calls_share_the_pool() {
    let server = server().await;
    let client = Arc::new(client(&server));
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let client = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let req = ChatRequest::new("m", vec![ChatMessage::user(format!("Call number {i}"))]);
            let req = ChatRequest {
                stream: i % 2 == 0,
                ..req
            };
            client.chat(req, CallContext::step("bulk")).await
        }));
    }
    for task in tasks {
        let resp = task.await.unwrap().unwrap();
        assert_eq!(resp.attempts, 1);
        assert_ne!(resp.usage, Usage::default());
    }
    assert_eq!(server.calls_for_step("bulk"), 200);
}

#[tokio::test]
async fn server_rejects_malformed_requests_and_lists_models() {
    let server = server().await;
    let http = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.base_url());
    for body in [
        "{not json",
        r#"{"model":"m","messages":[]}"#,
        r#"{"model":"","messages":[{"role":"user","content":"x"}]}"#,
    ] {
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let value: serde_json::Value = resp.json().await.unwrap();
        assert!(value["error"]["message"].is_string());
        assert_eq!(value["error"]["type"], "invalid_request_error");
    }

    let resp = http
        .post(&url)
        .body(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // No usage chunk unless asked for with stream_options.
    assert!(!text.contains("\"usage\":{"), "{text}");

    let models: serde_json::Value = http
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "scripted");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let server = server().await;
    let client = OpenAiCompatible::new(OpenAiConfig {
        max_retries: 0,
        ..config(&server)
    })
    .unwrap();
    chat(&client, false).await.unwrap();
    server.shutdown().await;
    let err = chat(&client, false).await.unwrap_err();
    assert!(err.to_string().contains("attempt"), "{err}");
}
