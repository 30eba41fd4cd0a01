//! `processops bench hub`: the team hub over loopback HTTP, with real device stores and the
//! real sync client, on the SQLite and the PostgreSQL backend.
//!
//! Per backend and repeat, on a fresh hub (a new file, or a new PostgreSQL schema dropped
//! afterwards):
//! - **push**: one engine device with `--events` pending events runs a sync round; the time
//!   until the hub acknowledged all of them (the round's first pull request).
//! - **pull**: a second, fresh device pulls them all; the time until its cursor is the head.
//! - **idle round**: that device, up to date, runs `--idle-rounds` rounds with nothing new.
//! - **fleet**: `--devices` devices of another team each record an event and sync, in a loop,
//!   for `--seconds`.
//!
//! Every figure stands beside a baseline measured in the same run on the same machine (raw
//! inserts and reads of the same rows; a bare HTTP GET on the same server), because the
//! machine is shared and noisy: compare the ratios.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use clap::{Args, ValueEnum};
use processops_core::feedback::{Intent, OutputRef, TagKey};
use processops_core::journal::{Action, Decision};
use processops_hub::{AnyStore, Hub, HubOptions, PgHub, SqliteHub, UserRecord};
use processops_store::{Durability, Store, TagChange};
use processops_sync::{
    Change, EnrolRequest, Event, HttpTransport, Options, Principal, PullResponse, PushRequest,
    PushResponse, Role, Transport, TransportError, sync_once,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::bench::{median, percentile};

#[derive(Args)]
pub struct HubBenchArgs {
    /// Events one device pushes and another pulls.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Repeats per backend (the report gives medians over them).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Devices syncing at once in the fleet phase.
    #[arg(long, default_value_t = 50)]
    devices: usize,
    /// How long the fleet phase runs per repeat.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Idle rounds (nothing new) timed per repeat.
    #[arg(long, default_value_t = 200)]
    idle_rounds: usize,
    /// The PostgreSQL server for the team backend. Each repeat uses a fresh schema in it,
    /// dropped afterwards.
    #[arg(
        long,
        env = "PROCESSOPS_HUB_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// The backends to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<Backend>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn key(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// What one repeat on one backend measured (seconds for the 100k phases, milliseconds for
/// latencies).
struct Repeat {
    push_s: f64,
    push_round_s: f64,
    pull_s: f64,
    raw_insert_s: f64,
    raw_read_s: f64,
    event_bytes: f64,
    idle_p50: f64,
    idle_p99: f64,
    http_p50: f64,
    http_p99: f64,
    empty_pull_p50: f64,
    fleet_events_per_s: f64,
    fleet_rounds_per_s: f64,
    fleet_p50: f64,
    fleet_p99: f64,
    fleet_failed: f64,
    fleet_http_per_s: f64,
    fleet_http_p99: f64,
}

/// Generous limits: the benchmark enrols many devices from one address.
const OPTIONS: HubOptions = HubOptions {
    enrolments_per_minute: 1_000_000,
    failed_logins_per_minute: 1_000_000,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub async fn hub(a: HubBenchArgs) -> Result<ExitCode> {
    let mut backends: Vec<Backend> = Vec::new();
    for &b in &a.backends {
        if !backends.contains(&b) {
            backends.push(b);
        }
    }
    let mut results = serde_json::Map::new();
    for &backend in &backends {
        let mut repeats = Vec::new();
        for i in 0..a.repeats.max(1) {
            let r = one_repeat(&a, backend).await?;
            if !a.json {
                eprintln!(
                    "{} repeat {}/{}: push {:.2} s, pull {:.2} s (raw insert {:.2} s, raw read {:.2} s), idle p50 {:.2} ms, fleet {:.0} events/s p99 {:.1} ms",
                    backend.key(),
                    i + 1,
                    a.repeats.max(1),
                    r.push_s,
                    r.pull_s,
                    r.raw_insert_s,
                    r.raw_read_s,
                    r.idle_p50,
                    r.fleet_events_per_s,
                    r.fleet_p99,
                );
            }
            repeats.push(r);
        }
        let m = |f: fn(&Repeat) -> f64| median(repeats.iter().map(f).collect());
        results.insert(
            backend.key().into(),
            json!({
                "push_s": m(|r| r.push_s),
                "push_round_with_own_pull_s": m(|r| r.push_round_s),
                "pull_s": m(|r| r.pull_s),
                "baseline_raw_insert_s": m(|r| r.raw_insert_s),
                "baseline_raw_read_s": m(|r| r.raw_read_s),
                "push_vs_raw_insert": m(|r| r.push_s / r.raw_insert_s),
                "pull_vs_raw_read": m(|r| r.pull_s / r.raw_read_s),
                "event_bytes_avg": m(|r| r.event_bytes),
                "idle_round_p50_ms": m(|r| r.idle_p50),
                "idle_round_p99_ms": m(|r| r.idle_p99),
                "baseline_http_get_p50_ms": m(|r| r.http_p50),
                "baseline_http_get_p99_ms": m(|r| r.http_p99),
                "empty_pull_request_p50_ms": m(|r| r.empty_pull_p50),
                "idle_p50_vs_http_get": m(|r| r.idle_p50 / r.http_p50),
                "fleet_events_per_s": m(|r| r.fleet_events_per_s),
                "fleet_rounds_per_s": m(|r| r.fleet_rounds_per_s),
                "fleet_round_p50_ms": m(|r| r.fleet_p50),
                "fleet_round_p99_ms": m(|r| r.fleet_p99),
                "fleet_failed_rounds": m(|r| r.fleet_failed),
                "baseline_fleet_http_gets_per_s": m(|r| r.fleet_http_per_s),
                "baseline_fleet_http_get_p99_ms": m(|r| r.fleet_http_p99),
                "fleet_rounds_vs_http_gets": m(|r| r.fleet_rounds_per_s / r.fleet_http_per_s),
            }),
        );
    }
    let report = json!({
        "events": a.events, "repeats": a.repeats.max(1), "devices": a.devices,
        "fleet_seconds": a.seconds, "idle_rounds": a.idle_rounds,
        "workload": "per 1,000 events: 850 task_created, 100 decided (approve), 50 tagged",
        "backends": results,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&a, &backends, &report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(a: &HubBenchArgs, backends: &[Backend], report: &Value) {
    println!(
        "\nHub sync benchmark: {} events, {} repeats per backend, {} devices × {} s, medians over repeats",
        a.events,
        a.repeats.max(1),
        a.devices,
        a.seconds
    );
    println!("workload: {}", report["workload"].as_str().unwrap_or(""));
    let cell = |b: Backend, k: &str, digits: usize| match report["backends"][b.key()][k].as_f64() {
        Some(v) => format!("{v:.digits$}"),
        None => "—".into(),
    };
    let both = |k: &str, digits: usize| {
        [Backend::Sqlite, Backend::Postgres].map(|b| {
            if backends.contains(&b) {
                cell(b, k, digits)
            } else {
                "—".into()
            }
        })
    };
    let row = |label: &str, [sqlite, postgres]: [String; 2], target: &str| {
        println!("  {label:<52}{sqlite:>12}{postgres:>14}  {target}");
    };
    println!("  {:<52}{:>12}{:>14}  target", "", "SQLite", "PostgreSQL");
    let events = format!("{}", a.events);
    row(
        &format!("push {events} events, until acknowledged (s)"),
        both("push_s", 2),
        "≤ 3 s",
    );
    row(
        &format!("pull {events} events into a fresh device (s)"),
        both("pull_s", 2),
        "≤ 3 s",
    );
    row(
        "the pusher's whole round, pulling its own back (s)",
        both("push_round_with_own_pull_s", 2),
        "",
    );
    row(
        "idle round p50 (ms)",
        both("idle_round_p50_ms", 2),
        "≤ 5 ms",
    );
    row("idle round p99 (ms)", both("idle_round_p99_ms", 2), "");
    row(
        &format!("{} devices: events accepted/s", a.devices),
        both("fleet_events_per_s", 0),
        "report",
    );
    row(
        &format!("{} devices: round p50 (ms)", a.devices),
        both("fleet_round_p50_ms", 1),
        "",
    );
    row(
        &format!("{} devices: round p99 (ms)", a.devices),
        both("fleet_round_p99_ms", 1),
        "report",
    );
    row(
        &format!("{} devices: failed rounds", a.devices),
        both("fleet_failed_rounds", 0),
        "",
    );
    println!("baselines measured in the same run");
    row(
        &format!("raw insert of the {events} rows, one transaction (s)"),
        both("baseline_raw_insert_s", 3),
        "",
    );
    row(
        &format!("raw read of the {events} rows in order (s)"),
        both("baseline_raw_read_s", 3),
        "",
    );
    row(
        "bare HTTP GET /v1/health, p50 (ms)",
        both("baseline_http_get_p50_ms", 3),
        "",
    );
    row(
        "one authenticated empty pull request, p50 (ms)",
        both("empty_pull_request_p50_ms", 3),
        "",
    );
    row(
        &format!("{} concurrent bare GET loops, requests/s", a.devices),
        both("baseline_fleet_http_gets_per_s", 0),
        "",
    );
    row(
        "average event size, JSON (bytes)",
        both("event_bytes_avg", 0),
        "",
    );
    println!("ratios");
    row("push ÷ raw insert", both("push_vs_raw_insert", 1), "");
    row("pull ÷ raw read", both("pull_vs_raw_read", 1), "");
    row(
        "idle round p50 ÷ bare GET p50",
        both("idle_p50_vs_http_get", 1),
        "",
    );
    row(
        "fleet rounds/s ÷ bare GETs/s",
        both("fleet_rounds_vs_http_gets", 3),
        "",
    );
}

/// Where one repeat's hub keeps its data: a temporary folder, and for PostgreSQL a fresh
/// schema that is dropped afterwards (even when the repeat fails).
struct Site {
    backend: Backend,
    dir: tempfile::TempDir,
    url: String,
    schema: String,
}

impl Site {
    fn new(backend: Backend, url: &str) -> Result<Self> {
        Ok(Self {
            backend,
            dir: tempfile::tempdir().context("a temporary folder for the benchmark")?,
            url: url.to_owned(),
            schema: format!("bench_hub_{}", Uuid::now_v7().simple()),
        })
    }

    async fn hub(&self) -> Result<Hub> {
        let store = match self.backend {
            Backend::Sqlite => AnyStore::Sqlite(SqliteHub::open(&self.dir.path().join("hub.db"))?),
            Backend::Postgres => AnyStore::Postgres(
                PgHub::connect(&self.url, Some(&self.schema))
                    .await
                    .context("the PostgreSQL hub (set --postgres or PROCESSOPS_HUB_POSTGRES)")?,
            ),
        };
        Ok(Hub::new(store, OPTIONS))
    }

    async fn pg(&self) -> Result<tokio_postgres::Client> {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .context("connecting to PostgreSQL for the baseline")?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn drop_schema(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            self.pg()
                .await?
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await
                .with_context(|| format!("dropping the benchmark schema {}", self.schema))?;
        }
        Ok(())
    }
}

async fn one_repeat(a: &HubBenchArgs, backend: Backend) -> Result<Repeat> {
    let site = Site::new(backend, &a.postgres)?;
    let result = measure(a, &site).await;
    let dropped = site.drop_schema().await;
    let r = result?;
    dropped?;
    Ok(r)
}

/// The hub on a loopback socket; the server task ends when the handle is aborted.
async fn serve(hub: Hub) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let (router, _) = processops_hub::http::router(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the benchmark hub stopped: {e}");
        }
    });
    Ok((format!("http://{addr}"), task))
}

async fn measure(a: &HubBenchArgs, site: &Site) -> Result<Repeat> {
    let hub = site.hub().await?;
    let (base, server) = serve(hub.clone()).await?;
    let result = measure_on(a, site, &hub, &base).await;
    server.abort();
    result
}

fn user(name: &str, roles: Vec<Role>) -> UserRecord {
    UserRecord {
        name: name.into(),
        roles,
        scopes: vec!["*".into()],
    }
}

/// Enrol a device of `user` and open its store, enrolled as that device the way
/// `processops hub enrol` does it (the principal too, so the store checks roles as it records).
async fn device(
    hub: &Hub,
    dir: &Path,
    team: &str,
    user: &str,
    name: &str,
) -> Result<(Store, String)> {
    let code = hub.enrolment(None, team, user).await?;
    let answer = hub
        .enrol(
            EnrolRequest {
                code: code.code,
                device_name: name.into(),
            },
            LOCAL,
        )
        .await?;
    let store = Store::open(&dir.join(format!("{name}.db")), Durability::Process)?;
    store.sync_enrol(answer.device, answer.user.clone()).await?;
    store
        .sync_set_principal(Principal {
            team: answer.team,
            user: answer.user,
            device: answer.device,
            roles: answer.roles,
            scopes: answer.scopes,
        })
        .await?;
    Ok((store, answer.token))
}

async fn measure_on(a: &HubBenchArgs, site: &Site, hub: &Hub, base: &str) -> Result<Repeat> {
    let dir = site.dir.path();
    hub.create_team("bench", "admin").await?;
    hub.put_user(
        None,
        "bench",
        user("eng", vec![Role::Engine, Role::Approver, Role::Evaluator]),
    )
    .await?;
    hub.put_user(None, "bench", user("viewer", vec![Role::Approver]))
        .await?;

    // Push: an engine device with every event pending.
    let (pusher, token) = device(hub, dir, "bench", "eng", "engine").await?;
    record_workload(&pusher, "eng", a.events).await?;
    let own = pusher.sync_own_events()?;
    ensure!(
        own.len() == a.events,
        "recorded {} events, expected {}",
        own.len(),
        a.events
    );
    let transport = FirstPull::new(HttpTransport::new(base, &token)?);
    let started = Instant::now();
    let report = sync_once(&pusher, &transport, Options::default()).await?;
    let push_round_s = started.elapsed().as_secs_f64();
    let push_s = transport
        .first_pull
        .get()
        .map_or(push_round_s, |t| t.duration_since(started).as_secs_f64());
    ensure!(
        report.pushed == a.events as u64 && report.pending == 0,
        "the push stored {} of {} events ({} pending)",
        report.pushed,
        a.events,
        report.pending
    );

    // Pull: a fresh device reads everything.
    let (reader, token) = device(hub, dir, "bench", "viewer", "reader").await?;
    let transport = HttpTransport::new(base, &token)?;
    let started = Instant::now();
    let report = sync_once(&reader, &transport, Options::default()).await?;
    let pull_s = started.elapsed().as_secs_f64();
    ensure!(
        report.pulled == a.events as u64 && report.cursor.hub_seq == a.events as u64,
        "the fresh device pulled {} events to cursor {}, expected {}",
        report.pulled,
        report.cursor.hub_seq,
        a.events
    );

    // Idle rounds on the up-to-date device, and the HTTP baselines on the same server.
    for _ in 0..5 {
        sync_once(&reader, &transport, Options::default()).await?;
    }
    let mut idle = Vec::with_capacity(a.idle_rounds);
    for _ in 0..a.idle_rounds.max(1) {
        let t = Instant::now();
        let r = sync_once(&reader, &transport, Options::default()).await?;
        idle.push(t.elapsed());
        ensure!(r.pulled == 0 && r.pushed == 0, "an idle round moved events");
    }
    let client = reqwest::Client::new();
    let health = format!("{base}/v1/health");
    let mut http = Vec::new();
    let mut empty_pull = Vec::new();
    let pull_url = format!("{base}/v1/events?after={}&limit=5000", a.events);
    for _ in 0..a.idle_rounds.max(1) + 5 {
        let t = Instant::now();
        let resp = client.get(&health).send().await?.error_for_status()?;
        resp.bytes().await?;
        http.push(t.elapsed());
        let t = Instant::now();
        let resp = client
            .get(&pull_url)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        resp.bytes().await?;
        empty_pull.push(t.elapsed());
    }
    // The first requests open the connection; the idle rounds were warmed the same way.
    let (http, empty_pull) = (&mut http[5..], &mut empty_pull[5..]);

    // Baselines: the same rows, raw, with no hub in between.
    let rows = RawRows::new(&own)?;
    let (raw_insert_s, raw_read_s) = match site.backend {
        Backend::Sqlite => rows.sqlite(&dir.join("raw.db"))?,
        Backend::Postgres => rows.postgres(&site.pg().await?, &site.schema).await?,
    };

    let fleet = fleet(a, hub, dir, base).await?;
    Ok(Repeat {
        push_s,
        push_round_s,
        pull_s,
        raw_insert_s,
        raw_read_s,
        event_bytes: rows.bytes as f64 / a.events.max(1) as f64,
        idle_p50: percentile(&mut idle, 0.50),
        idle_p99: percentile(&mut idle, 0.99),
        http_p50: percentile(http, 0.50),
        http_p99: percentile(http, 0.99),
        empty_pull_p50: percentile(empty_pull, 0.50),
        fleet_events_per_s: fleet.events_per_s,
        fleet_rounds_per_s: fleet.rounds_per_s,
        fleet_p50: fleet.p50,
        fleet_p99: fleet.p99,
        fleet_failed: fleet.failed as f64,
        fleet_http_per_s: fleet.http_per_s,
        fleet_http_p99: fleet.http_p99,
    })
}

/// A review task as an engine publishes it: a draft of about 40 words and its context.
fn task_created(i: usize) -> (Uuid, Change) {
    let task = Uuid::now_v7();
    let change = Change::TaskCreated {
        task,
        run: Uuid::now_v7(),
        blueprint: "invoice-approval".into(),
        role: "finance-manager".into(),
        body: json!({
            "draft": format!(
                "Invoice INV-{i} from Acme Supplies GmbH for {} EUR matches purchase order PO-{} \
                 and the goods receipt of last week. Payment terms are 30 days net; the vendor \
                 is on the approved list. Recommend approval and payment on the next run.",
                1_000 + i % 9_000,
                i / 3
            ),
            "context": {"vendor": "Acme Supplies GmbH", "amount": 1_000 + i % 9_000, "currency": "EUR"},
            "policy": {"sla_hours": 24},
        }),
    };
    (task, change)
}

fn approve(task: Uuid, base: Uuid, actor: &str) -> Change {
    Change::Decided {
        task,
        base,
        decision: Decision {
            action: Action::Approve,
            by: actor.into(),
            text: None,
            reason: None,
        },
    }
}

/// Record `n` events on an engine device, the way the engine and the inbox do (one
/// `sync_record` per change, many in flight so the store's writer commits them in groups):
/// per 1,000, 850 tasks created, 100 approvals of some of them, 50 tags in one write.
async fn record_workload(store: &Store, actor: &str, n: usize) -> Result<()> {
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(1_000);
        let tags = chunk / 20;
        let decided = chunk / 10;
        let created = chunk - tags - decided;
        let mut writes = JoinSet::new();
        for i in 0..created {
            let store = store.clone();
            let (task, change) = task_created(done + i);
            writes.spawn(async move { (task, store.sync_record(change).await) });
        }
        let mut heads = Vec::with_capacity(created);
        while let Some(joined) = writes.join_next().await {
            let (task, event) = joined?;
            let event = event?.context("the benchmark device is not enrolled")?;
            heads.push((task, event.id));
        }
        let mut writes = JoinSet::new();
        for &(task, head) in heads.iter().take(decided) {
            let store = store.clone();
            let change = approve(task, head, actor);
            writes.spawn(async move { store.sync_record(change).await });
        }
        while let Some(joined) = writes.join_next().await {
            joined??.context("the benchmark device is not enrolled")?;
        }
        let changes = (0..tags)
            .map(|_| TagChange {
                key: TagKey {
                    output: OutputRef {
                        run: Uuid::now_v7(),
                        node: "draft".into(),
                        visit: 1,
                    },
                    evaluator: actor.into(),
                    tag: "tone".into(),
                },
                intent: Intent::Add,
            })
            .collect();
        let ops = store.sync_tag(changes).await?;
        ensure!(
            ops.len() == tags,
            "{} tag changes gave {} ops",
            tags,
            ops.len()
        );
        done += chunk;
    }
    Ok(())
}

/// A transport that notes when the round's first pull request starts: by then the client has
/// pushed every pending event and committed the hub's acknowledgement.
struct FirstPull<T> {
    inner: T,
    first_pull: OnceLock<Instant>,
}

impl<T> FirstPull<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            first_pull: OnceLock::new(),
        }
    }
}

