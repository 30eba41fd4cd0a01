//! `processops bench engine`, `processops bench inbox` and `processops bench retrieval`.
//!
//! Timings are medians over repeats, printed beside a baseline measured in the same run
//! (raw SQLite inserts with the same durability settings), because this machine is shared
//! and noisy: the ratio means more than the absolute number.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use processops_core::journal::{Action, Decision, Event};
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use processops_store::{Durability, RunStatus, Store, TaskFilter, TaskStatus};
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// The onboarding-shaped tree the benchmark runs: webhook → retrieve → prompt → review →
/// (approved) HTTP output and dataset append in parallel.
pub const BENCH_BLUEPRINT: &str = r#"
id: bench-onboarding
name: Benchmark onboarding
start: policies
triggers:
  - kind: manual
    id: new_hire
agents:
  drafter: { provider: default, model: scripted }
nodes:
  - kind: retrieve
    id: policies
    collection: hr-policies
    query: "{{ trigger.role }} onboarding"
    top_k: 3
    next: draft
  - kind: prompt
    id: draft
    agent: drafter
    template: "Welcome kit for {{ trigger.name }} ({{ trigger.role }}). Policies: {{ policies.text }}"
    next: review
  - kind: review
    id: review
    role: hr-manager
    draft: "{{ draft.text }}"
    on:
      approved: [send, log]
  - kind: output
    id: send
    http:
      url: "{{ trigger.notes_url }}"
      body: '{"name": {{ trigger.name | tojson }}, "kit": {{ review.text | tojson }}}'
  - kind: output
    id: log
    dataset:
      path: bench/training.jsonl
      record: { name: "{{ trigger.name }}", kit: "{{ review.text }}" }
"#;

