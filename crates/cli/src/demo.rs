//! `processops demo`: the demo project served offline, with demo data and a stand-in for the
//! fictional company's notes service and helpdesk.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use crate::commands::{DemoArgs, ServeArgs};
use crate::project::{Lock, Project};

/// Serve the demo project: the demo notes service, demo knowledge, then `serve` on the
/// project's models (the built-in offline model by default), with the demo runs started in the
/// background so the inbox fills while you watch.
pub async fn run(project: &Project, a: DemoArgs) -> Result<ExitCode> {
    // The demo blueprints deliver to the fictional company's notes service and helpdesk at
    // localhost:8787; stand in for them so approved runs complete.
    match tokio::net::TcpListener::bind("127.0.0.1:8787").await {
        Ok(listener) => {
            let sink = project.data.join("demo-sink.jsonl");
            tokio::spawn(demo_sink(listener, sink.clone()));
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
        },
    )
    .await
}

/// Start a run per demo payload, one after the other (a local model drafts one at a time).
/// `demo/payloads/<blueprint>.<anything>.json`.
pub async fn start_demo_runs(engine: processops_engine::Engine, payloads: PathBuf) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&payloads) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            eprintln!("demo: cannot read {}: {e}", payloads.display());
            return;
        }
    };
    // Free-text drafts first: a small local model rarely manages structured JSON, so those
    // runs come last (they end flagged for attention, which the demo shows as it is).
    let structured = |file: &PathBuf| {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        engine
            .blueprint(name.split('.').next().unwrap_or_default())
            .is_ok_and(|c| {
                c.blueprint.nodes.iter().any(|n| {
                    matches!(n, processops_core::blueprint::Node::Prompt(p) if p.output_schema.is_some())
                })
            })
    };
    files.sort_by_key(|f| (structured(f), f.clone()));
    let total = files.len();
    for (i, file) in files.into_iter().enumerate() {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let blueprint = name.split('.').next().unwrap_or_default().to_owned();
        let payload = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("demo: {name}: {e}");
                continue;
            }
        };
        match engine
            .start_run(&blueprint, None, payload, Some(format!("demo:{name}")))
            .await
        {
            Ok(s) => {
                engine.settle(s.run_id).await;
                println!("demo: run {}/{total} drafted ({name})", i + 1);
            }
            Err(e) => eprintln!("demo: {name}: {e}"),
        }
    }
    println!("demo: all {total} demo runs started; open the inbox with `processops inbox list`");
}

/// Accepts any POST, appends it (path, idempotency key, body) to a JSONL file, de-duplicating
/// by idempotency key the way a well-behaved receiver does.
async fn demo_sink(listener: tokio::net::TcpListener, file: PathBuf) {
    use axum::http::{HeaderMap, Uri};
    let seen = Arc::new(std::sync::Mutex::new(
        std::collections::HashSet::<String>::new(),
    ));
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let (file, seen) = (file.clone(), seen.clone());
        async move {
            let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let fresh = key.is_empty() || seen.lock().map(|mut s| s.insert(key.clone())).unwrap_or(true);
            if fresh {
                let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
                let line = serde_json::json!({ "path": uri.path(), "idempotency_key": key, "body": body });
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
            }
            axum::Json(serde_json::json!({ "ok": true, "duplicate": !fresh }))
        }
    });
    let _ = axum::serve(listener, app).await;
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
    let fresh = engine
        .store()
        .list_runs(&processops_store::RunFilter {
            limit: Some(1),
            ..Default::default()
        })?
        .is_empty();
    Ok(fresh)
}
