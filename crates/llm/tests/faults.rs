//! Every fault of the scripted server, for both protocols (OpenAI chat
//! completions and Anthropic Messages) and both modes (JSON and SSE), over
//! real loopback sockets; then the circuit breaker in front of each client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Knobs, PROTOCOLS, Protocol, assert_no_key, chat, client, client_with_key, last, server,
    server_with,
};
use processops_llm::breaker::{CircuitState, Clock};
use processops_llm::scripted::{Fault, ScriptedConfig};
use processops_llm::{
    Breaker, BreakerConfig, CallContext, ChatMessage, ChatModel, ChatRequest, LlmError,
};

const MODES: [bool; 2] = [false, true];

fn status(status: u16, retry_after: Option<u64>) -> Fault {
    Fault::Status {
        status,
        retry_after,
    }
}

fn once() -> Knobs {
    Knobs {
        max_retries: 0,
        ..Knobs::default()
    }
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let server = server().await;
            // Backoff alone is at most 5 ms here, so only Retry-After can
            // explain the wait (a lower bound: a sleep never ends early).
            let client = client(&server, protocol, Knobs::default());
            server.push_fault(status(429, Some(1)));
            let resp = chat(&client, stream).await.unwrap();
            let case = format!("{protocol:?} stream={stream}");
            assert_eq!(resp.attempts, 2, "{case}");
            assert_eq!(server.requests(), 2, "{case}");
            assert!(
                resp.latency >= Duration::from_secs(1),
                "{case}: {:?}",
                resp.latency
            );
        }
    }
}

#[tokio::test]
async fn retry_after_is_capped_by_backoff_max() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let server = server().await;
            let client = client(
                &server,
                protocol,
                Knobs {
                    backoff_max: Duration::from_millis(20),
                    ..Knobs::default()
                },
            );
            // An hour's Retry-After would hang the test if it were not capped.
            server.push_fault(status(503, Some(3600)));
            let resp = chat(&client, stream).await.unwrap();
            assert_eq!(resp.attempts, 2, "{protocol:?} stream={stream}");
        }
    }
}

#[tokio::test]
async fn server_errors_are_retried_and_counted() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            for code in [500, 503, 529] {
                server.push_fault(status(code, None));
                let resp = chat(&client, stream).await.unwrap();
                assert_eq!(resp.attempts, 2, "{case} HTTP {code}");
            }
            server.push_fault(status(500, None));
            server.push_fault(status(503, None));
            let resp = chat(&client, stream).await.unwrap();
            assert_eq!(resp.attempts, 3, "{case}");
            assert_eq!(server.requests(), 3 * 2 + 3, "{case}");
        }
    }
}

#[tokio::test]
async fn retries_exhausted_reports_attempts() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(
                &server,
                protocol,
                Knobs {
                    max_retries: 2,
                    ..Knobs::default()
                },
            );
            for _ in 0..3 {
                server.push_fault(status(502, None));
            }
            let err = chat(&client, stream).await.unwrap_err();
            let LlmError::RetriesExhausted { attempts, last } = &err else {
                panic!("{case}: {err:?}");
            };
            assert_eq!(*attempts, 3, "{case}");
            assert!(
                matches!(**last, LlmError::Status { status: 502, .. }),
                "{case}"
            );
            assert_eq!(server.requests(), 3, "{case}");
            assert!(err.to_string().contains("3 attempt(s)"), "{case}");
            assert_no_key(&err);
        }
    }
}

#[tokio::test]
async fn request_errors_are_not_retried() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            server.push_fault(status(400, None));
            let err = chat(&client, stream).await.unwrap_err();
            let LlmError::Status { status, message } = &err else {
                panic!("{case}: {err:?}");
            };
            assert_eq!(*status, 400, "{case}");
            assert!(message.contains("scripted fault"), "{case}: {message}");
            assert!(!err.is_retryable());
            assert_eq!(server.requests(), 1, "{case}");
            assert_no_key(&err);
        }
    }
}

#[tokio::test]
async fn slow_answers_time_out_then_retry_succeeds() {
    let limit = Duration::from_millis(300);
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let quick = Knobs {
                request_timeout: limit,
                ..Knobs::default()
            };
            let client = client(&server, protocol, quick);
            // The server sleeps far past the limit, so only the client's
            // timeout can end the first try.
            server.push_fault(Fault::Delay(Duration::from_secs(5)));
            let resp = chat(&client, stream).await.unwrap();
            assert_eq!(resp.attempts, 2, "{case}");

            let strict = client_with_key(
                &server,
                protocol,
                Knobs {
                    max_retries: 0,
                    ..quick
                },
                common::KEY,
            );
            server.push_fault(Fault::Delay(Duration::from_secs(5)));
            let err = chat(&strict, stream).await.unwrap_err();
            let LlmError::RetriesExhausted { attempts: 1, last } = &err else {
                panic!("{case}: {err:?}");
            };
            assert!(
                matches!(**last, LlmError::Timeout { limit: l } if l == limit),
                "{case}: {last:?}"
            );
            assert!(err.is_provider_failure());
        }
    }
}

