//! Change control over the real HTTP API: a version is proposed, piloted with its cohort,
//! promoted by governance (never its author), superseded, rolled back; pilot tasks stay with
//! the cohort; every move is in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use processops_api::http;
use processops_api::{AlertsQuery, Service};
use processops_core::identity::Directory;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use processops_store::{AuditFilter, Durability, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

const V1: &str = r#"id: refunds
name: Refund replies
lifecycle:
  owner: olga
  pilot: { roles: [pilot-crew] }
start: draft
triggers:
  - { kind: manual, id: form }
agents:
  writer: { model: scripted, temperature: 0 }
nodes:
  - id: draft
    kind: prompt
    agent: writer
    template: |
      Draft a refund reply.
      Keep it short.
    next: check
  - id: check
    kind: review
    draft: "{{ draft.text }}"
    role: support-agent
    on: { approved: done }
  - id: done
    kind: transform
    set: { ok: "yes" }
"#;

fn v2() -> String {
    V1.replace(
        "Keep it short.",
        "Keep it short and name the refund amount.",
    )
}

struct Api {
    base: String,
    http: reqwest::Client,
    engine: Engine,
    registry: Arc<Registry>,
    _model: ScriptedServer,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("processops.db"), Durability::Process).unwrap();
        let registry = Arc::new(Registry::default());
        registry.insert(Arc::new(Compiled::from_source(V1).unwrap()));
        // The blueprint `dev synthetic-metrics` fills, owned by a role.
        let bp0 = V1
            .replace("id: refunds", "id: bp0")
            .replace("owner: olga", "owner: people-ops");
        registry.insert(Arc::new(Compiled::from_source(&bp0).unwrap()));
        let model = ScriptedServer::start(ScriptedConfig::default())
            .await
            .unwrap();
        let client = OpenAiCompatible::new(OpenAiConfig::new(model.base_url())).unwrap();
        let mut providers: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
        providers.insert("default".into(), Arc::new(client));
        let engine = Engine::new(EngineConfig {
            store,
            registry: registry.clone(),
            providers,
            outputs_dir: dir.path().join("outputs"),
        })
        .unwrap();
        let roles = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        engine.set_directory(Directory::new(BTreeMap::from([
            ("dee".to_owned(), roles(&["workflow-designer"])),
            (
                "gil".to_owned(),
                roles(&["workflow-designer", "governance-lead"]),
            ),
            ("gwen".to_owned(), roles(&["governance-lead"])),
            ("max".to_owned(), roles(&["support-agent", "pilot-crew"])),
            ("pia".to_owned(), roles(&["support-agent"])),
            ("hana".to_owned(), roles(&["people-ops"])),
        ])));
        engine.record_versions().await.unwrap();
        let service = Service::new(engine.clone(), Vec::new());
        let (router, _) = http::router(service);
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
            engine,
            registry,
            _model: model,
            _dir: dir,
        }
    }

    /// The designer saves a new version of the file.
    async fn edit_file(&self, source: &str) -> String {
        let c = Arc::new(Compiled::from_source(source).unwrap());
        let hash = c.hash.clone();
        self.registry.insert(c);
        self.engine.record_versions().await.unwrap();
        hash
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
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn stage(&self, version: &str, stage: &str, by: &str) -> (StatusCode, Value) {
        self.post(
            "/api/versions/stage",
            json!({ "blueprint": "refunds", "version": version, "stage": stage, "by": by }),
        )
        .await
    }

    /// Start a run (as `by`, or from a trigger) and return the version it ran.
    async fn run_as(&self, by: Option<&str>) -> String {
        let mut body = json!({ "blueprint": "refunds", "payload": {}, "wait": true });
        if let Some(by) = by {
            body["by"] = json!(by);
        }
        let (status, started) = self.post("/api/runs", body).await;
        assert!(status.is_success(), "{status} {started}");
        let run = started["run_id"].as_str().unwrap().to_owned();
        let (_, detail) = self.get(&format!("/api/runs/{run}")).await;
        detail["run"]["version"].as_str().unwrap().to_owned()
    }

    async fn stages(&self) -> BTreeMap<String, String> {
        let (status, v) = self.get("/api/versions?blueprint=refunds").await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| {
                Some((
                    x["version"].as_str()?.to_owned(),
                    x["stage"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    async fn task_versions(&self, viewer: &str) -> Vec<String> {
        let (status, tasks) = self
            .get(&format!("/api/tasks?viewer={viewer}&limit=100"))
            .await;
        assert_eq!(status, StatusCode::OK, "{tasks}");
        tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["version"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The id of the first listed task of `version`.
fn task_of(tasks: &Value, version: &str) -> String {
    tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["version"] == version)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_move_through_the_lifecycle_under_governance() {
    let api = Api::start().await;
    let v1 = api.engine.blueprint("refunds").unwrap().hash.clone();

    // Unmanaged: the file's version runs, and the listing says how to take it in hand.
    assert_eq!(api.run_as(None).await, v1);
    let (_, listed) = api.get("/api/versions?blueprint=refunds").await;
    assert_eq!(listed["managed"], false, "{listed}");

    // Proposals need a note and a designer.
    let (status, body) = api
        .post(
            "/api/versions/propose",
            json!({ "blueprint": "refunds", "by": "gil", "note": "  " }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api
        .post(
            "/api/versions/propose",
            json!({ "blueprint": "refunds", "by": "pia", "note": "mine" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = api
        .post(
            "/api/versions/propose",
            json!({ "blueprint": "refunds", "by": "gil", "note": "First governed version" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stage"], "draft");
    assert_eq!(body["author"], "gil");

    // A draft cannot skip the pilot; its author may pilot it but not promote it.
    let (status, body) = api.stage(&v1, "approved", "gwen").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&body).contains("move it to pilot first"), "{body}");
    assert_eq!(api.stage(&v1, "pilot", "gil").await.0, StatusCode::OK);
    let (status, body) = api.stage(&v1, "monitored", "gil").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&body),
        "`gil` proposed this version and cannot promote it; another member of `governance-lead` must"
    );
    let (status, body) = api.stage(&v1, "monitored", "dee").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&body).contains("governance-lead"), "{body}");
    assert_eq!(api.stage(&v1, "monitored", "gwen").await.0, StatusCode::OK);
    let (status, _) = api.stage(&v1, "approved", "gil").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the author again");
    assert_eq!(api.stage(&v1, "approved", "gwen").await.0, StatusCode::OK);
    assert_eq!(api.stages().await[&v1], "approved");

    // The designer edits the file and proposes the change, citing the feedback behind it.
    let v2 = api.edit_file(&v2()).await;
    assert_ne!(v1, v2);
    // Until v2 is piloted, everyone runs the approved v1 (not the newer file).
    assert_eq!(api.run_as(Some("max")).await, v1);
    let (status, body) = api
        .post(
            "/api/versions/propose",
            json!({ "blueprint": "refunds", "by": "dee", "note": "Name the amount",
                    "feedback": ["tag:missing-amount"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], v2.as_str());
    assert_eq!(body["feedback"], json!(["tag:missing-amount"]));

    // The diff between the approved version and the proposal: one prompt line.
    let (status, diff) = api.get("/api/versions/diff?blueprint=refunds").await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(
        (diff["from"].as_str(), diff["to"].as_str()),
        (Some(v1.as_str()), Some(v2.as_str()))
    );
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{diff:#}");
    assert_eq!(changes[0]["area"], "prompts");
    assert_eq!(changes[0]["subject"], "node draft (prompt)");
    assert_eq!(changes[0]["field"], "template");
    assert!(
        changes[0]["lines"]
            .as_array()
            .unwrap()
            .contains(&json!({ "tag": "+", "text": "Keep it short and name the refund amount." })),
        "{diff:#}"
    );

    // The pilot: the cohort (role pilot-crew) gets v2; everyone else and triggers keep v1.
    assert_eq!(api.stage(&v2, "pilot", "dee").await.0, StatusCode::OK);
    assert_eq!(api.run_as(Some("max")).await, v2);
    assert_eq!(api.run_as(Some("pia")).await, v1);
    assert_eq!(api.run_as(None).await, v1);

    // Pilot tasks are the cohort's: pia never sees or decides one.
    let seen_by_pia = api.task_versions("pia").await;
    assert!(!seen_by_pia.is_empty());
    assert!(seen_by_pia.iter().all(|v| *v == v1), "{seen_by_pia:?}");
    let seen_by_max = api.task_versions("max").await;
    assert!(seen_by_max.contains(&v2) && seen_by_max.contains(&v1));
    let (_, tasks) = api.get("/api/tasks?limit=100").await;
    let pilot_task = task_of(&tasks, &v2);
    let (status, body) = api
        .post(
            &format!("/api/tasks/{pilot_task}/decision"),
            json!({ "action": "approve", "by": "pia" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(message(&body).contains("not in the pilot cohort"), "{body}");
    let (status, body) = api
        .post(
            &format!("/api/tasks/{pilot_task}/decision"),
            json!({ "action": "approve", "by": "max" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Its prompts changed, so approving it needs the regression gate's result first.
    assert_eq!(api.stage(&v2, "monitored", "gil").await.0, StatusCode::OK);
    let (status, body) = api.stage(&v2, "approved", "gwen").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message(&body).contains("run the regression gate first"),
        "{body}"
    );
    // The eval set: a v1 review a person edited. The gate replays it on v2 (the changed
    // prompt gets a fresh reply from the model) and scores both drafts against the edit.
    let v1_task = task_of(&tasks, &v1);
    let (status, body) = api
        .post(
            &format!("/api/tasks/{v1_task}/decision"),
            json!({ "action": "edit", "by": "pia", "text": "We refunded 40 EUR today." }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, gate) = api
        .post(
            "/api/versions/gate",
            json!({ "blueprint": "refunds", "by": "gwen", "version": v2 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{gate}");
    assert_eq!(gate["candidate_version"], v2.as_str());
    assert_eq!(gate["baseline_version"], v1.as_str());
    let cases = gate["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{gate:#}");
    assert_eq!(cases[0]["approved"], "We refunded 40 EUR today.");
    assert!(cases[0]["error"].is_null(), "{gate:#}");
    let candidate = cases[0]["candidate_draft"].as_str().unwrap();
    assert!(!candidate.is_empty());
    assert!(cases[0]["baseline_score"].as_f64().unwrap() < 1.0);

    // Promoted and scaled: v1 retires (superseded); everyone runs v2.
    assert_eq!(api.stage(&v2, "approved", "gwen").await.0, StatusCode::OK);
    let stages = api.stages().await;
    assert_eq!(
        (stages[&v1].as_str(), stages[&v2].as_str()),
        ("retired", "approved")
    );
    assert_eq!(api.run_as(Some("pia")).await, v2);
    // Its tasks are everyone's now.
    assert!(api.task_versions("pia").await.contains(&v2));

    // One-step rollback, by governance only.
    let (status, _) = api
        .post(
            "/api/versions/rollback",
            json!({ "blueprint": "refunds", "by": "dee" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api
        .post(
            "/api/versions/rollback",
            json!({ "blueprint": "refunds", "by": "gwen", "note": "amounts were wrong" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stages = api.stages().await;
    assert_eq!(
        (stages[&v1].as_str(), stages[&v2].as_str()),
        ("approved", "retired")
    );
    assert_eq!(api.run_as(None).await, v1);
    let history = body["history"].as_array().unwrap();
    let last = &history[history.len() - 1];
    assert_eq!(
        (last["to"].as_str(), last["reason"].as_str()),
        (Some("approved"), Some("restored"))
    );
    // A second rollback has nothing earlier to go back to.
    let (status, body) = api
        .post(
            "/api/versions/rollback",
            json!({ "blueprint": "refunds", "by": "gwen" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message(&body).contains("no earlier approved version"),
        "{body}"
    );

    // Every proposal and move is in the audit log, and the chain holds.
    let store = api.engine.store();
    let entries = store
        .audit_entries(&AuditFilter {
            action: Some("version.".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let proposed = entries
        .iter()
        .filter(|e| e.action == "version.proposed")
        .count();
    let staged: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "version.staged")
        .map(|e| {
            (
                e.actor.as_str(),
                e.after.as_ref().unwrap()["stage"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(proposed, 2);
    assert!(
        staged.contains(&("gwen", "approved".to_owned())),
        "{staged:?}"
    );
    // Pilot, monitor, approve v1; pilot, monitor, approve v2 and retire v1; the rollback's two.
    assert_eq!(staged.len(), 9, "{staged:?}");
    // The approval of v2 carries the gate's result.
    let approval = entries
        .iter()
        .find(|e| {
            e.action == "version.staged"
                && e.subject == format!("refunds@{v2}")
                && e.after.as_ref().unwrap()["stage"] == "approved"
        })
        .unwrap();
    assert_eq!(
        approval.after.as_ref().unwrap()["gate"]["cases"],
        1,
        "{approval:?}"
    );
    assert!(entries.iter().any(|e| e.action == "version.gated"));
    assert!(store.audit_verify().unwrap().is_ok());
}

/// Drift crossing the threshold alerts the version's owner once per quiet period; stable
/// data alerts no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drifting_versions_alert_their_owner_once() {
    for planted in [true, false] {
        let api = Api::start().await;
        let store = api.engine.store();
        store
            .insert_synthetic_metrics(4_000, 1, 35, 7, planted)
            .await
            .unwrap();
        let service = Service::new(api.engine.clone(), Vec::new());
        let sent = service.check_drift().await.unwrap();
        if !planted {
            assert!(sent.is_empty(), "stable data alerted: {sent:?}");
            continue;
        }
        assert!(!sent.is_empty(), "the planted drift was not flagged");
        for a in &sent {
            assert_eq!(a.blueprint, "bp0");
            assert_eq!(a.owner.as_deref(), Some("people-ops"));
            assert!(a.drift >= 0.25, "{a:?}");
            assert_eq!(a.component, "decisions", "{a:?}");
        }
        // Checked again within the quiet period: nothing new.
        assert!(service.check_drift().await.unwrap().is_empty());
        // Addressed to the owner role's members, over HTTP too.
        let for_hana = service
            .drift_alerts(&AlertsQuery {
                owner: Some("hana".into()),
                since: None,
            })
            .unwrap();
        assert_eq!(for_hana.len(), sent.len());
        let (status, body) = api.get("/api/alerts?owner=pia").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!([]));
        let (_, all) = api.get("/api/alerts").await;
        assert_eq!(all.as_array().unwrap().len(), sent.len());
        let flagged = store
            .audit_entries(&AuditFilter {
                action: Some("drift.flagged".into()),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(flagged.len(), sent.len());
        assert_eq!(flagged[0].after.as_ref().unwrap()["owner"], "people-ops");
    }
}
