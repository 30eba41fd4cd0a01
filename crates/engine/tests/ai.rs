//! The AI layer inside runs: structured output with one repair attempt, the fallback chain,
//! the "needs attention" review when nothing fits, failing over past an open circuit, every
//! model call recorded, replay from the recording with no network, and no API key in any
//! stored byte.
//!
//! Models are scripted loopback servers speaking the OpenAI wire protocol over real sockets;
//! faults are queued on them per test. HTTP outputs go to a loopback receiver that counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use processops_core::journal::{Action, Decision, Event};
use processops_engine::replay::replay_run;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::scripted::{Fault, ScriptedConfig, ScriptedServer};
use processops_llm::wire::WireChatRequest;
use processops_llm::{
    Anthropic, AnthropicConfig, Breaker, BreakerConfig, ChatModel, OpenAiCompatible, OpenAiConfig,
};
use processops_store::{Durability, RunStatus, Store, TaskFilter, TaskStatus};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

const BLUEPRINT: &str = r#"
id: triage
name: Ticket triage
start: kb
triggers:
  - kind: manual
    id: ticket
agents:
  primary: { provider: main, model: main-model }
  backup: { provider: backup, model: backup-model }
nodes:
  - kind: retrieve
    id: kb
    collection: help
    query: "{{ trigger.subject }}"
    top_k: 2
    next: classify
  - kind: prompt
    id: classify
    agent: primary
    fallbacks: [backup]
    template: "Classify this ticket: {{ trigger.subject }}. Help articles: {{ kb.text }}"
    output_schema:
      type: object
      required: [category]
      properties:
        category: { type: string, enum: [billing, bug, other] }
    next: answer
  - kind: prompt
    id: answer
    agent: primary
    fallbacks: [backup]
    template: "Answer the {{ classify.json.category if classify.json else 'unclassified' }} ticket: {{ trigger.subject }}"
    next: review
  - kind: review
    id: review
    role: support
    draft: "{{ answer.text }}"
    on: { approved: send }
  - kind: output
    id: send
    http: { url: "{{ trigger.reply_url }}", body: "{{ review.text }}" }
"#;

/// Valid JSON for schema requests, a draft otherwise; says which server answered.
fn responder(name: &'static str) -> ScriptedConfig {
    ScriptedConfig::with_responder(move |req: &WireChatRequest| {
        if req.response_format.is_some() {
            r#"{"category": "billing"}"#.to_owned()
        } else {
            format!("[{name}] Sorry about the double charge; a refund is on its way.")
        }
    })
}