#[tokio::test]
async fn a_stream_slower_than_the_limit_times_out_mid_body() {
    for protocol in PROTOCOLS {
        // Every event waits 1 s, far past the 300 ms limit of one try.
        let server = server_with(ScriptedConfig {
            chunk_delay: Duration::from_secs(1),
            ..ScriptedConfig::default()
        })
        .await;
        let client = client(
            &server,
            protocol,
            Knobs {
                max_retries: 0,
                request_timeout: Duration::from_millis(300),
                ..Knobs::default()
            },
        );
        let err = chat(&client, true).await.unwrap_err();
        assert!(
            matches!(last(&err), LlmError::Timeout { .. }),
            "{protocol:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            // Warm a pooled connection, so the drop hits a reused one too.
            let whole = chat(&client, stream).await.unwrap();
            server.push_fault(Fault::DropConnection);
            let resp = chat(&client, stream).await.unwrap();
            assert_eq!(resp.attempts, 2, "{case}");
            assert_eq!(resp.text, whole.text, "{case}");

            let strict = client_with_key(&server, protocol, once(), common::KEY);
            server.push_fault(Fault::DropConnection);
            let err = chat(&strict, stream).await.unwrap_err();
            let LlmError::RetriesExhausted { attempts: 1, last } = &err else {
                panic!("{case}: {err:?}");
            };
            if stream {
                // Part of the stream arrived, then the socket closed.
                assert!(matches!(**last, LlmError::StreamCut(_)), "{case}: {last:?}");
            } else {
                assert!(matches!(**last, LlmError::Transport(_)), "{case}: {last:?}");
            }
            assert!(last.is_retryable());
            assert_no_key(&err);
        }
    }
}

#[tokio::test]
async fn malformed_json_is_malformed_and_retried() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            server.push_fault(Fault::MalformedJson);
            assert_eq!(chat(&client, stream).await.unwrap().attempts, 2, "{case}");

            let strict = client_with_key(&server, protocol, once(), common::KEY);
            server.push_fault(Fault::MalformedJson);
            let err = chat(&strict, stream).await.unwrap_err();
            assert!(
                matches!(last(&err), LlmError::Malformed(_)),
                "{case}: {err:?}"
            );
            assert_no_key(&err);
        }
    }
}

#[tokio::test]
async fn errors_inside_the_stream_are_retried() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            server.push_fault(Fault::StreamError);
            assert_eq!(chat(&client, stream).await.unwrap().attempts, 2, "{case}");

            let strict = client_with_key(&server, protocol, once(), common::KEY);
            server.push_fault(Fault::StreamError);
            let err = chat(&strict, stream).await.unwrap_err();
            let inner = last(&err);
            match (protocol, stream) {
                // Anthropic's `overloaded_error`, in the stream or as a status.
                (Protocol::Anthropic, _) => assert_eq!(inner.status(), Some(529), "{case}"),
                (Protocol::OpenAi, true) => {
                    assert!(matches!(inner, LlmError::Malformed(_)), "{case}: {inner:?}");
                }
                (Protocol::OpenAi, false) => assert_eq!(inner.status(), Some(503), "{case}"),
            }
            assert!(err.is_provider_failure(), "{case}");
        }
    }
}