#[derive(Args)]
pub struct EngineBenchArgs {
    /// Runs per repeat.
    #[arg(long, default_value_t = 2000)]
    runs: usize,
    /// Repeats (the report gives medians over them).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Runs in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// fsync every commit (survives power loss) instead of the default (survives a process kill).
    #[arg(long)]
    power_loss_durable: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

struct Repeat {
    runs_per_s: f64,
    run_p50_ms: f64,
    run_p99_ms: f64,
    decisions_per_s: f64,
    decision_p50_ms: f64,
    decision_p99_ms: f64,
    journal_us_per_node: f64,
    raw_insert_us: f64,
    raw_inserts_per_s: f64,
}

pub async fn engine(a: EngineBenchArgs) -> Result<ExitCode> {
    let durability = if a.power_loss_durable {
        Durability::PowerLoss
    } else {
        Durability::Process
    };
    let receiver = Receiver::start().await?;
    let llm = ScriptedServer::start(ScriptedConfig::default()).await?;
    let mut repeats = Vec::new();
    for i in 0..a.repeats.max(1) {
        let r = one_repeat(&a, durability, &llm, &receiver).await?;
        if !a.json {
            eprintln!(
                "repeat {}/{}: {:.0} runs/s, {:.0} decisions/s, journal {:.1} µs/node, raw insert {:.1} µs",
                i + 1,
                a.repeats,
                r.runs_per_s,
                r.decisions_per_s,
                r.journal_us_per_node,
                r.raw_insert_us
            );
        }
        repeats.push(r);
    }
    let m = |f: fn(&Repeat) -> f64| median(repeats.iter().map(f).collect());
    let report = json!({
        "runs": a.runs, "repeats": repeats.len(), "concurrency": a.concurrency,
        "durability": if a.power_loss_durable { "power-loss (synchronous=FULL)" } else { "process-kill (WAL, synchronous=NORMAL)" },
        "runs_per_s": m(|r| r.runs_per_s),
        "run_to_review_p50_ms": m(|r| r.run_p50_ms),
        "run_to_review_p99_ms": m(|r| r.run_p99_ms),
        "decisions_per_s": m(|r| r.decisions_per_s),
        "decision_to_done_p50_ms": m(|r| r.decision_p50_ms),
        "decision_to_done_p99_ms": m(|r| r.decision_p99_ms),
        "journal_us_per_node": m(|r| r.journal_us_per_node),
        "baseline_raw_insert_us": m(|r| r.raw_insert_us),
        "baseline_raw_inserts_per_s": m(|r| r.raw_inserts_per_s),
        "runs_per_s_vs_raw_inserts": m(|r| r.runs_per_s / r.raw_inserts_per_s),
        "journal_node_vs_raw_insert": m(|r| r.journal_us_per_node / r.raw_insert_us),
        "http_deliveries": receiver.deliveries(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "\nEngine benchmark: {} runs × {} repeats, {} in flight, {}",
            a.runs,
            repeats.len(),
            a.concurrency,
            report["durability"].as_str().unwrap_or("")
        );
        println!("medians over repeats                         value    target");
        println!(
            "  runs/s, trigger → parked review       {:>10.0}    ≥ 2000",
            f("runs_per_s")
        );
        println!(
            "  latency p50 / p99 (ms)                {:>6.2} / {:<6.2}",
            f("run_to_review_p50_ms"),
            f("run_to_review_p99_ms")
        );
        println!(
            "  decisions/s, decision → outputs done  {:>10.0}    ≥ 2000",
            f("decisions_per_s")
        );
        println!(
            "  latency p50 / p99 (ms)                {:>6.2} / {:<6.2}",
            f("decision_to_done_p50_ms"),
            f("decision_to_done_p99_ms")
        );
        println!(
            "  journal overhead per node (µs)        {:>10.1}    ≤ 100",
            f("journal_us_per_node")
        );
        println!("baseline measured in the same run");
        println!(
            "  raw SQLite insert, own commit (µs)    {:>10.1}",
            f("baseline_raw_insert_us")
        );
        println!(
            "  raw SQLite inserts/s                  {:>10.0}",
            f("baseline_raw_inserts_per_s")
        );
        println!("ratios");
        println!(
            "  runs/s ÷ raw inserts/s                {:>10.3}",
            f("runs_per_s_vs_raw_inserts")
        );
        println!(
            "  journal per node ÷ raw insert         {:>10.2}",
            f("journal_node_vs_raw_insert")
        );
    }
    llm.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn one_repeat(
    a: &EngineBenchArgs,
    durability: Durability,
    llm: &ScriptedServer,
    receiver: &Receiver,
) -> Result<Repeat> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.db"), durability)?;
    store
        .ingest(
            "hr-policies".into(),
            (0..50).map(|i| (format!("policy-{i}.md"), format!("Engineer onboarding policy {i}: laptops, accounts, buddy, benefits {i}."))).collect(),
        )
        .await?;
    let registry = Arc::new(Registry::default());
    registry
        .insert(Arc::new(Compiled::from_source(BENCH_BLUEPRINT).map_err(
            |d| anyhow::anyhow!("bench blueprint: {:?}", d.first()),
        )?));
    let client: Arc<dyn ChatModel> =
        Arc::new(OpenAiCompatible::new(OpenAiConfig::new(llm.base_url()))?);
    let engine = Engine::new(EngineConfig {
        store: store.clone(),
        registry,
        providers: HashMap::from([("default".to_owned(), client)]),
        outputs_dir: dir.path().join("outputs"),
    })?;
    engine.record_versions().await?;

    // Phase 1: trigger → parked at the review.
    let notes_url = receiver.url();
    let gate = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(a.runs);
    for i in 0..a.runs {
        let engine = engine.clone();
        let gate = gate.clone();
        let payload =
            json!({ "name": format!("Person {i}"), "role": "Engineer", "notes_url": notes_url });
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let t = Instant::now();
            let s = engine
                .start_run("bench-onboarding", None, payload, None)
                .await?;
            engine.settle(s.run_id).await;
            anyhow::Ok(t.elapsed())
        }));
    }
    let mut run_latencies = Vec::with_capacity(a.runs);
    for h in handles {
        run_latencies.push(h.await??);
    }
    let run_wall = started.elapsed();
    let waiting = store.count_runs(RunStatus::Waiting)?;
    anyhow::ensure!(
        waiting as usize == a.runs,
        "expected {} runs waiting for review, found {waiting}",
        a.runs
    );

    // Phase 2: decision → outputs delivered and run completed.
    let tasks = store.list_tasks(&TaskFilter {
        status: Some(TaskStatus::Pending),
        limit: Some(u32::try_from(a.runs).unwrap_or(u32::MAX)),
        ..TaskFilter::default()
    })?;
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks.len());
    for t in tasks {
        let engine = engine.clone();
        let gate = gate.clone();
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let t0 = Instant::now();
            let run = engine
                .decide(
                    t.id,
                    Decision {
                        action: Action::Approve,
                        by: "bench".into(),
                        text: None,
                        reason: None,
                    },
                )
                .await?
                .run;
            engine.settle(run).await;
            anyhow::Ok(t0.elapsed())
        }));
    }
    let mut decision_latencies = Vec::with_capacity(a.runs);
    for h in handles {
        decision_latencies.push(h.await??);
    }
    let decision_wall = started.elapsed();
    let completed = store.count_runs(RunStatus::Completed)?;
    anyhow::ensure!(
        completed as usize == a.runs,
        "expected {} completed runs, found {completed}",
        a.runs
    );

    // Journal overhead: committing one node's start and finish, one node at a time.
    let run_id = store
        .list_runs(&processops_store::RunFilter {
            limit: Some(1),
            ..Default::default()
        })?
        .first()
        .map(|r| r.id)
        .unwrap_or_default();
    let mut journal = Vec::new();
    for i in 0..1000u32 {
        let node = format!("n{i}");
        let t = Instant::now();
        store
            .append(
                run_id,
                vec![
                    Event::NodeStarted {
                        node: node.clone(),
                        visit: 1,
                        attempt: 1,
                    },
                    Event::NodeFinished {
                        node,
                        visit: 1,
                        output: json!({"status": 200}),
                        vars: Default::default(),
                        next: vec![],
                        label: None,
                        meta: Default::default(),
                    },
                ],
                None,
            )
            .await?;
        journal.push(t.elapsed());
    }
    let (raw_insert_us, raw_inserts_per_s) =
        raw_sqlite_baseline(&dir.path().join("raw.db"), durability)?;
    Ok(Repeat {
        runs_per_s: a.runs as f64 / run_wall.as_secs_f64(),
        run_p50_ms: percentile(&mut run_latencies, 0.50),
        run_p99_ms: percentile(&mut run_latencies, 0.99),
        decisions_per_s: a.runs as f64 / decision_wall.as_secs_f64(),
        decision_p50_ms: percentile(&mut decision_latencies, 0.50),
        decision_p99_ms: percentile(&mut decision_latencies, 0.99),
        journal_us_per_node: percentile(&mut journal, 0.50) * 1000.0,
        raw_insert_us,
        raw_inserts_per_s,
    })
}

