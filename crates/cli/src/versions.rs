//! `processops versions`: change control from the terminal. Propose a version with a change
//! note, pilot it, promote it (governance, never its author), roll back, and read the diff
//! between two versions.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use processops_api::{
    BlueprintVersions, DiffQuery, GateReport, GateRequest, ProposeRequest, RollbackRequest,
    Service, StageRequest, VersionDiff,
};
use processops_core::blueprint::diff::{Area, ChangeKind};
use processops_core::lifecycle::short;

use crate::project::Project;
use crate::render::table;

#[derive(Subcommand)]
pub enum VersionsCommand {
    /// A blueprint's versions, their stages, and who moved them when.
    List {
        blueprint: String,
        #[arg(long)]
        json: bool,
    },
    /// Propose a version (the file's, by default) for change control, with a change note.
    Propose {
        blueprint: String,
        /// What changed and why.
        #[arg(long, short)]
        note: String,
        /// The version's hash (or its first characters); default: the file's version.
        #[arg(long, value_name = "HASH")]
        blueprint_version: Option<String>,
        /// Feedback that motivated it: a task id, an output `run:node:visit`, a tag. Repeat.
        #[arg(long, value_name = "REF")]
        feedback: Vec<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Start a pilot: only the blueprint's `lifecycle.pilot` cohort gets its tasks and runs.
    Pilot(MoveArgs),
    /// Promote the pilot to monitored (governance role; not its author).
    Monitor(MoveArgs),
    /// Approve and scale the monitored version to everyone (governance role; not its author).
    Approve(MoveArgs),
    /// Retire a version: no new runs start on it.
    Retire(MoveArgs),
    /// Retire the approved version and approve again the one approved before it.
    Rollback {
        blueprint: String,
        #[arg(long, short)]
        note: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// The prompt regression gate: replay the newest approved reviews on a version (the
    /// file's by default) and compare its drafts with what people approved. Approving a
    /// version whose prompts changed needs one; the approval's audit entry keeps the result.
    Gate {
        blueprint: String,
        /// The version (hash or first characters); default: the file's.
        #[arg(value_name = "VERSION")]
        hash: Option<String>,
        /// The similarity to the approved text a draft needs, 0–1.
        #[arg(long, default_value_t = processops_core::gate::DEFAULT_THRESHOLD)]
        threshold: f64,
        /// How many past reviews to replay.
        #[arg(long, default_value_t = 20)]
        cases: u32,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        who: Who,
    },
    /// What changed between two versions: graph, prompts, policies. Default: from the
    /// approved version to the file's.
    Diff {
        blueprint: String,
        /// The older version (hash or first characters).
        from: Option<String>,
        /// The newer version (default: the file's).
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct Who {
    /// Who does it (default: $USER).
    #[arg(long, env = "PROCESSOPS_USER")]
    by: Option<String>,
}

#[derive(Args)]
pub struct MoveArgs {
    blueprint: String,
    /// The version (hash or first characters). Default: the one the step applies to (the
    /// newest proposal for a pilot, the pilot to monitor, the monitored one to approve).
    #[arg(value_name = "VERSION")]
    hash: Option<String>,
    #[arg(long, short)]
    note: Option<String>,
    #[command(flatten)]
    who: Who,
}

pub async fn run(project: &Project, command: VersionsCommand) -> Result<ExitCode> {
    let service = project.service().await?;
    match command {
        VersionsCommand::List { blueprint, json } => {
            let v = service.versions(&blueprint)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", list_text(&v));
            }
        }
        VersionsCommand::Propose {
            blueprint,
            note,
            blueprint_version,
            feedback,
            who,
        } => {
            let info = service
                .propose_version(ProposeRequest {
                    blueprint: blueprint.clone(),
                    version: blueprint_version,
                    by: project.whoami(who.by),
                    note,
                    feedback,
                })
                .await?;
            println!(
                "Proposed {blueprint} version {} as a draft. Next: `processops versions pilot {blueprint}`.",
                short(&info.version)
            );
        }
        VersionsCommand::Pilot(a) => stage(project, &service, a, "pilot").await?,
        VersionsCommand::Monitor(a) => stage(project, &service, a, "monitored").await?,
        VersionsCommand::Approve(a) => stage(project, &service, a, "approved").await?,
        VersionsCommand::Retire(a) => stage(project, &service, a, "retired").await?,
        VersionsCommand::Rollback {
            blueprint,
            note,
            who,
        } => {
            let v = service
                .rollback_version(RollbackRequest {
                    blueprint,
                    by: project.whoami(who.by),
                    note,
                })
                .await?;
            print!("{}", list_text(&v));
        }
        VersionsCommand::Gate {
            blueprint,
            hash,
            threshold,
            cases,
            json,
            who,
        } => {
            let report = service
                .gate_version(GateRequest {
                    blueprint,
                    version: hash,
                    by: project.whoami(who.by),
                    threshold: Some(threshold),
                    cases: Some(cases),
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", gate_text(&report));
            }
            return Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        VersionsCommand::Diff {
            blueprint,
            from,
            to,
            json,
        } => {
            let d = service.version_diff(&DiffQuery {
                blueprint,
                from,
                to,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", diff_text(&d));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn stage(project: &Project, service: &Service, a: MoveArgs, to: &str) -> Result<()> {
    let version = match a.hash {
        Some(v) => v,
        None => default_version(&service.versions(&a.blueprint)?, to)?,
    };
    let v = service
        .stage_version(StageRequest {
            blueprint: a.blueprint,
            version,
            stage: to.to_owned(),
            by: project.whoami(a.who.by),
            note: a.note,
        })
        .await?;
    print!("{}", list_text(&v));
    Ok(())
}

/// The version a step applies to when none is named: the one in the stage before it.
fn default_version(v: &BlueprintVersions, to: &str) -> Result<String> {
    let from = match to {
        "pilot" => "draft",
        "monitored" => "pilot",
        "approved" => "monitored",
        _ => {
            return Err(anyhow!(
                "name the version to {to}: `processops versions list {}` shows them",
                v.blueprint
            ));
        }
    };
    v.versions
        .iter()
        .find(|x| x.stage.as_deref() == Some(from))
        .map(|x| x.version.clone())
        .ok_or_else(|| {
            anyhow!(
                "`{}` has no {from} version to move to {to}; `processops versions list {}` shows where each stands",
                v.blueprint,
                v.blueprint
            )
        })
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| "?".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

fn list_text(v: &BlueprintVersions) -> String {
    let mut out = String::new();
    if !v.managed {
        let _ = writeln!(
            out,
            "{} is not under change control: its file's version runs. Propose one with `processops versions propose {} --note …`.\n",
            v.blueprint, v.blueprint
        );
    }
    let mut t = table(&["VERSION", "STAGE", "AUTHOR", "PROPOSED", "NOTE", ""]);
    for x in &v.versions {
        t.add_row(vec![
            short(&x.version).to_owned(),
            x.stage.clone().unwrap_or_else(|| "—".into()),
            x.author.clone().unwrap_or_default(),
            x.proposed_at.map(time).unwrap_or_default(),
            x.note.clone().unwrap_or_default(),
            if x.current_file { "(file)" } else { "" }.to_owned(),
        ]);
    }
    let _ = writeln!(out, "{t}");
    if !v.history.is_empty() {
        let _ = writeln!(out, "\nHistory:");
        for h in &v.history {
            let from = h.from.as_deref().unwrap_or("proposed");
            let why = match h.reason.as_str() {
                "asked" | "proposed" => String::new(),
                other => format!(" ({})", other.replace('_', " ")),
            };
            let note = h
                .note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {}  {from} → {}{why} by {}{note}",
                time(h.at),
                short(&h.version),
                h.to,
                h.by
            );
        }
    }
    out
}

fn diff_text(d: &VersionDiff) -> String {
    let mut out = format!("{}: {} → {}\n", d.blueprint, short(&d.from), short(&d.to));
    if d.changes.is_empty() {
        out.push_str("\nNo changes (canvas positions aside).\n");
        return out;
    }
    let mut area = None;
    for c in &d.changes {
        if area != Some(c.area) {
            area = Some(c.area);
            let title = match c.area {
                Area::Process => "Process",
                Area::Graph => "Graph",
                Area::Prompts => "Prompts",
                Area::Policies => "Policies",
            };
            let _ = writeln!(out, "\n{title}");
        }
        let mark = match c.change {
            ChangeKind::Added => "+",
            ChangeKind::Removed => "-",
            ChangeKind::Changed => "~",
        };
        let field = if c.field.is_empty() {
            String::new()
        } else {
            format!(" · {}", c.field)
        };
        if !c.lines.is_empty() {
            let _ = writeln!(out, "  {mark} {}{field}:", c.subject);
            for l in &c.lines {
                let _ = writeln!(out, "      {} {}", l.tag, l.text);
            }
            continue;
        }
        let values = match (&c.before, &c.after) {
            (Some(b), Some(a)) => format!(": {b} → {a}"),
            (None, Some(a)) => format!(": {a}"),
            (Some(b), None) => format!(" (was {b})"),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "  {mark} {}{field}{values}", c.subject);
    }
    out
}

fn gate_text(r: &GateReport) -> String {
    let mut out = format!(
        "Regression gate for {} {} against {} (the runs' version), threshold {:.2}\n\n",
        r.blueprint,
        short(&r.candidate_version),
        short(&r.baseline_version),
        r.threshold
    );
    if !r.cases.is_empty() {
        let mut t = table(&["RUN", "REVIEW", "THAT RAN", "CANDIDATE", ""]);
        for c in &r.cases {
            t.add_row(vec![
                crate::render::short(&c.run_id),
                c.node.clone(),
                format!("{:.2}", c.baseline_score),
                c.candidate_score
                    .map_or_else(|| "—".to_owned(), |s| format!("{s:.2}")),
                c.error
                    .clone()
                    .unwrap_or_else(|| crate::render::mark(c.candidate_passed).to_owned()),
            ]);
        }
        let _ = writeln!(out, "{t}\n");
    }
    let _ = writeln!(out, "{} {}", crate::render::mark(r.passed), r.summary());
    out
}