#[tokio::test]
async fn off_schema_replies_fail_the_output_schema() {
    let schema = serde_json::json!({
        "type": "object",
        "required": ["category", "confidence"],
        "properties": {
            "category": { "enum": ["billing", "technical"] },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 }
        }
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            let req = ChatRequest {
                stream,
                json_mode: true,
                json_schema: Some(schema.clone()),
                ..ChatRequest::new("m", vec![ChatMessage::user("Refund for order 7")])
            };
            // The schema reaches the server (as response_format, or in
            // Anthropic's system prompt) and the reply fits it.
            let good = client
                .chat(req.clone(), CallContext::default())
                .await
                .unwrap();
            let value: serde_json::Value = serde_json::from_str(&good.text).unwrap();
            assert!(validator.is_valid(&value), "{case}: {value}");

            server.push_fault(Fault::OffSchema);
            let bad = client.chat(req, CallContext::default()).await.unwrap();
            let value: serde_json::Value = serde_json::from_str(&bad.text).unwrap();
            assert!(!validator.is_valid(&value), "{case}: {value}");
        }
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_without_retries_or_leaks() {
    let wrong = "sk-wrong-DO-NOT-LEAK-77";
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client_with_key(&server, protocol, Knobs::default(), wrong);
            let err = chat(&client, stream).await.unwrap_err();
            assert_eq!(err.status(), Some(401), "{case}: {err:?}");
            assert_eq!(server.requests(), 1, "{case}");
            assert!(!err.to_string().contains(wrong), "{case}");
            assert!(!format!("{err:?}").contains(wrong), "{case}");
            assert!(!format!("{client:?}").contains(wrong), "{case}");
        }
    }
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug() {
    for protocol in PROTOCOLS {
        let server = server().await;
        let client = client(
            &server,
            protocol,
            Knobs {
                max_retries: 1,
                request_timeout: Duration::from_millis(200),
                ..Knobs::default()
            },
        );
        // (fault, how many tries it takes to fail the call)
        let faults = [
            (status(401, None), 1),
            (status(404, None), 1),
            (status(429, Some(0)), 2),
            (status(529, None), 2),
            (Fault::Delay(Duration::from_secs(2)), 2),
            (Fault::DropConnection, 2),
            (Fault::MalformedJson, 2),
            (Fault::StreamError, 2),
        ];
        let mut errors = Vec::new();
        for (fault, tries) in faults {
            for stream in MODES {
                for _ in 0..tries {
                    server.push_fault(fault.clone());
                }
                errors.push(chat(&client, stream).await.unwrap_err());
            }
        }
        // The breaker's own error too.
        let breaker = Breaker::new(
            "provider",
            client,
            BreakerConfig {
                failure_threshold: 1,
                cooldown: Duration::from_secs(600),
            },
        );
        server.push_fault(status(500, None));
        server.push_fault(status(500, None));
        errors.push(chat(&breaker, false).await.unwrap_err());
        errors.push(chat(&breaker, false).await.unwrap_err());
        assert!(matches!(errors.last(), Some(LlmError::CircuitOpen { .. })));

        assert_eq!(errors.len(), 8 * 2 + 2, "{protocol:?}");
        for err in &errors {
            assert_no_key(err);
        }
        let debug = format!("{breaker:?}");
        assert!(!debug.contains(common::KEY), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}

#[tokio::test]
async fn step_header_is_sent_by_both_clients() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let client = client(&server, protocol, Knobs::default());
            server.push_fault(status(500, None));
            for key in ["triage", "triage", "draft"] {
                let req = common::request(stream);
                client.chat(req, CallContext::step(key)).await.unwrap();
            }
            // Retries carry it too.
            assert_eq!(server.calls_for_step("triage"), 3, "{case}");
            assert_eq!(server.calls_for_step("draft"), 1, "{case}");
            let err = client
                .chat(common::request(stream), CallContext::step("bad\nkey"))
                .await
                .unwrap_err();
            assert!(matches!(err, LlmError::InvalidRequest(_)), "{case}");
        }
    }
}

/// A clock the test moves by hand, so the breaker's cool-down passes
/// without sleeping.
struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Instant::now())))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

