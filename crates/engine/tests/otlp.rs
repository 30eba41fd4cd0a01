//! Traces reach a real OTLP/HTTP receiver with the expected span tree.
//!
//! A loopback axum server accepts `POST /v1/traces` (protobuf) and decodes it with the
//! protocol's own types. The exporter is the one `processops` installs (`telemetry::layer`),
//! behind a subscriber set for this test's thread only; the runtime is single-threaded so every
//! span of the engine is made on that thread. Models are scripted servers speaking the OpenAI
//! wire protocol over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use processops_core::journal::{Action, Decision, Event, StepMeta};
use processops_engine::telemetry::{self, TelemetryGuard, TelemetrySettings};
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::scripted::{Fault, ScriptedConfig, ScriptedServer};
use processops_llm::{Breaker, BreakerConfig, ChatModel, OpenAiCompatible, OpenAiConfig};
use processops_store::{Durability, Store, TaskFilter, TaskStatus};
use prost::Message as _;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;
use uuid::Uuid;

const BLUEPRINT: &str = r#"
id: greet
name: Greeting
start: prep
triggers:
  - kind: manual
    id: go
agents:
  writer: { provider: main, model: main-model, temperature: 0.25, max_tokens: 64 }
  backup: { provider: backup, model: backup-model }
nodes:
  - kind: transform
    id: prep
    set:
      who: "{{ trigger.name | upper }}"
    next: draft
  - kind: prompt
    id: draft
    agent: writer
    fallbacks: [backup]
    template: "Write a greeting for {{ prep.who }}"
    next: review
  - kind: review
    id: review
    role: support
    draft: "{{ draft.text }}"
    on: { approved: done }
  - kind: transform
    id: done
    set:
      sent: "yes"
"#;

/// A span with its resource's attributes.
type Exported = (Vec<KeyValue>, Span);

/// What the receiver got: every span with its resource's attributes, and each request's
/// content type.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Exported>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

async fn receiver() -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
    let got = Received::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let content_type = headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                g.content_types.lock().unwrap().push(content_type);
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut spans = g.spans.lock().unwrap();
                for rs in request.resource_spans {
                    let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            spans.push((resource.clone(), span));
                        }
                    }
                }
                (
                    StatusCode::OK,
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn text<'a>(attrs: &'a [KeyValue], key: &str) -> &'a str {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => s,
        other => panic!("attribute {key} is not a string: {other:?}"),
    }
}

fn int(attrs: &[KeyValue], key: &str) -> i64 {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(i)) => *i,
        other => panic!("attribute {key} is not an integer: {other:?}"),
    }
}

