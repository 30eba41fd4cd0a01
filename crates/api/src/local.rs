//! A project folder on this machine: its blueprints, settings and store, the engine over them,
//! and the lock that lets one process at a time drive its runs. The CLI, `processops serve`
//! and the desktop app all open projects through this module.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{ApiError, ProjectInfo, Service};
use fs4::fs_std::FileExt as _;
use processops_engine::settings::Settings;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_llm::ChatModel;
use processops_store::{Durability, Store};

/// The folders of a project.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub data: PathBuf,
}

impl Project {
    pub fn new(root: PathBuf, data: Option<PathBuf>) -> Self {
        let data = data.unwrap_or_else(|| root.join(".processops"));
        Self { root, data }
    }

    pub fn blueprints(&self) -> PathBuf {
        self.root.join("blueprints")
    }

    pub fn db(&self) -> PathBuf {
        self.data.join("processops.db")
    }

    pub fn outputs(&self) -> PathBuf {
        self.root.join("outputs")
    }

    fn lock_path(&self) -> PathBuf {
        self.data.join("engine.lock")
    }

    fn address_path(&self) -> PathBuf {
        self.data.join("engine.addr")
    }

    /// Who is acting: `--by` (or `PROCESSOPS_USER`), else the `[profile]` of processops.toml,
    /// else the login name.
    pub fn whoami(&self, by: Option<String>) -> String {
        by.filter(|s| !s.trim().is_empty())
            .or_else(|| {
                Settings::load(&self.root)
                    .ok()
                    .and_then(|s| s.profile)
                    .map(|p| p.name)
                    .filter(|s| !s.trim().is_empty())
            })
            .or_else(|| std::env::var("USER").ok().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| "cli".into())
    }

    pub fn open_store(&self) -> Result<Store, ApiError> {
        self.create_data_dir()?;
        Ok(Store::open(&self.db(), Durability::Process)?)
    }

    /// Take the engine lock, or say which server holds it.
    fn create_data_dir(&self) -> Result<(), ApiError> {
        std::fs::create_dir_all(&self.data).map_err(|e| {
            io_error(format!(
                "cannot create the data folder {}: {e}",
                self.data.display()
            ))
        })
    }

    pub fn lock(&self) -> Result<Lock, ApiError> {
        self.create_data_dir()?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| io_error(format!("cannot open the engine lock file: {e}")))?;
        if file.try_lock_exclusive().unwrap_or(false) {
            return Ok(Lock::Held(file));
        }
        let addr = std::fs::read_to_string(self.address_path()).unwrap_or_default();
        match addr.trim().parse::<SocketAddr>() {
            Ok(a) => Ok(Lock::Server(format!("http://{a}"))),
            Err(_) => Err(ApiError::new(
                409,
                "conflict",
                format!(
                    "another ProcessOps engine is using {} (and has not published its address yet); try again in a moment",
                    self.data.display()
                ),
            )),
        }
    }

    pub fn publish_address(&self, addr: SocketAddr) -> Result<(), ApiError> {
        std::fs::write(self.address_path(), addr.to_string())
            .map_err(|e| io_error(format!("cannot write the engine address file: {e}")))
    }

    pub fn clear_address(&self) {
        let _ = std::fs::remove_file(self.address_path());
    }

    /// Build an engine over this project's blueprints and store.
    pub async fn engine(
        &self,
        extra: Option<&Path>,
        providers_override: Option<Vec<(String, Arc<dyn ChatModel>)>>,
    ) -> Result<(Engine, Vec<processops_engine::LoadProblem>), ApiError> {
        let store = self.open_store()?;
        let registry = Arc::new(Registry::default());
        let mut problems = Vec::new();
        if self.blueprints().is_dir() {
            problems = registry.load_dir(&self.blueprints())?;
        }
        if let Some(path) = extra {
            let source = std::fs::read_to_string(path)
                .map_err(|e| io_error(format!("cannot read {}: {e}", path.display())))?;
            match Compiled::from_source(&source) {
                Ok(c) => registry.insert(Arc::new(c)),
                Err(diagnostics) => {
                    let shown = path.display().to_string();
                    let text: Vec<String> = diagnostics
                        .iter()
                        .map(|d| d.display_in(&shown).to_string())
                        .collect();
                    return Err(ApiError::new(
                        422,
                        "invalid_blueprint",
                        format!("{} has errors:\n{}", shown, text.join("\n")),
                    ));
                }
            }
        }
        let mut settings = Settings::load(&self.root)?;
        let overrides = providers_override.unwrap_or_default();
        // An overridden provider is never built: `--scripted` needs no model files.
        settings
            .providers
            .retain(|name, _| !overrides.iter().any(|(o, _)| o == name));
        let mut providers = settings.providers(&self.root).await?;
        for (name, model) in overrides {
            providers.insert(name, model);
        }
        let engine = Engine::new(EngineConfig {
            store,
            registry,
            providers,
            outputs_dir: self.outputs(),
        })?;
        engine.set_directory(settings.directory());
        self.audit_config(&engine).await?;
        if let Some(embedder) = settings.embedder()? {
            engine.set_embedder(embedder);
        }
        engine.record_versions().await?;
        Ok((engine, problems))
    }

    /// Record in the audit log what changed in processops.toml since the store last saw it:
    /// each user's roles, and each settings table (a provider, retrieval, telemetry). The
    /// file holds no secrets (keys live in the environment or the keychain); who edited it is
    /// unknown, so the actor is the file.
    async fn audit_config(&self, engine: &Engine) -> Result<(), ApiError> {
        let actor = "processops.toml".to_owned();
        let roles = engine
            .directory()
            .users()
            .map(|(name, roles)| (name.to_owned(), serde_json::json!(roles)))
            .collect();
        engine
            .store()
            .audit_config("role".into(), roles, actor.clone())
            .await?;
        let text = std::fs::read_to_string(self.root.join("processops.toml")).unwrap_or_default();
        // A file that does not parse was refused by `Settings::load` already.
        let table: toml::Table = toml::from_str(&text).unwrap_or_default();
        let mut settings = std::collections::BTreeMap::new();
        for (key, value) in table {
            match (key.as_str(), value) {
                // Roles are audited per user above; the profile is who this machine acts as.
                ("users" | "profile", _) => {}
                ("providers", toml::Value::Table(providers)) => {
                    for (name, p) in providers {
                        settings.insert(format!("providers.{name}"), to_json(&p));
                    }
                }
                (_, v) => {
                    settings.insert(key, to_json(&v));
                }
            }
        }
        engine
            .store()
            .audit_config("setting".into(), settings, actor)
            .await?;
        Ok(())
    }

    pub async fn service(&self) -> Result<Service, ApiError> {
        let (engine, problems) = self.engine(None, None).await?;
        self.serving(engine, problems)
    }

    /// The service over this project's engine, linked to its hub when it is enrolled with one.
    pub fn serving(
        &self,
        engine: Engine,
        problems: Vec<processops_engine::LoadProblem>,
    ) -> Result<Service, ApiError> {
        let service = Service::new(engine, problems).with_project(self.info());
        Ok(match crate::hub::load_credentials(&self.data)? {
            Some(creds) => service.with_hub(crate::hub::HubLink::new(creds)?),
            None => service,
        })
    }

    /// What the service API needs to know of the project.
    pub fn info(&self) -> ProjectInfo {
        ProjectInfo {
            root: self.root.clone(),
            blueprints: self.blueprints(),
            user: self.whoami(None),
            data: self.data.clone(),
        }
    }
}

