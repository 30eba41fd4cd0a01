//! `processops demo`: the demo project served offline, with demo data and a stand-in for the
//! fictional company's notes service and helpdesk.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::commands::{DemoArgs, ServeArgs};
use crate::project::{Lock, Project};

/// Serve the demo project: the demo notes service, demo knowledge, then `serve` on the
/// project's models (the built-in offline model by default), with the demo runs started in the
/// background so the inbox fills while you watch.
pub async fn run(project: &Project, a: DemoArgs) -> Result<ExitCode> {
    if a.prepare {
        seed(project).await?;
        println!("demo knowledge ingested into {}", project.db().display());
        return Ok(ExitCode::SUCCESS);
    }
    match processops_api::local::start_demo_sink(project).await {
        Ok(sink) => {
            println!(
                "Demo notes service and helpdesk at http://127.0.0.1:8787 (deliveries are appended to {})",
                sink.display()
            );
        }
        Err(e) => eprintln!(
            "warning: cannot start the demo notes service on 127.0.0.1:8787 ({e}); HTTP outputs of the demo will retry and need attention"
        ),
    }
    let fresh = seed(project).await?;
    let payloads = project.root.join("demo/payloads");
    crate::commands::serve(
        project,
        &ServeArgs {
            addr: a.addr,
            scripted_model: a.scripted,
            tick_ms: 500,
            ui: None,
            demo_payloads: (fresh && payloads.is_dir()).then_some(payloads),
            hub: None,
            enrol_code: None,
            share_triggers: false,
        },
    )
    .await
}

/// Prepare the demo: ingest the project's knowledge folders (re-ingest is incremental).
/// Returns whether the database has no runs yet (then the demo runs are started).
async fn seed(project: &Project) -> Result<bool> {
    let Lock::Held(_lock) = project.lock()? else {
        anyhow::bail!("a server already runs this project; stop it before `processops demo`");
    };
    let (engine, _) = project.engine(None, None).await?;
    let knowledge = project.root.join("demo/knowledge");
    if knowledge.is_dir() {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&knowledge)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let collection = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::knowledge::ingest_paths(
                engine.store(),
                &collection,
                &[dir],
                false,
                engine.embedder().cloned(),
            )
            .await?;
        }
    }
    Ok(processops_api::local::has_no_runs(&engine)?)
}
