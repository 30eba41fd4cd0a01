//! `processops tag` and `processops eval`: evaluators' feedback on outputs.
//!
//! Feedback does not change runs, so these commands write to the project's database directly
//! (SQLite lets them share it with a running `processops serve`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use processops_api::{
    AgreementQuery, AgreementReport, ExportFormat, ExportQuery, FeedbackQuery, OutputFeedback,
    QueueItem, QueueQuery, TagRequest, TagResponse, UntagRequest,
};
use processops_core::feedback::{Intent, OutputRef, TagKey};
use processops_store::{Durability, Store, TagChange};
use serde_json::json;
use uuid::Uuid;

use crate::project::Project;
use crate::render;

#[derive(Subcommand)]
pub enum TagCommand {
    /// Tag an output (a finished step), and optionally rate it or comment on it.
    Add(TagAddArgs),
    /// Remove your tags from an output.
    Remove(TagRemoveArgs),
    /// Feedback per output and evaluator: tags, rating, comment.
    List(TagListArgs),
    /// The tags a blueprint accepts: the built-in ones plus those in evaluation.toml.
    Taxonomy {
        /// Blueprint id (default: the tags every blueprint accepts).
        blueprint: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct TagAddArgs {
    /// The output: <run>:<node>[:<visit>] (the last 8 characters of the run id are enough;
    /// the visit defaults to the latest).
    output: String,
    /// Tags from the blueprint's taxonomy (see `processops tag taxonomy`).
    tags: Vec<String>,
    /// Rate the output from 1 to 5.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    rating: Option<u8>,
    /// A comment on the output (an empty one clears yours).
    #[arg(long)]
    comment: Option<String>,
    /// Who evaluates (default: $USER).
    #[arg(long, env = "PROCESSOPS_USER")]
    by: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TagRemoveArgs {
    /// The output: <run>:<node>[:<visit>].
    output: String,
    #[arg(required = true)]
    tags: Vec<String>,
    /// Whose tags (default: $USER); evaluators remove only their own.
    #[arg(long, env = "PROCESSOPS_USER")]
    by: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TagListArgs {
    /// An output (<run>:<node>[:<visit>]) or a run id; default: all.
    output: Option<String>,
    /// Only this evaluator's feedback.
    #[arg(long)]
    by: Option<String>,
    #[arg(long)]
    blueprint: Option<String>,
    /// Only outputs with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// The outputs waiting for my tags: drafts and approved texts of finished runs that I
    /// have not tagged, rated or commented on; newest first, or sampled with --seed.
    Queue(QueueArgs),
    /// How much evaluators agree, per tag: Cohen's kappa for two, Fleiss' kappa for more.
    Agreement(AgreementArgs),
    /// Approved outputs as JSONL: `chat` (fine-tuning messages) or `evalset`.
    Export(ExportArgs),
    /// Measure tagging throughput on a scratch database.
    #[command(hide = true)]
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct QueueArgs {
    #[arg(long)]
    blueprint: Option<String>,
    /// prompt (drafts), review (approved texts) or all.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Sample with this seed instead of newest first (the same seed gives every evaluator the
    /// same sample, which agreement needs).
    #[arg(long)]
    seed: Option<u64>,
    /// Whose queue (default: $USER).
    #[arg(long, env = "PROCESSOPS_USER")]
    by: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AgreementArgs {
    #[arg(long)]
    blueprint: Option<String>,
    /// Compare these evaluators (repeat; default: everyone with feedback in scope).
    #[arg(long = "evaluator", value_name = "NAME")]
    evaluators: Vec<String>,
    /// Report these tags (repeat; default: the taxonomy's and every tag used).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// chat or evalset.
    #[arg(long)]
    format: ExportFormat,
    #[arg(long)]
    blueprint: Option<String>,
    /// Only outputs with this tag (repeat for all of several).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Write the JSONL here (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Tags per repeat.
    #[arg(long, default_value_t = 10_000)]
    tags: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The first line of `text`, at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let clipped: String = line.chars().take(max).collect();
    if clipped.len() < line.len() || text.trim().lines().nth(1).is_some() {
        format!("{}…", clipped.trim_end())
    } else {
        clipped
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn tag(project: &Project, c: TagCommand) -> Result<ExitCode> {
    match c {
        TagCommand::Add(a) => {
            let taxonomy = processops_api::load_taxonomy(&project.root)?;
            let service = project.service().await?;
            let r = service
                .tag_add(
                    &taxonomy,
                    TagRequest {
                        output: a.output,
                        tags: a.tags,
                        rating: a.rating,
                        comment: a.comment,
                        by: project.whoami(a.by),
                    },
                )
                .await?;
            if a.json {
                print_json(&r)?;
            } else {
                print!("{}", changed(&r, "added", "already there"));
            }
        }
        TagCommand::Remove(a) => {
            let service = project.service().await?;
            let r = service
                .tag_remove(UntagRequest {
                    output: a.output,
                    tags: a.tags,
                    by: project.whoami(a.by),
                })
                .await?;
            if a.json {
                print_json(&r)?;
            } else {
                print!("{}", changed(&r, "removed", "not there"));
            }
        }
        TagCommand::List(a) => {
            let service = project.service().await?;
            let list = service.feedback(&FeedbackQuery {
                output: a.output,
                by: a.by,
                blueprint: a.blueprint,
                tag: a.tag,
            })?;
            if a.json {
                print_json(&list)?;
            } else {
                print!("{}", feedback_table(&list));
            }
        }
        TagCommand::Taxonomy { blueprint, json } => {
            let taxonomy = processops_api::load_taxonomy(&project.root)?;
            let tags = taxonomy.allowed(blueprint.as_deref().unwrap_or_default());
            if json {
                print_json(&json!({ "blueprint": blueprint, "tags": tags }))?;
            } else {
                println!("{}", tags.join("\n"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn changed(r: &TagResponse, did: &str, did_not: &str) -> String {
    let f = &r.feedback;
    let mut out = format!(
        "{} {} ({}) by {}",
        render::mark(true),
        f.handle,
        f.blueprint.as_deref().unwrap_or("?"),
        f.evaluator
    );
    if !r.changed.is_empty() {
        out += &format!("; {did} {}", r.changed.join(", "));
    }
    if !r.unchanged.is_empty() {
        out += &format!("; {did_not}: {}", r.unchanged.join(", "));
    }
    out += "\n  now: ";
    out += &if f.tags.is_empty() {
        "no tags".to_owned()
    } else {
        f.tags.join(", ")
    };
    if let Some(r) = f.rating {
        out += &format!("; rated {r}/5");
    }
    if let Some(c) = &f.comment {
        out += &format!("; “{}”", clip(c, 60));
    }
    out.push('\n');
    out
}

fn feedback_table(list: &[OutputFeedback]) -> String {
    if list.is_empty() {
        return "No feedback yet. See what waits with `processops eval queue`.\n".into();
    }
    let mut t = crate::render::table(&["OUTPUT", "BLUEPRINT", "BY", "TAGS", "RATING", "COMMENT"]);
    for f in list {
        t.add_row(vec![
            f.handle.clone(),
            f.blueprint.clone().unwrap_or_else(|| "?".into()),
            f.evaluator.clone(),
            f.tags.join(", "),
            f.rating.map(|r| format!("{r}/5")).unwrap_or_default(),
            f.comment
                .as_deref()
                .map(|c| clip(c, 50))
                .unwrap_or_default(),
        ]);
    }
    format!("{t}\n")
}

pub async fn eval(project: &Project, c: EvalCommand) -> Result<ExitCode> {
    match c {
        EvalCommand::Queue(a) => {
            let taxonomy = processops_api::load_taxonomy(&project.root)?;
            let service = project.service().await?;
            let by = project.whoami(a.by);
            let items = service.eval_queue(
                &taxonomy,
                &QueueQuery {
                    by: by.clone(),
                    blueprint: a.blueprint,
                    kind: a.kind,
                    limit: Some(a.limit),
                    seed: a.seed,
                },
            )?;
            if a.json {
                print_json(&items)?;
            } else {
                print!("{}", queue_table(&items, &by));
            }
        }
        EvalCommand::Agreement(a) => {
            let taxonomy = processops_api::load_taxonomy(&project.root)?;
            let service = project.service().await?;
            let report = service.agreement(
                &taxonomy,
                &AgreementQuery {
                    blueprint: a.blueprint,
                    evaluators: a.evaluators,
                    tags: a.tags,
                },
            )?;
            if a.json {
                print_json(&report)?;
            } else {
                print!("{}", agreement_table(&report));
            }
        }
        EvalCommand::Export(a) => {
            let service = project.service().await?;
            let export = service.export(&ExportQuery {
                format: a.format,
                blueprint: a.blueprint,
                tags: a.tags,
            })?;
            let mut text = String::new();
            for r in &export.records {
                text += &serde_json::to_string(r)?;
                text.push('\n');
            }
            let target = match &a.out {
                Some(path) => {
                    std::fs::write(path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    path.display().to_string()
                }
                None => {
                    std::io::stdout().write_all(text.as_bytes())?;
                    "standard output".into()
                }
            };
            let mut left_out = Vec::new();
            if export.filtered > 0 {
                left_out.push(format!("{} without the tags asked for", export.filtered));
            }
            if export.without_prompt > 0 {
                left_out.push(format!(
                    "{} not drafted by a prompt with recorded messages",
                    export.without_prompt
                ));
            }
            eprintln!(
                "exported {} of {} approved output(s) to {target}{}",
                export.records.len(),
                export.approved,
                if left_out.is_empty() {
                    String::new()
                } else {
                    format!(" (left out: {})", left_out.join("; "))
                }
            );
        }
        EvalCommand::Bench(a) => bench(&a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn queue_table(items: &[QueueItem], by: &str) -> String {
    if items.is_empty() {
        return format!(
            "Nothing waits for {by}: every finished output in scope has your feedback.\n"
        );
    }
    let mut t = crate::render::table(&["OUTPUT", "KIND", "BLUEPRINT", "FINISHED", "TEXT"]);
    for i in items {
        t.add_row(vec![
            i.handle.clone(),
            if i.edited {
                format!("{} (edited)", i.kind)
            } else {
                i.kind.clone()
            },
            i.blueprint.clone(),
            render::relative(i.finished_at),
            clip(&i.text, 70),
        ]);
    }
    let mut blueprints: Vec<(&str, &Vec<String>)> = Vec::new();
    for i in items {
        if !blueprints.iter().any(|(b, _)| *b == i.blueprint) {
            blueprints.push((&i.blueprint, &i.allowed_tags));
        }
    }
    let mut out = format!(
        "{t}\n\nTag one with `processops tag add <OUTPUT> <TAG>... [--rating 1-5] [--comment TEXT]`.\n"
    );
    for (b, tags) in blueprints {
        out += &format!("Tags for {b}: {}\n", tags.join(", "));
    }
    out
}

fn agreement_table(r: &AgreementReport) -> String {
    let mut out = String::new();
    if let Some(method) = &r.method {
        let name = if method == "cohen" {
            "Cohen's"
        } else {
            "Fleiss'"
        };
        out += &format!(
            "{name} kappa between {} over {} output(s) they all gave feedback on{}\n",
            r.evaluators.join(", "),
            r.outputs,
            r.blueprint
                .as_deref()
                .map(|b| format!(" in {b}"))
                .unwrap_or_default()
        );
    }
    if let Some(note) = &r.note {
        out += &format!("{note}\n");
    }
    if r.outputs == 0 || r.tags.is_empty() {
        return out;
    }
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.0}%", v * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    let mut t = crate::render::table(&["TAG", "PRESENT", "OBSERVED", "CHANCE", "KAPPA"]);
    for a in &r.tags {
        t.add_row(vec![
            a.tag.clone(),
            a.present.to_string(),
            pct(a.observed),
            pct(a.chance),
            match a.kappa {
                Some(k) => format!("{k:.3}"),
                None => "undefined".into(),
            },
        ]);
    }
    out += &format!("{t}\n");
    if r.tags.iter().any(|a| a.kappa.is_none()) {
        out += "undefined: every judgement was the same (chance agreement is 100%)\n";
    }
    out
}

/// Tagging throughput on a scratch database: `n` tag adds applied in one write, and the same
/// number as concurrent 10-tag requests that the store's writer group-commits. Median of 5.
async fn bench(a: &BenchArgs) -> Result<()> {
    const REPEATS: usize = 5;
    let n = a.tags.max(10);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let store = Store::open(&db, Durability::Process)?;
    let tags = processops_core::feedback::DEFAULT_TAGS;
    let changes = |evaluator: &str| -> Vec<TagChange> {
        (0..n)
            .map(|i| TagChange {
                key: TagKey {
                    output: OutputRef {
                        run: Uuid::from_u128((i / tags.len()) as u128),
                        node: "draft".into(),
                        visit: 1,
                    },
                    evaluator: evaluator.to_owned(),
                    tag: tags[i % tags.len()].to_owned(),
                },
                intent: Intent::Add,
            })
            .collect()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut one_write = Vec::new();
    let mut requests = Vec::new();
    for rep in 0..REPEATS {
        let batch = changes(&format!("bench-batch-{rep}"));
        let started = Instant::now();
        let ops = store.change_tags(batch).await?;
        one_write.push(ops.len() as f64 / started.elapsed().as_secs_f64());

        let batch = changes(&format!("bench-requests-{rep}"));
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for chunk in batch.chunks(10) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            set.spawn(async move { store.change_tags(chunk).await });
        }
        let mut applied = 0usize;
        while let Some(r) = set.join_next().await {
            applied += r??.len();
        }
        requests.push(applied as f64 / started.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("bench.db-wal")).map_or(0, |m| m.len());
    let (one, many) = (median(one_write), median(requests));
    if a.json {
        print_json(&json!({
            "tags_per_repeat": n,
            "repeats": REPEATS,
            "one_write_tags_per_s": one,
            "requests_of_10_tags_per_s": many,
            "db_bytes": size,
        }))?;
    } else {
        println!("tagging throughput, median of {REPEATS} repeats of {n} tag adds:");
        println!("  in one write:               {one:>10.0} tags/s");
        println!("  as concurrent 10-tag calls: {many:>10.0} tags/s");
        println!(
            "  scratch database: {:.1} MB with {} tag rows",
            size as f64 / 1e6,
            n * REPEATS * 2
        );
    }
    Ok(())
}
