//! Logs: human-readable lines on stderr and, inside a project, JSON lines in
//! `<data>/logs/processops.log` (`.processops/logs/` by default), a new file each day
//! (`processops.log.YYYY-MM-DD`). Both follow `RUST_LOG` (`EnvFilter` syntax); without it the
//! console shows warnings (`info` for `serve` and `demo`) and the file keeps `info`.

use std::path::PathBuf;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::project::Project;

/// One more layer for the subscriber, under the console and file layers: an OpenTelemetry
/// exporter (`tracing_opentelemetry::layer()`) goes here, passed by `main` to [`init`]. It
/// sees every span and event; filter it with `Layer::with_filter` if it should not.
pub type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Keeps the file writer's background thread alive; dropping it flushes what is queued.
/// Hold it until `main` returns.
#[must_use = "dropping the guard stops writing the log file"]
pub struct Guard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Where the log files of this project go, when it is one: a folder with `blueprints/` or
/// whose data folder exists. Elsewhere (`processops schema` in any folder) nothing is
/// written to disk.
fn log_dir(project: &Project) -> Option<PathBuf> {
    (project.data.is_dir() || project.blueprints().is_dir()).then(|| project.data.join("logs"))
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Install the global subscriber. `verbose`: the console defaults to `info` instead of `warn`.
pub fn init(verbose: bool, project: &Project, extra: Option<ExtraLayer>) -> Guard {
    let console_default = if verbose {
        "info,processops=info"
    } else {
        "warn"
    };
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter(console_default));
    let mut problem = None;
    let (file, guard) = match log_dir(project).map(|dir| {
        std::fs::create_dir_all(&dir)?;
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("processops.log")
            .build(&dir)
            .map_err(std::io::Error::other)
    }) {
        Some(Ok(appender)) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_writer(writer)
                .with_filter(filter("info"));
            (Some(layer), Some(guard))
        }
        Some(Err(e)) => {
            problem = Some(e);
            (None, None)
        }
        None => (None, None),
    };
    // Another subscriber may be installed already (never in the binary); logs then go there.
    let _ = Registry::default()
        .with(extra)
        .with(console)
        .with(file)
        .try_init();
    if let Some(e) = problem {
        // Logging to the console still works; a read-only project must not stop the command.
        tracing::warn!(error = %e, "cannot write log files in {}", project.data.display());
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "processops started"
    );
    Guard { _file: guard }
}
