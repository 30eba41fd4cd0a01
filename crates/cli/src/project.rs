//! Where a project lives and how the CLI reaches its engine: in this process when no
//! `processops serve` owns the store, over HTTP when one does.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use fs4::fs_std::FileExt as _;
use processops_api::Service;
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

    pub fn open_store(&self) -> Result<Store> {
        std::fs::create_dir_all(&self.data)
            .with_context(|| format!("cannot create the data folder {}", self.data.display()))?;
        Ok(Store::open(&self.db(), Durability::Process)?)
    }

    /// Take the engine lock, or say which server holds it.
    pub fn lock(&self) -> Result<Lock> {
        std::fs::create_dir_all(&self.data)
            .with_context(|| format!("cannot create the data folder {}", self.data.display()))?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.lock_path())?;
        if file.try_lock_exclusive().unwrap_or(false) {
            return Ok(Lock::Held(file));
        }
        let addr = std::fs::read_to_string(self.address_path()).unwrap_or_default();
        match addr.trim().parse::<SocketAddr>() {
            Ok(a) => Ok(Lock::Server(format!("http://{a}"))),
            Err(_) => bail!(
                "another ProcessOps engine is using {} (and has not published its address yet); try again in a moment",
                self.data.display()
            ),
        }
    }

    pub fn publish_address(&self, addr: SocketAddr) -> Result<()> {
        std::fs::write(self.address_path(), addr.to_string())
            .context("cannot write the engine address file")
    }

    pub fn clear_address(&self) {
        let _ = std::fs::remove_file(self.address_path());
    }

    /// Build an engine over this project's blueprints and store.
    pub async fn engine(
        &self,
        extra: Option<&Path>,
        providers_override: Option<Vec<(String, Arc<dyn ChatModel>)>>,
    ) -> Result<(Engine, Vec<processops_engine::LoadProblem>)> {
        let store = self.open_store()?;
        let registry = Arc::new(Registry::default());
        let mut problems = Vec::new();
        if self.blueprints().is_dir() {
            problems = registry.load_dir(&self.blueprints())?;
        }
        if let Some(path) = extra {
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match Compiled::from_source(&source) {
                Ok(c) => registry.insert(Arc::new(c)),
                Err(diagnostics) => {
                    let shown = path.display().to_string();
                    let text: Vec<String> = diagnostics
                        .iter()
                        .map(|d| d.display_in(&shown).to_string())
                        .collect();
                    bail!("{} has errors:\n{}", shown, text.join("\n"));
                }
            }
        }
        let settings = Settings::load(&self.root)?;
        let mut providers = settings.providers(&self.root).await?;
        for (name, model) in providers_override.unwrap_or_default() {
            providers.insert(name, model);
        }
        let engine = Engine::new(EngineConfig {
            store,
            registry,
            providers,
            outputs_dir: self.outputs(),
        })?;
        engine.set_directory(settings.directory());
        if let Some(embedder) = settings.embedder()? {
            engine.set_embedder(embedder);
        }
        engine.record_versions().await?;
        Ok((engine, problems))
    }

    pub async fn service(&self) -> Result<Service> {
        let (engine, problems) = self.engine(None, None).await?;
        Ok(Service::new(engine, problems).with_project(self.info()))
    }

    /// What the service API needs to know of the project.
    pub fn info(&self) -> processops_api::ProjectInfo {
        processops_api::ProjectInfo {
            root: self.root.clone(),
            blueprints: self.blueprints(),
            user: self.whoami(None),
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
