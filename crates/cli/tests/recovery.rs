//! Crash recovery: SIGKILL `processops serve` at random points while hundreds of runs flow
//! through it, restart it, and check that every run completes, no finished step ran twice,
//! and every side effect reached its receiver once after de-duplication by idempotency key.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A server that fails to start makes the test panic; the process ends with the test.
#![allow(clippy::zombie_processes)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use processops_core::journal::Event;
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_store::{Durability, RunFilter, Store};
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

const BLUEPRINT: &str = r#"
id: recovery
name: Recovery test
start: prep
triggers:
  - kind: manual
    id: go
agents:
  writer: { provider: default, model: scripted }
nodes:
  - kind: transform
    id: prep
    set: { greeting: "Hello {{ trigger.n }}" }
    next: draft
  - kind: prompt
    id: draft
    agent: writer
    template: "{{ vars.greeting }}: write a short note"
    next: review
  - kind: review
    id: review
    role: ops
    draft: "{{ draft.text }}"
    auto_approve_when: "trigger.auto"
    on:
      approved: [send, log]
  - kind: output
    id: send
    http:
      url: "{{ trigger.receiver }}"
      body: '{"n": {{ trigger.n }}}'
      retries: 10
  - kind: output
    id: log
    dataset:
      path: recovery.jsonl
      record: { n: "{{ trigger.n }}" }
"#;

/// What the receiver saw: deliveries per idempotency key.
#[derive(Default, Clone)]
struct Deliveries(Arc<Mutex<HashMap<String, u32>>>);

