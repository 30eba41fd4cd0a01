//! `processops bench tracing`: what the run, node and model-call spans cost per node when no
//! trace is exported (no OpenTelemetry layer installed), against the same runs with no
//! subscriber at all, measured in the same process.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_store::{Durability, Store};
use serde_json::json;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::bench::median;

#[derive(Args, Clone, Copy)]
pub struct TracingBenchArgs {
    /// Nodes in the benchmark blueprint (a chain of `transform` steps).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Runs per measurement.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Rounds; each measures every setup once, in turn (the report gives medians).
    #[arg(long, default_value_t = 15)]
    repeats: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// Ceiling for the per-node cost of the instrumentation with export off (issue target).
const TARGET_US: f64 = 10.0;

/// The subscribers compared, export off: what `logging::init` installs in each case.
#[derive(Clone, Copy)]
enum Setup {
    /// No subscriber: every span is a no-op (the baseline).
    None,
    /// A one-shot command outside a project: console logs at `warn`, so spans are filtered out.
    Console,
    /// A one-shot command in a project: console at `warn`, JSON log file at `info` (spans
    /// are built, and their fields formatted for the file's `span` member).
    ConsoleAndFile,
    /// `serve` in a project: console and JSON file both at `info`.
    Serve,
}

impl Setup {
    const ALL: [Self; 4] = [Self::None, Self::Console, Self::ConsoleAndFile, Self::Serve];

    fn name(self) -> &'static str {
        match self {
            Self::None => "no subscriber (baseline)",
            Self::Console => "console at warn",
            Self::ConsoleAndFile => "console warn + file info",
            Self::Serve => "serve: console + file info",
        }
    }

    /// The same layers and filters as `logging::init`, writing to nowhere.
    fn install(self) -> tracing::subscriber::DefaultGuard {
        let console = |filter: &str| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_ansi(false)
                .with_target(false)
                .with_filter(EnvFilter::new(filter))
        };
        let file = || {
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_writer(std::io::sink)
                .with_filter(EnvFilter::new("info"))
        };
        let registry = tracing_subscriber::registry();
        match self {
            Self::None => {
                tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default())
            }
            Self::Console => tracing::subscriber::set_default(registry.with(console("warn"))),
            Self::ConsoleAndFile => {
                tracing::subscriber::set_default(registry.with(console("warn")).with(file()))
            }
            Self::Serve => tracing::subscriber::set_default(
                registry.with(console("info,processops=info")).with(file()),
            ),
        }
    }
}

fn blueprint(nodes: usize) -> String {
    let mut text = String::from(
        "id: chain\nname: Chain\nstart: n0\ntriggers:\n  - kind: manual\n    id: go\nnodes:\n",
    );
    for i in 0..nodes {
        text.push_str(&format!(
            "  - kind: transform\n    id: n{i}\n    set:\n      v: \"{{{{ trigger.x }}}}-{i}\"\n"
        ));
        if i + 1 < nodes {
            text.push_str(&format!("    next: n{}\n", i + 1));
        }
    }
    text
}

pub async fn overhead(a: TracingBenchArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        a.nodes > 0 && a.runs > 0,
        "--nodes and --runs must be positive"
    );
    // A subscriber set for one thread sees only that thread's spans: run the engine on a
    // single-threaded runtime of a thread of its own.
    let worker = std::thread::spawn(move || -> Result<Vec<Vec<f64>>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(measure(&a))
    });
    let per_run = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))??;
    let medians: Vec<f64> = per_run.into_iter().map(median).collect();
    let base = medians[0];
    let per_node = |m: f64| (m - base) * 1e6 / a.nodes as f64;
    let worst = medians
        .iter()
        .map(|&m| per_node(m))
        .fold(f64::MIN, f64::max);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "nodes": a.nodes, "runs": a.runs, "repeats": a.repeats,
                "setups": Setup::ALL.iter().zip(&medians).map(|(s, m)| json!({
                    "setup": s.name(), "run_ms": m * 1000.0, "overhead_us_per_node": per_node(*m),
                })).collect::<Vec<_>>(),
                "target_us_per_node": TARGET_US,
            }))?
        );
    } else {
        println!(
            "tracing overhead, export off: {} runs of {} transform nodes, median of {} rounds",
            a.runs, a.nodes, a.repeats
        );
        println!(
            "{:<28} {:>10} {:>10} {:>18}",
            "", "ms / run", "µs / node", "overhead µs/node"
        );
        for (s, m) in Setup::ALL.iter().zip(&medians) {
            println!(
                "{:<28} {:>10.3} {:>10.2} {:>18.2}",
                s.name(),
                m * 1000.0,
                m * 1e6 / a.nodes as f64,
                per_node(*m)
            );
        }
        println!("target: ≤ {TARGET_US} µs per node; worst measured {worst:.2} µs");
    }
    Ok(if worst <= TARGET_US {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Seconds per run, one list per setup (in `Setup::ALL` order), one entry per round.
async fn measure(a: &TracingBenchArgs) -> Result<Vec<Vec<f64>>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.db"), Durability::Process)?;
    let registry = Arc::new(Registry::default());
    let compiled = Compiled::from_source(&blueprint(a.nodes))
        .map_err(|e| anyhow::anyhow!("the benchmark blueprint is invalid: {e:?}"))?;
    registry.insert(Arc::new(compiled));
    let engine = Engine::new(EngineConfig {
        store,
        registry,
        providers: Default::default(),
        outputs_dir: dir.path().join("outputs"),
    })?;
    engine.record_versions().await?;
    let batch = |engine: Engine| async move {
        let t = Instant::now();
        for i in 0..a.runs {
            engine
                .start_run("chain", None, json!({ "x": i }), None)
                .await
                .context("starting a run")?;
            engine.settle_all().await;
        }
        anyhow::Ok(t.elapsed().as_secs_f64() / a.runs as f64)
    };
    // Warm up: SQLite's cache, the template cache, the allocator.
    {
        let _g = Setup::Serve.install();
        batch(engine.clone()).await?;
    }
    let mut out = vec![Vec::new(); Setup::ALL.len()];
    for round in 0..a.repeats.max(1) {
        // Rotate the order, so no setup always runs on the largest database or right after
        // another's warm-up.
        for k in 0..Setup::ALL.len() {
            let i = (k + round) % Setup::ALL.len();
            let _g = Setup::ALL[i].install();
            out[i].push(batch(engine.clone()).await?);
        }
    }
    Ok(out)
}