impl<T: Transport> Transport for FirstPull<T> {
    async fn push(&self, request: PushRequest) -> Result<PushResponse, TransportError> {
        self.inner.push(request).await
    }

    async fn pull(&self, after: u64, limit: u32) -> Result<PullResponse, TransportError> {
        self.first_pull.get_or_init(Instant::now);
        self.inner.pull(after, limit).await
    }
}

/// The events as the hub stores them (the same columns and JSON), for the raw baselines.
struct RawRows {
    ids: Vec<String>,
    devices: Vec<String>,
    seqs: Vec<i64>,
    entities: Vec<String>,
    verdicts: Vec<String>,
    bodies: Vec<String>,
    bytes: usize,
}

/// The hub's `events` table, as in its migrations.
const RAW_EVENTS: &str = "(
    team     TEXT NOT NULL,
    hub_seq  BIGINT NOT NULL,
    id       TEXT NOT NULL UNIQUE,
    device   TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    entity   TEXT NOT NULL,
    verdict  TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (team, hub_seq),
    UNIQUE (device, seq)
)";

impl RawRows {
    fn new(events: &[Event]) -> Result<Self> {
        let verdict = serde_json::to_string(&processops_sync::Verdict::Accepted)?;
        let bodies = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            ids: events.iter().map(|e| e.id.to_string()).collect(),
            devices: events.iter().map(|e| e.device.to_string()).collect(),
            seqs: events
                .iter()
                .map(|e| i64::try_from(e.seq).unwrap_or(i64::MAX))
                .collect(),
            entities: events.iter().map(|e| e.change.entity()).collect(),
            verdicts: vec![verdict; events.len()],
            bytes: bodies.iter().map(String::len).sum(),
            bodies,
        })
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Raw rusqlite with the hub's pragmas: insert every row in one transaction, then read
    /// them back in order. Returns (insert seconds, read seconds).
    fn sqlite(&self, path: &Path) -> Result<(f64, f64)> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE events {RAW_EVENTS};"
        ))?;
        let started = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO events (team, hub_seq, id, device, seq, entity, verdict, body)
                 VALUES ('bench', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for i in 0..self.len() {
                stmt.execute(rusqlite::params![
                    i as i64 + 1,
                    self.ids[i],
                    self.devices[i],
                    self.seqs[i],
                    self.entities[i],
                    self.verdicts[i],
                    self.bodies[i]
                ])?;
            }
        }
        tx.commit()?;
        let insert_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let rows: Vec<(i64, String, String)> = conn
            .prepare(
                "SELECT hub_seq, verdict, body FROM events WHERE team = 'bench' AND hub_seq > 0
                 ORDER BY hub_seq",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let read_s = started.elapsed().as_secs_f64();
        ensure!(
            rows.len() == self.len(),
            "the raw read found {} rows",
            rows.len()
        );
        Ok((insert_s, read_s))
    }

    /// A raw PostgreSQL multi-row insert (1,000 rows per statement through `unnest`, one
    /// transaction) into a copy of the hub's table, then a read back in order.
    async fn postgres(&self, client: &tokio_postgres::Client, schema: &str) -> Result<(f64, f64)> {
        let table = format!("{schema}.raw_events");
        client
            .batch_execute(&format!("CREATE TABLE {table} {RAW_EVENTS}"))
            .await?;
        let insert = format!(
            "INSERT INTO {table} (team, hub_seq, id, device, seq, entity, verdict, body)
             SELECT 'bench', * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[],
                                           $5::text[], $6::text[], $7::text[])"
        );
        let started = Instant::now();
        client.batch_execute("BEGIN").await?;
        let statement = client.prepare(&insert).await?;
        for start in (0..self.len()).step_by(1_000) {
            let end = (start + 1_000).min(self.len());
            let hub_seqs: Vec<i64> = (start as i64 + 1..=end as i64).collect();
            client
                .execute(
                    &statement,
                    &[
                        &hub_seqs,
                        &&self.ids[start..end],
                        &&self.devices[start..end],
                        &&self.seqs[start..end],
                        &&self.entities[start..end],
                        &&self.verdicts[start..end],
                        &&self.bodies[start..end],
                    ],
                )
                .await?;
        }
        client.batch_execute("COMMIT").await?;
        let insert_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let rows = client
            .query(
                &format!(
                    "SELECT hub_seq, verdict, body FROM {table} WHERE team = 'bench' AND hub_seq > 0
                     ORDER BY hub_seq"
                ),
                &[],
            )
            .await?;
        let read: Vec<(i64, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let read_s = started.elapsed().as_secs_f64();
        ensure!(
            read.len() == self.len(),
            "the raw read found {} rows",
            read.len()
        );
        Ok((insert_s, read_s))
    }
}