async fn start_receiver() -> (String, Deliveries) {
    let seen = Deliveries::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/notes",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let s = s.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("missing")
                    .to_owned();
                *s.0.lock().unwrap().entry(key).or_insert(0) += 1;
                // Answer slowly, so kills often land between delivery and the journal write.
                tokio::time::sleep(Duration::from_millis(15)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/notes"), seen)
}

struct Server {
    child: Child,
    base: String,
}

fn start_server(project: &Path, planted_bug: bool) -> Server {
    let addr_file = project.join(".processops/engine.addr");
    let _ = std::fs::remove_file(&addr_file);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(project.join("serve.log"))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_processops"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--tick-ms", "50"])
        .arg("--project")
        .arg(project)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    if planted_bug {
        cmd.env("PROCESSOPS_PLANTED_BUG", "skip-finish-journal");
    }
    let child = cmd.spawn().expect("start processops serve");
    let started = Instant::now();
    loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.trim().is_empty()
        {
            return Server {
                child,
                base: format!("http://{}", a.trim()),
            };
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start; see {}",
            project.join("serve.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drives traffic at whatever server is up from several clients at once: submits runs
/// (idempotently) and approves tasks.
async fn traffic(client: reqwest::Client, base: String, receiver: String, from: usize, to: usize) {
    let lanes = 8;
    let mut handles = Vec::new();
    for lane in 0..lanes {
        let (client, base, receiver) = (client.clone(), base.clone(), receiver.clone());
        handles.push(tokio::spawn(async move {
            let mine: Vec<usize> = (from..to).filter(|n| n % lanes == lane).collect();
            submit(&client, &base, &receiver, &mine).await;
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    approve_pending(&client, &base).await;
}

async fn submit(client: &reqwest::Client, base: &str, receiver: &str, runs: &[usize]) {
    for &n in runs {
        let body = json!({
            "blueprint": "recovery",
            "payload": { "n": n, "auto": n % 2 == 0, "receiver": receiver },
            "idempotency_key": format!("run-{n}"),
        });
        if client
            .post(format!("{base}/api/runs"))
            .json(&body)
            .send()
            .await
            .is_err()
        {
            return; // the server is down; the next round resubmits
        }
        if n % 10 == 9 {
            approve_pending(client, base).await;
        }
    }
}

async fn approve_pending(client: &reqwest::Client, base: &str) -> usize {
    let Ok(resp) = client
        .get(format!("{base}/api/tasks?limit=500"))
        .send()
        .await
    else {
        return 0;
    };
    let Ok(tasks) = resp.json::<Vec<Value>>().await else {
        return 0;
    };
    let mut decided = 0;
    for t in tasks {
        let id = t["id"].as_str().unwrap_or_default();
        let r = client
            .post(format!("{base}/api/tasks/{id}/decision"))
            .json(&json!({"action": "approve", "by": "recovery-test"}))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            decided += 1;
        }
    }
    decided
}

/// Steps that started and did not finish: what a kill cut off.
fn unfinished_steps(project: &Path) -> Vec<(uuid::Uuid, String, u32)> {
    let store = Store::open(
        &project.join(".processops/processops.db"),
        Durability::Process,
    )
    .unwrap();
    let mut out = Vec::new();
    for run in store
        .list_runs(&RunFilter {
            limit: Some(100_000),
            ..RunFilter::default()
        })
        .unwrap()
    {
        let (_, journal) = store.load_run(run.id).unwrap().unwrap();
        let finished = |node: &str, visit: u32| {
            journal.iter().any(|e| matches!(&e.event, Event::NodeFinished { node: n, visit: v, .. } if n == node && *v == visit))
        };
        for e in &journal {
            if let Event::NodeStarted { node, visit, .. } = &e.event
                && !finished(node, *visit)
                && !journal.iter().any(|e| matches!(&e.event, Event::TaskCreated { task } if task.node == *node && task.visit == *visit))
            {
                out.push((run.id, node.clone(), *visit));
            }
        }
    }
    out
}

async fn wait_until_finished(
    project: &Path,
    steps: &[(uuid::Uuid, String, u32)],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while !steps.is_empty() && Instant::now() < deadline {
        let open = unfinished_steps(project);
        if !steps.iter().any(|s| open.contains(s)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything the scenario observed, and what violates the invariants.
#[derive(Debug, Default)]
struct Report {
    runs: usize,
    completed: usize,
    kills: usize,
    rerun_steps: usize,
    raw_deliveries: u32,
    violations: Vec<String>,
}

async fn scenario(
    seed: u64,
    total: usize,
    rounds: usize,
    planted_bug: bool,
    drain: Duration,
) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().to_path_buf();
    std::fs::create_dir_all(project.join("blueprints")).unwrap();
    std::fs::write(project.join("blueprints/recovery.yaml"), BLUEPRINT).unwrap();
    // A model that takes a moment to answer, so kills land mid-prompt too.
    let llm = ScriptedServer::start(ScriptedConfig {
        latency: Duration::from_millis(20),
        ..ScriptedConfig::default()
    })
    .await
    .unwrap();
    std::fs::write(
        project.join("processops.toml"),
        format!(
            "[providers.default]\nkind = \"openai\"\nbase_url = \"{}\"\nmax_retries = 5\n",
            llm.base_url()
        ),
    )
    .unwrap();
    let (receiver, deliveries) = start_receiver().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut report = Report::default();

    let per_round = total / rounds;
    let mut cut_off = Vec::new();
    for round in 0..rounds {
        let mut server = start_server(&project, planted_bug);
        // Let the restart finish the steps the last kill cut off before killing again, so each
        // step is cut off at most once (the engine refuses to run one a third time anyway).
        wait_until_finished(&project, &cut_off, Duration::from_secs(10)).await;
        // Resubmit everything up to this round's end: earlier submissions cut off by a kill
        // are retried, and idempotency keys keep the rest from starting twice.
        let t = tokio::spawn(traffic(
            client.clone(),
            server.base.clone(),
            receiver.clone(),
            0,
            (round + 1) * per_round,
        ));
        // Kill at a random point of busy traffic: after a random number of outside calls
        // (model requests and deliveries), so steps are in flight when the process dies.
        let activity =
            |d: &Deliveries| llm.requests() + u64::from(d.0.lock().unwrap().values().sum::<u32>());
        let target = activity(&deliveries) + rng.random_range(5..80);
        let until = Instant::now() + Duration::from_secs(5);
        while activity(&deliveries) < target && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(rng.random_range(1..5))).await;
        }
        server.child.kill().unwrap(); // SIGKILL: no shutdown code runs
        server.child.wait().unwrap();
        report.kills += 1;
        t.abort();
        cut_off = unfinished_steps(&project);
        if std::env::var("PROCESSOPS_TEST_VERBOSE").is_ok() {
            let store = Store::open(
                &project.join(".processops/processops.db"),
                Durability::Process,
            )
            .unwrap();
            let runs = store
                .list_runs(&RunFilter {
                    limit: Some(100_000),
                    ..RunFilter::default()
                })
                .unwrap();
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &runs {
                *by.entry(r.status.as_str()).or_default() += 1;
            }
            eprintln!("after kill {}: {by:?}", round + 1);
        }
    }

    // Final round: no kill; finish everything.
    let mut server = start_server(&project, planted_bug);
    traffic(
        client.clone(),
        server.base.clone(),
        receiver.clone(),
        0,
        total,
    )
    .await;
    let deadline = Instant::now() + drain;
    loop {
        approve_pending(&client, &server.base).await;
        let runs: Vec<Value> = client
            .get(format!("{}/api/runs?limit=1000&status=all", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let done = runs.iter().filter(|r| r["status"] == "completed").count();
        if done == total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    check(&project, &llm, &deliveries, total, &mut report);
    llm.shutdown().await;
    report
}

fn check(
    project: &Path,
    llm: &ScriptedServer,
    deliveries: &Deliveries,
    total: usize,
    report: &mut Report,
) {
    let store = Store::open(
        &project.join(".processops/processops.db"),
        Durability::Process,
    )
    .unwrap();
    let runs = store
        .list_runs(&RunFilter {
            limit: Some(100_000),
            ..RunFilter::default()
        })
        .unwrap();
    report.runs = runs.len();
    report.completed = runs
        .iter()
        .filter(|r| r.status == processops_store::RunStatus::Completed)
        .count();
    let v = &mut report.violations;
    if runs.len() != total {
        v.push(format!(
            "{} runs exist, expected {total} (one per idempotency key)",
            runs.len()
        ));
    }
    if report.completed != total {
        v.push(format!("{} of {total} runs completed", report.completed));
    }
    let llm_calls = llm.step_counts();
    let seen = deliveries.0.lock().unwrap().clone();
    report.raw_deliveries = seen.values().sum();
    for run in &runs {
        let (_, journal) = store.load_run(run.id).unwrap().unwrap();
        let mut started: BTreeMap<(String, u32), u32> = BTreeMap::new();
        let mut finished: BTreeMap<(String, u32), u32> = BTreeMap::new();
        for e in &journal {
            match &e.event {
                Event::NodeStarted { node, visit, .. } => {
                    *started.entry((node.clone(), *visit)).or_default() += 1
                }
                Event::NodeFinished { node, visit, .. } => {
                    *finished.entry((node.clone(), *visit)).or_default() += 1
                }
                _ => {}
            }
        }
        for ((node, visit), n) in &finished {
            if *n != 1 {
                v.push(format!(
                    "run {}: step {node}#{visit} finished {n} times",
                    run.id
                ));
            }
        }
        for ((node, visit), n) in &started {
            if *n > 2 {
                v.push(format!(
                    "run {}: step {node}#{visit} started {n} times (re-run more than once)",
                    run.id
                ));
            }
            if *n > 1 {
                report.rerun_steps += 1;
            }
            if !finished.contains_key(&(node.clone(), *visit))
                && run.status == processops_store::RunStatus::Completed
            {
                v.push(format!(
                    "run {}: step {node}#{visit} started but its finish was never journaled",
                    run.id
                ));
            }
        }
        // A finished step never runs again: every outside call was preceded by a journaled start.
        let key = format!("{}:draft:1", run.id);
        let calls = llm_calls.get(&key).copied().unwrap_or(0);
        let starts = started.get(&("draft".to_owned(), 1)).copied().unwrap_or(0);
        if calls > starts {
            v.push(format!(
                "run {}: the prompt ran {calls} times but was started {starts} times",
                run.id
            ));
        }
        if run.status == processops_store::RunStatus::Completed {
            let d = seen
                .get(&format!("{}:send:1", run.id))
                .copied()
                .unwrap_or(0);
            if !(1..=2).contains(&d) {
                v.push(format!("run {}: the receiver saw its delivery {d} times (expected 1, at most 2 before de-duplication)", run.id));
            }
        }
    }
    let distinct = seen.keys().filter(|k| k.ends_with(":send:1")).count();
    if distinct != report.completed {
        v.push(format!(
            "the receiver saw {distinct} distinct deliveries for {} completed runs",
            report.completed
        ));
    }
    let dataset =
        std::fs::read_to_string(project.join("outputs/recovery.jsonl")).unwrap_or_default();
    let mut lines: HashMap<String, u32> = HashMap::new();
    for line in dataset.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        *lines
            .entry(
                rec["_idempotency_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    if let Some((k, n)) = lines.iter().find(|(_, n)| **n != 1) {
        v.push(format!("dataset line {k} appended {n} times"));
    }
    if lines.len() != report.completed {
        v.push(format!(
            "{} dataset lines for {} completed runs",
            lines.len(),
            report.completed
        ));
    }
}

fn seed() -> u64 {
    std::env::var("PROCESSOPS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_engine_loses_and_repeats_nothing() {
    let seed = seed();
    let report = scenario(seed, 300, 5, false, Duration::from_secs(120)).await;
    println!(
        "recovery (seed {seed}): {} runs, {} completed, {} kills, {} steps re-run after a kill, {} raw deliveries for {} runs",
        report.runs,
        report.completed,
        report.kills,
        report.rerun_steps,
        report.raw_deliveries,
        report.completed
    );
    assert!(
        report.violations.is_empty(),
        "seed {seed}: {:#?}",
        report.violations
    );
}

/// The scenario must catch a planted bug: finished prompt steps not journaled.
#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_check_catches_a_skipped_journal_write() {
    let seed = seed();
    let report = scenario(seed, 120, 3, true, Duration::from_secs(20)).await;
    println!(
        "planted bug (seed {seed}): {} violations, e.g. {:#?}",
        report.violations.len(),
        report.violations.iter().take(4).collect::<Vec<_>>()
    );
    assert!(
        !report.violations.is_empty(),
        "seed {seed}: the planted bug went unnoticed: {report:?}"
    );
}
