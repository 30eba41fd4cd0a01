//! `processops metrics`: the five ProcessOps metrics per blueprint and version, drift, and the
//! runs behind each number.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use processops_api::{BlueprintMetrics, DrillRow, MetricRunsQuery, MetricsQuery, MetricsReport};
use processops_core::metrics::{Drift, Ratio, Summary};

use crate::project::{Lock, Project};
use crate::render::{self, short, table};

#[derive(Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    action: Option<MetricsAction>,
    #[command(flatten)]
    window: WindowArgs,
    /// Print the report as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args, Clone)]
struct WindowArgs {
    /// Only this blueprint (its id).
    #[arg(long, short, global = true)]
    blueprint: Option<String>,
    /// Only this version of the blueprint (its hash, or its first characters).
    #[arg(long, global = true, value_name = "HASH")]
    blueprint_version: Option<String>,
    /// First day: a date (2026-11-01), `today`, or a span back from today (30d, 4w). Default 30d.
    #[arg(long, global = true)]
    since: Option<String>,
    /// Last day, included (default today).
    #[arg(long, global = true)]
    until: Option<String>,
}

#[derive(Subcommand)]
enum MetricsAction {
    /// The runs behind a number: overrides, automated, touched, prompt-issues, escalated,
    /// breached, slowest or failed.
    Runs {
        metric: String,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Recompute the counters from the run journals (after restoring a backup, say).
    Rebuild,
    /// Drift alerts sent to process owners (`lifecycle.owner`); `--check` compares the
    /// recent days with the baseline now (a running engine does it every hour).
    Alerts {
        /// Check now, and alert the owners of newly drifting versions.
        #[arg(long)]
        check: bool,
        /// Only alerts for this owner (a person, matched by name or role).
        #[arg(long)]
        owner: Option<String>,
    },
}

pub async fn run(project: &Project, a: MetricsArgs) -> Result<ExitCode> {
    let w = a.window;
    match a.action {
        None => {
            let service = project.service().await?;
            let report = service.metrics(&MetricsQuery {
                blueprint: w.blueprint,
                version: w.blueprint_version,
                since: w.since,
                until: w.until,
                recent_days: None,
                baseline_days: None,
            })?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report_text(&report));
            }
        }
        Some(MetricsAction::Runs { metric, limit }) => {
            let service = project.service().await?;
            let rows = service.metric_runs(&MetricRunsQuery {
                metric,
                blueprint: w.blueprint,
                version: w.blueprint_version,
                since: w.since,
                until: w.until,
                limit: Some(limit),
            })?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", drill_text(&rows));
            }
        }
        Some(MetricsAction::Rebuild) => {
            let Lock::Held(_lock) = project.lock()? else {
                anyhow::bail!(
                    "a `processops serve` owns this project's store; stop it, then run `processops metrics rebuild` again"
                );
            };
            let service = project.service().await?;
            let events = service.rebuild_metrics().await?;
            println!("Rebuilt the metrics from {events} journal events.");
        }
        Some(MetricsAction::Alerts { check, owner }) => {
            let service = project.service().await?;
            if check {
                let sent = service.check_drift().await?;
                println!(
                    "Checked drift: {} new alert{}.",
                    sent.len(),
                    if sent.len() == 1 { "" } else { "s" }
                );
            }
            let alerts =
                service.drift_alerts(&processops_api::AlertsQuery { owner, since: None })?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&alerts)?);
            } else if alerts.is_empty() {
                println!("No drift alerts in the last 30 days.");
            } else {
                let mut t = table(&[
                    "WHEN",
                    "BLUEPRINT",
                    "VERSION",
                    "DRIFT",
                    "WHAT MOVED",
                    "OWNER",
                ]);
                for x in &alerts {
                    t.add_row(vec![
                        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(x.at)
                            .map_or_else(|| "?".into(), |d| d.format("%Y-%m-%d %H:%M").to_string()),
                        x.blueprint.clone(),
                        processops_core::lifecycle::short(&x.version).to_owned(),
                        format!("{:.2}", x.drift),
                        x.component.replace('_', " "),
                        x.owner
                            .clone()
                            .unwrap_or_else(|| "— (set lifecycle.owner)".into()),
                    ]);
                }
                println!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(r: &Ratio) -> String {
    match r.value {
        Some(v) => format!("{:.0}% ({}/{})", v * 100.0, r.num, r.den),
        None => "—".into(),
    }
}

fn latency(s: &Summary) -> String {
    match (s.escalation.p50_ms, s.escalation.p95_ms) {
        (Some(p50), Some(p95)) => format!(
            "{} / {}",
            render::span(p50 as i64),
            render::span(p95 as i64)
        ),
        _ => "—".into(),
    }
}

fn drift_cell(d: &Drift) -> String {
    match d.index {
        Some(i) if d.flagged => format!("{i:.2} ⚠ DRIFT"),
        Some(i) => format!("{i:.2}"),
        None => "—".into(),
    }
}

fn row(label: String, s: &Summary, drift: Option<&Drift>) -> Vec<String> {
    vec![
        label,
        s.runs_started.to_string(),
        percent(&s.prompt_success),
        percent(&s.human_override),
        s.edit_distance
            .map_or_else(|| "—".into(), |d| format!("{:.0}%", d * 100.0)),
        percent(&s.automation_coverage),
        latency(s),
        percent(&s.escalation.escalated),
        percent(&s.escalation.breached),
        drift.map_or_else(String::new, drift_cell),
    ]
}

const HEADER: [&str; 10] = [
    "PROCESS / VERSION",
    "RUNS",
    "PROMPT SUCCESS",
    "HUMAN OVERRIDE",
    "EDITED",
    "AUTOMATED",
    "DECISION P50 / P95",
    "ESCALATED",
    "SLA BREACHED",
    "DRIFT",
];

fn report_text(r: &MetricsReport) -> String {
    let mut out = format!(
        "ProcessOps metrics, {} to {} (drift: {} onwards against the {} days before)\n\n",
        r.since,
        r.until,
        r.recent_since,
        days_between(&r.baseline_since, &r.recent_since)
    );
    if r.blueprints.is_empty() {
        out.push_str("No runs in this window. Start one with `processops run <blueprint>`, or widen it with --since 90d.\n");
        return out;
    }
    let mut t = table(&HEADER);
    for b in &r.blueprints {
        t.add_row(row(label(b), &b.summary, Some(&b.drift)));
        if b.versions.len() > 1 {
            for v in &b.versions {
                t.add_row(row(
                    format!(
                        "  {} ({} → {})",
                        short_hash(&v.version),
                        v.first_day,
                        v.last_day
                    ),
                    &v.summary,
                    Some(&v.drift),
                ));
            }
        }
    }
    if r.blueprints.len() > 1 {
        t.add_row(row("All processes".into(), &r.total, None));
    }
    let _ = writeln!(out, "{t}");
    let flagged: Vec<String> = r
        .blueprints
        .iter()
        .flat_map(|b| {
            b.versions.iter().filter(|v| v.drift.flagged).map(move |v| {
                let top = v
                    .drift
                    .components
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), c.psi?)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or_else(String::new, |(n, p)| {
                        format!(", mostly {} (PSI {p:.2})", n.replace('_', " "))
                    });
                format!(
                    "  {} {}: drift index {:.2} ≥ {:.2}{top}",
                    label(b),
                    short_hash(&v.version),
                    v.drift.index.unwrap_or_default(),
                    v.drift.threshold
                )
            })
        })
        .collect();
    if !flagged.is_empty() {
        let _ = writeln!(out, "\nDrift flagged:\n{}", flagged.join("\n"));
    }
    out.push_str(
        "\nThe runs behind a number: processops metrics runs overrides|automated|prompt-issues|escalated|breached|slowest|failed\n",
    );
    out
}

fn label(b: &BlueprintMetrics) -> String {
    b.name.clone().unwrap_or_else(|| b.blueprint.clone())
}

fn short_hash(hash: &str) -> String {
    hash.get(..10).unwrap_or(hash).to_owned()
}

fn days_between(from: &str, to: &str) -> i64 {
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    match (day(from), day(to)) {
        (Some(a), Some(b)) => (b - a).num_days(),
        _ => 0,
    }
}

fn drill_text(rows: &[DrillRow]) -> String {
    if rows.is_empty() {
        return "No runs behind this number in the window.\n".into();
    }
    let waits = rows.iter().any(|r| r.waited_ms.is_some());
    let mut header = vec!["RUN", "BLUEPRINT", "VERSION", "WHEN", "WHY IT COUNTS"];
    if waits {
        header.push("WAITED");
    }
    let mut t = table(&header);
    for r in rows {
        let mut row = vec![
            short(&r.run_id.to_string()),
            r.blueprint.clone(),
            short_hash(&r.version),
            render::relative(r.at),
            r.detail.clone(),
        ];
        if waits {
            row.push(r.waited_ms.map(render::span).unwrap_or_default());
        }
        t.add_row(row);
    }
    format!("{t}\nRead one with: processops runs show <RUN>\n")
}
