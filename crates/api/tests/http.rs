//! The HTTP API against a real server: an engine over a temporary store, a scripted
//! OpenAI-compatible model on loopback, `axum::serve` on 127.0.0.1:0 and reqwest.
//!
//! Every malformed request must get a 4xx with a JSON `{code, message}` body, never a 5xx
//! and never a hang (the client has a timeout, so a hang fails the test).
//!
//! The webhook secret lives in an environment variable. Setting one needs `unsafe` in Rust
//! 2024 and the workspace forbids unsafe code, so the tests that need it run themselves again
//! in a child process with the variable set (see [`secret_or_rerun`]).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use processops_api::Service;
use processops_api::http::{self, MAX_BODY_BYTES};
use processops_engine::triggers::{SIGNATURE_HEADER, sign};
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use processops_store::{Durability, Store};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

const BLUEPRINT: &str = "http-test";
/// Name of the variable holding the webhook secret; unique to these tests.
const SECRET_VAR: &str = "PROCESSOPS_API_HTTP_TESTS_WEBHOOK_SECRET";
const JSON: &str = "application/json";

/// The test process: a manual trigger with an input schema, a signed webhook, an unsigned
/// webhook, a prompt, a review and a file output.
const SOURCE: &str = r#"id: http-test
name: HTTP API test process
description: A reply drafted by a model, checked by a person, written to a file.
start: draft
triggers:
  - kind: manual
    id: form
    input:
      type: object
      required: [customer, question]
      additionalProperties: false
      properties:
        customer: { type: string, minLength: 1 }
        question: { type: string, maxLength: 2000 }
  - kind: webhook
    id: hook
    secret_env: $SECRET_VAR
    input:
      type: object
      required: [customer, question]
      properties:
        customer: { type: string }
        question: { type: string }
  - kind: webhook
    id: open
agents:
  writer:
    model: scripted
    temperature: 0
nodes:
  - id: draft
    kind: prompt
    title: Draft a reply
    agent: writer
    template: |
      Reply to {{ trigger.customer | default('the customer') }} about this.
      {{ trigger.question | default('no question') }}
    next: check
  - id: check
    kind: review
    title: Check the reply
    task_title: "Reply to {{ trigger.customer | default('someone') }}"
    draft: "{{ draft.text }}"
    role: support-agent
    reasons: [Tone, Wrong facts]
    on:
      approved: save
  - id: save
    kind: output
    title: Keep the reply
    file:
      path: "replies/{{ run.id }}.txt"
      content: "{{ check.text }}"
"#;