const BATCH_BLUEPRINT: &str = r#"
id: bench-batch
name: Benchmark batch approvals
start: review
triggers:
  - kind: manual
    id: form
nodes:
  - kind: review
    id: review
    role: approver
    draft: "Request {{ trigger.n }}"
    on: { approved: log }
  - kind: output
    id: log
    dataset: { path: batch.jsonl, record: { n: "{{ trigger.n }}" } }
"#;

#[derive(Args)]
pub struct InboxBenchArgs {
    /// Tasks in the inbox.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: usize,
    /// Repeats of each measurement (the report gives medians over them).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Tasks decided in one batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Tag changes applied in one write for the tagging throughput.
    #[arg(long, default_value_t = 10_000)]
    tags: usize,
    #[arg(long)]
    json: bool,
}

pub async fn inbox(a: InboxBenchArgs) -> Result<ExitCode> {
    use processops_store::{TaskSort, synthetic::VOCABULARY};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("inbox.db");
    let store = Store::open(&path, Durability::Process)?;
    let roles: Vec<String> = (0..20).map(|i| format!("role-{i}")).collect();
    let t = Instant::now();
    store
        .insert_synthetic_tasks(a.tasks, roles.clone(), 42)
        .await?;
    store.analyze().await?;
    let load_s = t.elapsed().as_secs_f64();
    if !a.json {
        eprintln!("generated {} tasks in {load_s:.1} s", a.tasks);
    }

    // A real engine over the same database for the batch of decisions.
    let registry = Arc::new(Registry::default());
    registry
        .insert(Arc::new(Compiled::from_source(BATCH_BLUEPRINT).map_err(
            |d| anyhow::anyhow!("batch blueprint: {:?}", d.first()),
        )?));
    let engine = Engine::new(EngineConfig {
        store: store.clone(),
        registry,
        providers: HashMap::new(),
        outputs_dir: dir.path().join("outputs"),
    })?;
    engine.record_versions().await?;

    let mut first_page = Vec::new();
    let mut first_page_p99 = Vec::new();
    let mut search = Vec::new();
    let mut point = Vec::new();
    let mut batch = Vec::new();
    let mut tagging = Vec::new();
    for repeat in 0..a.repeats.max(1) {
        // "My pending tasks, soonest due first": the first page of 50 for one role.
        let mut times = Vec::new();
        for i in 0..200 {
            let filter = TaskFilter {
                status: Some(TaskStatus::Pending),
                role: Some(roles[i % roles.len()].clone()),
                sort: TaskSort::Due,
                limit: Some(50),
                ..TaskFilter::default()
            };
            let t = Instant::now();
            let page = store.list_tasks(&filter)?;
            times.push(t.elapsed());
            anyhow::ensure!(page.len() == 50, "the first page has {} tasks", page.len());
        }
        first_page.push(percentile(&mut times, 0.5));
        first_page_p99.push(percentile(&mut times, 0.99));

        // Words in drafts: a common business word with a rarer one, the way people narrow a
        // search ("invoice term1234").
        let mut times = Vec::new();
        for i in 0..50 {
            let words = format!(
                "{} term{}",
                VOCABULARY[(i * 7 + repeat) % VOCABULARY.len()],
                (i * 397 + repeat * 31) % 20_000
            );
            let filter = TaskFilter {
                status: Some(TaskStatus::Pending),
                text: Some(words),
                limit: Some(50),
                ..TaskFilter::default()
            };
            let t = Instant::now();
            store.list_tasks(&filter)?;
            times.push(t.elapsed());
        }
        search.push(percentile(&mut times, 0.5));

        // Baseline: a task by primary key.
        let mut times = Vec::new();
        for i in 0..200u64 {
            let id = Uuid::parse_str(&format!(
                "00000000-0000-7000-8000-{:012x}",
                (i * 4999) % a.tasks as u64
            ))?;
            let t = Instant::now();
            store.task(id)?;
            times.push(t.elapsed());
        }
        point.push(percentile(&mut times, 0.5));

        // A batch of decisions: start the runs (not timed), then approve them all at once.
        let mut runs = Vec::new();
        for n in 0..a.batch {
            runs.push(
                engine
                    .start_run("bench-batch", None, json!({ "n": n }), None)
                    .await?
                    .run_id,
            );
        }
        engine.settle_all().await;
        let pending = store.list_tasks(&TaskFilter {
            status: Some(TaskStatus::Pending),
            blueprint_id: Some("bench-batch".into()),
            limit: Some(u32::try_from(a.batch).unwrap_or(u32::MAX)),
            ..TaskFilter::default()
        })?;
        anyhow::ensure!(
            pending.len() == a.batch,
            "{} batch tasks are pending",
            pending.len()
        );
        let gate = Arc::new(Semaphore::new(64));
        let t = Instant::now();
        let mut handles = Vec::new();
        for task in pending {
            let (engine, gate) = (engine.clone(), gate.clone());
            handles.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                engine
                    .decide(
                        task.id,
                        Decision {
                            action: Action::Approve,
                            by: "bench".into(),
                            text: None,
                            reason: None,
                        },
                    )
                    .await
            }));
        }
        for h in handles {
            h.await??;
        }
        engine.settle_all().await;
        batch.push(t.elapsed().as_secs_f64() * 1000.0);

        // Tagging: one evaluator's tag changes, applied in one write.
        let changes: Vec<processops_store::TagChange> = (0..a.tags)
            .map(|i| processops_store::TagChange {
                key: processops_core::feedback::TagKey {
                    output: processops_core::feedback::OutputRef {
                        run: runs[i % runs.len().max(1)],
                        node: "review".into(),
                        visit: 1,
                    },
                    evaluator: format!("evaluator-{repeat}"),
                    tag: ["tone", "needs-edit", "great-example", "hallucination"][i % 4].into(),
                },
                intent: if i % 5 == 4 {
                    processops_core::feedback::Intent::Remove
                } else {
                    processops_core::feedback::Intent::Add
                },
            })
            .collect();
        let t = Instant::now();
        store.change_tags(changes).await?;
        tagging.push(a.tags as f64 / t.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let report = json!({
        "tasks": a.tasks, "repeats": a.repeats, "load_s": load_s, "database_mb": size as f64 / 1e6,
        "first_page_p50_ms": median(first_page), "first_page_p99_ms": median(first_page_p99),
        "search_p50_ms": median(search), "baseline_point_lookup_p50_ms": median(point.clone()),
        "batch_decisions": a.batch, "batch_ms": median(batch), "tags_per_s": median(tagging),
    });
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "\nInbox benchmark: {} tasks ({:.0} MB on disk, loaded in {:.1} s), medians of {} repeats",
            a.tasks,
            f("database_mb"),
            f("load_s"),
            a.repeats
        );
        println!("                                                value      target");
        println!(
            "  first page (50) of my pending tasks, p50   {:>8.2} ms",
            f("first_page_p50_ms")
        );
        println!(
            "  first page (50) of my pending tasks, p99   {:>8.2} ms   ≤ 5 ms",
            f("first_page_p99_ms")
        );
        println!(
            "  text search in drafts, p50                 {:>8.2} ms   ≤ 50 ms",
            f("search_p50_ms")
        );
        println!(
            "  batch decision of {:<5} tasks             {:>8.0} ms   ≤ 1000 ms",
            a.batch,
            f("batch_ms")
        );
        println!(
            "  tagging throughput                         {:>8.0} /s   ≥ 10000 /s",
            f("tags_per_s")
        );
        println!("baseline measured in the same run");
        println!(
            "  task by primary key, p50                   {:>8.3} ms",
            f("baseline_point_lookup_p50_ms")
        );
        println!(
            "  first page p99 ÷ point lookup              {:>8.1}",
            f("first_page_p99_ms") / f("baseline_point_lookup_p50_ms")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Raw rusqlite inserts of journal-sized rows, one commit each, with the same pragmas.
fn raw_sqlite_baseline(path: &Path, durability: Durability) -> Result<(f64, f64)> {
    let conn = rusqlite::Connection::open(path)?;
    let sync = if durability == Durability::PowerLoss {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync};
         CREATE TABLE j (run_id TEXT, seq INTEGER, at INTEGER, kind TEXT, node TEXT, body TEXT, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
    ))?;
    let body = r#"{"type":"node_finished","node":"n","visit":1,"output":{"status":200},"next":[]}"#;
    let mut stmt = conn.prepare("INSERT INTO j VALUES (?1, ?2, ?3, 'node_finished', 'n', ?4)")?;
    let run = Uuid::now_v7().to_string();
    let mut times = Vec::new();
    let started = Instant::now();
    for seq in 0..5000i64 {
        let t = Instant::now();
        stmt.execute(rusqlite::params![run, seq, seq, body])?;
        times.push(t.elapsed());
    }
    let per_s = 5000.0 / started.elapsed().as_secs_f64();
    Ok((percentile(&mut times, 0.50) * 1000.0, per_s))
}

