//! The hub's `GET /metrics` over a real socket, on SQLite and on PostgreSQL: requests, devices,
//! events accepted, conflicting and refused, conflicts, as a device's pushes change them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use common::{Backend, HubSite, test_options};
use processops_core::journal::{Action, Decision};
use processops_hub::{Hub, Planted, UserRecord};
use processops_sync::{Change, EnrolRequest, EnrolResponse, Event, Role, WIRE_VERSION};
use serde_json::json;
use uuid::Uuid;

async fn serve(hub: Hub) -> String {
    let (router, _) = processops_hub::http::router(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

async fn enrol(hub: &Hub, team: &str, user: &str, from: u8) -> EnrolResponse {
    let code = hub.enrolment(None, team, user).await.unwrap();
    hub.enrol(
        EnrolRequest {
            code: code.code,
            device_name: format!("{user}'s laptop"),
        },
        std::net::IpAddr::from([10, 0, 1, from]),
    )
    .await
    .unwrap()
}

fn put(name: &str, roles: Vec<Role>, scopes: &[&str]) -> UserRecord {
    UserRecord {
        name: name.into(),
        roles,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Push over HTTP as a device; the status.
async fn push(base: &str, who: &EnrolResponse, seq: u64, change: Change) -> u16 {
    let event = Event {
        id: Uuid::now_v7(),
        device: who.device,
        seq,
        actor: who.user.clone(),
        at: 0,
        change,
    };
    reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(&who.token)
        .json(&json!({"wire": WIRE_VERSION, "events": [event]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn approve(task: Uuid, base: Uuid, by: &str) -> Change {
    Change::Decided {
        task,
        base,
        decision: Decision {
            action: Action::Approve,
            by: by.into(),
            text: None,
            reason: None,
        },
    }
}

struct Metrics(String);

impl Metrics {
    async fn scrape(base: &str) -> Self {
        let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let text = resp.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "not OpenMetrics text:\n{text}");
        Self(text)
    }

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
}

async fn metrics_follow_pushes(backend: Backend) {
    let site = HubSite::new(backend);
    let hub = site.open(Planted::None, test_options()).await;
    hub.create_team("t", "admin").await.unwrap();
    hub.put_user(None, "t", put("eng", vec![Role::Engine], &[]))
        .await
        .unwrap();
    for name in ["ana", "bob"] {
        hub.put_user(None, "t", put(name, vec![Role::Approver], &["manager"]))
            .await
            .unwrap();
    }
    let eng = enrol(&hub, "t", "eng", 1).await;
    let ana = enrol(&hub, "t", "ana", 2).await;
    let bob = enrol(&hub, "t", "bob", 3).await;
    let base = serve(hub).await;

    let m = Metrics::scrape(&base).await;
    assert_eq!(m.value(r#"processops_hub_devices{team="t"}"#), 3.0);
    assert_eq!(
        m.value(r#"processops_hub_team_events_total{team="t"}"#),
        0.0
    );
    assert_eq!(m.value(r#"processops_hub_open_conflicts{team="t"}"#), 0.0);
    assert_eq!(
        m.get(r#"processops_hub_events_total{team="t",verdict="accepted"}"#),
        None
    );

    // The engine publishes a task; a push after a gap is refused.
    let task = Uuid::now_v7();
    let created = Event {
        id: Uuid::now_v7(),
        device: eng.device,
        seq: 1,
        actor: "eng".into(),
        at: 0,
        change: Change::TaskCreated {
            task,
            run: Uuid::now_v7(),
            blueprint: "invoice".into(),
            role: "manager".into(),
            body: json!({"draft": "Pay 1,200 EUR"}),
        },
    };
    let status = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(&eng.token)
        .json(&json!({"wire": WIRE_VERSION, "events": [created]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        push(&base, &eng, 5, approve(task, created.id, "eng")).await,
        409
    );
    // Two approvers decide on the same head: the first is accepted, the second conflicts.
    assert_eq!(
        push(&base, &ana, 1, approve(task, created.id, "ana")).await,
        200
    );
    assert_eq!(
        push(&base, &bob, 1, approve(task, created.id, "bob")).await,
        200
    );

    let m = Metrics::scrape(&base).await;
    assert_eq!(
        m.value(r#"processops_hub_events_total{team="t",verdict="accepted"}"#),
        2.0
    );
    assert_eq!(
        m.value(r#"processops_hub_events_total{team="t",verdict="conflict"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"processops_hub_events_refused_total{team="t",code="sequence_gap"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"processops_hub_team_events_total{team="t"}"#),
        3.0
    );
    assert_eq!(m.value(r#"processops_hub_conflicts_total{team="t"}"#), 1.0);
    assert_eq!(m.value(r#"processops_hub_open_conflicts{team="t"}"#), 1.0);
    assert_eq!(m.value(r#"processops_hub_devices{team="t"}"#), 3.0);
    assert_eq!(
        m.value(
            r#"processops_hub_http_requests_total{method="POST",route="/v1/events",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        m.value(
            r#"processops_hub_http_requests_total{method="POST",route="/v1/events",status="409"}"#
        ),
        1.0
    );
    assert!(m.value(r#"processops_hub_last_event_age_seconds{team="t"}"#) >= 0.0);

    // Unknown paths share one label instead of one series each.
    reqwest::get(format!("{base}/no/such/{}", Uuid::now_v7()))
        .await
        .unwrap();
    let m = Metrics::scrape(&base).await;
    assert_eq!(
        m.value(
            r#"processops_hub_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_pushes_on_sqlite() {
    metrics_follow_pushes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_pushes_on_postgres() {
    metrics_follow_pushes(Backend::Postgres).await;
}
