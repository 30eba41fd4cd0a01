//! The hub over a real socket: the security matrix (every endpoint × no token, revoked token,
//! wrong team, wrong role, forged device or actor → the right status, nothing written), the
//! rate limits, a sync round through `HttpTransport`, no secret in any log line, and the
//! committed OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{Backend, HubSite, LOCAL, test_options};
use processops_core::journal::{Action, Decision};
use processops_hub::{Hub, HubOptions, Planted, UserRecord};
use processops_sync::{
    Change, EnrolRequest, EnrolResponse, Event, HttpTransport, Options, PushRequest, Role,
    WIRE_VERSION, sync_once,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// Everything the hub logs, for the secret scan.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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

/// In-process enrolments come from their own addresses, outside the socket tests' bucket.
async fn enrol(hub: &Hub, team: &str, user: &str) -> EnrolResponse {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let from = std::net::IpAddr::from([
        10,
        0,
        0,
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    ]);
    let code = hub.enrolment(None, team, user).await.unwrap();
    hub.enrol(
        EnrolRequest {
            code: code.code,
            device_name: format!("{user}'s laptop"),
        },
        from,
    )
    .await
    .unwrap()
}

fn user(name: &str, roles: Vec<Role>, scopes: &[&str]) -> UserRecord {
    UserRecord {
        name: name.into(),
        roles,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

struct World {
    base: String,
    hub: Hub,
    admin: EnrolResponse,
    ana: EnrolResponse,
    eve: EnrolResponse,
    eng: EnrolResponse,
    /// A second engine: it does not own the task.
    eng2: EnrolResponse,
    mallory: EnrolResponse,
    revoked: EnrolResponse,
    task: Uuid,
    head: Uuid,
    _site: HubSite,
}

async fn world(options: HubOptions) -> World {
    let site = HubSite::new(Backend::Sqlite);
    let hub = site.open(Planted::None, options).await;
    hub.create_team("t", "admin").await.unwrap();
    hub.put_user(None, "t", user("ana", vec![Role::Approver], &["manager"]))
        .await
        .unwrap();
    hub.put_user(None, "t", user("eve", vec![Role::Evaluator], &[]))
        .await
        .unwrap();
    for name in ["eng", "eng2"] {
        hub.put_user(None, "t", user(name, vec![Role::Engine], &[]))
            .await
            .unwrap();
    }
    hub.put_user(None, "t", user("gone", Role::ALL.to_vec(), &["*"]))
        .await
        .unwrap();
    hub.create_team("other", "mallory").await.unwrap();
    let admin = enrol(&hub, "t", "admin").await;
    let ana = enrol(&hub, "t", "ana").await;
    let eve = enrol(&hub, "t", "eve").await;
    let eng = enrol(&hub, "t", "eng").await;
    let eng2 = enrol(&hub, "t", "eng2").await;
    let mallory = enrol(&hub, "other", "mallory").await;
    let revoked = enrol(&hub, "t", "gone").await;
    hub.revoke(None, "t", revoked.device).await.unwrap();
    // The engine publishes one task for ana's role.
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
    let p = hub.authenticate(Some(&eng.token), LOCAL).await.unwrap();
    hub.push(
        &p,
        PushRequest {
            wire: WIRE_VERSION,
            events: vec![created.clone()],
        },
    )
    .await
    .unwrap();
    let base = serve(hub.clone()).await;
    World {
        base,
        hub,
        admin,
        ana,
        eve,
        eng,
        eng2,
        mallory,
        revoked,
        task,
        head: created.id,
        _site: site,
    }
}

fn decision_by(w: &World, who: &EnrolResponse, device: Uuid, actor: &str) -> Value {
    json!({"wire": WIRE_VERSION, "events": [Event {
        id: Uuid::now_v7(),
        device,
        seq: 1,
        actor: actor.into(),
        at: 0,
        change: Change::Decided {
            task: w.task,
            base: w.head,
            decision: Decision { action: Action::Approve, by: who.user.clone(), text: None, reason: None },
        },
    }]})
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let url = format!("{base}{path}");
    let mut req = match method {
        "GET" => client.get(url),
        "PUT" => client.put(url),
        _ => client.post(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// The team's log length and every device's sequence: what "nothing written" compares.
async fn written(w: &World) -> (usize, Vec<(Uuid, u64)>, Vec<String>) {
    let p = w
        .hub
        .authenticate(Some(&w.admin.token), LOCAL)
        .await
        .unwrap();
    let log = w.hub.pull(&p, 0, None).await.unwrap().events.len();
    let devices = w
        .hub
        .devices(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.last_seq))
        .collect();
    let users = w
        .hub
        .users(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|u| format!("{}:{:?}:{:?}", u.name, u.roles, u.scopes))
        .collect();
    (log, devices, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_matrix_holds() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let w = world(test_options()).await;
    let before = written(&w).await;
    let ana_device = w.ana.device;
    let target = w.eve.device;
    let endpoints: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/me".into(), None),
        (
            "POST",
            "/v1/events".into(),
            Some(decision_by(&w, &w.ana, ana_device, "ana")),
        ),
        ("GET", "/v1/events?after=0".into(), None),
        ("GET", "/v1/users".into(), None),
        (
            "PUT",
            "/v1/users/intruder".into(),
            Some(json!({"roles": ["admin"], "scopes": ["*"]})),
        ),
        (
            "POST",
            "/v1/enrolments".into(),
            Some(json!({"user": "ana"})),
        ),
        ("GET", "/v1/devices".into(), None),
        ("POST", format!("/v1/devices/{target}/revoke"), None),
    ];
    let admin_only = [
        "/v1/users",
        "/v1/users/intruder",
        "/v1/enrolments",
        "/v1/devices",
    ];
    for (method, path, body) in &endpoints {
        // No token, a garbage token, a revoked token: 401, whatever the endpoint.
        for token in [
            None,
            Some("poh_not-a-token"),
            Some(w.revoked.token.as_str()),
        ] {
            let (status, err) = call(&w.base, method, path, token, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {err}"
            );
            assert_eq!(err["code"], "unauthorized", "{method} {path}");
        }
        // Wrong role: eve is an evaluator, not an approver or admin.
        let (status, err) = call(&w.base, method, path, Some(&w.eve.token), body.clone()).await;
        let admin_endpoint =
            admin_only.iter().any(|a| path.starts_with(a)) || path.ends_with("/revoke");
        let expected = if admin_endpoint || *path == "/v1/events" && *method == "POST" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{method} {path} as eve: {err}");
    }
    // Forged device and forged actor: 403.
    for body in [
        decision_by(&w, &w.ana, w.eve.device, "ana"),
        decision_by(&w, &w.ana, ana_device, "bob"),
    ] {
        let (status, err) = call(
            &w.base,
            "POST",
            "/v1/events",
            Some(&w.ana.token),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    }
    // Out of scope: ana decides `manager` tasks only; an engine decides (by policy) only the
    // tasks its device owns.
    w.hub
        .put_user(None, "t", user("ana", vec![Role::Approver], &["legal"]))
        .await
        .unwrap();
    let (status, err) = call(
        &w.base,
        "POST",
        "/v1/events",
        Some(&w.ana.token),
        Some(decision_by(&w, &w.ana, ana_device, "ana")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("may not decide tasks for role `manager`"),
        "{err}"
    );
    let (status, _) = call(
        &w.base,
        "POST",
        "/v1/events",
        Some(&w.eng2.token),
        Some(decision_by(&w, &w.eng2, w.eng2.device, "eng2")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    w.hub
        .put_user(None, "t", user("ana", vec![Role::Approver], &["manager"]))
        .await
        .unwrap();
    // Wrong team: mallory administers team `other`; she sees none of `t`'s data and cannot
    // touch its devices.
    let (status, page) = call(
        &w.base,
        "GET",
        "/v1/events?after=0",
        Some(&w.mallory.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
    let (status, _) = call(
        &w.base,
        "POST",
        &format!("/v1/devices/{target}/revoke"),
        Some(&w.mallory.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, users) = call(&w.base, "GET", "/v1/users", Some(&w.mallory.token), None).await;
    assert!(!users.to_string().contains("\"ana\""), "{users}");

    assert_eq!(
        written(&w).await,
        before,
        "a refused request wrote something"
    );

    // The same requests from the rightful callers work.
    let (status, answer) = call(
        &w.base,
        "POST",
        "/v1/events",
        Some(&w.ana.token),
        Some(decision_by(&w, &w.ana, ana_device, "ana")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["verdict"]["verdict"], "accepted");
    let (status, code) = call(
        &w.base,
        "POST",
        "/v1/enrolments",
        Some(&w.admin.token),
        Some(json!({"user": "ana"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // No token or enrolment code in any log line.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for secret in [
        &w.admin.token,
        &w.ana.token,
        &w.eve.token,
        &w.eng.token,
        &w.mallory.token,
        &w.revoked.token,
    ] {
        assert!(!text.contains(secret.as_str()), "a token reached the logs");
        assert!(
            !text.contains(&secret[4..20]),
            "part of a token reached the logs"
        );
    }
    assert!(
        !text.contains(code["code"].as_str().unwrap()),
        "an enrolment code reached the logs"
    );
}

#[tokio::test]
async fn enrolment_and_bad_tokens_are_rate_limited() {
    let w = world(HubOptions {
        enrolments_per_minute: 3,
        failed_logins_per_minute: 5,
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _) = call(
            &w.base,
            "POST",
            "/v1/enrol",
            None,
            Some(json!({"code": "WRONG-CODE1", "device_name": "x"})),
        )
        .await;
        statuses.push(status.as_u16());
    }
    // Over the socket (127.0.0.1): the first three wrong codes are 401, then 429.
    assert_eq!(statuses, vec![401, 401, 401, 429, 429, 429]);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, _) = call(&w.base, "GET", "/v1/me", Some("poh_wrong"), None).await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 429, 429]);
    // A good token still works from the same address.
    let (status, me) = call(&w.base, "GET", "/v1/me", Some(&w.ana.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"], "ana");
}

#[tokio::test]
async fn a_device_syncs_over_http_and_codes_are_one_time() {
    let w = world(test_options()).await;
    // An enrolment code works once.
    let code = w.hub.enrolment(None, "t", "ana").await.unwrap();
    let body = json!({"code": code.code.to_lowercase(), "device_name": "Ana's phone"});
    let (status, first) = call(&w.base, "POST", "/v1/enrol", None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, _) = call(&w.base, "POST", "/v1/enrol", None, Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let dir = tempfile::tempdir().unwrap();
    let store = processops_store::Store::open(
        &dir.path().join("ana.db"),
        processops_store::Durability::Process,
    )
    .unwrap();
    store
        .sync_enrol(
            Uuid::parse_str(first["device"].as_str().unwrap()).unwrap(),
            "ana".into(),
        )
        .await
        .unwrap();
    let transport = HttpTransport::new(&w.base, first["token"].as_str().unwrap()).unwrap();
    let report = sync_once(&store, &transport, Options::default())
        .await
        .unwrap();
    assert_eq!(report.pulled, 1, "the engine's task arrives");
    let view = store.sync_view().unwrap();
    let head = view.tasks[&w.task].head;
    store
        .sync_record(Change::Decided {
            task: w.task,
            base: head,
            decision: Decision {
                action: Action::Approve,
                by: "ana".into(),
                text: None,
                reason: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(
        store.sync_status().unwrap().unwrap().pending,
        1,
        "approved, pending sync"
    );
    let report = sync_once(&store, &transport, Options::default())
        .await
        .unwrap();
    assert_eq!((report.pushed, report.pending), (1, 0));
    assert!(store.sync_view().unwrap().tasks[&w.task].decision.is_some());
    // A new epoch (the hub was restored from a backup): the device pulls the whole log again
    // and ends where it was.
    let before = store.sync_view().unwrap();
    let epoch = w.hub.new_epoch(None, "t").await.unwrap();
    let report = sync_once(&store, &transport, Options::default())
        .await
        .unwrap();
    assert_eq!(report.cursor.epoch, epoch);
    assert_eq!(report.pulled, 2, "the task and the decision, again");
    assert_eq!(store.sync_view().unwrap(), before);
    assert!(w.hub.new_epoch(None, "nope").await.is_err());
    // A revoked device is refused, with a message that says what to do.
    w.hub
        .revoke(
            None,
            "t",
            Uuid::parse_str(first["device"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap();
    let err = sync_once(&store, &transport, Options::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("enrol the device again"), "{err}");
    assert!(store.sync_status().unwrap().unwrap().last_error.is_some());
}

#[test]
fn the_hub_openapi_document_is_committed_and_current() {
    let generated = processops_hub::http::openapi().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hub-openapi.json");
    if std::env::var("PROCESSOPS_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/hub-openapi.json is out of date; run\n\n    PROCESSOPS_BLESS=1 cargo test -p processops-hub --test http\n\nand commit it"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/v1/enrol", "/v1/events", "/v1/devices/{id}/revoke"] {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
}