const COOLDOWN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn breaker_opens_fails_fast_and_a_probe_closes_it() {
    for protocol in PROTOCOLS {
        for stream in MODES {
            let case = format!("{protocol:?} stream={stream}");
            let server = server().await;
            let clock = ManualClock::new();
            let breaker = Breaker::with_clock(
                "main",
                client(&server, protocol, once()),
                BreakerConfig {
                    failure_threshold: 3,
                    cooldown: COOLDOWN,
                },
                clock.clone(),
            );

            // Two failures, then a success: the count starts over.
            for fault in [status(503, None), Fault::DropConnection] {
                server.push_fault(fault);
                assert!(chat(&breaker, stream).await.is_err(), "{case}");
            }
            chat(&breaker, stream).await.unwrap();
            assert_eq!(breaker.state(), CircuitState::Closed, "{case}");

            // Three unhealthy failures in a row open it.
            for fault in [status(500, None), status(429, None), Fault::MalformedJson] {
                server.push_fault(fault);
                let err = chat(&breaker, stream).await.unwrap_err();
                assert!(err.is_provider_failure(), "{case}: {err:?}");
            }
            assert_eq!(breaker.state(), CircuitState::Open, "{case}");
            assert!(!breaker.healthy(), "{case}");
            let sent = server.requests();

            // Open: fails fast, the server sees nothing.
            clock.advance(COOLDOWN - Duration::from_secs(1));
            for _ in 0..5 {
                let err = chat(&breaker, stream).await.unwrap_err();
                let LlmError::CircuitOpen { provider, retry_in } = &err else {
                    panic!("{case}: {err:?}");
                };
                assert_eq!(provider, "main");
                assert_eq!(*retry_in, Duration::from_secs(1), "{case}");
                assert!(err.to_string().contains("circuit breaker open"));
            }
            assert_eq!(server.requests(), sent, "{case}");

            // Cool-down over: one probe reaches the server and closes it.
            clock.advance(Duration::from_secs(1));
            assert_eq!(breaker.state(), CircuitState::HalfOpen, "{case}");
            assert!(breaker.healthy(), "{case}");
            let resp = chat(&breaker, stream).await.unwrap();
            assert_eq!(resp.attempts, 1);
            assert_eq!(server.requests(), sent + 1, "{case}");
            assert_eq!(breaker.state(), CircuitState::Closed, "{case}");
            assert!(breaker.healthy(), "{case}");
        }
    }
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    for protocol in PROTOCOLS {
        let server = server().await;
        let clock = ManualClock::new();
        let breaker = Breaker::with_clock(
            "main",
            client(
                &server,
                protocol,
                Knobs {
                    max_retries: 0,
                    request_timeout: Duration::from_millis(200),
                    ..Knobs::default()
                },
            ),
            BreakerConfig {
                failure_threshold: 1,
                cooldown: COOLDOWN,
            },
            clock.clone(),
        );
        // A timeout counts.
        server.push_fault(Fault::Delay(Duration::from_secs(5)));
        assert!(chat(&breaker, true).await.is_err());
        assert_eq!(breaker.state(), CircuitState::Open, "{protocol:?}");

        clock.advance(COOLDOWN);
        server.push_fault(status(529, None));
        let err = chat(&breaker, false).await.unwrap_err();
        assert_eq!(last(&err).status(), Some(529), "{protocol:?}");
        assert_eq!(server.requests(), 2, "{protocol:?}");
        // Open again for a whole cool-down, without reaching the server.
        assert_eq!(breaker.state(), CircuitState::Open, "{protocol:?}");
        let err = chat(&breaker, false).await.unwrap_err();
        assert!(
            matches!(err, LlmError::CircuitOpen { retry_in, .. } if retry_in == COOLDOWN),
            "{err:?}"
        );
        assert_eq!(server.requests(), 2, "{protocol:?}");

        clock.advance(COOLDOWN);
        chat(&breaker, false).await.unwrap();
        assert_eq!(breaker.state(), CircuitState::Closed, "{protocol:?}");
        assert_eq!(server.requests(), 3, "{protocol:?}");
    }
}

#[tokio::test]
async fn request_errors_do_not_open_the_breaker() {
    for protocol in PROTOCOLS {
        let server = server().await;
        let breaker = Breaker::new(
            "main",
            client(&server, protocol, once()),
            BreakerConfig {
                failure_threshold: 2,
                cooldown: COOLDOWN,
            },
        );
        for code in [400, 401, 404, 422] {
            server.push_fault(status(code, None));
            let err = chat(&breaker, false).await.unwrap_err();
            assert_eq!(err.status(), Some(code));
        }
        // Requests refused before the network say nothing either.
        for _ in 0..3 {
            let err = breaker
                .chat(common::request(false), CallContext::step("bad\nkey"))
                .await
                .unwrap_err();
            assert!(matches!(err, LlmError::InvalidRequest(_)));
        }
        assert_eq!(breaker.state(), CircuitState::Closed, "{protocol:?}");
        assert!(breaker.healthy());
        assert_eq!(server.requests(), 4, "{protocol:?}");
    }
}

#[tokio::test]
async fn an_abandoned_probe_lets_the_next_call_probe() {
    let server = server().await;
    let clock = ManualClock::new();
    let breaker = Breaker::with_clock(
        "main",
        client(&server, Protocol::Anthropic, once()),
        BreakerConfig {
            failure_threshold: 1,
            cooldown: COOLDOWN,
        },
        clock.clone(),
    );
    server.push_fault(status(500, None));
    assert!(chat(&breaker, false).await.is_err());
    clock.advance(COOLDOWN);

    // The probe hangs on the server; the caller gives up on it.
    server.push_fault(Fault::Delay(Duration::from_secs(5)));
    let abandoned = tokio::time::timeout(Duration::from_millis(100), chat(&breaker, false)).await;
    assert!(abandoned.is_err(), "the probe should still be waiting");
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert!(
        breaker.healthy(),
        "an abandoned probe must not block the breaker"
    );
    chat(&breaker, false).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test]
async fn breakers_hold_shared_models() {
    // `Arc<dyn ChatModel>` is a model too, so the engine can wrap any provider.
    let server = server().await;
    let shared: Arc<dyn ChatModel> = Arc::new(client(&server, Protocol::OpenAi, once()));
    let breaker = Breaker::new("shared", Arc::clone(&shared), BreakerConfig::default());
    assert!(breaker.healthy() && shared.healthy());
    assert_eq!(chat(&breaker, true).await.unwrap().attempts, 1);
}
