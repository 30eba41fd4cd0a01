//! The subcommands. Each parses its arguments, calls the service API (in process or on the
//! running server) and prints the result for a person, or as JSON with `--json`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use processops_api::{
    DecisionRequest, DecisionResponse, RunsQuery, Service, StartRunRequest, StartRunResponse,
    TasksQuery,
};
use processops_core::blueprint;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::project::{Lock, Project};
use crate::remote::Remote;
use crate::{bench, render};

/// Exit code for "the input has problems" (validation errors, a refused decision).
const EXIT_PROBLEMS: u8 = 1;

#[derive(Subcommand)]
pub enum Command {
    /// Check blueprint files (or folders of them) and report every problem with file:line:column.
    Validate(ValidateArgs),
    /// Start a run and follow it until it waits for a review or ends.
    Run(RunArgs),
    /// Run the engine: HTTP API, webhooks, schedules, folder drops; resumes unfinished runs.
    Serve(ServeArgs),
    /// List runs and read their timelines.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Work the inbox: list, read and decide review tasks.
    #[command(subcommand)]
    Inbox(InboxCommand),
    /// Add documents to a knowledge collection that `retrieve` nodes search.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
    /// The ProcessOps metrics per process and version: prompt success, human override,
    /// automation coverage, decision latency, drift; `metrics runs <metric>` lists the runs
    /// behind a number.
    Metrics(crate::metrics::MetricsArgs),
    /// Change control: propose a version with a change note, pilot it with a cohort, promote
    /// it (governance, never its author), roll back, and diff two versions.
    #[command(subcommand)]
    Versions(crate::versions::VersionsCommand),
    /// Print the JSON Schema of the blueprint format (committed as blueprints/schema.json).
    Schema,
    /// Print the OpenAPI document of the HTTP API (committed as docs/openapi.json).
    Openapi,
    /// Measure the engine on this machine (medians, with a raw SQLite baseline).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Serve the demo project offline: demo knowledge and runs drafted by the built-in model.
    Demo(DemoArgs),
    /// The built-in offline models: fetch them once, list them, try them.
    #[command(subcommand)]
    Models(crate::models::ModelsCommand),
    /// Developer tools.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Tag, rate and comment on outputs (evaluators).
    #[command(subcommand)]
    Tag(crate::feedback::TagCommand),
    /// The evaluation queue, agreement between evaluators, and exports of tagged outputs.
    #[command(subcommand)]
    Eval(crate::feedback::EvalCommand),
    /// Run and administer a hub: the shared store devices and headless engines sync with.
    #[command(subcommand)]
    Hub(crate::hub::HubCommand),
    /// The audit log: who decided, tagged, published or changed what, hash-chained so any
    /// edit, deletion or reordering is detected.
    #[command(subcommand)]
    Audit(crate::audit::AuditCommand),
    /// Sync this project's store with its hub once: push its changes, pull the team's.
    Sync,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// Blueprint files or folders (default: the project's blueprints/).
    paths: Vec<PathBuf>,
    /// Print diagnostics as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// Blueprint id, or the path of a blueprint file.
    blueprint: String,
    /// Trigger id (default: the manual trigger, else the first).
    #[arg(long, short)]
    trigger: Option<String>,
    /// JSON payload file, or `-` for standard input (default: `{}`).
    #[arg(long, short)]
    payload: Option<String>,
    /// Start at most one run per key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Print the run as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8686")]
    pub addr: String,
    /// Use the built-in scripted model as the `default` provider (no network, no key).
    #[arg(long)]
    pub scripted_model: bool,
    /// How often schedules and watched folders are checked, in milliseconds.
    #[arg(long, default_value_t = 500, hide = true)]
    pub tick_ms: u64,
    /// The built web UI to serve at `/` (default: `ui/dist` of the project).
    #[arg(long, value_name = "DIR")]
    pub ui: Option<PathBuf>,
    /// Start the demo runs from this folder of payloads once serving (used by `demo`).
    #[arg(skip)]
    pub demo_payloads: Option<PathBuf>,
    /// Serve as an engine of a team hub (a headless engine): the project must be enrolled
    /// with this hub, or give `--enrol-code` to enrol it now.
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// A one-time enrolment code (from `processops hub code TEAM USER`) for `--hub`.
    #[arg(long, requires = "hub", value_name = "CODE")]
    pub enrol_code: Option<String>,
    /// Several engines serve these blueprints: claim each trigger occurrence (schedule fire,
    /// dropped file, webhook with an Idempotency-Key) through the hub, so exactly one runs it.
    #[arg(long)]
    pub share_triggers: bool,
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Runs, newest first.
    List {
        #[arg(long)]
        blueprint: Option<String>,
        /// running, waiting, attention, completed, failed or all
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 30)]
        limit: u32,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a run from its recorded model replies and decisions, with no network, and
    /// compare each step with the original (exit 1 when anything differs).
    Replay {
        /// Run id or a unique prefix of it.
        run: String,
        /// Replay on this edited blueprint file instead of the recorded version.
        #[arg(long)]
        blueprint: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A run's timeline: each node's input, output, timing and status.
    Show {
        /// Run id (the last 8 characters are enough).
        run: String,
        /// Show inputs and outputs in full.
        #[arg(long)]
        full: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Try the failed steps of a run that needs attention again.
    Retry { run: String },
}

#[derive(Subcommand)]
pub enum InboxCommand {
    /// Tasks waiting for a decision, soonest due first.
    List {
        /// Only tasks for this role.
        #[arg(long)]
        role: Option<String>,
        /// Only this process.
        #[arg(long)]
        blueprint: Option<String>,
        /// pending (default), decided or all
        #[arg(long)]
        status: Option<String>,
        /// Words that must all appear in the title or the draft.
        #[arg(long, short)]
        search: Option<String>,
        /// Only tasks claimed by this person.
        #[arg(long)]
        assignee: Option<String>,
        /// Only tasks claimed by me ($USER or --by).
        #[arg(long, conflicts_with = "assignee")]
        mine: bool,
        /// Only tasks due within this long, e.g. `4h`, `2d` (overdue ones included).
        #[arg(long, value_name = "DURATION")]
        due_within: Option<String>,
        /// due (default), newest or oldest
        #[arg(long)]
        sort: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A task with its draft and the context that produced it.
    Show {
        task: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide one or more tasks.
    Decide(DecideArgs),
    /// Take tasks so others do not work on them at the same time.
    Claim {
        #[arg(required = true)]
        tasks: Vec<String>,
        /// Who takes them (default: $USER).
        #[arg(long, env = "PROCESSOPS_USER")]
        by: Option<String>,
    },
    /// Give tasks back.
    Unclaim {
        #[arg(required = true)]
        tasks: Vec<String>,
        #[arg(long, env = "PROCESSOPS_USER")]
        by: Option<String>,
        /// Take them back from whoever holds them.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["approve", "edit", "edit_file", "reject", "escalate"])))]
pub struct DecideArgs {
    /// Task ids (the last 8 characters are enough).
    #[arg(required_unless_present = "all")]
    tasks: Vec<String>,
    /// Every pending task matching --blueprint / --role / --search (they must share one
    /// review policy).
    #[arg(long, conflicts_with = "tasks")]
    all: bool,
    /// With --all: only this process.
    #[arg(long, requires = "all")]
    blueprint: Option<String>,
    /// With --all: only this role.
    #[arg(long, requires = "all")]
    role: Option<String>,
    /// With --all: only tasks whose title or draft has all these words.
    #[arg(long, requires = "all")]
    search: Option<String>,
    /// Approve the draft as it is.
    #[arg(long)]
    approve: bool,
    /// Approve with this edited text.
    #[arg(long, value_name = "TEXT")]
    edit: Option<String>,
    /// Approve with the edited text in this file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    edit_file: Option<String>,
    /// Reject, with the reason the drafter will see.
    #[arg(long, value_name = "REASON")]
    reject: Option<String>,
    /// Escalate to the next role of the escalation chain.
    #[arg(long)]
    escalate: bool,
    /// Why (for escalate).
    #[arg(long)]
    reason: Option<String>,
    /// Who decides (default: $USER).
    #[arg(long, env = "PROCESSOPS_USER")]
    by: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum KnowledgeCommand {
    /// Add Markdown, text, HTML and PDF files (or folders of them) to a collection; unchanged
    /// files are skipped, changed ones replaced.
    Ingest(crate::knowledge::IngestArgs),
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Runs to the review pause, decisions to completion, journal overhead, SQLite baseline.
    Engine(bench::EngineBenchArgs),
    /// The inbox with many tasks: first page, text search, a batch of decisions, tagging.
    Inbox(bench::InboxBenchArgs),
    /// Knowledge search over 10,000 passages: BM25 and hybrid latency, ingest throughput.
    Retrieval(bench::RetrievalBenchArgs),
    /// What our model clients add over a bare HTTP round trip (loopback server).
    Providers(crate::bench_ai::ProvidersBenchArgs),
    /// The built-in model: load, time to first token, tokens/s; embedding throughput.
    Model(crate::bench_ai::ModelBenchArgs),
    /// The team hub over loopback: push and pull of 100,000 events, idle rounds, 50 devices.
    Hub(crate::bench_hub::HubBenchArgs),
    /// Verifying the audit chain of 1,000,000 entries, against a bare scan and SHA-256.
    Audit(crate::audit::AuditBenchArgs),
    /// The metrics dashboard's queries over 1,000,000 runs; the counters' cost per event.
    Metrics(crate::bench_metrics::MetricsBenchArgs),
    /// What the run and node spans cost per node with trace export off (target ≤ 10 µs).
    Tracing(crate::bench_tracing::TracingBenchArgs),
}

#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8686")]
    pub addr: String,
    /// Use the scripted model (canned replies, instant) instead of the project's providers.
    #[arg(long)]
    pub scripted: bool,
    /// Only ingest the demo knowledge, then exit (the desktop app serves the demo itself).
    #[arg(long)]
    pub prepare: bool,
}

#[derive(Subcommand)]
pub enum DevCommand {
    /// Serve the scripted OpenAI-compatible model on a port (for trying providers).
    LlmServer {
        #[arg(long, default_value = "127.0.0.1:8700")]
        addr: String,
    },
    /// Fill the project's store with synthetic pending tasks (for the app's benchmarks).
    SyntheticTasks {
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
    /// Fill the project's store with the metrics of synthetic finished runs over 90 days
    /// (blueprints `bp0`…); `--plant-drift` makes bp0's managers reject far more in the last week.
    SyntheticMetrics {
        #[arg(long, default_value_t = 20_000)]
        runs: usize,
        #[arg(long, default_value_t = 4)]
        blueprints: usize,
        #[arg(long)]
        plant_drift: bool,
    },
}

pub async fn run(command: Command, project: Project) -> Result<ExitCode> {
    match command {
        Command::Validate(a) => validate(&project, &a),
        Command::Run(a) => run_blueprint(&project, a).await,
        Command::Serve(a) => serve(&project, &a).await,
        Command::Runs(c) => runs(&project, c).await,
        Command::Inbox(c) => inbox(&project, c).await,
        Command::Knowledge(KnowledgeCommand::Ingest(a)) => crate::knowledge::run(&project, a).await,
        Command::Metrics(a) => crate::metrics::run(&project, a).await,
        Command::Versions(c) => crate::versions::run(&project, c).await,
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&blueprint::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!("{}", processops_api::http::openapi().to_pretty_json()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Engine(a)) => bench::engine(a).await,
        Command::Bench(BenchCommand::Inbox(a)) => bench::inbox(a).await,
        Command::Bench(BenchCommand::Retrieval(a)) => bench::retrieval(a).await,
        Command::Bench(BenchCommand::Providers(a)) => crate::bench_ai::providers(a).await,
        Command::Bench(BenchCommand::Model(a)) => crate::bench_ai::model(a).await,
        Command::Bench(BenchCommand::Hub(a)) => crate::bench_hub::hub(a).await,
        Command::Bench(BenchCommand::Audit(a)) => crate::audit::bench(a).await,
        Command::Bench(BenchCommand::Metrics(a)) => crate::bench_metrics::metrics(a).await,
        Command::Bench(BenchCommand::Tracing(a)) => crate::bench_tracing::overhead(a).await,
        Command::Demo(a) => crate::demo::run(&project, a).await,
        Command::Tag(c) => crate::feedback::tag(&project, c).await,
        Command::Eval(c) => crate::feedback::eval(&project, c).await,
        Command::Models(c) => crate::models::run(c).await,
        Command::Hub(c) => crate::hub::hub(&project, c).await,
        Command::Audit(c) => crate::audit::audit(&project, c).await,
        Command::Sync => crate::hub::sync(&project).await,
        Command::Dev(DevCommand::SyntheticTasks { count }) => {
            let store = project.open_store()?;
            let roles: Vec<String> = (0..20).map(|i| format!("role-{i}")).collect();
            let n = store.insert_synthetic_tasks(count, roles, 42).await?;
            store.analyze().await?;
            println!("added {n} synthetic tasks to {}", project.db().display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev(DevCommand::SyntheticMetrics {
            runs,
            blueprints,
            plant_drift,
        }) => {
            let store = project.open_store()?;
            let rows = store
                .insert_synthetic_metrics(runs, blueprints, 90, 42, plant_drift)
                .await?;
            println!(
                "added the metrics of {runs} synthetic runs ({rows} counter rows) to {}",
                project.db().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev(DevCommand::LlmServer { addr }) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            println!(
                "scripted OpenAI-compatible model at http://{}/v1 (Ctrl-C to stop)",
                listener.local_addr()?
            );
            processops_llm::scripted::serve_on(
                listener,
                processops_llm::scripted::ScriptedConfig::default(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(project: &Project, a: &ValidateArgs) -> Result<ExitCode> {
    let roots = if a.paths.is_empty() {
        vec![project.blueprints()]
    } else {
        a.paths.clone()
    };
    let mut files = Vec::new();
    for root in &roots {
        if root.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(root)
                .with_context(|| format!("cannot read {}", root.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(root.clone());
        }
    }
    if files.is_empty() {
        bail!(
            "no blueprint files (*.yaml) found in {}",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut errors = 0;
    let mut warnings = 0;
    let mut report = Vec::new();
    for file in &files {
        let shown = file.display().to_string();
        let diagnostics = match std::fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(source) => blueprint::check(&source).diagnostics,
                Err(_) => vec![
                    processops_core::Diagnostic::error(
                        "encoding",
                        "",
                        "the file is not UTF-8 text",
                    )
                    .help("save the blueprint as UTF-8")
                    .at(1, 1),
                ],
            },
            Err(e) => vec![
                processops_core::Diagnostic::error("io", "", format!("cannot read the file: {e}"))
                    .help("check the path")
                    .at(0, 0),
            ],
        };
        errors += diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += diagnostics.iter().filter(|d| !d.is_error()).count();
        if a.json {
            report.push(serde_json::json!({ "file": shown, "valid": !diagnostics.iter().any(processops_core::Diagnostic::is_error), "diagnostics": diagnostics }));
        } else {
            for d in &diagnostics {
                println!("{}", d.display_in(&shown));
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if errors == 0 {
        println!(
            "{} blueprint{} valid{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if warnings > 0 {
                format!(" ({warnings} warning(s))")
            } else {
                String::new()
            }
        );
    } else {
        println!(
            "\n{errors} error(s), {warnings} warning(s) in {} file(s)",
            files.len()
        );
    }
    Ok(if errors > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_payload(arg: Option<&str>) -> Result<Value> {
    let text = match arg {
        None => return Ok(Value::Object(serde_json::Map::new())),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the payload from standard input")?;
            s
        }
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the payload file {path}"))?,
    };
    serde_json::from_str(&text)
        .with_context(|| format!("the payload {} is not valid JSON", arg.unwrap_or("-")))
}

async fn run_blueprint(project: &Project, a: RunArgs) -> Result<ExitCode> {
    let payload = read_payload(a.payload.as_deref())?;
    let path = Path::new(&a.blueprint);
    let file = (path.extension().is_some_and(|x| x == "yaml" || x == "yml") || path.is_file())
        .then_some(path);
    let blueprint_id = match file {
        Some(f) => {
            let source = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            blueprint::parse(&source)
                .0
                .map(|b| b.id)
                .unwrap_or_else(|| a.blueprint.clone())
        }
        None => a.blueprint.clone(),
    };
    let request = StartRunRequest {
        blueprint: blueprint_id,
        trigger: a.trigger,
        payload,
        idempotency_key: a.idempotency_key,
        wait: true,
        // A pilot's cohort member running it by hand gets the pilot version.
        by: Some(project.whoami(None)),
    };
    let (service, response) = match project.lock()? {
        Lock::Held(_lock) => {
            let (engine, _) = project.engine(file, None).await?;
            let service = Service::new(engine, Vec::new());
            let r = service.start_run(request).await?;
            (service, r)
        }
        Lock::Server(url) => {
            if file.is_some() {
                bail!(
                    "a server ({url}) owns this project; it runs the blueprints in its blueprints/ folder, so pass the blueprint id instead of a file"
                );
            }
            let r: StartRunResponse = Remote::new(url).post("/api/runs", &request).await?;
            (project.service().await?, r)
        }
    };
    let detail = service.run(response.run_id)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        if response.duplicate {
            println!("A run with this idempotency key exists already:");
        }
        print!("{}", render::timeline(&detail, false));
    }
    Ok(ExitCode::SUCCESS)
}

async fn runs(project: &Project, c: RunsCommand) -> Result<ExitCode> {
    match c {
        RunsCommand::List {
            blueprint,
            status,
            limit,
            json,
        } => {
            let service = project.service().await?;
            let runs = service.runs(&RunsQuery {
                blueprint,
                status,
                limit: Some(limit),
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", render::runs(&runs));
            }
        }
        RunsCommand::Show { run, full, json } => {
            let service = project.service().await?;
            let id = service.resolve_run(&run)?;
            let detail = service.run(id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print!("{}", render::timeline(&detail, full));
            }
        }
        RunsCommand::Replay {
            run,
            blueprint,
            json,
        } => {
            let service = project.service().await?;
            let id = service.resolve_run(&run)?;
            let source = match &blueprint {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ),
                None => None,
            };
            let report = service.replay(id, source.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render::replay(&report));
            }
            return Ok(if report.identical() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_PROBLEMS)
            });
        }
        RunsCommand::Retry { run } => {
            let service = project.service().await?;
            let id = service.resolve_run(&run)?;
            match project.lock()? {
                Lock::Held(_lock) => {
                    service.retry(id, project.whoami(None)).await?;
                }
                Lock::Server(url) => {
                    let _: Value = Remote::new(url)
                        .post(&format!("/api/runs/{id}/retry"), &serde_json::json!({}))
                        .await?;
                }
            }
            print!("{}", render::timeline(&service.run(id)?, false));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn inbox(project: &Project, c: InboxCommand) -> Result<ExitCode> {
    match c {
        InboxCommand::List {
            role,
            blueprint,
            status,
            search,
            assignee,
            mine,
            due_within,
            sort,
            limit,
            json,
        } => {
            let service = project.service().await?;
            let due_before = match due_within.as_deref() {
                Some(d) => Some(
                    chrono::Utc::now().timestamp_millis()
                        + processops_core::blueprint::parse_duration(d)
                            .map_err(|e| anyhow::anyhow!("--due-within: {e}; write e.g. 4h or 2d"))?
                            .num_milliseconds(),
                ),
                None => None,
            };
            let tasks = service.tasks(&TasksQuery {
                status,
                blueprint,
                version: None,
                role,
                assignee: if mine {
                    Some(project.whoami(None))
                } else {
                    assignee
                },
                run: None,
                due_before,
                q: search,
                sort,
                limit: Some(limit),
                summary: None,
                // A pilot's tasks are shown to its cohort only.
                viewer: Some(project.whoami(None)),
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tasks)?);
            } else {
                print!("{}", render::tasks(&tasks));
            }
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Show { task, json } => {
            let service = project.service().await?;
            let id = service.resolve_task(&task)?;
            let detail = service.task(id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print!("{}", render::task(&detail));
            }
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Decide(a) => decide(project, a).await,
        InboxCommand::Claim { tasks, by } => {
            claims(
                project,
                &tasks,
                processops_api::ClaimRequest {
                    by: project.whoami(by),
                    force: false,
                },
                true,
            )
            .await
        }
        InboxCommand::Unclaim { tasks, by, force } => {
            claims(
                project,
                &tasks,
                processops_api::ClaimRequest {
                    by: project.whoami(by),
                    force,
                },
                false,
            )
            .await
        }
    }
}

/// Claims are inbox bookkeeping, not run state: they go straight to the store, even while a
/// server runs (SQLite serialises the two writers).
async fn claims(
    project: &Project,
    tasks: &[String],
    req: processops_api::ClaimRequest,
    take: bool,
) -> Result<ExitCode> {
    let service = project.service().await?;
    let mut failures = 0;
    for t in tasks {
        let id = service.resolve_task(t)?;
        let result = if take {
            service.claim(id, req.clone()).await
        } else {
            service.unclaim(id, req.clone()).await
        };
        match result {
            Ok(task) => println!(
                "{} task {} {}",
                render::mark(true),
                render::short(&id.to_string()),
                task.claimed_by.map_or_else(
                    || "is unclaimed".to_owned(),
                    |by| format!("is claimed by {by}")
                )
            ),
            Err(e) => {
                failures += 1;
                println!(
                    "{} task {}: {e}",
                    render::mark(false),
                    render::short(&id.to_string())
                );
            }
        }
    }
    Ok(if failures > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

async fn decide(project: &Project, a: DecideArgs) -> Result<ExitCode> {
    let (action, text, reason) = if a.approve {
        ("approve", None, a.reason.clone())
    } else if let Some(t) = a.edit.clone() {
        ("edit", Some(t), a.reason.clone())
    } else if let Some(f) = a.edit_file.as_deref() {
        let text = if f == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        } else {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?
        };
        ("edit", Some(text), a.reason.clone())
    } else if let Some(r) = a.reject.clone() {
        ("reject", None, Some(r))
    } else {
        ("escalate", None, a.reason.clone())
    };
    let by = project.whoami(a.by.clone());
    let service = project.service().await?;
    let ids = if a.all {
        let query = TasksQuery {
            blueprint: a.blueprint.clone(),
            role: a.role.clone(),
            q: a.search.clone(),
            limit: Some(1000),
            ..TasksQuery::default()
        };
        let ids: Vec<_> = service.tasks(&query)?.into_iter().map(|t| t.id).collect();
        if ids.is_empty() {
            bail!("no pending task matches; see `processops inbox list`");
        }
        ids
    } else {
        a.tasks
            .iter()
            .map(|t| service.resolve_task(t))
            .collect::<Result<Vec<_>, _>>()?
    };
    service.check_batch(&ids)?;
    let lock = project.lock()?;
    let mut failures = 0;
    let mut results = Vec::new();
    for id in ids {
        let req = DecisionRequest {
            action: action.into(),
            by: by.clone(),
            text: text.clone(),
            reason: reason.clone(),
        };
        let outcome: Result<DecisionResponse> = match &lock {
            Lock::Held(_) => service.decide(id, req).await.map_err(Into::into),
            Lock::Server(url) => {
                Remote::new(url.clone())
                    .post(&format!("/api/tasks/{id}/decision"), &req)
                    .await
            }
        };
        match outcome {
            Ok(r) => {
                if matches!(lock, Lock::Held(_)) {
                    service.engine().settle(r.run_id).await;
                }
                results.push(serde_json::json!({ "task": id, "run": r.run_id, "ok": true, "pending_sync": r.pending_sync }));
                if !a.json && r.pending_sync {
                    println!(
                        "{} task {} ({action}), pending sync: run {} goes on once the hub accepts it (`processops sync`)",
                        render::mark(true),
                        render::short(&id.to_string()),
                        render::short(&r.run_id.to_string()),
                    );
                } else if !a.json {
                    let run = service.run(r.run_id)?;
                    println!(
                        "{} task {} ({action}) → run {} is {}",
                        render::mark(true),
                        render::short(&id.to_string()),
                        render::short(&r.run_id.to_string()),
                        run.run.status
                    );
                }
            }
            Err(e) => {
                failures += 1;
                results
                    .push(serde_json::json!({ "task": id, "ok": false, "error": e.to_string() }));
                if !a.json {
                    println!(
                        "{} task {}: {e}",
                        render::mark(false),
                        render::short(&id.to_string())
                    );
                }
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if failures > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `serve --hub URL [--enrol-code CODE]`: make sure the project is a device of that hub.
async fn join_hub(project: &Project, url: &str, code: Option<&str>) -> Result<()> {
    let url = url.trim_end_matches('/');
    match processops_api::hub::load_credentials(&project.data)? {
        Some(creds) if creds.url == url => Ok(()),
        Some(creds) => bail!(
            "this project is enrolled with the hub at {}, not {url}; a store syncs with one hub",
            creds.url
        ),
        None => {
            let code = code.with_context(|| {
                format!(
                    "this project is not enrolled with {url} yet: pass --enrol-code CODE (an admin makes one with `processops hub code TEAM USER`)"
                )
            })?;
            let store = project.open_store()?;
            let name = format!(
                "headless engine on {}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "this server".into())
            );
            let (creds, _) =
                processops_api::hub::enrol(&project.data, &store, url, code, &name).await?;
            println!(
                "enrolled with {url} as {} in team {} (device {})",
                creds.user, creds.team, creds.device
            );
            Ok(())
        }
    }
}

pub async fn serve(project: &Project, a: &ServeArgs) -> Result<ExitCode> {
    let Lock::Held(_lock) = project.lock()? else {
        bail!(
            "another `processops serve` already runs this project (data folder {})",
            project.data.display()
        );
    };
    let mut scripted = None;
    let mut overrides = None;
    if a.scripted_model {
        let server = processops_llm::scripted::ScriptedServer::start(
            processops_llm::scripted::ScriptedConfig::default(),
        )
        .await?;
        let client = processops_llm::OpenAiCompatible::new(processops_llm::OpenAiConfig::new(
            server.base_url(),
        ))?;
        overrides = Some(vec![(
            "default".to_owned(),
            Arc::new(client) as Arc<dyn processops_llm::ChatModel>,
        )]);
        scripted = Some(server);
    }
    if let Some(url) = &a.hub {
        join_hub(project, url, a.enrol_code.as_deref()).await?;
    }
    let (engine, problems) = project.engine(None, overrides).await?;
    for p in &problems {
        let shown = p.file.display().to_string();
        for d in &p.diagnostics {
            eprintln!("{}", d.display_in(&shown));
        }
        eprintln!("warning: {shown} was not loaded; fix it and restart");
    }
    let resumed = engine.recover().await?;
    let cancel = CancellationToken::new();
    let service = project.serving(engine.clone(), problems)?;
    if a.share_triggers {
        let link = service.hub().cloned().context(
            "--share-triggers needs a hub to claim trigger occurrences with; enrol the project (`processops hub enrol`) or pass --hub URL --enrol-code CODE",
        )?;
        engine.set_claims(Arc::new(processops_api::hub::HubClaims::new(
            link,
            engine.store().clone(),
        )));
    }
    let hub = service
        .hub()
        .map(|l| format!("; syncing with the hub at {} as {}", l.url(), l.user()));
    processops_api::local::spawn_background(
        &service,
        project.root.clone(),
        cancel.clone(),
        Duration::from_millis(a.tick_ms.max(10)),
    );
    let (router, _) = processops_api::http::router(service);
    let ui =
        a.ui.clone()
            .unwrap_or_else(|| project.root.join("ui").join("dist"));
    let ui_built = ui.join("index.html").is_file();
    let router = processops_api::http::with_ui(router, Some(&ui));
    let listener = tokio::net::TcpListener::bind(&a.addr)
        .await
        .with_context(|| format!("cannot listen on {}", a.addr))?;
    let addr = listener.local_addr()?;
    project.publish_address(addr)?;
    println!(
        "ProcessOps engine serving {} blueprint(s) at http://{addr}  (API: http://{addr}/openapi.json){}{}",
        engine.registry().all().len(),
        if resumed > 0 {
            format!("; resumed {resumed} unfinished run(s)")
        } else {
            String::new()
        },
        hub.unwrap_or_default()
    );
    if ui_built {
        println!("Open the app in a browser: http://{addr}/");
    } else {
        println!(
            "The web UI is not built ({} has no index.html); build it with `npm --prefix ui ci && npm --prefix ui run build`",
            ui.display()
        );
    }
    if let Some(s) = &scripted {
        println!(
            "Using the scripted demo model at {} (replies are canned, for trying things out)",
            s.base_url()
        );
    }
    if let Some(payloads) = &a.demo_payloads {
        tokio::spawn(processops_api::local::start_demo_runs(
            engine.clone(),
            payloads.clone(),
        ));
    }
    let shutdown = cancel.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            shutdown.cancel();
        })
        .await?;
    project.clear_address();
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