struct Fixture {
    _dir: TempDir,
    dir: std::path::PathBuf,
    engine: Engine,
    store: Store,
    main: ScriptedServer,
    backup: ScriptedServer,
    deliveries: Arc<AtomicU64>,
    reply_url: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Wire {
    OpenAi,
    Anthropic,
}

async fn fixture_with(main_key: Option<&str>, breaker: Option<BreakerConfig>) -> Fixture {
    fixture_on(Wire::OpenAi, main_key, breaker, 0).await
}

/// The `main` provider on either wire protocol, with `retries` tries after the first.
async fn fixture_on(
    wire: Wire,
    main_key: Option<&str>,
    breaker: Option<BreakerConfig>,
    retries: u32,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let store = Store::open(&path.join("db.sqlite"), Durability::Process).unwrap();
    store
        .ingest(
            "help".into(),
            vec![
                (
                    "billing.md".into(),
                    "Double charges are refunded within five days.".into(),
                ),
                (
                    "bugs.md".into(),
                    "Report bugs with steps to reproduce.".into(),
                ),
            ],
        )
        .await
        .unwrap();
    let mut main_config = responder("main");
    main_config.api_key = main_key.map(ToOwned::to_owned);
    let main = ScriptedServer::start(main_config).await.unwrap();
    let backup = ScriptedServer::start(responder("backup")).await.unwrap();
    let client = |url: String, key: Option<&str>| {
        let mut c = OpenAiConfig::new(url);
        c.api_key = key.map(ToOwned::to_owned);
        c.max_retries = 0;
        OpenAiCompatible::new(c).unwrap()
    };
    let bare: Arc<dyn ChatModel> = match wire {
        Wire::OpenAi => {
            let mut c = OpenAiConfig::new(main.base_url());
            c.api_key = main_key.map(ToOwned::to_owned);
            c.max_retries = retries;
            c.backoff_base = Duration::from_millis(5);
            Arc::new(OpenAiCompatible::new(c).unwrap())
        }
        Wire::Anthropic => {
            let mut c = AnthropicConfig::new(main.root_url());
            c.api_key = main_key.map(ToOwned::to_owned);
            c.max_retries = retries;
            c.backoff_base = Duration::from_millis(5);
            Arc::new(Anthropic::new(c).unwrap())
        }
    };
    let main_model: Arc<dyn ChatModel> = match breaker {
        Some(b) => Arc::new(Breaker::new("main", bare, b)),
        None => bare,
    };
    let mut providers: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
    providers.insert("main".into(), main_model);
    providers.insert("backup".into(), Arc::new(client(backup.base_url(), None)));
    let registry = Arc::new(Registry::default());
    registry.insert(Arc::new(Compiled::from_source(BLUEPRINT).unwrap()));
    let engine = Engine::new(EngineConfig {
        store: store.clone(),
        registry,
        providers,
        outputs_dir: path.join("outputs"),
    })
    .unwrap();
    engine.record_versions().await.unwrap();
    let (reply_url, deliveries) = receiver().await;
    Fixture {
        _dir: dir,
        dir: path,
        engine,
        store,
        main,
        backup,
        deliveries,
        reply_url,
    }
}

async fn fixture() -> Fixture {
    fixture_with(None, None).await
}

/// A loopback HTTP endpoint that counts what it receives.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/reply",
        axum::routing::post(move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/reply"), count)
}

impl Fixture {
    async fn start(&self) -> Uuid {
        let started = self
            .engine
            .start_run(
                "triage",
                None,
                json!({ "subject": "I was charged twice", "reply_url": self.reply_url }),
                None,
            )
            .await
            .unwrap();
        self.engine.settle_all().await;
        started.run_id
    }

