//! `processops bench metrics`: the dashboard's query set over a million runs, and what keeping
//! the counters costs on the write path.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use processops_api::MetricsQuery;
use processops_api::local::Project;
use processops_core::journal::{Event, FinalStatus, StepMeta};
use processops_store::{Durability, NewRun, Store};
use serde_json::json;
use uuid::Uuid;

use crate::bench::{median, percentile};

#[derive(Args)]
pub struct MetricsBenchArgs {
    /// Finished runs the counters stand for.
    #[arg(long, default_value_t = 1_000_000)]
    runs: usize,
    /// Days they are spread over (ending today).
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Blueprints they belong to (two versions each).
    #[arg(long, default_value_t = 12)]
    blueprints: usize,
    /// Runs journaled through the store for the write-path cost.
    #[arg(long, default_value_t = 20_000)]
    journaled: usize,
    /// Repeats of each measurement (the report gives medians over them).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn metrics(a: MetricsBenchArgs) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let project = Project::new(dir.path().to_owned(), None);
    std::fs::create_dir_all(project.blueprints())?;
    let store = project.open_store()?;
    let t = Instant::now();
    let rows = store
        .insert_synthetic_metrics(a.runs, a.blueprints, a.days, 7, false)
        .await?;
    store.analyze().await?;
    if !a.json {
        eprintln!(
            "{} runs as {rows} counter rows over {} days in {:.1} s",
            a.runs,
            a.days,
            t.elapsed().as_secs_f64()
        );
    }
    drop(store);
    let service = project.service().await?;
    let store = service.engine().store().clone();

    // The dashboard's query set: what the Metrics screen loads for a window (every process,
    // each version with drift, the day-by-day series), then one process on its own.
    let queries = [
        (
            "30 days, every process",
            MetricsQuery {
                since: Some("30d".into()),
                ..MetricsQuery::default()
            },
        ),
        (
            "90 days, every process",
            MetricsQuery {
                since: Some("90d".into()),
                ..MetricsQuery::default()
            },
        ),
        (
            "30 days, one process",
            MetricsQuery {
                since: Some("30d".into()),
                blueprint: Some("bp0".into()),
                ..MetricsQuery::default()
            },
        ),
    ];
    let mut dashboard: Vec<(String, Vec<f64>)> = queries
        .iter()
        .map(|(n, _)| ((*n).to_owned(), Vec::new()))
        .collect();
    let mut scan = Vec::new();
    for _ in 0..a.repeats.max(1) {
        for ((_, q), (_, out)) in queries.iter().zip(dashboard.iter_mut()) {
            let mut times = Vec::new();
            for _ in 0..10 {
                let t = Instant::now();
                let report = service.metrics(q)?;
                times.push(t.elapsed());
                anyhow::ensure!(!report.blueprints.is_empty(), "the report is empty");
            }
            out.push(percentile(&mut times, 0.5));
        }
        // Baseline: one scan of the runs (the least a dashboard without counters would read).
        let t = Instant::now();
        let finished = store.count_runs(processops_store::RunStatus::Completed)?
            + store.count_runs(processops_store::RunStatus::Failed)?;
        scan.push(ms(t.elapsed()));
        anyhow::ensure!(finished as usize == a.runs, "{finished} runs counted");
    }

    // The write path: journal runs through the store (the counters update in the same
    // transactions), then rebuild them from the journal alone to price `observe` per event.
    let write_dir = tempfile::tempdir()?;
    let wstore = Store::open(&write_dir.path().join("w.db"), Durability::Process)?;
    wstore
        .put_version("v".into(), "bp".into(), "bp".into(), String::new())
        .await?;
    let events_per_run = 4;
    let t = Instant::now();
    let mut pending = Vec::new();
    for _ in 0..a.journaled {
        let id = Uuid::now_v7();
        let s = wstore.clone();
        pending.push(tokio::spawn(async move {
            s.start_run(NewRun {
                id,
                blueprint_id: "bp".into(),
                version: "v".into(),
                trigger_id: "form".into(),
                dedupe_key: None,
                events: vec![
                    Event::RunStarted {
                        blueprint: "bp".into(),
                        version: "v".into(),
                        trigger: "form".into(),
                        start: "draft".into(),
                        payload: json!({}),
                    },
                    Event::NodeStarted {
                        node: "draft".into(),
                        visit: 1,
                        attempt: 1,
                    },
                    Event::NodeFinished {
                        node: "draft".into(),
                        visit: 1,
                        output: json!({ "text": "a draft" }),
                        vars: serde_json::Map::new(),
                        next: vec![],
                        label: None,
                        meta: StepMeta {
                            fallback: Some("template".into()),
                            ..StepMeta::default()
                        },
                    },
                    Event::RunFinished {
                        status: FinalStatus::Completed,
                        error: None,
                    },
                ],
            })
            .await
        }));
    }
    for p in pending {
        p.await??;
    }
    let journal_s = t.elapsed().as_secs_f64();
    let events = (a.journaled * events_per_run) as f64;
    let mut rebuild = Vec::new();
    for _ in 0..a.repeats.max(1) {
        let t = Instant::now();
        let n = wstore.rebuild_metrics().await?;
        rebuild.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(n as f64 == events, "rebuilt from {n} events");
    }
    let rebuild_us = median(rebuild) * 1e6 / events;
    let journal_us = journal_s * 1e6 / events;

    let scan_ms = median(scan);
    let results: Vec<(String, f64)> = dashboard.into_iter().map(|(n, v)| (n, median(v))).collect();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "runs": a.runs, "days": a.days, "blueprints": a.blueprints, "counter_rows": rows,
                "dashboard_p50_ms": results.iter().map(|(n, v)| json!({ "query": n, "ms": v })).collect::<Vec<_>>(),
                "baseline_scan_ms": scan_ms,
                "journal_us_per_event": journal_us, "observe_us_per_event": rebuild_us,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "metrics over {} runs ({} blueprints × 2 versions, {} days; {rows} counter rows)",
        a.runs, a.blueprints, a.days
    );
    println!("{:<34} {:>10} {:>16}", "", "p50 ms", "÷ runs scan");
    for (name, v) in &results {
        println!(
            "{:<34} {:>10.2} {:>16.3}",
            format!("dashboard: {name}"),
            v,
            v / scan_ms
        );
    }
    println!(
        "{:<34} {:>10.2} {:>16}",
        "baseline: one scan of the runs", scan_ms, "1"
    );
    println!();
    println!(
        "write path, {} runs × {events_per_run} events journaled",
        a.journaled
    );
    println!("  journal append with counters   {journal_us:>8.2} µs/event");
    println!(
        "  counters alone (rebuild: read, parse, count){rebuild_us:>8.2} µs/event  ({:.0}% of the append)",
        rebuild_us / journal_us * 100.0
    );
    Ok(ExitCode::SUCCESS)
}
