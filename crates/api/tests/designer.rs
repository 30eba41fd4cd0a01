//! The app's API over real HTTP: reading and saving blueprint files, dry runs, the profile,
//! settings and evaluation routes, and the served web UI with its CSP. An engine over a
//! project folder in a temporary directory, a scripted model on loopback, `axum::serve`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use processops_api::http;
use processops_api::{ProjectInfo, Service};
use processops_engine::{Engine, EngineConfig, Registry};
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use processops_store::{Durability, RunFilter, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A prompt, a review, then an HTTP call to a port nothing listens on and a file output: a
/// dry run must describe both and perform neither.
const SOURCE: &str = r#"# The reply process (comments survive saves).
id: reply
name: Reply to a customer
start: draft
triggers:
  - kind: manual
    id: form
    input:
      type: object
      required: [customer]
      properties:
        customer: { type: string }
agents:
  writer:
    model: scripted
nodes:
  - id: draft
    kind: prompt
    agent: writer
    template: "Write to {{ trigger.customer }}."
    next: check
  - id: check
    kind: review
    task_title: "Reply to {{ trigger.customer }}"
    draft: "{{ draft.text }}"
    role: support-agent
    on:
      approved: [notify, keep]
  - id: notify
    kind: output
    http:
      url: "http://127.0.0.1:9/notify"
      method: POST
      body: "{{ check.text }}"
  - id: keep
    kind: output
    file:
      path: "replies/{{ trigger.customer }}.txt"
      content: "{{ check.text }}"
"#;

struct App {
    base: String,
    http: reqwest::Client,
    root: PathBuf,
    engine: Engine,
    _model: ScriptedServer,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("blueprints")).unwrap();
        std::fs::write(root.join("blueprints/reply.yaml"), SOURCE).unwrap();
        std::fs::write(
            root.join("processops.toml"),
            "[providers.default]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"PROCESSOPS_DESIGNER_TEST_UNSET_KEY\"\n\n[profile]\nname = \"dana\"\n",
        )
        .unwrap();
        let ui = root.join("ui-dist");
        std::fs::create_dir_all(ui.join("assets")).unwrap();
        std::fs::write(
            ui.join("index.html"),
            "<!doctype html><title>ProcessOps</title>",
        )
        .unwrap();
        std::fs::write(ui.join("assets/app.js"), "console.log('app')").unwrap();

        let store = Store::open(&root.join("processops.db"), Durability::Process).unwrap();
        let registry = Arc::new(Registry::default());
        let problems = registry.load_dir(&root.join("blueprints")).unwrap();
        assert!(problems.is_empty(), "{:?}", problems[0].diagnostics);
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
            outputs_dir: root.join("outputs"),
        })
        .unwrap();
        engine.record_versions().await.unwrap();
        let service = Service::new(engine.clone(), Vec::new()).with_project(ProjectInfo {
            root: root.clone(),
            blueprints: root.join("blueprints"),
            user: "dana".into(),
            data: root.join(".processops"),
        });
        let (router, _) = http::router(service);
        let router = http::with_ui(router, Some(&ui));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            root,
            engine,
            _model: model,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    fn file(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root.join(relative)).unwrap()
    }
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn source_round_trips_and_saves_are_checked() {
    let app = App::start().await;
    let (status, src) = app.get("/api/blueprints/reply/source").await;
    assert_eq!(status, StatusCode::OK, "{src}");
    assert_eq!(
        src["source"], SOURCE,
        "the file's exact text, comments included"
    );
    assert_eq!(src["file"], "blueprints/reply.yaml");
    let version = src["version"].as_str().unwrap().to_owned();

    // Saving the text unchanged writes nothing.
    let (status, saved) = app
        .call(
            reqwest::Method::PUT,
            "/api/blueprints/reply/source",
            Some(json!({ "source": SOURCE, "base_version": version })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["changed"], false);
    assert_eq!(saved["version"], version.as_str());

    // An invalid edit is refused with the line, and the file is untouched.
    let broken = SOURCE.replace("next: check", "next: nowhere");
    let (status, err) = app
        .call(
            reqwest::Method::PUT,
            "/api/blueprints/reply/source",
            Some(json!({ "source": broken })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(message(&err).contains("line 21"), "{err}");
    assert!(message(&err).contains("nowhere"), "{err}");
    assert_eq!(app.file("blueprints/reply.yaml"), SOURCE);

    // Renaming through a save is refused: that is a new blueprint.
    let renamed = SOURCE.replace("id: reply\n", "id: answer\n");
    let (status, err) = app
        .call(
            reqwest::Method::PUT,
            "/api/blueprints/reply/source",
            Some(json!({ "source": renamed })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(message(&err).contains("create a new blueprint"), "{err}");

    // A valid edit is written, loaded, and new runs use it.
    let edited = SOURCE.replace("Write to {{", "Write kindly to {{");
    let (status, saved) = app
        .call(
            reqwest::Method::PUT,
            "/api/blueprints/reply/source",
            Some(json!({ "source": edited, "base_version": version })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["changed"], true);
    assert_ne!(saved["version"], version.as_str());
    assert_eq!(app.file("blueprints/reply.yaml"), edited);
    let (_, list) = app.get("/api/blueprints").await;
    assert_eq!(list[0]["version"], saved["version"]);

    // A save based on the old version is now a conflict.
    let (status, err) = app
        .call(
            reqwest::Method::PUT,
            "/api/blueprints/reply/source",
            Some(json!({ "source": SOURCE, "base_version": version })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(message(&err).contains("reload"), "{err}");
    assert_eq!(app.file("blueprints/reply.yaml"), edited);

    let (status, err) = app.get("/api/blueprints/nope/source").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
}

#[tokio::test]
async fn create_writes_a_new_file_once() {
    let app = App::start().await;
    let source = SOURCE.replace("id: reply\n", "id: answer\n");
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            "/api/blueprints",
            Some(json!({ "source": source })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["file"], "blueprints/answer.yaml");
    assert_eq!(app.file("blueprints/answer.yaml"), source);
    let (_, list) = app.get("/api/blueprints").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["answer", "reply"]);
    let (status, err) = app
        .call(
            reqwest::Method::POST,
            "/api/blueprints",
            Some(json!({ "source": source })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
}

#[tokio::test]
async fn dry_run_shows_every_step_and_performs_nothing() {
    let app = App::start().await;
    let edited = SOURCE.replace("Write to {{", "Draft for {{");
    let (status, report) = app
        .call(
            reqwest::Method::POST,
            "/api/dry-run",
            Some(json!({ "source": edited, "payload": { "customer": "Ada" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["approvals"], 1);
    let steps = report["steps"].as_array().unwrap();
    let nodes: Vec<&str> = steps.iter().map(|s| s["node"].as_str().unwrap()).collect();
    for node in ["draft", "check", "notify", "keep"] {
        assert!(nodes.contains(&node), "{node} missing from {nodes:?}");
    }
    let step = |id: &str| steps.iter().find(|s| s["node"] == id).unwrap();
    // The prompt really ran, with the unsaved template.
    assert!(
        step("draft")["meta"]["input"]
            .to_string()
            .contains("Draft for Ada"),
        "{:#}",
        step("draft")
    );
    assert!(!step("draft")["output"]["text"].as_str().unwrap().is_empty());
    // Outside effects are described, not performed.
    let notify = &step("notify")["output"];
    assert_eq!(notify["status"], "dry_run", "{notify:#}");
    assert_eq!(notify["would"]["http"]["url"], "http://127.0.0.1:9/notify");
    let keep = &step("keep")["output"];
    assert_eq!(keep["would"]["file"]["path"], "replies/Ada.txt");
    assert!(
        !app.root.join("outputs").exists(),
        "a dry run wrote outputs"
    );
    // The project's store holds no run, and its blueprint is unchanged.
    let runs = app.engine.store().list_runs(&RunFilter::default()).unwrap();
    assert!(runs.is_empty(), "{runs:?}");
    assert_eq!(app.file("blueprints/reply.yaml"), SOURCE);

    // A source that does not validate comes back with its problems, not a run.
    let (status, report) = app
        .call(
            reqwest::Method::POST,
            "/api/dry-run",
            Some(json!({ "source": "id: x\n", "payload": {} })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "invalid");
    assert!(!report["diagnostics"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn profile_settings_and_evaluation_routes() {
    let app = App::start().await;
    let (status, me) = app.get("/api/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "dana");
    assert_eq!(me["single_user"], true);

    let (status, settings) = app.get("/api/settings").await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let provider = &settings["providers"][0];
    assert_eq!(provider["name"], "default");
    assert_eq!(provider["key_source"], "env");
    assert_eq!(provider["key_name"], "PROCESSOPS_DESIGNER_TEST_UNSET_KEY");
    assert_eq!(provider["key_present"], false);
    assert_eq!(settings["agents"][0]["name"], "writer");

    let (status, err) = app
        .call(
            reqwest::Method::POST,
            "/api/settings/keys",
            Some(json!({ "account": "", "key": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // Finish a run (of a variant without the HTTP call nothing answers), then tag its draft
    // through the evaluation routes.
    let local = SOURCE
        .replace("id: reply\n", "id: local\n")
        .replace("approved: [notify, keep]", "approved: keep")
        .replace(
            "  - id: notify\n    kind: output\n    http:\n      url: \"http://127.0.0.1:9/notify\"\n      method: POST\n      body: \"{{ check.text }}\"\n",
            "",
        );
    assert!(!local.contains("notify"), "{local}");
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            "/api/blueprints",
            Some(json!({ "source": local })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, started) = app
        .call(
            reqwest::Method::POST,
            "/api/runs",
            Some(json!({ "blueprint": "local", "payload": { "customer": "Bo" }, "wait": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let (_, tasks) = app.get("/api/tasks").await;
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    let (status, decided) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/tasks/{task}/decision"),
            Some(json!({ "action": "approve", "by": "dana" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    app.engine.settle_all().await;

    let (status, queue) = app.get("/api/eval/queue?by=eve").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let draft = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["node"] == "draft")
        .unwrap_or_else(|| panic!("no draft in {queue:#}"));
    let output = draft["output"].as_str().unwrap().to_owned();
    let tag = draft["allowed_tags"][0].as_str().unwrap().to_owned();
    let (status, tagged) = app
        .call(
            reqwest::Method::POST,
            "/api/feedback/tags",
            Some(json!({ "output": output, "tags": [tag], "rating": 4, "by": "eve" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tagged}");
    assert_eq!(tagged["feedback"]["tags"], json!([tag]));
    let (_, feedback) = app.get("/api/feedback?by=eve").await;
    assert_eq!(feedback[0]["rating"], 4, "{feedback}");
    let (_, progress) = app.get("/api/eval/progress").await;
    let eve = progress
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["evaluator"] == "eve")
        .unwrap_or_else(|| panic!("{progress}"));
    assert_eq!(eve["done"], 1);
    let (_, queue_after) = app.get("/api/eval/queue?by=eve").await;
    assert_eq!(
        eve["remaining"].as_u64().unwrap() as usize,
        queue_after.as_array().unwrap().len()
    );
    let (status, untagged) = app
        .call(
            reqwest::Method::POST,
            "/api/feedback/untag",
            Some(json!({ "output": output, "tags": [tag], "by": "eve" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{untagged}");
    assert_eq!(untagged["feedback"]["tags"], json!([]));
    let (status, taxonomy) = app.get("/api/taxonomy?blueprint=local").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        taxonomy
            .as_array()
            .unwrap()
            .iter()
            .any(|t| *t == json!(tag))
    );
}

#[tokio::test]
async fn the_ui_is_served_with_a_strict_csp_and_api_misses_stay_json() {
    let app = App::start().await;
    for path in ["/", "/inbox/deep/link", "/assets/app.js"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        let body = resp.text().await.unwrap();
        if path.ends_with(".js") {
            assert_eq!(body, "console.log('app')");
        } else {
            assert!(body.contains("<title>ProcessOps</title>"), "{path}: {body}");
        }
    }
    let (status, err) = app.get("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "not_found", "{err}");
}

#[tokio::test]
async fn without_a_built_ui_the_root_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), Durability::Process).unwrap();
    let engine = Engine::new(EngineConfig {
        store,
        registry: Arc::new(Registry::default()),
        providers: HashMap::new(),
        outputs_dir: dir.path().join("out"),
    })
    .unwrap();
    let (router, _) = http::router(Service::new(engine, Vec::new()));
    let router = http::with_ui(router, Some(Path::new("/nonexistent/ui/dist")));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.text().await.unwrap().contains("npm --prefix ui"));
    // The profile needs a project folder: a clear 501, not a crash.
    let resp = client
        .get(format!("http://{addr}/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
}
