//! Two desktop engines and a hub, end to end over real HTTP: engine A owns a run whose review
//! task reaches B's inbox through the hub; both managers decide it while offline; on
//! reconnect exactly one decision is accepted, the other is a conflict both inboxes show, and
//! resolving it leaves the output fired exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use processops_api::local::Project;
use processops_api::{DecisionRequest, ResolveRequest, Service, TasksQuery};
use processops_hub::{AnyStore, Hub, HubOptions, SqliteHub, UserRecord};
use processops_sync::Role;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const BLUEPRINT: &str = r#"
id: purchase
name: Purchase approval
start: check
triggers:
  - kind: manual
    id: form
nodes:
  - kind: review
    id: check
    role: manager
    draft: "Buy {{ trigger.item }}"
    on: { approved: order, rejected: refused }
  - kind: output
    id: order
    file: { path: "orders/{{ run.id }}.txt", content: "{{ check.text }} approved by {{ check.by }}" }
  - kind: output
    id: refused
    file: { path: "refused/{{ run.id }}.txt", content: "{{ check.reason }}" }
"#;

/// A hub served over loopback HTTP from a SQLite file; it can be stopped and started again
/// on the same address (the network going away and coming back).
struct HubServer {
    db: std::path::PathBuf,
    addr: SocketAddr,
    stop: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl HubServer {
    async fn start(db: std::path::PathBuf, addr: SocketAddr) -> Self {
        let mut server = Self {
            db,
            addr,
            stop: None,
        };
        server.up().await;
        server
    }

    async fn open(&self) -> Hub {
        Hub::new(
            AnyStore::Sqlite(SqliteHub::open(&self.db).unwrap()),
            HubOptions::default(),
        )
    }

    async fn up(&mut self) {
        let (router, _) = processops_hub::http::router(self.open().await);
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let cancelled = stop.clone().cancelled_owned();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(cancelled)
            .await
            .unwrap();
        });
        self.stop = Some((stop, server));
    }

    /// Stop serving and wait until every connection is closed (kept-alive ones included).
    async fn down(&mut self) {
        if let Some((stop, server)) = self.stop.take() {
            stop.cancel();
            server.await.unwrap();
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct Desktop {
    _dir: tempfile::TempDir,
    project: Project,
    service: Service,
}

impl Desktop {
    /// A project enrolled as `user`, with `blueprint` (if any) in its blueprints folder.
    async fn new(hub: &HubServer, user: &str, blueprint: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::new(dir.path().to_path_buf(), None);
        if let Some(source) = blueprint {
            std::fs::create_dir_all(project.blueprints()).unwrap();
            std::fs::write(project.blueprints().join("blueprint.yaml"), source).unwrap();
        }
        let code = hub.open().await.enrolment(None, "t", user).await.unwrap();
        let store = project.open_store().unwrap();
        processops_api::hub::enrol(
            &project.data,
            &store,
            &hub.url(),
            &code.code,
            &format!("{user}'s laptop"),
        )
        .await
        .unwrap();
        drop(store);
        let (engine, problems) = project.engine(None, None).await.unwrap();
        let service = project.serving(engine, problems).unwrap();
        assert!(service.hub().is_some(), "an enrolled project links its hub");
        Self {
            _dir: dir,
            project,
            service,
        }
    }

    async fn sync(&self) {
        self.service.sync_now().await.unwrap();
    }

    fn task(&self, id: Uuid) -> processops_api::TaskSummary {
        self.service.task(id).unwrap().task
    }

    fn outputs(&self, folder: &str) -> Vec<String> {
        let dir = self.project.outputs().join(folder);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

fn decision(action: &str, by: &str) -> DecisionRequest {
    DecisionRequest {
        action: action.into(),
        by: by.into(),
        text: None,
        reason: (action == "reject").then(|| "the budget is spent".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offline_managers_decide_one_task_exactly_one_wins_and_the_output_fires_once() {
    let (_hub_dir, mut hub) = team(&[
        ("ana", vec![Role::Approver, Role::Engine], &["manager"]),
        ("ben", vec![Role::Approver], &["manager"]),
        ("eve", vec![Role::Evaluator], &[]),
    ])
    .await;
    // Ana's desktop runs the blueprint; Ben's only has an inbox.
    let a = Desktop::new(&hub, "ana", Some(BLUEPRINT)).await;
    let b = Desktop::new(&hub, "ben", None).await;
    let e = Desktop::new(&hub, "eve", None).await;

    let run = a
        .service
        .engine()
        .start_run("purchase", None, json!({ "item": "a standing desk" }), None)
        .await
        .unwrap()
        .run_id;
    a.service.engine().settle(run).await;
    let pending = a
        .service
        .tasks(&TasksQuery {
            status: Some("pending".into()),
            ..TasksQuery::default()
        })
        .unwrap();
    assert_eq!(pending.len(), 1);
    let task = pending[0].id;

    // The task reaches Ben's inbox, owned by Ana's engine.
    a.sync().await;
    b.sync().await;
    let on_b = b.task(task);
    assert_eq!(on_b.status, "pending");
    assert_eq!(on_b.title, pending[0].title);
    assert_eq!(on_b.owner, Some(a.link_device()));
    let version = &pending[0].version;
    assert!(
        b.service
            .engine()
            .store()
            .version(version)
            .unwrap()
            .is_some(),
        "the blueprint version the task came from reached Ben's device too"
    );

    // Eve evaluates; the hub would refuse her decision, so her device does (and keeps its
    // outbox clean instead of blocking it with a push the hub refuses).
    e.sync().await;
    let refused = e
        .service
        .decide(task, decision("approve", "eve"))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403, "{}", refused.message);
    assert!(
        refused.message.contains("may not decide `manager` tasks"),
        "{}",
        refused.message
    );
    assert_eq!(e.task(task).status, "pending");
    assert_eq!(e.service.sync_status().unwrap().pending, 0);

    // The network goes away; both decide.
    hub.down().await;
    let err = a.service.sync_now().await.unwrap_err();
    assert_eq!(err.status, 503, "{err:?}");
    assert!(err.message.contains("wait here"), "{}", err.message);
    let by_a = a
        .service
        .decide(task, decision("approve", "ana"))
        .await
        .unwrap();
    let by_b = b
        .service
        .decide(task, decision("reject", "ben"))
        .await
        .unwrap();
    assert!(by_a.pending_sync && by_b.pending_sync);
    a.service.engine().settle(run).await;
    assert_eq!(a.task(task).sync.as_deref(), Some("pending"));
    assert_eq!(b.task(task).sync.as_deref(), Some("pending"));
    assert!(
        a.outputs("orders").is_empty() && a.outputs("refused").is_empty(),
        "with a hub, no output fires before the hub accepts a decision"
    );
    assert_eq!(
        a.service.sync_status().unwrap().pending,
        1,
        "the decision waits here"
    );

    // Back online: Ana's approval reaches the hub first and is accepted; the run goes on.
    hub.up().await;
    a.sync().await;
    a.service.engine().settle(run).await;
    assert_eq!(a.service.run(run).unwrap().run.status, "completed");
    assert_eq!(a.outputs("orders").len(), 1);
    b.sync().await;
    a.sync().await;

    // Ben's rejection came late: a conflict, shown in both inboxes.
    for (who, desktop) in [("ana", &a), ("ben", &b)] {
        let t = desktop.task(task);
        assert_eq!(t.status, "decided", "{who}");
        assert_eq!(t.sync.as_deref(), Some("conflict"), "{who}");
        let decision = t.decision.unwrap();
        assert_eq!(
            (decision.action.as_str(), decision.by.as_str()),
            ("approve", "ana"),
            "{who} sees the accepted decision"
        );
        let conflicts = desktop.service.conflicts(Some(task)).unwrap();
        assert_eq!(conflicts.len(), 1, "{who}");
        assert_eq!(conflicts[0].actor, "ben");
        assert_eq!(conflicts[0].decision.action.as_str(), "reject");
        assert!(!conflicts[0].resolved);
        assert_eq!(desktop.service.sync_status().unwrap().open_conflicts, 1);
    }

    // Ben closes the conflict; both inboxes see it closed and the output still fired once.
    let conflict = b.service.conflicts(Some(task)).unwrap()[0].id;
    b.service
        .resolve_conflict(
            conflict,
            ResolveRequest {
                note: Some("fine, Ana's approval stands".into()),
            },
        )
        .await
        .unwrap();
    b.sync().await;
    a.sync().await;
    for (who, desktop) in [("ana", &a), ("ben", &b)] {
        let c = &desktop.service.conflicts(Some(task)).unwrap()[0];
        assert!(c.resolved, "{who}");
        assert_eq!(c.resolved_by.as_deref(), Some("ben"));
        assert_eq!(c.note.as_deref(), Some("fine, Ana's approval stands"));
        assert_eq!(
            desktop.task(task).sync.as_deref(),
            Some("accepted"),
            "{who}"
        );
        assert_eq!(desktop.service.sync_status().unwrap().open_conflicts, 0);
    }
    a.service.engine().settle(run).await;
    assert_eq!(
        a.outputs("orders").len(),
        1,
        "the output fired exactly once"
    );
    assert!(a.outputs("refused").is_empty());
    let (_, journal) = a.service.engine().store().load_run(run).unwrap().unwrap();
    let decisions: Vec<_> = journal
        .iter()
        .filter_map(|e| match &e.event {
            processops_core::journal::Event::DecisionRecorded { decision, .. } => Some(decision),
            _ => None,
        })
        .collect();
    assert_eq!(decisions.len(), 1, "the run recorded one decision");
    assert_eq!(decisions[0].by, "ana");
}

impl Desktop {
    fn link_device(&self) -> Uuid {
        self.service.sync_status().unwrap().device.unwrap()
    }
}

const SHARED: &str = r#"
id: digest
name: Shared digest
start: check
triggers:
  - kind: webhook
    id: event
  - kind: schedule
    id: hourly
    cron: "0 * * * *"
nodes:
  - kind: review
    id: check
    role: manager
    draft: "Digest"
    on: { approved: done }
  - kind: output
    id: done
    file: { path: "done/{{ run.id }}.txt", content: "done" }
"#;

/// A headless engine that shares its blueprints' triggers with the team's other engines.
async fn headless(hub: &HubServer, user: &str) -> Desktop {
    let d = Desktop::new(hub, user, Some(SHARED)).await;
    let engine = d.service.engine();
    engine.set_claims(std::sync::Arc::new(processops_api::hub::HubClaims::new(
        d.service.hub().unwrap().clone(),
        engine.store().clone(),
    )));
    d
}

/// A hub with team `t` and these users.
async fn team(users: &[(&str, Vec<Role>, &[&str])]) -> (tempfile::TempDir, HubServer) {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubServer::start(dir.path().join("hub.db"), "127.0.0.1:0".parse().unwrap()).await;
    let admin = hub.open().await;
    admin.create_team("t", "admin").await.unwrap();
    for (name, roles, scopes) in users {
        admin
            .put_user(
                None,
                "t",
                UserRecord {
                    name: (*name).into(),
                    roles: roles.clone(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                },
            )
            .await
            .unwrap();
    }
    (dir, hub)
}

fn runs(d: &Desktop) -> usize {
    d.service
        .engine()
        .store()
        .list_runs(&processops_store::RunFilter {
            limit: Some(100),
            ..processops_store::RunFilter::default()
        })
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_sharing_triggers_start_each_occurrence_once() {
    let (_hub_dir, mut hub) = team(&[
        ("engine-1", vec![Role::Engine], &[]),
        ("engine-2", vec![Role::Engine], &[]),
    ])
    .await;
    let one = headless(&hub, "engine-1").await;
    let two = headless(&hub, "engine-2").await;

    // A sender retries a webhook; the load balancer hands each delivery to another engine.
    let body = br#"{"week": 47}"#;
    let (a, b) = tokio::join!(
        one.service
            .webhook("digest", "event", body, None, Some("delivery-1")),
        two.service
            .webhook("digest", "event", body, None, Some("delivery-1")),
    );
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one engine must take the delivery: {other:?}"),
    };
    assert!(!won.duplicate);
    assert_eq!(
        (lost.status, lost.code),
        (409, "duplicate"),
        "{}",
        lost.message
    );
    assert_eq!(runs(&one) + runs(&two), 1);

    // Both engines' schedulers see the same fires; each fire runs once across the team.
    use processops_engine::triggers::fire_due_schedules;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-25T08:30:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    for d in [&one, &two] {
        // First sight of the schedule: it counts from now.
        assert!(
            fire_due_schedules(d.service.engine(), t0)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let later = t0 + chrono::Duration::minutes(45); // the 09:00 fire is due
    let (a, b) = tokio::join!(
        fire_due_schedules(one.service.engine(), later),
        fire_due_schedules(two.service.engine(), later),
    );
    assert_eq!(
        a.unwrap().len() + b.unwrap().len(),
        1,
        "the 09:00 fire ran once"
    );
    assert_eq!(runs(&one) + runs(&two), 2);

    // The hub goes away: the 10:00 fire waits instead of running twice (or not at all).
    hub.down().await;
    let even_later = t0 + chrono::Duration::minutes(95);
    let err = fire_due_schedules(one.service.engine(), even_later)
        .await
        .unwrap_err();
    assert!(
        matches!(err, processops_engine::EngineError::ClaimUnanswered { .. }),
        "{err}"
    );
    hub.up().await;
    let (a, b) = tokio::join!(
        fire_due_schedules(one.service.engine(), even_later),
        fire_due_schedules(two.service.engine(), even_later),
    );
    assert_eq!(
        a.unwrap().len() + b.unwrap().len(),
        1,
        "the 10:00 fire ran once"
    );
    assert_eq!(runs(&one) + runs(&two), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_enrols_from_the_app_and_syncs_at_once() {
    let (_hub_dir, hub) = team(&[("ben", vec![Role::Approver], &["manager"])]).await;
    let dir = tempfile::tempdir().unwrap();
    let project = Project::new(dir.path().to_path_buf(), None);
    let (engine, problems) = project.engine(None, None).await.unwrap();
    let service = project.serving(engine, problems).unwrap();
    assert!(service.hub().is_none());
    let cancel = CancellationToken::new();
    processops_api::local::spawn_background(
        &service,
        project.root.clone(),
        cancel.clone(),
        std::time::Duration::from_millis(50),
    );
    let request = |url: &str, code: &str| processops_api::EnrolHubRequest {
        url: url.into(),
        code: code.into(),
        device_name: Some("Ben's laptop".into()),
    };
    // A wrong code, an unreachable hub: clear answers, nothing changes.
    let err = service
        .enrol_hub(request(&hub.url(), "AAAAA-BBBBB"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (422, "enrolment_refused"),
        "{}",
        err.message
    );
    let err = service
        .enrol_hub(request("http://127.0.0.1:9", "AAAAA-BBBBB"))
        .await
        .unwrap_err();
    assert_eq!(err.status, 503, "{}", err.message);
    assert!(!service.sync_status().unwrap().enrolled);

    let code = hub.open().await.enrolment(None, "t", "ben").await.unwrap();
    let status = service
        .enrol_hub(request(&format!("{}/", hub.url()), &code.code))
        .await
        .unwrap();
    assert!(status.enrolled);
    assert_eq!(status.user.as_deref(), Some("ben"));
    // The sync loop started with the enrolment: a first round happens without a restart.
    let mut synced = false;
    for _ in 0..100 {
        if service.sync_status().unwrap().last_sync_at.is_some() {
            synced = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(synced, "the sync loop did not start");
    assert!(
        processops_api::hub::load_credentials(&project.data)
            .unwrap()
            .is_some()
    );
    let again = service
        .enrol_hub(request(&hub.url(), &code.code))
        .await
        .unwrap_err();
    assert_eq!(again.status, 409, "{}", again.message);
    cancel.cancel();
}
