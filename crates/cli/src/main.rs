//! `processops`: validate, run and serve blueprints; work the inbox.

mod audit;
mod bench;
mod bench_ai;
mod bench_hub;
mod bench_metrics;
mod bench_tracing;
mod commands;
mod demo;
mod feedback;
mod hub;
mod knowledge;
mod logging;
mod metrics;
mod models;
mod project;
mod remote;
mod render;
mod versions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::project::Project;

/// Run AI-native business processes with humans in the loop.
///
/// A project is a folder with `blueprints/*.yaml` (the processes), an optional
/// `processops.toml` (model providers) and `.processops/` (the local database).
///
/// Start here:
///   processops validate blueprints/          check every blueprint
///   processops serve                         run the engine, webhooks and the HTTP API
///   processops run hr-onboarding -p new-hire.json
///   processops inbox list                    what waits for a decision
#[derive(Parser)]
#[command(
    name = "processops",
    version,
    verbatim_doc_comment,
    propagate_version = true
)]
struct Cli {
    /// Project folder (holds `blueprints/` and `processops.toml`).
    #[arg(long, global = true, env = "PROCESSOPS_PROJECT", default_value = ".")]
    project: PathBuf,
    /// Data folder (the database); defaults to `<project>/.processops`.
    #[arg(long, global = true, env = "PROCESSOPS_DATA")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    default_model_threads();
    let cli = Cli::parse();
    let verbose = matches!(
        cli.command,
        commands::Command::Serve(_) | commands::Command::Demo(_)
    );
    let project = Project::new(cli.project, cli.data);
    // Trace export when `[telemetry]` or OTEL_EXPORTER_OTLP_ENDPOINT asks for it; otherwise no
    // OpenTelemetry layer at all. The guard, dropped last, sends the final spans.
    let (traces, _traces) = match traces(&project) {
        Ok(Some((layer, guard))) => (Some(layer), Some(guard)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let _logs = logging::init(verbose, &project, traces);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli.command, project)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The OTLP trace layer and its flushing guard, if the project's settings turn export on.
fn traces(
    project: &Project,
) -> Result<
    Option<(
        logging::ExtraLayer,
        processops_engine::telemetry::TelemetryGuard,
    )>,
    processops_engine::EngineError,
> {
    use processops_engine::telemetry;
    telemetry::project_config(&project.root)?
        .map(|config| telemetry::layer(&config))
        .transpose()
}

/// The built-in models' tensor library sizes its worker pool from `CANDLE_NUM_THREADS` when
/// first used. Its workers spin while they wait, so on a busy 2-core machine two threads run
/// about ten times slower than one: default to one unless the user chose otherwise.
#[allow(unsafe_code)]
fn default_model_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: this runs first thing in `main`, before the async runtime or any other
        // thread exists, so nothing can read the environment while it changes.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

#[cfg(test)]
mod tests {
    /// Clap checks a command line's consistency (unique names, valid defaults) only when that
    /// subcommand is parsed; check every one here instead of in a user's terminal.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