struct Fleet {
    events_per_s: f64,
    rounds_per_s: f64,
    p50: f64,
    p99: f64,
    failed: u64,
    http_per_s: f64,
    http_p99: f64,
}

/// `--devices` devices of a team of their own, each in a loop: record an event (a task, then
/// its approval, alternately), run a sync round. Then the baseline: as many loops of bare
/// GETs against the same server.
async fn fleet(a: &HubBenchArgs, hub: &Hub, dir: &Path, base: &str) -> Result<Fleet> {
    hub.create_team("fleet", "fleet-admin").await?;
    hub.put_user(
        None,
        "fleet",
        user("field", vec![Role::Engine, Role::Approver]),
    )
    .await?;
    let fleet_dir = dir.join("fleet");
    std::fs::create_dir_all(&fleet_dir)?;
    let mut devices = Vec::with_capacity(a.devices);
    for i in 0..a.devices.max(1) {
        let (store, token) =
            device(hub, &fleet_dir, "fleet", "field", &format!("device-{i}")).await?;
        let transport = HttpTransport::new(base, &token)?;
        sync_once(&store, &transport, Options::default()).await?;
        devices.push((store, transport));
    }
    let duration = Duration::from_secs(a.seconds.max(1));
    let started = Instant::now();
    let deadline = started + duration;
    let mut loops = JoinSet::new();
    for (i, (store, transport)) in devices.into_iter().enumerate() {
        loops.spawn(async move {
            let mut rounds = Vec::new();
            let (mut pushed, mut failed) = (0u64, 0u64);
            let mut open: Option<(Uuid, Uuid)> = None;
            let mut n = i * 1_000_000;
            while Instant::now() < deadline {
                // A task, then its approval, alternately.
                let (change, created) = match open.take() {
                    Some((task, head)) => (approve(task, head, "field"), None),
                    None => {
                        n += 1;
                        let (task, change) = task_created(n);
                        (change, Some(task))
                    }
                };
                let event = store
                    .sync_record(change)
                    .await?
                    .context("the fleet device is not enrolled")?;
                open = created.map(|task| (task, event.id));
                let t = Instant::now();
                match sync_once(&store, &transport, Options::default()).await {
                    Ok(r) => {
                        rounds.push(t.elapsed());
                        pushed += r.pushed;
                    }
                    Err(e) => {
                        failed += 1;
                        tracing::warn!("a fleet round failed: {e}");
                    }
                }
            }
            Ok::<_, anyhow::Error>((rounds, pushed, failed))
        });
    }
    let (mut rounds, mut pushed, mut failed) = (Vec::new(), 0, 0);
    while let Some(joined) = loops.join_next().await {
        let (r, p, f) = joined??;
        rounds.extend(r);
        pushed += p;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = rounds.len() as f64;

    // The baseline: the same number of loops of bare GETs, for up to 3 s.
    let window = duration.min(Duration::from_secs(3));
    let started = Instant::now();
    let deadline = started + window;
    let health = format!("{base}/v1/health");
    let mut loops = JoinSet::new();
    for _ in 0..a.devices.max(1) {
        let health = health.clone();
        loops.spawn(async move {
            let client = reqwest::Client::new();
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                client
                    .get(&health)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                times.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(times)
        });
    }
    let mut gets = Vec::new();
    while let Some(joined) = loops.join_next().await {
        gets.extend(joined??);
    }
    let get_elapsed = started.elapsed().as_secs_f64();
    Ok(Fleet {
        events_per_s: pushed as f64 / elapsed,
        rounds_per_s: count / elapsed,
        p50: percentile(&mut rounds, 0.50),
        p99: percentile(&mut rounds, 0.99),
        failed,
        http_per_s: gets.len() as f64 / get_elapsed,
        http_p99: percentile(&mut gets, 0.99),
    })
}