pub(crate) fn percentile(d: &mut [Duration], q: f64) -> f64 {
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort_unstable();
    let i = ((d.len() - 1) as f64 * q).round() as usize;
    d[i].as_secs_f64() * 1000.0
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// A loopback HTTP receiver standing in for the notes service; counts deliveries.
struct Receiver {
    addr: std::net::SocketAddr,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl Receiver {
    async fn start() -> Result<Self> {
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = count.clone();
        let app = axum::Router::new().route(
            "/notes",
            axum::routing::post(move || {
                let c = c.clone();
                async move {
                    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, count })
    }

    fn url(&self) -> String {
        format!("http://{}/notes", self.addr)
    }

    fn deliveries(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Args)]
pub struct RetrievalBenchArgs {
    /// Passages in the synthetic collection.
    #[arg(long, default_value_t = 10_000)]
    passages: usize,
    /// Queries timed per repeat (each as BM25 and as hybrid).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Repeats (the report gives medians over them).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Length of the stand-in vectors (MiniLM's is 384).
    #[arg(long, default_value_t = 384)]
    dimensions: usize,
    /// Passages to return per search.
    #[arg(long, default_value_t = 10)]
    top_k: u32,
    #[arg(long)]
    json: bool,
}

/// What one repeat of the retrieval benchmark measured (milliseconds unless named otherwise).
struct RetrievalRepeat {
    ingest_passages_per_s: f64,
    embed_write_passages_per_s: f64,
    raw_insert_rows_per_s: f64,
    bm25_p50: f64,
    bm25_p95: f64,
    hybrid_p50: f64,
    hybrid_p95: f64,
    vector_p50: f64,
    point_p50: f64,
    count_p50: f64,
    raw_fts_p50: f64,
}

/// `processops bench retrieval`: ingest throughput and search latency over a synthetic
/// collection. Without an embedder, passages and queries get deterministic stand-in vectors
/// (hashed pseudo-random unit vectors, not a model): they measure what the vector path costs,
/// not how well it ranks. The built-in embedder can be passed as `embedder` later.
pub async fn retrieval(a: RetrievalBenchArgs) -> Result<ExitCode> {
    retrieval_with(a, None).await
}

async fn retrieval_with(
    a: RetrievalBenchArgs,
    embedder: Option<Arc<dyn processops_llm::Embedder>>,
) -> Result<ExitCode> {
    let vectors_label = match &embedder {
        Some(e) => format!("model `{}`", e.model_id()),
        None => format!(
            "stand-in vectors ({} dims, hashed pseudo-random; NOT a model: cost only, not quality)",
            a.dimensions
        ),
    };
    let mut repeats = Vec::new();
    for i in 0..a.repeats.max(1) {
        let r = retrieval_repeat(&a, embedder.clone(), i as u64).await?;
        if !a.json {
            eprintln!(
                "repeat {}/{}: ingest {:.0} passages/s, BM25 p50 {:.2} ms, hybrid p50 {:.2} ms",
                i + 1,
                a.repeats,
                r.ingest_passages_per_s,
                r.bm25_p50,
                r.hybrid_p50
            );
        }
        repeats.push(r);
    }
    let m = |f: fn(&RetrievalRepeat) -> f64| median(repeats.iter().map(f).collect());
    let report = json!({
        "passages": a.passages, "queries": a.queries, "repeats": repeats.len(), "top_k": a.top_k,
        "vectors": vectors_label,
        "ingest_passages_per_s": m(|r| r.ingest_passages_per_s),
        "embedding_write_passages_per_s": m(|r| r.embed_write_passages_per_s),
        "bm25_p50_ms": m(|r| r.bm25_p50), "bm25_p95_ms": m(|r| r.bm25_p95),
        "hybrid_p50_ms": m(|r| r.hybrid_p50), "hybrid_p95_ms": m(|r| r.hybrid_p95),
        "vector_only_p50_ms": m(|r| r.vector_p50),
        "baseline_point_lookup_p50_ms": m(|r| r.point_p50),
        "baseline_count_p50_ms": m(|r| r.count_p50),
        "baseline_raw_fts5_bm25_p50_ms": m(|r| r.raw_fts_p50),
        "bm25_p50_vs_raw_fts5": m(|r| r.bm25_p50 / r.raw_fts_p50),
        "baseline_raw_insert_rows_per_s": m(|r| r.raw_insert_rows_per_s),
        "bm25_p50_vs_point_lookup": m(|r| r.bm25_p50 / r.point_p50),
        "hybrid_p50_vs_point_lookup": m(|r| r.hybrid_p50 / r.point_p50),
        "hybrid_p50_vs_bm25_p50": m(|r| r.hybrid_p50 / r.bm25_p50),
        "bm25_p50_vs_count": m(|r| r.bm25_p50 / r.count_p50),
        "ingest_vs_raw_insert": m(|r| r.ingest_passages_per_s / r.raw_insert_rows_per_s),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nRetrieval benchmark: {} passages, {} queries × {} repeats, top {}, medians over repeats",
        a.passages,
        a.queries,
        repeats.len(),
        a.top_k
    );
    println!("vectors: {vectors_label}");
    let row = |label: &str, value: String| println!("  {label:<50}{value:>16}");
    let ms2 = |a: &str, b: &str| format!("{:.2} / {:.2}", f(a), f(b));
    println!("{:<52}{:>16}", "", "value");
    row(
        "ingest (passages + FTS index), passages/s",
        format!("{:.0}", f("ingest_passages_per_s")),
    );
    row(
        "embedding writes, passages/s",
        format!("{:.0}", f("embedding_write_passages_per_s")),
    );
    row(
        "BM25 search p50 / p95 (ms)",
        ms2("bm25_p50_ms", "bm25_p95_ms"),
    );
    row(
        "hybrid search p50 / p95 (ms)",
        ms2("hybrid_p50_ms", "hybrid_p95_ms"),
    );
    row(
        "vector-only search p50 (ms)",
        format!("{:.2}", f("vector_only_p50_ms")),
    );
    println!("baseline measured in the same run");
    row(
        "passage by primary key, p50 (ms)",
        format!("{:.3}", f("baseline_point_lookup_p50_ms")),
    );
    row(
        "SELECT count(*) of the collection, p50 (ms)",
        format!("{:.3}", f("baseline_count_p50_ms")),
    );
    row(
        "raw FTS5 MATCH … ORDER BY rank LIMIT k, p50 (ms)",
        format!("{:.3}", f("baseline_raw_fts5_bm25_p50_ms")),
    );
    row(
        "raw SQLite inserts, one commit, rows/s",
        format!("{:.0}", f("baseline_raw_insert_rows_per_s")),
    );
    println!("ratios");
    row(
        "BM25 p50 ÷ raw FTS5 query",
        format!("{:.2}", f("bm25_p50_vs_raw_fts5")),
    );
    row(
        "BM25 p50 ÷ point lookup",
        format!("{:.1}", f("bm25_p50_vs_point_lookup")),
    );
    row(
        "hybrid p50 ÷ point lookup",
        format!("{:.1}", f("hybrid_p50_vs_point_lookup")),
    );
    row(
        "hybrid p50 ÷ BM25 p50",
        format!("{:.2}", f("hybrid_p50_vs_bm25_p50")),
    );
    row(
        "BM25 p50 ÷ count(*)",
        format!("{:.2}", f("bm25_p50_vs_count")),
    );
    row(
        "ingest passages/s ÷ raw inserts/s",
        format!("{:.3}", f("ingest_vs_raw_insert")),
    );
    Ok(ExitCode::SUCCESS)
}

async fn retrieval_repeat(
    a: &RetrievalBenchArgs,
    embedder: Option<Arc<dyn processops_llm::Embedder>>,
    seed: u64,
) -> Result<RetrievalRepeat> {
    use processops_store::{NewDocument, QueryVector, SearchFilter};
    const PER_DOCUMENT: usize = 10;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("retrieval.db");
    let store = Store::open(&path, Durability::Process)?;
    let collection = "bench";

    // Documents of ten passages, written in the batches `knowledge ingest` uses.
    let mut rng = SplitMix(0x5eed ^ seed);
    let mut docs = Vec::new();
    let mut n = 0;
    while n < a.passages {
        let count = PER_DOCUMENT.min(a.passages - n);
        let passages = (0..count).map(|_| synthetic_text(&mut rng, 40)).collect();
        docs.push(NewDocument {
            source: format!("docs/{:03}/doc-{}.md", docs.len() % 100, docs.len()),
            sha256: format!("{seed}-{}", docs.len()),
            passages,
        });
        n += count;
    }
    let started = Instant::now();
    let mut written = 0;
    let mut batch = Vec::new();
    for doc in docs {
        batch.push(doc);
        if batch.len() == 64 {
            store
                .ingest_documents(collection.into(), std::mem::take(&mut batch))
                .await?;
            written += 64;
        }
    }
    written += batch.len();
    store.ingest_documents(collection.into(), batch).await?;
    let ingest_s = started.elapsed().as_secs_f64();
    let (total, _) = store.passage_counts(collection, "")?;
    anyhow::ensure!(
        total as usize == a.passages,
        "{written} documents gave {total} passages, expected {}",
        a.passages
    );

    // Vectors for every passage: the model's, or stand-ins.
    let model_id = embedder.as_ref().map_or_else(
        || format!("stand-in-{}", a.dimensions),
        |e| e.model_id().to_owned(),
    );
    let vectorise = |texts: &[String]| -> Result<Vec<Vec<f32>>> {
        match &embedder {
            Some(e) => Ok(e.embed(texts)?),
            None => Ok(texts
                .iter()
                .map(|t| stand_in_vector(t, a.dimensions))
                .collect()),
        }
    };
    let mut embed_write_s = 0.0;
    loop {
        let missing = store.passages_missing_embedding(collection, &model_id, 1000)?;
        if missing.is_empty() {
            break;
        }
        let (ids, texts): (Vec<i64>, Vec<String>) = missing.into_iter().unzip();
        let vectors = vectorise(&texts)?;
        let t = Instant::now();
        store
            .set_embeddings(model_id.clone(), ids.into_iter().zip(vectors).collect())
            .await?;
        embed_write_s += t.elapsed().as_secs_f64();
    }

    let queries: Vec<String> = (0..a.queries.max(1))
        .map(|_| synthetic_text(&mut rng, 4))
        .collect();
    let query_vectors = vectorise(&queries)?;
    let none = SearchFilter::default();
    let (mut bm25, mut hybrid, mut vector) = (Vec::new(), Vec::new(), Vec::new());
    for (q, v) in queries.iter().zip(&query_vectors) {
        let qv = QueryVector {
            model_id: &model_id,
            vector: v,
        };
        let t = Instant::now();
        let r = store.search_hybrid(collection, q, None, a.top_k, &none)?;
        bm25.push(t.elapsed());
        anyhow::ensure!(!r.hits.is_empty(), "BM25 found nothing for `{q}`");
        let t = Instant::now();
        let r = store.search_hybrid(collection, q, Some(qv), a.top_k, &none)?;
        hybrid.push(t.elapsed());
        anyhow::ensure!(
            r.mode == processops_store::SearchMode::Hybrid,
            "hybrid search fell back to {:?}",
            r.mode
        );
        let t = Instant::now();
        store.search_vector(collection, qv, a.top_k, &none)?;
        vector.push(t.elapsed());
    }

    // Baselines on a raw connection to the same file.
    let conn = rusqlite::Connection::open(&path)?;
    let max_id: i64 = conn.query_row("SELECT max(id) FROM passages", [], |r| r.get(0))?;
    let mut point = Vec::new();
    let mut count = Vec::new();
    let mut raw_fts = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        for q in &queries {
            let fts: Vec<String> = q.split_whitespace().map(|w| format!("\"{w}\"")).collect();
            let t = Instant::now();
            let n = stmt
                .query_map(rusqlite::params![fts.join(" OR "), a.top_k], |_| Ok(()))?
                .count();
            raw_fts.push(t.elapsed());
            anyhow::ensure!(n > 0, "raw FTS5 found nothing for `{q}`");
        }
    }
    for i in 0..a.queries.max(1) as i64 {
        let id = 1 + (i * 7919) % max_id.max(1);
        let t = Instant::now();
        let _: String = conn.query_row("SELECT text FROM passages WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
        point.push(t.elapsed());
        let t = Instant::now();
        let _: i64 = conn.query_row(
            "SELECT count(*) FROM passages WHERE collection = ?1",
            [collection],
            |r| r.get(0),
        )?;
        count.push(t.elapsed());
    }
    let raw_rows_per_s = raw_insert_throughput(&dir.path().join("raw.db"), a.passages, seed)?;
    Ok(RetrievalRepeat {
        ingest_passages_per_s: a.passages as f64 / ingest_s,
        embed_write_passages_per_s: a.passages as f64 / embed_write_s.max(f64::MIN_POSITIVE),
        raw_insert_rows_per_s: raw_rows_per_s,
        bm25_p50: percentile(&mut bm25, 0.50),
        bm25_p95: percentile(&mut bm25, 0.95),
        hybrid_p50: percentile(&mut hybrid, 0.50),
        hybrid_p95: percentile(&mut hybrid, 0.95),
        vector_p50: percentile(&mut vector, 0.50),
        point_p50: percentile(&mut point, 0.50),
        raw_fts_p50: percentile(&mut raw_fts, 0.50),
        count_p50: percentile(&mut count, 0.50),
    })
}

/// Raw inserts of passage-sized rows into a plain table (no FTS, no triggers), in one commit.
fn raw_insert_throughput(path: &Path, rows: usize, seed: u64) -> Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE p (id INTEGER PRIMARY KEY, collection TEXT, source TEXT, text TEXT);",
    )?;
    let mut rng = SplitMix(0xba5e ^ seed);
    let texts: Vec<String> = (0..rows).map(|_| synthetic_text(&mut rng, 40)).collect();
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare("INSERT INTO p (collection, source, text) VALUES ('bench', ?1, ?2)")?;
        for (i, text) in texts.iter().enumerate() {
            stmt.execute(rusqlite::params![format!("docs/doc-{}.md", i / 10), text])?;
        }
    }
    tx.commit()?;
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// A small deterministic generator (SplitMix64) for synthetic text and stand-in vectors.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `words` words: mostly common business words, some from a long tail of `term<N>`.
fn synthetic_text(rng: &mut SplitMix, words: usize) -> String {
    use processops_store::synthetic::VOCABULARY;
    (0..words)
        .map(|_| {
            let r = rng.next();
            if r.is_multiple_of(4) {
                format!("term{}", (r >> 8) % 5000)
            } else {
                VOCABULARY[((r >> 8) % VOCABULARY.len() as u64) as usize].to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A deterministic pseudo-random vector seeded by the text's hash (the store normalises it).
/// A stand-in for a model's embedding: same cost to store and compare, no meaning.
fn stand_in_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let seed = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = SplitMix(seed);
    (0..dimensions.max(1))
        .map(|_| (rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        .collect()
}