fn blueprint_source() -> String {
    SOURCE.replace("$SECRET_VAR", SECRET_VAR)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// When this process has the webhook secret, return it. Otherwise run `test` (this very
/// test) in a child process of this test binary with a fresh secret in its environment,
/// assert that it ran and passed, and return `None`.
fn secret_or_rerun(test: &str) -> Option<String> {
    if let Ok(secret) = std::env::var(SECRET_VAR) {
        return Some(secret);
    }
    let secret = format!("whsec-{}", Uuid::now_v7().simple());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(SECRET_VAR, &secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{test}` failed in the child process:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child process did not run `{test}`:\n{stdout}"
    );
    None
}

/// A running server and what the tests need to look behind it.
struct Api {
    base: String,
    http: reqwest::Client,
    service: Service,
    outputs: PathBuf,
    server: JoinHandle<()>,
    _model: ScriptedServer,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    content_type: String,
    text: String,
    json: Option<Value>,
}

impl Reply {
    /// The JSON body of a success with this status.
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected reply: {self:#?}");
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("the body is not JSON: {self:#?}"))
    }

    /// Assert this is an error with this status and a JSON `{code, message}` body; the message.
    fn error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "unexpected reply: {self:#?}");
        self.error_body()
    }

    fn error_body(&self) -> &str {
        assert!(
            self.content_type.starts_with(JSON),
            "an error must be JSON: {self:#?}"
        );
        let body = self
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("the error body is not JSON: {self:#?}"));
        let code = body["code"].as_str();
        assert!(code.is_some_and(|c| !c.is_empty()), "no `code`: {self:#?}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no `message`: {self:#?}");
        message
    }

    fn code(&self) -> &str {
        self.json
            .as_ref()
            .and_then(|b| b["code"].as_str())
            .unwrap_or_default()
    }
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("processops.db"), Durability::Process).unwrap();
        let registry = Arc::new(Registry::default());
        let compiled = Compiled::from_source(&blueprint_source())
            .unwrap_or_else(|d| panic!("the test blueprint does not validate: {d:#?}"));
        registry.insert(Arc::new(compiled));
        let model = ScriptedServer::start(ScriptedConfig::default())
            .await
            .unwrap();
        let client = OpenAiCompatible::new(OpenAiConfig::new(model.base_url())).unwrap();
        let mut providers: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
        providers.insert("default".into(), Arc::new(client));
        let outputs = dir.path().join("outputs");
        let engine = Engine::new(EngineConfig {
            store,
            registry,
            providers,
            outputs_dir: outputs.clone(),
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
            // A hang fails the test instead of blocking it.
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            http,
            service,
            outputs,
            server,
            _model: model,
            _dir: dir,
        }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    async fn send(&self, req: RequestBuilder) -> Reply {
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("the request failed: {e:?}"));
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).ok();
        Reply {
            status,
            content_type,
            text,
            json,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.req(Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            self.req(Method::POST, path)
                .header(CONTENT_TYPE, JSON)
                .body(body.to_string()),
        )
        .await
    }

    /// Start a run with `wait: true`; it parks at the review.
    async fn start_waiting_run(&self, customer: &str) -> Uuid {
        let r = self
            .post(
                "/api/runs",
                &json!({
                    "blueprint": BLUEPRINT,
                    "payload": { "customer": customer, "question": format!("Where is the order of {customer}?") },
                    "wait": true,
                }),
            )
            .await;
        let body = r.ok(201);
        assert_eq!(body["status"], "waiting", "{body}");
        assert_eq!(body["duplicate"], false);
        body["run_id"].as_str().unwrap().parse().unwrap()
    }

    /// The one pending task of a run.
    async fn pending_task(&self, run: Uuid) -> Value {
        let r = self.get(&format!("/api/tasks?run={run}")).await;
        let tasks = r.ok(200).as_array().unwrap();
        assert_eq!(tasks.len(), 1, "{tasks:#?}");
        assert_eq!(tasks[0]["status"], "pending");
        tasks[0].clone()
    }

    /// Wait (bounded) until the run's driver stopped.
    async fn settle(&self, run: Uuid) {
        tokio::time::timeout(Duration::from_secs(30), self.service.engine().settle(run))
            .await
            .unwrap_or_else(|_| panic!("run {run} did not settle"));
    }

    async fn run_detail(&self, run: Uuid) -> Value {
        self.get(&format!("/api/runs/{run}")).await.ok(200).clone()
    }

    fn output_of(&self, run: Uuid) -> Option<String> {
        std::fs::read_to_string(self.outputs.join("replies").join(format!("{run}.txt"))).ok()
    }

    fn output_count(&self) -> usize {
        std::fs::read_dir(self.outputs.join("replies")).map_or(0, Iterator::count)
    }

    async fn run_count(&self) -> usize {
        self.get("/api/runs?status=all&limit=1000")
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .len()
    }
}

fn id_of(v: &Value) -> Uuid {
    v.as_str().unwrap().parse().unwrap()
}

fn suffix8(id: Uuid) -> String {
    let s = id.to_string();
    s[s.len() - 8..].to_owned()
}

/// (node, status) of each timeline step.
fn steps(detail: &Value) -> Vec<(String, String)> {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["node"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_blueprints_and_openapi() {
    let api = Api::start().await;

    let health = api.get("/healthz").await;
    let h = health.ok(200);
    assert!(health.content_type.starts_with(JSON));
    assert_eq!(h["status"], "ok");
    assert_eq!(h["blueprints"], 1);
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));

    let r = api.get("/api/blueprints").await;
    let list = r.ok(200).as_array().unwrap();
    assert_eq!(list.len(), 1);
    let bp = &list[0];
    assert_eq!(bp["id"], BLUEPRINT);
    assert_eq!(bp["name"], "HTTP API test process");
    assert_eq!(bp["nodes"], 3);
    assert!(!bp["version"].as_str().unwrap().is_empty());
    let triggers: Vec<(&str, &str)> = bp["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        triggers,
        [("form", "manual"), ("hook", "webhook"), ("open", "webhook")]
    );
    assert_eq!(
        bp["triggers"][0]["input"]["required"],
        json!(["customer", "question"])
    );
    assert!(bp["triggers"][2]["input"].is_null());

    let doc = api.get("/openapi.json").await;
    let doc = doc.ok(200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/tasks/{id}/decision"]["post"].is_object());
    // The served document is the one committed as docs/openapi.json.
    assert_eq!(doc, &serde_json::to_value(http::openapi()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_every_problem_with_line_and_column() {
    let api = Api::start().await;

    // Line 9 has a field no prompt node has; line 10 points at a node that does not exist.
    let broken = "id: broken\nname: Broken\nstart: first\nagents:\n  writer: { model: m }\nnodes:\n  - id: first\n    kind: prompt\n    colour: blue\n    agent: writer\n    template: hi\n    next: nowhere\n";
    let r = api
        .post("/api/validate", &json!({ "source": broken }))
        .await;
    let report = r.ok(200);
    assert_eq!(report["valid"], false, "{report:#}");
    assert!(report["version"].is_null());
    let diags = report["diagnostics"].as_array().unwrap();
    assert!(!diags.is_empty());
    for d in diags {
        assert!(d["line"].as_u64().unwrap() >= 1, "{d}");
        assert!(d["column"].as_u64().unwrap() >= 1, "{d}");
        assert!(!d["message"].as_str().unwrap().is_empty(), "{d}");
    }
    let colour = diags
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("colour"))
        .unwrap_or_else(|| panic!("no diagnostic names `colour`: {report:#}"));
    assert_eq!(colour["severity"], "error");
    assert_eq!(
        (colour["line"].as_u64(), colour["column"].as_u64()),
        (Some(9), Some(5)),
        "{colour}"
    );

    // A YAML syntax error is located too.
    let r = api
        .post(
            "/api/validate",
            &json!({ "source": "id: x\nname: [unclosed\n" }),
        )
        .await;
    let report = r.ok(200);
    assert_eq!(report["valid"], false);
    let first = &report["diagnostics"][0];
    assert!(first["line"].as_u64().unwrap() >= 2, "{report:#}");

    // An alias bomb is refused, not expanded.
    let r = api
        .post("/api/validate", &json!({ "source": alias_bomb() }))
        .await;
    let report = r.ok(200);
    assert_eq!(report["valid"], false, "{report:#}");
    let message = report["diagnostics"][0]["message"].as_str().unwrap();
    assert!(message.contains("too large"), "{report:#}");

    // The test blueprint itself is valid, with the version the server runs.
    let r = api
        .post("/api/validate", &json!({ "source": blueprint_source() }))
        .await;
    let report = r.ok(200).clone();
    assert_eq!(report["valid"], true, "{report:#}");
    let loaded = api.get("/api/blueprints").await;
    assert_eq!(report["version"], loaded.ok(200)[0]["version"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_lifecycle_over_http() {
    let api = Api::start().await;
    let run = api.start_waiting_run("Ada").await;

    // Listed, waiting.
    let r = api.get("/api/runs").await;
    let runs = r.ok(200).as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(id_of(&runs[0]["id"]), run);
    assert_eq!(runs[0]["status"], "waiting");
    assert_eq!(runs[0]["blueprint"], BLUEPRINT);
    assert_eq!(runs[0]["trigger"], "form");
    let r = api
        .get("/api/runs?status=waiting&blueprint=http-test")
        .await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 1);
    let r = api.get("/api/runs?status=completed").await;
    assert!(r.ok(200).as_array().unwrap().is_empty());

    // By full id and by the last 8 characters: the same run, with its timeline.
    let full = api.run_detail(run).await;
    let short = api.get(&format!("/api/runs/{}", suffix8(run))).await;
    assert_eq!(short.ok(200), &full);
    assert_eq!(id_of(&full["run"]["id"]), run);
    assert_eq!(full["payload"]["customer"], "Ada");
    assert_eq!(
        steps(&full),
        pairs(&[("draft", "done"), ("check", "waiting")])
    );
    let draft_text = full["steps"][0]["output"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!draft_text.is_empty());

    // The inbox, and the task by full id and by its last 8 characters.
    let r = api.get("/api/tasks").await;
    let tasks = r.ok(200).as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    let task_id = id_of(&task["id"]);
    assert_eq!(id_of(&task["run_id"]), run);
    assert_eq!(task["status"], "pending");
    assert_eq!(task["role"], "support-agent");
    assert_eq!(task["title"], "Reply to Ada");
    assert_eq!(task["draft"], draft_text.as_str());
    let detail = api.get(&format!("/api/tasks/{task_id}")).await;
    let detail = detail.ok(200).clone();
    assert_eq!(detail["task"], *task);
    assert_eq!(detail["reasons"], json!(["Tone", "Wrong facts"]));
    assert_eq!(
        detail["context"]["trigger"]["customer"], "Ada",
        "{detail:#}"
    );
    let short = api.get(&format!("/api/tasks/{}", suffix8(task_id))).await;
    assert_eq!(short.ok(200), &detail);
    assert!(
        api.get("/api/tasks?status=decided")
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Approve: the run completes and the file holds the draft.
    let r = api
        .post(
            &format!("/api/tasks/{task_id}/decision"),
            &json!({ "action": "approve", "by": "alice" }),
        )
        .await;
    let d = r.ok(200);
    assert_eq!(id_of(&d["task_id"]), task_id);
    assert_eq!(id_of(&d["run_id"]), run);
    api.settle(run).await;

    let done = api.run_detail(run).await;
    assert_eq!(done["run"]["status"], "completed", "{done:#}");
    assert_eq!(
        steps(&done),
        pairs(&[("draft", "done"), ("check", "done"), ("save", "done")])
    );
    assert_eq!(done["steps"][1]["decision"]["by"], "alice");
    assert_eq!(api.output_of(run).as_deref(), Some(draft_text.as_str()));

    // The inbox is empty; the decided list has the decision.
    assert!(
        api.get("/api/tasks")
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = api.get("/api/tasks?status=decided").await;
    let decided = r.ok(200).as_array().unwrap();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["decision"]["action"], "approve");
    assert_eq!(decided[0]["decision"]["by"], "alice");
    let r = api.get("/api/runs?status=completed").await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 1);

    // Deciding again is a conflict that names who decided; retrying a finished run too.
    let again = api
        .post(
            &format!("/api/tasks/{task_id}/decision"),
            &json!({ "action": "approve", "by": "bob" }),
        )
        .await;
    assert!(
        again.error(409).contains("already decided by alice"),
        "{again:#?}"
    );
    assert_eq!(again.code(), "conflict");
    let retry = api
        .send(api.req(Method::POST, &format!("/api/runs/{run}/retry")))
        .await;
    retry.error(409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_text_is_what_the_output_writes() {
    let api = Api::start().await;
    let run = api.start_waiting_run("Grace").await;
    let task = api.pending_task(run).await;
    let edited = "Dear Grace,\n\nyour order ships today. — Bob ✓ \"quoted\" {{ not a template }}";
    assert_ne!(task["draft"], edited);
    let r = api
        .post(
            &format!("/api/tasks/{}/decision", task["id"].as_str().unwrap()),
            &json!({ "action": "edit", "by": "bob", "text": edited }),
        )
        .await;
    r.ok(200);
    api.settle(run).await;
    let done = api.run_detail(run).await;
    assert_eq!(done["run"]["status"], "completed", "{done:#}");
    assert_eq!(api.output_of(run).as_deref(), Some(edited));
    assert_eq!(done["steps"][1]["decision"]["text"], edited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_decisions_are_422_and_leave_the_task_pending() {
    let api = Api::start().await;
    let run = api.start_waiting_run("Linus").await;
    let task = api.pending_task(run).await;
    let path = format!("/api/tasks/{}/decision", task["id"].as_str().unwrap());

    let r = api
        .post(&path, &json!({ "action": "reject", "by": "carol" }))
        .await;
    assert!(r.error(422).contains("reason"), "{r:#?}");
    let r = api
        .post(
            &path,
            &json!({ "action": "reject", "by": "carol", "reason": "  " }),
        )
        .await;
    r.error(422);
    let r = api
        .post(&path, &json!({ "action": "edit", "by": "carol" }))
        .await;
    assert!(r.error(422).contains("text"), "{r:#?}");
    let r = api
        .post(&path, &json!({ "action": "approve", "by": " " }))
        .await;
    r.error(422);
    let r = api
        .post(&path, &json!({ "action": "yolo", "by": "carol" }))
        .await;
    assert!(r.error(422).contains("yolo"), "{r:#?}");

    // None of them was recorded.
    let still = api.pending_task(run).await;
    assert!(still["decision"].is_null(), "{still:#}");
    assert_eq!(api.run_detail(run).await["run"]["status"], "waiting");
    assert_eq!(api.output_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_4xx() {
    let api = Api::start().await;
    // One run and task exist, so a wildcard id would have something to match.
    let run = api.start_waiting_run("Ken").await;
    let task = id_of(&api.pending_task(run).await["id"]);
    let stranger = Uuid::now_v7();

    // Invalid JSON.
    let raw = |path: &str, ct: Option<&str>, body: &str| {
        let mut req = api.req(Method::POST, path).body(body.to_owned());
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        req
    };
    let r = api
        .send(raw("/api/runs", Some(JSON), "{\"blueprint\":"))
        .await;
    assert!(r.error(400).contains("not valid JSON"), "{r:#?}");
    let r = api.send(raw("/api/runs", Some(JSON), "")).await;
    r.error(400);
    let r = api
        .send(raw("/api/validate", Some(JSON), "{'source': 1}"))
        .await;
    r.error(400);
    let r = api
        .send(
            api.req(Method::POST, "/api/runs")
                .header(CONTENT_TYPE, JSON)
                .body(vec![b'{', 0xff, 0xfe, b'}']),
        )
        .await;
    r.error(400);

    // Missing or wrong content type.
    let valid_start =
        json!({ "blueprint": BLUEPRINT, "payload": { "customer": "a", "question": "b" } })
            .to_string();
    let r = api.send(raw("/api/runs", None, &valid_start)).await;
    assert!(r.error(415).contains("Content-Type"), "{r:#?}");
    let r = api
        .send(raw("/api/runs", Some("text/plain"), &valid_start))
        .await;
    r.error(415);
    let r = api
        .send(raw("/api/validate", None, "{\"source\": \"\"}"))
        .await;
    r.error(415);
    let r = api
        .send(raw(
            &format!("/api/tasks/{task}/decision"),
            Some("application/x-www-form-urlencoded"),
            "action=approve&by=x",
        ))
        .await;
    r.error(415);

    // Unknown fields and wrong types.
    let r = api
        .post(
            "/api/runs",
            &json!({ "blueprint": BLUEPRINT, "colour": "red" }),
        )
        .await;
    assert!(r.error(422).contains("colour"), "{r:#?}");
    let r = api.post("/api/runs", &json!({ "blueprint": 5 })).await;
    r.error(422);
    let r = api
        .post(
            "/api/runs",
            &json!({ "blueprint": BLUEPRINT, "wait": "yes" }),
        )
        .await;
    r.error(422);
    let r = api.post("/api/runs", &json!({})).await;
    assert!(r.error(422).contains("blueprint"), "{r:#?}");
    let r = api.post("/api/runs", &json!([BLUEPRINT])).await;
    r.error(422);
    let r = api.post("/api/validate", &json!({ "source": 1 })).await;
    r.error(422);
    let r = api.post("/api/validate", &json!({})).await;
    r.error(422);
    let r = api
        .post("/api/validate", &json!({ "source": "", "extra": true }))
        .await;
    assert!(r.error(422).contains("extra"), "{r:#?}");
    let decision = format!("/api/tasks/{task}/decision");
    let r = api
        .post(
            &decision,
            &json!({ "action": "approve", "by": "x", "note": "hi" }),
        )
        .await;
    assert!(r.error(422).contains("note"), "{r:#?}");
    let r = api.post(&decision, &json!({ "action": "approve" })).await;
    r.error(422);
    let r = api
        .post(&decision, &json!({ "action": ["approve"], "by": "x" }))
        .await;
    r.error(422);

    // Unknown blueprint or trigger.
    let r = api.post("/api/runs", &json!({ "blueprint": "nope" })).await;
    let m = r.error(404);
    assert!(m.contains("nope") && m.contains(BLUEPRINT), "{r:#?}");
    assert_eq!(r.code(), "not_found");
    let r = api
        .post(
            "/api/runs",
            &json!({ "blueprint": BLUEPRINT, "trigger": "bell" }),
        )
        .await;
    assert!(r.error(404).contains("bell"), "{r:#?}");

    // Payloads that violate the trigger's input schema name the field.
    let start = |payload: Value| json!({ "blueprint": BLUEPRINT, "payload": payload });
    let r = api
        .post(
            "/api/runs",
            &start(json!({ "customer": "a", "question": 5 })),
        )
        .await;
    assert!(r.error(422).contains("question"), "{r:#?}");
    assert_eq!(r.code(), "invalid_payload");
    let r = api
        .post("/api/runs", &start(json!({ "question": "b" })))
        .await;
    assert!(r.error(422).contains("customer"), "{r:#?}");
    let r = api
        .post(
            "/api/runs",
            &start(json!({ "customer": "", "question": "b" })),
        )
        .await;
    assert!(r.error(422).contains("customer"), "{r:#?}");
    let r = api
        .post(
            "/api/runs",
            &start(json!({ "customer": "a", "question": "b", "colour": "red" })),
        )
        .await;
    assert!(r.error(422).contains("colour"), "{r:#?}");
    let r = api
        .post("/api/runs", &json!({ "blueprint": BLUEPRINT }))
        .await;
    r.error(422);
    let r = api.post("/api/runs", &start(json!("a string"))).await;
    r.error(422);
    // None of them started a run.
    assert_eq!(api.run_count().await, 1);

    // Bad or unknown ids: 404.
    for path in [
        "/api/runs/not-a-uuid".to_owned(),
        format!("/api/runs/{stranger}"),
        "/api/runs/ffffffff".to_owned(),
        "/api/tasks/zzzz".to_owned(),
        format!("/api/tasks/{stranger}"),
        // LIKE wildcards must not match the one run or task that exists.
        "/api/runs/%25".to_owned(),
        "/api/runs/_".to_owned(),
        "/api/tasks/%25".to_owned(),
        "/api/tasks/________".to_owned(),
    ] {
        let r = api.get(&path).await;
        assert!(r.error(404).contains("id"), "GET {path}: {r:#?}");
    }
    let ok_decision = json!({ "action": "approve", "by": "x" });
    for path in [
        format!("/api/tasks/{stranger}/decision"),
        "/api/tasks/not-a-uuid/decision".to_owned(),
        "/api/tasks/%25/decision".to_owned(),
        "/api/tasks/_/decision".to_owned(),
    ] {
        let r = api.post(&path, &ok_decision).await;
        r.error(404);
    }
    // An id that is not UTF-8 once decoded: 400.
    for path in ["/api/runs/%FF%FE", "/api/tasks/%C0"] {
        let r = api.get(path).await;
        assert!(r.error(400).contains("UTF-8"), "GET {path}: {r:#?}");
    }
    let r = api.post("/api/tasks/%FF/decision", &ok_decision).await;
    r.error(400);
    for path in [
        format!("/api/runs/{stranger}/retry"),
        "/api/runs/%25/retry".to_owned(),
        "/api/runs/nope/retry".to_owned(),
    ] {
        let r = api.send(api.req(Method::POST, &path)).await;
        r.error(404);
    }
    // The real ones still answer, and retrying a waiting run is a conflict.
    api.get(&format!("/api/runs/{run}")).await.ok(200);
    api.get(&format!("/api/tasks/{task}")).await.ok(200);
    let r = api
        .send(api.req(Method::POST, &format!("/api/runs/{run}/retry")))
        .await;
    assert!(r.error(409).contains("waiting"), "{r:#?}");
    // Nothing was decided by the detours above.
    assert_eq!(api.pending_task(run).await["status"], "pending");

    // Bad query strings.
    for path in [
        "/api/runs?limit=abc",
        "/api/runs?limit=-1",
        "/api/runs?limit=99999999999",
        "/api/runs?status=bogus",
        "/api/tasks?run=xyz",
        "/api/tasks?status=nope",
        "/api/tasks?limit=1.5",
        "/api/tasks?limit=%FF",
    ] {
        let r = api.get(path).await;
        r.error(400);
    }

    // Unknown routes and wrong methods.
    for path in ["/nope", "/api", "/api/runs/x/y/z", "/hooks/http-test"] {
        let r = api.get(path).await;
        assert!(r.error(404).contains("no such endpoint"), "{path}: {r:#?}");
        assert_eq!(r.code(), "not_found");
    }
    let r = api.post("/api/nope", &json!({})).await;
    r.error(404);
    for (method, path) in [
        (Method::DELETE, "/api/runs".to_owned()),
        (Method::GET, "/api/validate".to_owned()),
        (Method::PUT, format!("/api/tasks/{task}/decision")),
        (Method::GET, "/hooks/http-test/open".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::PATCH, format!("/api/runs/{run}")),
    ] {
        let r = api.send(api.req(method.clone(), &path)).await;
        assert!(r.error(405).contains("method"), "{method} {path}: {r:#?}");
    }

    // After all that, the server is fine and the run still waits.
    api.get("/healthz").await.ok(200);
    assert_eq!(api.run_detail(run).await["run"]["status"], "waiting");
}

/// Send one HTTP/1.1 request over a bare socket and read the answer while the body is still
/// going out. A server refuses an oversized body before reading it and closes the
/// connection; a client that insists on writing the whole body first (reqwest does) sees a
/// broken pipe instead of the answer, so it cannot be used to look at the 413.
async fn raw_post(api: &Api, path: &str, body: Vec<u8>, chunked: bool) -> Reply {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let addr = api.base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let length = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {JSON}\r\n{length}\r\nConnection: close\r\n\r\n"
    );
    // The task keeps the write half open until the answer is read: hyper closes a
    // connection whose client shut its sending side, without answering.
    let writer = tokio::spawn(async move {
        // A write error means the server stopped reading, which it may.
        let _sent: std::io::Result<()> = async {
            wr.write_all(head.as_bytes()).await?;
            if chunked {
                for c in body.chunks(64 * 1024) {
                    wr.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                        .await?;
                    wr.write_all(c).await?;
                    wr.write_all(b"\r\n").await?;
                }
                wr.write_all(b"0\r\n\r\n").await?;
            } else {
                wr.write_all(&body).await?;
            }
            wr.flush().await
        }
        .await;
        std::future::pending::<()>().await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    let (head_len, content_length) = loop {
        let n = tokio::time::timeout(Duration::from_secs(30), rd.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no answer to POST {path}"))
            .unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no content-length: {head}"));
            if buf.len() >= end + 4 + length || n == 0 {
                break (end + 4, length);
            }
        }
        assert!(
            n > 0,
            "POST {path} (chunked: {chunked}): the connection closed before an answer: {buf:?}"
        );
    };
    writer.abort();
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    let end = (head_len + content_length).min(buf.len());
    let text = String::from_utf8_lossy(&buf[head_len..end]).into_owned();
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        content_type,
        json: serde_json::from_str(&text).ok(),
        text,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_two_mib_get_413() {
    let api = Api::start().await;
    let pad = |len: usize| {
        let head = "{\"source\":\"";
        let tail = "\"}";
        format!("{head}{}{tail}", "a".repeat(len - head.len() - tail.len())).into_bytes()
    };

    // One byte over the limit.
    let body = pad(MAX_BODY_BYTES + 1);
    assert_eq!(body.len(), MAX_BODY_BYTES + 1);
    let r = raw_post(&api, "/api/validate", body, false).await;
    assert!(r.error(413).contains("larger than"), "{r:#?}");

    // Exactly at the limit is read (the validator then refuses the source itself).
    let r = api
        .send(
            api.req(Method::POST, "/api/validate")
                .header(CONTENT_TYPE, JSON)
                .body(pad(MAX_BODY_BYTES)),
        )
        .await;
    let report = r.ok(200);
    assert_eq!(report["valid"], false);
    assert!(!report["diagnostics"].as_array().unwrap().is_empty());

    // Every endpoint with a body, with a Content-Length and chunked.
    let big = format!(
        "{{\"blueprint\":\"{BLUEPRINT}\",\"payload\":{{\"customer\":\"{}\",\"question\":\"q\"}}}}",
        "x".repeat(3 * 1024 * 1024)
    )
    .into_bytes();
    for path in [
        "/api/validate",
        "/api/runs",
        "/api/tasks/00000000/decision",
        "/hooks/http-test/open",
        "/hooks/http-test/hook",
    ] {
        for chunked in [false, true] {
            let r = raw_post(&api, path, big.clone(), chunked).await;
            assert_eq!(
                r.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{path} chunked={chunked}: {r:#?}"
            );
            r.error_body();
        }
    }
    assert_eq!(api.run_count().await, 0);
    api.get("/healthz").await.ok(200);
}

#[test]
fn webhook_signatures_and_idempotency() {
    let Some(secret) = secret_or_rerun("webhook_signatures_and_idempotency") else {
        return;
    };
    runtime().block_on(webhook_checks(secret));
}

async fn webhook_checks(secret: String) {
    let api = Api::start().await;
    let hook = "/hooks/http-test/hook";
    let body = json!({ "customer": "Ada", "question": "Where is my invoice?" }).to_string();
    let signed_to = |path: &str, body: &str| {
        api.req(Method::POST, path)
            .header(CONTENT_TYPE, JSON)
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), body.as_bytes()))
            .body(body.to_owned())
    };
    let signed = |body: &str| signed_to(hook, body);

    // No signature, or a wrong one: 401, and no run.
    let r = api
        .send(
            api.req(Method::POST, hook)
                .header(CONTENT_TYPE, JSON)
                .body(body.clone()),
        )
        .await;
    assert!(r.error(401).contains("X-ProcessOps-Signature"), "{r:#?}");
    assert_eq!(r.code(), "unauthorized");
    let other_body = json!({ "customer": "Eve", "question": "?" }).to_string();
    for signature in [
        sign(b"not the secret", body.as_bytes()),
        sign(secret.as_bytes(), other_body.as_bytes()),
        sign(secret.as_bytes(), body.as_bytes()).replace("sha256=", "sha1="),
        "sha256=zz".to_owned(),
        "sha256=".to_owned(),
        String::new(),
    ] {
        let r = api
            .send(
                api.req(Method::POST, hook)
                    .header(CONTENT_TYPE, JSON)
                    .header(SIGNATURE_HEADER, &signature)
                    .body(body.clone()),
            )
            .await;
        r.error(401);
    }
    assert_eq!(api.run_count().await, 0);

    // The right signature: 202 with a run that has the payload.
    let r = api.send(signed(&body)).await;
    let accepted = r.ok(202);
    assert_eq!(accepted["duplicate"], false);
    let first = id_of(&accepted["run_id"]);
    api.settle(first).await;
    let detail = api.run_detail(first).await;
    assert_eq!(detail["run"]["trigger"], "hook");
    assert_eq!(detail["payload"]["customer"], "Ada");
    assert_eq!(detail["run"]["status"], "waiting", "{detail:#}");

    // The same Idempotency-Key twice: one run.
    let keyed = |key: &str| signed(&body).header("Idempotency-Key", key.to_owned());
    let r = api.send(keyed("delivery-42")).await;
    let a = r.ok(202);
    assert_eq!(a["duplicate"], false);
    let run_a = id_of(&a["run_id"]);
    assert_ne!(run_a, first);
    let r = api.send(keyed("delivery-42")).await;
    let again = r.ok(200);
    assert_eq!(again["duplicate"], true);
    assert_eq!(id_of(&again["run_id"]), run_a);
    let r = api.send(keyed("delivery-43")).await;
    let b = r.ok(202);
    assert_ne!(id_of(&b["run_id"]), run_a);
    assert_eq!(api.run_count().await, 3);

    // A body that is not JSON (signed correctly, or on the unsigned hook): 422.
    let r = api.send(signed("customer=Ada")).await;
    assert!(r.error(422).contains("not JSON"), "{r:#?}");
    assert_eq!(r.code(), "invalid_payload");
    let r = api
        .send(
            api.req(Method::POST, "/hooks/http-test/open")
                .body(vec![0xff, 0x00, 0x7b]),
        )
        .await;
    r.error(422);
    // A payload that violates the input schema names the field.
    let r = api
        .send(signed(&json!({ "customer": "Ada" }).to_string()))
        .await;
    assert!(r.error(422).contains("question"), "{r:#?}");
    assert_eq!(api.run_count().await, 3);

    // The unsigned hook takes JSON without a signature; an empty body is `{}`.
    let r = api
        .send(api.req(Method::POST, "/hooks/http-test/open").body("  "))
        .await;
    let open = id_of(&r.ok(202)["run_id"]);
    api.settle(open).await;
    assert_eq!(api.run_detail(open).await["payload"], json!({}));

    // Unknown blueprint, unknown trigger, or a trigger that is not a webhook: 404.
    for path in [
        "/hooks/nope/hook",
        "/hooks/http-test/nope",
        "/hooks/http-test/form",
        "/hooks/%FF/hook",
    ] {
        let r = api.send(signed_to(path, &body)).await;
        assert!(r.status.is_client_error(), "{path}: {r:#?}");
        r.error_body();
        if !path.contains('%') {
            r.error(404);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_exactly_one_wins() {
    let api = Api::start().await;
    for round in 0..5 {
        let run = api.start_waiting_run(&format!("Customer {round}")).await;
        let task = api.pending_task(run).await;
        let path = format!("/api/tasks/{}/decision", task["id"].as_str().unwrap());
        let approve = json!({ "action": "approve", "by": "alice" });
        let edit = json!({ "action": "edit", "by": "bob", "text": "Bob's version" });
        let (alice, bob) = tokio::join!(api.post(&path, &approve), api.post(&path, &edit));
        let (winner, loser) = match (alice.status.as_u16(), bob.status.as_u16()) {
            (200, 409) => ("alice", &bob),
            (409, 200) => ("bob", &alice),
            other => panic!("expected one 200 and one 409, got {other:?}: {alice:#?} {bob:#?}"),
        };
        let message = loser.error(409);
        assert!(
            message.contains(&format!("already decided by {winner}")),
            "round {round}: {message}"
        );

        api.settle(run).await;
        let done = api.run_detail(run).await;
        assert_eq!(done["run"]["status"], "completed", "{done:#}");
        assert_eq!(
            steps(&done),
            pairs(&[("draft", "done"), ("check", "done"), ("save", "done")]),
            "the run must complete once"
        );
        assert_eq!(done["steps"][1]["decision"]["by"], winner);
        let written = api.output_of(run).unwrap();
        if winner == "bob" {
            assert_eq!(written, "Bob's version");
        } else {
            assert_eq!(written, task["draft"].as_str().unwrap());
        }
        let r = api.get(&format!("/api/tasks?status=all&run={run}")).await;
        let tasks = r.ok(200).as_array().unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0]["decision"]["by"], winner);
        assert_eq!(api.output_count(), round + 1);
    }
}

/// splitmix64: small, deterministic, so a failing case replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn string(&mut self, max: usize) -> String {
        const CHARS: &[char] = &[
            'a', 'b', 'z', 'A', '0', '9', ' ', '-', '_', '%', '"', '\'', '\\', '/', '{', '}', '[',
            ']', ':', '#', '&', '*', '\n', '\t', '\0', 'é', 'ß', '🙂', '\u{202e}', '\u{feff}',
        ];
        let n = self.below(max + 1);
        (0..n).map(|_| *self.pick(CHARS)).collect()
    }
}

/// YAML whose aliases expand to 9^9 elements.
fn alias_bomb() -> String {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let mut yaml = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(", ");
        yaml.push_str(&format!("{0}: &{0} [{refs}]\n", pair[1]));
    }
    yaml
}

/// Strings that mean something to some endpoint, and some that are hostile.
fn words() -> Vec<String> {
    vec![
        BLUEPRINT.into(),
        "form".into(),
        "hook".into(),
        "open".into(),
        "approve".into(),
        "edit".into(),
        "reject".into(),
        "escalate".into(),
        "alice".into(),
        String::new(),
        " ".into(),
        "%".into(),
        "_".into(),
        "{{ 7 * 7 }}".into(),
        "{% for i in range(100000000) %}x{% endfor %}".into(),
        "'; DROP TABLE runs; --".into(),
        "\u{0}".into(),
        "a".repeat(10_000),
        "id: x\nname: y\nstart: a\nnodes: []\n".into(),
        "nodes: [\n".into(),
        "*a".into(),
        alias_bomb(),
        blueprint_source(),
    ]
}

const KEYS: &[&str] = &[
    "blueprint",
    "trigger",
    "payload",
    "idempotency_key",
    "wait",
    "action",
    "by",
    "text",
    "reason",
    "source",
    "customer",
    "question",
    "",
    "__proto__",
];

fn random_json(rng: &mut Rng, words: &[String], depth: u32) -> Value {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => match rng.below(4) {
            0 => json!(rng.next()),
            1 => json!(rng.next() as i64),
            2 => json!(rng.next() as f64 / 7.0),
            _ => json!(rng.below(10)),
        },
        3 => Value::String(rng.string(40)),
        4 => Value::String(rng.pick(words).clone()),
        5 => {
            let n = rng.below(4);
            Value::Array((0..n).map(|_| random_json(rng, words, depth - 1)).collect())
        }
        _ => {
            let n = rng.below(5);
            Value::Object(
                (0..n)
                    .map(|_| {
                        let key = if rng.chance(70) {
                            (*rng.pick(KEYS)).to_owned()
                        } else {
                            rng.string(8)
                        };
                        (key, random_json(rng, words, depth - 1))
                    })
                    .collect(),
            )
        }
    }
}

/// A request that is valid for the endpoint, then changed a little.
fn mutated_body(rng: &mut Rng, words: &[String], endpoint: &str) -> Value {
    let text = |rng: &mut Rng| {
        if rng.chance(50) {
            Value::String(rng.pick(words).clone())
        } else {
            Value::String(rng.string(30))
        }
    };
    let mut body = match endpoint {
        "validate" => json!({ "source": text(rng) }),
        "runs" => json!({
            "blueprint": BLUEPRINT,
            "payload": { "customer": text(rng), "question": text(rng) },
            "wait": rng.chance(10),
        }),
        "decision" => {
            let mut d = json!({
                "action": rng.pick(&["approve", "edit", "reject", "escalate", "nope"]),
                "by": rng.pick(&["alice", "bob", "", " "]),
            });
            if rng.chance(50) {
                d["text"] = text(rng);
            }
            if rng.chance(50) {
                d["reason"] = text(rng);
            }
            d
        }
        "retry" => json!({}),
        _ => json!({ "customer": text(rng), "question": text(rng) }),
    };
    for _ in 0..rng.below(3) {
        let Value::Object(map) = &mut body else { break };
        match rng.below(3) {
            0 => {
                let key = (*rng.pick(KEYS)).to_owned();
                map.insert(key, random_json(rng, words, 2));
            }
            1 => {
                let keys: Vec<String> = map.keys().cloned().collect();
                if !keys.is_empty() {
                    map.remove(rng.pick(&keys));
                }
            }
            _ => {
                if let Some(Value::Object(p)) = map.get_mut("payload") {
                    p.insert((*rng.pick(KEYS)).to_owned(), random_json(rng, words, 1));
                } else {
                    body = random_json(rng, words, 2);
                }
            }
        }
    }
    body
}

fn percent_encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn random_requests_never_get_a_5xx_or_a_non_json_body() {
    let Some(secret) = secret_or_rerun("random_requests_never_get_a_5xx_or_a_non_json_body") else {
        return;
    };
    runtime().block_on(fuzz(secret));
}

async fn fuzz(secret: String) {
    // `PROCESSOPS_FUZZ_SEED` and `PROCESSOPS_FUZZ_CASES` explore further (or replay a failure).
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|s| s.parse().ok())
    }
    let seed: u64 = env("PROCESSOPS_FUZZ_SEED").unwrap_or(0x5EED_F00D);
    let cases: usize = env("PROCESSOPS_FUZZ_CASES").unwrap_or(400);
    let mut rng = Rng(seed);
    let words = words();
    let api = Api::start().await;
    let mut runs = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let run = api.start_waiting_run(&format!("Fuzz {i}")).await;
        tasks.push(id_of(&api.pending_task(run).await["id"]));
        runs.push(run);
    }

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for case in 0..cases {
        let endpoint = *rng.pick(&[
            "validate", "runs", "retry", "decision", "hook", "open", "stray",
        ]);
        let id = |rng: &mut Rng, ids: &[Uuid]| -> String {
            match rng.below(7) {
                0 | 1 => rng.pick(ids).to_string(),
                2 => suffix8(*rng.pick(ids)),
                3 => Uuid::now_v7().to_string(),
                4 => percent_encoded(&rng.bytes(6)),
                5 => (*rng.pick(&["%25", "_", "-", "not-a-uuid", "%2F", "..", "%00"])).to_owned(),
                _ => {
                    rng.string(10)
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                        + "x"
                }
            }
        };
        let path = match endpoint {
            "validate" => "/api/validate".to_owned(),
            "runs" => "/api/runs".to_owned(),
            "retry" => format!("/api/runs/{}/retry", id(&mut rng, &runs)),
            "decision" => format!("/api/tasks/{}/decision", id(&mut rng, &tasks)),
            "hook" => "/hooks/http-test/hook".to_owned(),
            "open" => "/hooks/http-test/open".to_owned(),
            _ => format!(
                "/hooks/{}/{}",
                percent_encoded(&rng.bytes(4)),
                rng.pick(&["hook", "form", "x"])
            ),
        };
        let (kind, body): (&str, Vec<u8>) = match rng.below(3) {
            0 => ("bytes", rng.bytes(300)),
            1 => (
                "json",
                random_json(&mut rng, &words, 3).to_string().into_bytes(),
            ),
            _ => (
                "mutated",
                mutated_body(&mut rng, &words, endpoint)
                    .to_string()
                    .into_bytes(),
            ),
        };
        let mut req = api.req(Method::POST, &path);
        let content_type = *rng.pick(&[
            Some(JSON),
            Some(JSON),
            Some(JSON),
            None,
            Some("text/plain"),
            Some("application/json; charset=utf-8"),
            Some("application/problem+json"),
            Some("multipart/form-data"),
            Some("application/json/x;;"),
        ]);
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        if matches!(endpoint, "hook" | "open" | "stray") {
            match rng.below(4) {
                0 => {}
                1 | 2 => req = req.header(SIGNATURE_HEADER, sign(secret.as_bytes(), &body)),
                _ => {
                    let junk: String = rng
                        .string(20)
                        .chars()
                        .filter(char::is_ascii_graphic)
                        .collect();
                    req = req.header(SIGNATURE_HEADER, format!("sha256={junk}"));
                }
            }
            if rng.chance(30) {
                let key = match rng.below(3) {
                    0 => "k1".to_owned(),
                    1 => "k2".to_owned(),
                    _ => rng
                        .string(12)
                        .chars()
                        .filter(char::is_ascii_graphic)
                        .collect(),
                };
                req = req.header("Idempotency-Key", key);
            }
        }
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let r = api.send(req.body(body)).await;
        let ctx = format!(
            "seed {seed} case {case}: POST {path} ({kind}, content type {content_type:?}) body {shown:?}"
        );
        assert!(!r.status.is_server_error(), "{ctx}\n{r:#?}");
        assert!(
            r.status.is_success() || r.status.is_client_error(),
            "{ctx}\n{r:#?}"
        );
        assert!(r.content_type.starts_with(JSON), "{ctx}\n{r:#?}");
        let Some(json) = &r.json else {
            panic!("{ctx}: the body is not JSON: {:?}", r.text);
        };
        if r.status.is_client_error() {
            assert!(
                json["code"].as_str().is_some_and(|c| !c.is_empty())
                    && json["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{ctx}: an error needs `code` and `message`\n{r:#?}"
            );
        } else {
            assert!(json.is_object(), "{ctx}\n{r:#?}");
        }
        *statuses.entry(r.status.as_u16()).or_default() += 1;
    }
    eprintln!("seed {seed}: statuses {statuses:?}");
    // The cases reached past the parsers: successes and several kinds of refusal.
    assert!(
        statuses.keys().any(|s| (200..300).contains(s)),
        "{statuses:?}"
    );
    for status in [400, 404, 415, 422] {
        assert!(
            statuses.contains_key(&status),
            "no {status} in {statuses:?}"
        );
    }
    api.get("/healthz").await.ok(200);
}