    fn step_output(&self, run: Uuid, node: &str) -> (Value, processops_core::journal::StepMeta) {
        let (_, journal) = self.store.load_run(run).unwrap().unwrap();
        journal
            .into_iter()
            .find_map(|e| match e.event {
                Event::NodeFinished {
                    node: n,
                    output,
                    meta,
                    ..
                } if n == node => Some((output, meta)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{node} did not finish"))
    }

    fn pending(&self, run: Uuid) -> Vec<processops_store::TaskRow> {
        self.store
            .list_tasks(&TaskFilter {
                status: Some(TaskStatus::Pending),
                run_id: Some(run),
                ..TaskFilter::default()
            })
            .unwrap()
    }

    async fn approve_with_edit(&self, run: Uuid) {
        let task = self.pending(run).remove(0);
        self.engine
            .decide(
                task.id,
                Decision {
                    action: Action::Edit,
                    by: "sam".into(),
                    text: Some("Refund issued today. Sorry!".into()),
                    reason: None,
                },
            )
            .await
            .unwrap();
        self.engine.settle_all().await;
    }

    fn status(&self, run: Uuid) -> RunStatus {
        self.store.load_run(run).unwrap().unwrap().0.status
    }
}

#[tokio::test]
async fn every_model_call_is_recorded_with_request_reply_tokens_and_latency() {
    let f = fixture().await;
    let run = f.start().await;
    let (output, meta) = f.step_output(run, "classify");
    assert_eq!(output["json"]["category"], "billing");
    assert_eq!(meta.exchanges.len(), 1);
    let x = &meta.exchanges[0];
    assert_eq!(
        (x.agent.as_str(), x.provider.as_str(), x.purpose.as_str()),
        ("primary", "main", "call")
    );
    assert_eq!(x.request["model"], "main-model");
    assert!(
        x.request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("charged twice")
    );
    assert_eq!(x.response.as_deref(), Some(r#"{"category": "billing"}"#));
    assert!(x.prompt_tokens > 0 && x.completion_tokens > 0, "{x:?}");
    assert!(x.latency_ms > 0.0);
    assert_eq!(x.attempts, 1);
}

#[tokio::test]
async fn an_off_schema_reply_gets_one_repair_that_can_fix_it() {
    let f = fixture().await;
    f.main.push_fault(Fault::OffSchema);
    let run = f.start().await;
    let (output, meta) = f.step_output(run, "classify");
    assert_eq!(output["json"]["category"], "billing");
    assert_eq!(output["repaired"], true);
    assert_eq!(output["fallback_used"], Value::Null);
    let purposes: Vec<&str> = meta.exchanges.iter().map(|e| e.purpose.as_str()).collect();
    assert_eq!(purposes, ["call", "repair"]);
    // The repair shows the model its reply and what is wrong with it.
    let repair_messages = meta.exchanges[1].request["messages"].as_array().unwrap();
    let last = repair_messages.last().unwrap()["content"].as_str().unwrap();
    assert!(
        last.contains("does not match the required JSON Schema"),
        "{last}"
    );
    assert_eq!(
        repair_messages[repair_messages.len() - 2]["role"],
        "assistant"
    );
    assert!(meta.exchanges[0].error.is_some());
    assert_eq!(f.backup.requests(), 0, "the backup agent was not needed");
}

#[tokio::test]
async fn a_failed_repair_moves_on_to_the_fallback_agent() {
    let f = fixture().await;
    f.main.push_fault(Fault::OffSchema);
    f.main.push_fault(Fault::OffSchema);
    let run = f.start().await;
    let (output, meta) = f.step_output(run, "classify");
    assert_eq!(output["json"]["category"], "billing");
    assert_eq!(output["fallback_used"], "backup");
    assert_eq!(output["agent"], "backup");
    assert_eq!(meta.exchanges.len(), 3, "call, repair, then the backup");
    assert_eq!(meta.fallback.as_deref(), Some("backup"));
    assert_eq!(f.status(run), RunStatus::Waiting);
}

#[tokio::test]
async fn when_no_agent_produces_valid_output_the_review_task_is_flagged_and_the_run_waits() {
    let f = fixture().await;
    for _ in 0..2 {
        f.main.push_fault(Fault::OffSchema);
        f.backup.push_fault(Fault::OffSchema);
    }
    let run = f.start().await;
    let (output, meta) = f.step_output(run, "classify");
    assert_eq!(output["needs_attention"], true);
    assert_eq!(output["json"], Value::Null);
    assert_eq!(meta.exchanges.len(), 4);
    // Never a lost run: it waits for a person, who sees the task flagged.
    assert_eq!(f.status(run), RunStatus::Waiting);
    let task = f.pending(run).remove(0);
    assert!(task.timers.attention, "the task is flagged for attention");
    assert_eq!(task.task.context["needs_attention"], json!(["classify"]));
    // The next prompt saw no classification and said so.
    let (_, answer) = f.step_output(run, "answer");
    let prompt = answer.exchanges[0].request["messages"][0]["content"]
        .as_str()
        .unwrap();
    assert!(prompt.contains("unclassified"), "{prompt}");
}

#[tokio::test]
async fn an_open_circuit_fails_over_without_calling_the_failing_provider() {
    let f = fixture_with(
        None,
        Some(BreakerConfig {
            failure_threshold: 1,
            cooldown: Duration::from_secs(3600),
        }),
    )
    .await;
    f.main.push_fault(Fault::Status {
        status: 503,
        retry_after: None,
    });
    let first = f.start().await;
    let (output, _) = f.step_output(first, "classify");
    assert_eq!(
        output["fallback_used"], "backup",
        "the 503 made classify fail over"
    );
    let main_calls = f.main.requests();
    // The circuit is open now: the second run never reaches the main server.
    let second = f.start().await;
    let (classify, meta) = f.step_output(second, "classify");
    assert_eq!(classify["agent"], "backup");
    assert_eq!(
        f.main.requests(),
        main_calls,
        "no call reached the open circuit"
    );
    assert!(meta.exchanges.iter().all(|e| e.provider == "backup"));
    assert_eq!(f.status(second), RunStatus::Waiting);
}

#[tokio::test]
async fn replay_reproduces_a_run_without_calling_any_model_or_receiver() {
    let f = fixture().await;
    let run = f.start().await;
    f.approve_with_edit(run).await;
    assert_eq!(f.status(run), RunStatus::Completed);
    let (model_calls, deliveries) = (
        f.main.requests() + f.backup.requests(),
        f.deliveries.load(Ordering::SeqCst),
    );
    assert_eq!(deliveries, 1);

    let scratch = tempfile::tempdir().unwrap();
    let report = replay_run(&f.store, run, None, scratch.path())
        .await
        .unwrap();
    assert!(report.identical(), "{report:#?}");
    let nodes: Vec<&str> = report.steps.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(nodes, ["kb", "classify", "answer", "review", "send"]);
    assert_eq!(report.replay_status, "completed");
    assert_eq!(
        f.main.requests() + f.backup.requests(),
        model_calls,
        "no model was called"
    );
    assert_eq!(
        f.deliveries.load(Ordering::SeqCst),
        1,
        "no output was sent again"
    );
    // The original store is untouched.
    assert_eq!(
        f.store
            .list_runs(&processops_store::RunFilter::default())
            .unwrap()
            .len(),
        1
    );
    let _ = &f.dir;
}

#[tokio::test]
async fn replay_on_an_edited_prompt_names_the_step_whose_request_changed() {
    let f = fixture().await;
    let run = f.start().await;
    f.approve_with_edit(run).await;
    let edited = BLUEPRINT.replace("Answer the ", "Politely answer the ");
    let compiled = Arc::new(Compiled::from_source(&edited).unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let report = replay_run(&f.store, run, Some(compiled), scratch.path())
        .await
        .unwrap();
    assert!(!report.identical());
    assert_ne!(report.replay_version, report.original_version);
    let changed: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.prompt_changed)
        .map(|s| s.node.as_str())
        .collect();
    assert_eq!(changed, ["answer"]);
}

#[tokio::test]
async fn replay_reports_a_call_the_recording_cannot_answer() {
    let f = fixture().await;
    let run = f.start().await;
    f.approve_with_edit(run).await;
    // The edited blueprint asks a model the original never called.
    let edited = BLUEPRINT.replace("backup: { provider: backup, model: backup-model }", "backup: { provider: backup, model: backup-model }\n  other: { provider: main, model: other-model }").replace("  - kind: prompt\n    id: answer\n    agent: primary", "  - kind: prompt\n    id: answer\n    agent: other");
    let compiled = Arc::new(Compiled::from_source(&edited).unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let report = replay_run(&f.store, run, Some(compiled), scratch.path())
        .await
        .unwrap();
    assert!(!report.identical());
    assert!(
        report
            .unanswered
            .iter()
            .any(|u| u.contains("answer") && u.contains("other-model")),
        "{:?}",
        report.unanswered
    );
    assert_eq!(
        report.replay_status, "attention",
        "the run stops where the recording ends"
    );
}

/// Log lines, as a subscriber writes them.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_never_reaches_the_database_or_the_logs() {
    const KEY: &str = "sk-live-MARKER-7f3a9c";
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let f = fixture_on(Wire::Anthropic, Some(KEY), None, 1).await;
    // A failure on the way, so error paths are logged and recorded too.
    f.main.push_fault(Fault::Status {
        status: 503,
        retry_after: Some(0),
    });
    let run = f.start().await;
    assert_eq!(
        f.step_output(run, "classify").0["agent"],
        "primary",
        "the key was accepted"
    );
    f.approve_with_edit(run).await;
    assert_eq!(f.status(run), RunStatus::Completed);
    drop(f.engine);
    drop(f.store);
    // Every byte the store wrote: the database, its WAL and shared memory.
    for entry in std::fs::read_dir(&f.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes());
            assert!(!found, "the API key is stored in {}", path.display());
        }
    }
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The retry of the 503 was logged: the scan below looked at real log lines.
    assert!(
        logged.contains("HTTP 503"),
        "the test saw no logs: {logged}"
    );
    assert!(!logged.contains(KEY), "the API key was logged");
}

#[tokio::test]
async fn anthropic_rate_limits_are_retried_and_counted_and_a_dropped_stream_fails_over() {
    let f = fixture_on(Wire::Anthropic, Some("sk-ant-test"), None, 2).await;
    f.main.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(0),
    });
    let run = f.start().await;
    let (output, meta) = f.step_output(run, "classify");
    assert_eq!(output["agent"], "primary");
    assert_eq!(output["attempts"], 2, "one 429, then success");
    assert_eq!(meta.retries, 1);
    assert_eq!(meta.exchanges[0].attempts, 2);

    // Every try of the next call drops the connection: the backup agent takes over.
    for _ in 0..3 {
        f.main.push_fault(Fault::DropConnection);
    }
    let second = f.start().await;
    let (output, meta) = f.step_output(second, "classify");
    assert_eq!(output["fallback_used"], "backup");
    let first = &meta.exchanges[0];
    assert!(
        first.response.is_none() && first.error.is_some(),
        "{first:?}"
    );
    assert_eq!(f.status(second), RunStatus::Waiting, "the run is not lost");
}

#[tokio::test]
async fn a_server_error_on_every_agent_without_a_fallback_text_leaves_the_run_needing_attention() {
    let f = fixture().await;
    f.main.push_fault(Fault::Status {
        status: 500,
        retry_after: None,
    });
    f.backup.push_fault(Fault::MalformedJson);
    let run = f.start().await;
    assert_eq!(
        f.status(run),
        RunStatus::Attention,
        "kept, waiting for a retry"
    );
    let (_, journal) = f.store.load_run(run).unwrap().unwrap();
    let error = journal
        .iter()
        .find_map(|e| match &e.event {
            Event::NodeFailed { node, error, .. } if node == "classify" => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        error.contains("agent `primary`") && error.contains("500"),
        "{error}"
    );
    assert!(error.contains("agent `backup`"), "{error}");
}

#[tokio::test]
async fn a_template_reading_missing_json_fails_with_the_step_to_blame() {
    let f = fixture().await;
    // Without the guard, `answer` reads a field of JSON that never came.
    let unguarded = BLUEPRINT.replace(
        "{{ classify.json.category if classify.json else 'unclassified' }}",
        "{{ classify.json.category }}",
    );
    f.engine
        .registry()
        .insert(Arc::new(Compiled::from_source(&unguarded).unwrap()));
    f.engine.record_versions().await.unwrap();
    for _ in 0..2 {
        f.main.push_fault(Fault::OffSchema);
        f.backup.push_fault(Fault::OffSchema);
    }
    let run = f.start().await;
    assert_eq!(f.status(run), RunStatus::Attention);
    let (_, journal) = f.store.load_run(run).unwrap().unwrap();
    let error = journal
        .iter()
        .find_map(|e| match &e.event {
            Event::NodeFailed { node, error, .. } if node == "answer" => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        error.contains("step `classify` produced no valid JSON") && error.contains("retry"),
        "{error}"
    );
}