fn double(attrs: &[KeyValue], key: &str) -> f64 {
    match attr(attrs, key) {
        Some(any_value::Value::DoubleValue(d)) => *d,
        other => panic!("attribute {key} is not a double: {other:?}"),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    store: Store,
    main: ScriptedServer,
    _backup: ScriptedServer,
}

async fn fixture(main_retries: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite"), Durability::Process).unwrap();
    let main = ScriptedServer::start(ScriptedConfig::with_responder(|_| {
        "Hello, and welcome aboard!".to_owned()
    }))
    .await
    .unwrap();
    let backup = ScriptedServer::start(ScriptedConfig::with_responder(|_| {
        "Welcome (from the backup).".to_owned()
    }))
    .await
    .unwrap();
    let client = |url: String, retries: u32| {
        let mut c = OpenAiConfig::new(url);
        c.max_retries = retries;
        c.backoff_base = Duration::from_millis(5);
        OpenAiCompatible::new(c).unwrap()
    };
    let mut providers: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
    providers.insert(
        "main".into(),
        Arc::new(Breaker::new(
            "main",
            client(main.base_url(), main_retries),
            BreakerConfig::default(),
        )),
    );
    providers.insert("backup".into(), Arc::new(client(backup.base_url(), 0)));
    let registry = Arc::new(Registry::default());
    registry.insert(Arc::new(Compiled::from_source(BLUEPRINT).unwrap()));
    let engine = Engine::new(EngineConfig {
        store: store.clone(),
        registry,
        providers,
        outputs_dir: dir.path().join("outputs"),
    })
    .unwrap();
    engine.record_versions().await.unwrap();
    Fixture {
        _dir: dir,
        engine,
        store,
        main,
        _backup: backup,
    }
}

impl Fixture {
    async fn run_to_review(&self) -> Uuid {
        let started = self
            .engine
            .start_run("greet", None, json!({ "name": "ada" }), None)
            .await
            .unwrap();
        self.engine.settle_all().await;
        started.run_id
    }

    async fn approve(&self, run: Uuid) -> Uuid {
        let task = self
            .store
            .list_tasks(&TaskFilter {
                status: Some(TaskStatus::Pending),
                run_id: Some(run),
                ..TaskFilter::default()
            })
            .unwrap()
            .remove(0);
        self.engine
            .decide(
                task.id,
                Decision {
                    action: Action::Approve,
                    by: "sam".into(),
                    text: None,
                    reason: None,
                },
            )
            .await
            .unwrap();
        self.engine.settle_all().await;
        task.id
    }

    fn meta(&self, run: Uuid, node: &str) -> StepMeta {
        let (_, journal) = self.store.load_run(run).unwrap().unwrap();
        journal
            .into_iter()
            .find_map(|e| match e.event {
                Event::NodeFinished { node: n, meta, .. } if n == node => Some(meta),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{node} did not finish"))
    }
}

/// The exporter for `endpoint`, installed for this thread only.
fn install(endpoint: String) -> (TelemetryGuard, tracing::subscriber::DefaultGuard) {
    let settings = TelemetrySettings {
        otlp_endpoint: Some(endpoint),
        service_name: Some("processops-test".into()),
    };
    let config = settings
        .resolve(Path::new("processops.toml"), |_| None)
        .unwrap()
        .unwrap();
    let (layer, guard) = telemetry::layer::<tracing_subscriber::Registry>(&config).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    (guard, tracing::subscriber::set_default(subscriber))
}

/// Flush until `runs` run spans have arrived (a span is queued when it closes, which can be
/// a moment after the engine settles), then stop the exporter.
async fn collect(guard: TelemetryGuard, got: &Received, runs: usize) -> Vec<Exported> {
    // Flushing blocks until the receiver answers, and the receiver runs on this thread's
    // runtime: flush from a blocking thread.
    let guard = Arc::new(guard);
    for _ in 0..100 {
        let g = guard.clone();
        tokio::task::spawn_blocking(move || g.flush())
            .await
            .unwrap()
            .unwrap();
        let arrived = got
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.name == "run")
            .count();
        if arrived >= runs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let guard = Arc::into_inner(guard).unwrap();
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap()
        .unwrap();
    got.spans.lock().unwrap().clone()
}

fn by_trace(spans: &[Exported]) -> BTreeMap<Vec<u8>, Vec<Span>> {
    let mut traces: BTreeMap<Vec<u8>, Vec<Span>> = BTreeMap::new();
    for (_, s) in spans {
        traces
            .entry(s.trace_id.clone())
            .or_default()
            .push(s.clone());
    }
    traces
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?}, in {:?}", names(spans));
    found[0]
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

/// Every span but the root has its parent in the same trace.
fn assert_tree(spans: &[Span]) -> &Span {
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root per trace: {:?}", names(spans));
    for s in spans {
        assert_eq!(s.trace_id.len(), 16);
        assert_eq!(s.span_id.len(), 8);
        if !s.parent_span_id.is_empty() {
            assert!(
                spans.iter().any(|p| p.span_id == s.parent_span_id),
                "the parent of {} is in its trace",
                s.name
            );
        }
    }
    roots[0]
}

#[tokio::test]
async fn a_run_is_exported_as_a_trace_per_activation_with_genai_model_spans() {
    let (endpoint, got) = receiver().await;
    let (guard, _subscriber) = install(endpoint);
    let f = fixture(0).await;
    let run = f.run_to_review().await;
    let task = f.approve(run).await;
    let spans = collect(guard, &got, 2).await;

    assert!(
        got.content_types
            .lock()
            .unwrap()
            .iter()
            .all(|c| c == "application/x-protobuf")
    );
    for (resource, _) in &spans {
        assert_eq!(text(resource, "service.name"), "processops-test");
    }

    // Parked at the review, then resumed by the decision: two activations, two traces.
    let traces = by_trace(&spans);
    assert_eq!(traces.len(), 2, "traces: {traces:?}");
    let (first, second): (Vec<_>, Vec<_>) = traces
        .into_values()
        .partition(|t| t.iter().any(|s| s.name == "prompt draft"));
    let (first, second) = (&first[0], &second[0]);

    // First activation: run → prep, draft (→ chat), review (task created).
    let root = assert_tree(first);
    assert_eq!(root.name, "run");
    assert_eq!(text(&root.attributes, "processops.run.id"), run.to_string());
    assert_eq!(text(&root.attributes, "processops.blueprint.id"), "greet");
    assert_eq!(
        text(&root.attributes, "processops.blueprint.version"),
        Compiled::from_source(BLUEPRINT).unwrap().hash
    );
    assert_eq!(text(&root.attributes, "processops.run.status"), "waiting");
    let mut children: Vec<&str> = first
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .map(|s| s.name.as_str())
        .collect();
    children.sort_unstable();
    assert_eq!(
        children,
        ["prompt draft", "review review", "transform prep"]
    );
    let prep = named(first, "transform prep");
    assert_eq!(text(&prep.attributes, "processops.node.id"), "prep");
    assert_eq!(text(&prep.attributes, "processops.node.kind"), "transform");
    assert_eq!(int(&prep.attributes, "processops.node.visit"), 1);

    let draft = named(first, "prompt draft");
    let chat = named(first, "chat main-model");
    assert_eq!(chat.parent_span_id, draft.span_id);
    assert_eq!(chat.kind, SpanKind::Client as i32);
    let a = &chat.attributes;
    assert_eq!(text(a, "gen_ai.operation.name"), "chat");
    assert_eq!(text(a, "gen_ai.system"), "openai");
    assert_eq!(text(a, "gen_ai.provider.name"), "openai");
    assert_eq!(text(a, "gen_ai.request.model"), "main-model");
    assert_eq!(text(a, "gen_ai.output.type"), "text");
    assert!((double(a, "gen_ai.request.temperature") - 0.25).abs() < 1e-6);
    assert_eq!(int(a, "gen_ai.request.max_tokens"), 64);
    // Usage and model are the ones the journal recorded from the wire.
    let meta = f.meta(run, "draft");
    assert_eq!(
        text(a, "gen_ai.response.model"),
        meta.model.as_deref().unwrap()
    );
    assert!(meta.prompt_tokens.unwrap() > 0 && meta.completion_tokens.unwrap() > 0);
    assert_eq!(
        int(a, "gen_ai.usage.input_tokens"),
        i64::from(meta.prompt_tokens.unwrap())
    );
    assert_eq!(
        int(a, "gen_ai.usage.output_tokens"),
        i64::from(meta.completion_tokens.unwrap())
    );
    assert!(attr(a, "error.type").is_none());
    assert!(chat.start_time_unix_nano >= draft.start_time_unix_nano);
    assert!(chat.end_time_unix_nano <= draft.end_time_unix_nano);
    let review = named(first, "review review");
    let created = review
        .events
        .iter()
        .find(|e| e.name.starts_with("review task created"))
        .expect("a task-created event");
    assert_eq!(
        text(&created.attributes, "processops.task.id"),
        task.to_string()
    );

    // Second activation: run → review (the decision), done.
    let root = assert_tree(second);
    assert_eq!(root.name, "run");
    assert_eq!(text(&root.attributes, "processops.run.id"), run.to_string());
    assert_eq!(text(&root.attributes, "processops.run.status"), "done");
    let review = named(second, "review review");
    assert_eq!(review.parent_span_id, root.span_id);
    let decision = review
        .events
        .iter()
        .find(|e| e.name == "human decision")
        .expect("a decision event");
    assert_eq!(
        text(&decision.attributes, "processops.task.id"),
        task.to_string()
    );
    assert_eq!(
        text(&decision.attributes, "processops.decision.action"),
        "approve"
    );
    assert_eq!(text(&decision.attributes, "processops.decision.by"), "sam");
    assert_eq!(named(second, "transform done").parent_span_id, root.span_id);
    assert!(!second.iter().any(|s| s.name.starts_with("chat")));
}

#[tokio::test]
async fn a_failed_model_call_carries_error_type_and_the_fallback_is_an_event() {
    let (endpoint, got) = receiver().await;
    let (guard, _subscriber) = install(endpoint);
    let f = fixture(1).await;
    for _ in 0..2 {
        f.main.push_fault(Fault::Status {
            status: 500,
            retry_after: None,
        });
    }
    f.run_to_review().await;
    let spans = collect(guard, &got, 1).await;
    let spans: Vec<Span> = spans.into_iter().map(|(_, s)| s).collect();
    assert_tree(&spans);

    let draft = named(&spans, "prompt draft");
    let failed = named(&spans, "chat main-model");
    assert_eq!(failed.parent_span_id, draft.span_id);
    assert_eq!(text(&failed.attributes, "error.type"), "500");
    assert_eq!(
        failed.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert!(attr(&failed.attributes, "gen_ai.usage.input_tokens").is_none());
    // The retry inside the provider client is an event of the call.
    assert!(
        failed
            .events
            .iter()
            .any(|e| e.name == "retrying model call"),
        "events: {:?}",
        failed.events
    );

    let fallback = named(&spans, "chat backup-model");
    assert_eq!(fallback.parent_span_id, draft.span_id);
    assert!(attr(&fallback.attributes, "error.type").is_none());
    assert!(int(&fallback.attributes, "gen_ai.usage.output_tokens") > 0);
    assert!(
        draft
            .events
            .iter()
            .any(|e| e.name == "falling back to the next agent"
                && text(&e.attributes, "processops.agent") == "backup")
    );
}
