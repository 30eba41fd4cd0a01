//! `processops demo`: the demo project served offline, with demo data and a stand-in for the
//! fictional company's notes service and helpdesk.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use serde_json::Value;

use crate::commands::ServeArgs;
use crate::project::{Lock, Project};

/// Serve the demo project: the demo notes service, demo data, then `serve` with the scripted model.
pub async fn run(project: &Project, addr: String) -> Result<ExitCode> {
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
    seed(project).await?;
    crate::commands::serve(
        project,
        &ServeArgs {
            addr,
            scripted_model: true,
            tick_ms: 500,
        },
    )
    .await
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

/// Prepare the demo: ingest the project's knowledge folder and, on a fresh database, start a
/// few runs per blueprint from `demo/payloads/` so the inbox has work in it.
async fn seed(project: &Project) -> Result<()> {
    let Lock::Held(_lock) = project.lock()? else {
        anyhow::bail!("a server already runs this project; stop it before `processops demo`");
    };
    let llm = ScriptedServer::start(ScriptedConfig::default()).await?;
    let client: Arc<dyn ChatModel> =
        Arc::new(OpenAiCompatible::new(OpenAiConfig::new(llm.base_url()))?);
    let (engine, _) = project
        .engine(None, Some(vec![("default".into(), client)]))
        .await?;
    let knowledge = project.root.join("demo/knowledge");
    if knowledge.is_dir() {
        for dir in std::fs::read_dir(&knowledge)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
        {
            let collection = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut passages = Vec::new();
            for file in std::fs::read_dir(&dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
            {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let source = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                passages.extend(
                    processops_core::knowledge::split_passages(&text)
                        .into_iter()
                        .map(|p| (source.clone(), p)),
                );
            }
            engine.store().ingest(collection, passages).await?;
        }
    }
    let payloads = project.root.join("demo/payloads");
    if engine
        .store()
        .list_runs(&processops_store::RunFilter {
            limit: Some(1),
            ..Default::default()
        })?
        .is_empty()
        && payloads.is_dir()
    {
        let mut files: Vec<_> = std::fs::read_dir(&payloads)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
        {
            // demo/payloads/<blueprint>.<anything>.json
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let blueprint = name.split('.').next().unwrap_or_default().to_owned();
            let payload: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file)?)
                .with_context(|| format!("{name} is not valid JSON"))?;
            match engine
                .start_run(&blueprint, None, payload, Some(format!("demo:{name}")))
                .await
            {
                Ok(s) => engine.settle(s.run_id).await,
                Err(e) => eprintln!("demo: {name}: {e}"),
            }
        }
    }
    engine.settle_all().await;
    llm.shutdown().await;
    Ok(())
}
