//! The ProcessOps desktop app: the web UI (`ui/dist`) in the system webview, over an engine
//! running in this process. The commands are thin: parse, call one service function, map the
//! result; errors reach the UI as the API's `{code, message}`.
//!
//! The project folder is `--project DIR` (or `PROCESSOPS_PROJECT`), else one under the OS's
//! app-data directory; `--demo` also starts the demo runs (see `start_demo`). While the window is open the engine drives runs, timers, schedules and
//! watched folders, and serves the same HTTP API on a loopback port (published in the data
//! folder) so the CLI and a browser reach this engine instead of opening the store twice.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod notify;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use processops_api::Service;
use processops_api::local::{Lock, Project};
use tauri::Manager as _;
use tokio_util::sync::CancellationToken;

/// How often schedules, SLA timers and watched folders are checked.
const TICK: Duration = Duration::from_millis(500);

fn project_dir(app: &tauri::App) -> Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--project" {
            return args
                .next()
                .map(PathBuf::from)
                .context("--project needs a folder");
        }
        if let Some(dir) = arg.strip_prefix("--project=") {
            return Ok(PathBuf::from(dir));
        }
    }
    if let Some(dir) = std::env::var_os("PROCESSOPS_PROJECT") {
        return Ok(PathBuf::from(dir));
    }
    let dir = app
        .path()
        .app_data_dir()
        .context("the OS reports no app-data directory; start with --project DIR")?;
    std::fs::create_dir_all(dir.join("blueprints"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// `--demo`: stand in for the demo's outside services and start the demo runs.
fn demo_mode() -> bool {
    std::env::args().skip(1).any(|a| a == "--demo")
}

/// Open the project, start its engine and the loopback API. Runs inside Tauri's runtime.
async fn start(root: PathBuf, cancel: CancellationToken) -> Result<(Service, std::fs::File)> {
    // Absolute, so settings and messages name the real folder.
    let root = root.canonicalize().unwrap_or(root);
    let project = Project::new(root, None);
    let lock = match project.lock()? {
        Lock::Held(file) => file,
        Lock::Server(url) => anyhow::bail!(
            "another ProcessOps engine ({url}) already runs the project {}; stop it first",
            project.root.display()
        ),
    };
    let (engine, problems) = project.engine(None, None).await?;
    for p in &problems {
        for d in &p.diagnostics {
            tracing::warn!(file = %p.file.display(), "{}", d.message);
        }
    }
    let resumed = engine.recover().await?;
    tracing::info!(resumed, project = %project.root.display(), "engine started");
    let service = project.serving(engine.clone(), problems)?;
    processops_api::local::spawn_background(&service, project.root.clone(), cancel.clone(), TICK);

    let (router, _) = processops_api::http::router(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    project.publish_address(listener.local_addr()?)?;
    if demo_mode() {
        start_demo(&engine, &project).await?;
    }
    tokio::spawn(async move {
        let shutdown = cancel.cancelled_owned();
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("the loopback API stopped: {e}");
        }
        project.clear_address();
    });
    Ok((service, lock))
}

/// The demo: the fictional company's notes service and helpdesk on 127.0.0.1:8787, and one run
/// per `demo/payloads` file when the store has none yet (`processops demo --prepare` ingests
/// the demo knowledge beforehand).
async fn start_demo(engine: &processops_engine::Engine, project: &Project) -> Result<()> {
    if let Err(e) = processops_api::local::start_demo_sink(project).await {
        tracing::warn!("cannot serve the demo notes service on 127.0.0.1:8787: {e}");
    }
    let payloads = project.root.join("demo/payloads");
    if processops_api::local::has_no_runs(engine)? && payloads.is_dir() {
        tokio::spawn(processops_api::local::start_demo_runs(
            engine.clone(),
            payloads,
        ));
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cancel = CancellationToken::new();
    let on_exit = cancel.clone();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            let root = project_dir(app)?;
            let (service, lock) = tauri::async_runtime::block_on(start(root, cancel.clone()))
                .map_err(|e| {
                    eprintln!("ProcessOps cannot start: {e:#}");
                    e
                })?;
            app.manage(commands::Held(lock));
            notify::spawn(app.handle().clone(), service.clone(), cancel);
            app.manage(service);
            tray(app)?;
            Ok(())
        })
        .invoke_handler(commands::handler())
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("ProcessOps cannot start: {e}");
            std::process::exit(1);
        }
    };
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            on_exit.cancel();
        }
    });
}

/// A tray icon whose menu brings the window back or quits.
fn tray(app: &tauri::App) -> tauri::Result<()> {
    use tauri::menu::{Menu, MenuItem};
    use tauri::tray::TrayIconBuilder;
    let open = MenuItem::with_id(app, "open", "Open ProcessOps", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &quit])?;
    let mut builder = TrayIconBuilder::new()
        .tooltip("ProcessOps")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.show();
                    let _ = w.set_focus();
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    // A desktop without a tray (a bare X server) still runs the app.
    if let Err(e) = builder.build(app) {
        tracing::warn!("no tray icon: {e}");
    }
    Ok(())
}
