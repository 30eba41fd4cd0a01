//! `GET /metrics` against a real server: an engine over a temporary store, the scripted model
//! on loopback, `axum::serve` on 127.0.0.1:0, scraped with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use processops_api::Service;
use processops_api::http;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use processops_store::{Durability, Store};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

const SOURCE: &str = r#"id: metrics-test
name: Metrics test process
start: draft
triggers:
  - kind: manual
    id: form
agents:
  writer:
    model: scripted
    temperature: 0
nodes:
  - id: draft
    kind: prompt
    title: Draft a reply
    agent: writer
    template: "Reply to {{ trigger.customer | default('someone') }}."
    next: check
  - id: check
    kind: review
    title: Check the reply
    draft: "{{ draft.text }}"
    role: support-agent
    on:
      approved: save
  - id: save
    kind: output
    title: Keep the reply
    file:
      path: "replies/{{ run.id }}.txt"
      content: "{{ check.text }}"
"#;

struct Api {
    base: String,
    http: reqwest::Client,
    service: Service,
    server: JoinHandle<()>,
    _model: ScriptedServer,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("processops.db"), Durability::Process).unwrap();
        let registry = Arc::new(Registry::default());
        let compiled = Compiled::from_source(SOURCE)
            .unwrap_or_else(|d| panic!("the test blueprint does not validate: {d:#?}"));
        registry.insert(Arc::new(compiled));
        let model = ScriptedServer::start(ScriptedConfig::default())
            .await
            .unwrap();
        let client = OpenAiCompatible::new(OpenAiConfig::new(model.base_url())).unwrap();
        let mut providers: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
        providers.insert("default".into(), Arc::new(client));
        let engine = Engine::new(EngineConfig {
            store,
            registry,
            providers,
            outputs_dir: dir.path().join("outputs"),
        })
        .unwrap();
        engine.record_versions().await.unwrap();
        let service = Service::new(engine, Vec::new());
        let (router, _) = http::router(service.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            http,
            service,
            server,
            _model: model,
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Scrape `/metrics` over the socket, as Prometheus does.
    async fn scrape(&self) -> Metrics {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(
            content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let text = resp.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "not OpenMetrics text:\n{text}");
        Metrics(text)
    }
}

/// A scraped exposition.
struct Metrics(String);

impl Metrics {
    /// The value of one series, written as in the text (`name{label="v"}`); `None` when absent.
    fn get(&self, series: &str) -> Option<f64> {
        self.0.lines().find_map(|line| {
            let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
            rest.split(' ').next()?.parse().ok()
        })
    }

    fn value(&self, series: &str) -> f64 {
        self.get(series)
            .unwrap_or_else(|| panic!("no series `{series}` in:\n{}", self.0))
    }

    /// The sum of every series of a metric whose labels contain `labels`.
    fn sum(&self, name: &str, labels: &str) -> f64 {
        self.0
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix('{')?;
                let (set, value) = rest.split_once("} ")?;
                set.contains(labels).then(|| value.parse::<f64>().ok())?
            })
            .sum()
    }
}

const STARTED: &str = r#"processops_runs_started_total{blueprint="metrics-test"}"#;
const COMPLETED: &str =
    r#"processops_runs_finished_total{blueprint="metrics-test",status="completed"}"#;
const PENDING: &str = "processops_inbox_pending";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_runs_and_the_inbox() {
    let api = Api::start().await;

    // Before any run: the inbox gauge is there and empty; no blueprint has counters yet.
    let m = api.scrape().await;
    assert_eq!(m.value(PENDING), 0.0);
    assert_eq!(m.get(STARTED), None);
    assert_eq!(m.value("processops_sla_breaches_total"), 0.0);

    // Two runs park at their review.
    let mut runs = Vec::new();
    for customer in ["Ada", "Grace"] {
        let r = api
            .post(
                "/api/runs",
                &json!({"blueprint": "metrics-test", "payload": {"customer": customer}, "wait": true}),
            )
            .await;
        assert_eq!(r["status"], "waiting", "{r}");
        runs.push(r["run_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let m = api.scrape().await;
    assert_eq!(m.value(STARTED), 2.0);
    assert_eq!(m.value(COMPLETED), 0.0);
    assert_eq!(m.value(PENDING), 2.0);
    assert_eq!(m.value(r#"processops_runs{status="waiting"}"#), 2.0);
    // Each run's prompt step: one timed step, at least one model call, tokens both ways.
    assert_eq!(
        m.value(r#"processops_node_duration_seconds_count{kind="prompt"}"#),
        2.0
    );
    assert!(m.sum("processops_llm_calls_total", "") >= 2.0);
    assert!(m.sum("processops_llm_tokens_total", r#"direction="in""#) > 0.0);
    assert!(m.sum("processops_llm_tokens_total", r#"direction="out""#) > 0.0);
    assert_eq!(m.sum("processops_llm_errors_total", ""), 0.0);

    // A second scrape counts nothing twice.
    let again = api.scrape().await;
    assert_eq!(
        again.value(r#"processops_node_duration_seconds_count{kind="prompt"}"#),
        2.0
    );
    assert_eq!(
        again.sum("processops_llm_calls_total", ""),
        m.sum("processops_llm_calls_total", "")
    );

    // Approve one: it completes, and the inbox shrinks.
    let tasks: Value = api
        .http
        .get(format!("{}/api/tasks?run={}", api.base, runs[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/tasks/{task}/decision"),
        &json!({"action": "approve", "by": "alice"}),
    )
    .await;
    tokio::time::timeout(
        Duration::from_secs(30),
        api.service.engine().settle(runs[0]),
    )
    .await
    .expect("the run settles");
    let m = api.scrape().await;
    assert_eq!(m.value(STARTED), 2.0);
    assert_eq!(m.value(COMPLETED), 1.0);
    assert_eq!(
        m.value(r#"processops_runs_finished_total{blueprint="metrics-test",status="failed"}"#),
        0.0
    );
    assert_eq!(m.value(PENDING), 1.0);
    assert_eq!(m.value(r#"processops_runs{status="completed"}"#), 1.0);
    assert_eq!(m.value(r#"processops_runs{status="waiting"}"#), 1.0);
    // Not enrolled with a hub: no sync series.
    assert_eq!(m.get("processops_sync_pending_events"), None);
}