/// Who may drive runs right now.
pub enum Lock {
    /// This process holds the engine lock (released on drop).
    Held(File),
    /// A server owns the store; talk to it at this base URL.
    Server(String),
}

fn io_error(message: String) -> ApiError {
    ApiError::new(500, "io", message)
}

/// Start what keeps a serving engine's runs moving: schedules, SLA timers, watched folders
/// and, with a hub, the sync loop, until `cancel`.
pub fn spawn_background(
    service: &Service,
    root: PathBuf,
    cancel: tokio_util::sync::CancellationToken,
    tick: std::time::Duration,
) {
    use processops_engine::triggers;
    let engine = service.engine();
    service.set_background(cancel.clone());
    if let Some(link) = service.hub() {
        link.spawn(engine.clone(), cancel.clone());
    }
    tokio::spawn(triggers::run_schedules(
        engine.clone(),
        cancel.clone(),
        tick,
    ));
    tokio::spawn(triggers::run_timers(engine.clone(), cancel.clone(), tick));
    tokio::spawn(triggers::run_folder_watch(
        engine.clone(),
        root,
        cancel.clone(),
        tick,
    ));
    tokio::spawn(run_drift_checks(service.clone(), cancel));
}

/// How often a running engine compares recent days with the baseline.
const DRIFT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Check drift now and every hour; owners of drifting versions get an alert (once a week
/// per version).
async fn run_drift_checks(service: Service, cancel: tokio_util::sync::CancellationToken) {
    loop {
        if let Err(e) = service.check_drift().await {
            tracing::warn!(error = %e.message, "the drift check failed; it runs again in an hour");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(DRIFT_CHECK_EVERY) => {}
        }
    }
}

/// Start a run per demo payload, one after the other (a local model drafts one at a time).
/// `demo/payloads/<blueprint>.<anything>.json`.
pub async fn start_demo_runs(engine: Engine, payloads: PathBuf) {
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
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
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

/// The demo blueprints deliver to the fictional company's notes service and helpdesk at
/// 127.0.0.1:8787: stand in for them so approved demo runs complete. Returns the file the
/// deliveries are appended to.
pub async fn start_demo_sink(project: &Project) -> std::io::Result<PathBuf> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8787").await?;
    let sink = project.data.join("demo-sink.jsonl");
    tokio::spawn(demo_sink(listener, sink.clone()));
    Ok(sink)
}

/// The store has no runs yet: a fresh demo, whose runs are still to start.
pub fn has_no_runs(engine: &Engine) -> Result<bool, ApiError> {
    Ok(engine
        .store()
        .list_runs(&processops_store::RunFilter {
            limit: Some(1),
            ..Default::default()
        })?
        .is_empty())
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
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
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

fn to_json(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
