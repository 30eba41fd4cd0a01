//! `processops.toml`: the project's settings (providers so far).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{ChatModel, OpenAiCompatible, OpenAiConfig};
use serde::Deserialize;

use crate::EngineError;

/// The settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    /// People and their roles; decisions are checked against them. Without any, the
    /// installation is single-user and every decision is allowed.
    #[serde(default)]
    pub users: BTreeMap<String, UserSettings>,
    /// Who uses this installation (the default name on decisions and tags).
    #[serde(default)]
    pub profile: Option<Profile>,
}

/// The local user profile.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
}

/// One person of the local directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// Roles, e.g. `["hr-manager", "evaluator"]`.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// `openai` (any OpenAI-compatible server) or `scripted` (a canned-reply model served in
    /// process, for demos and trying a blueprint offline; it does not understand anything).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Base URL of the server, e.g. `http://localhost:11434/v1` (not used by `scripted`).
    #[serde(default)]
    pub base_url: String,
    /// Environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Stream replies over SSE.
    #[serde(default)]
    pub stream: bool,
}

fn default_kind() -> String {
    "openai".into()
}

impl Settings {
    /// Read `processops.toml` from a project folder; a missing file means defaults.
    pub fn load(project: &Path) -> Result<Self, EngineError> {
        let path = project.join("processops.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(EngineError::Io(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        toml::from_str(&text).map_err(|e| EngineError::Io(format!("{}: {e}", path.display())))
    }

    /// The local directory of users and roles.
    pub fn directory(&self) -> processops_core::identity::Directory {
        processops_core::identity::Directory::new(
            self.users
                .iter()
                .map(|(name, u)| (name.clone(), u.roles.clone()))
                .collect(),
        )
    }

    /// Build the providers. A key variable that is not set is an error naming it. Scripted
    /// providers start their loopback server here; it lives as long as the process.
    pub async fn providers(&self) -> Result<HashMap<String, Arc<dyn ChatModel>>, EngineError> {
        let mut out: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
        for (name, p) in &self.providers {
            let base_url = match p.kind.as_str() {
                "openai" if p.base_url.trim().is_empty() => {
                    return Err(EngineError::Io(format!(
                        "provider `{name}`: set `base_url`, e.g. \"http://localhost:11434/v1\""
                    )));
                }
                "openai" => p.base_url.clone(),
                "scripted" => {
                    let server = ScriptedServer::start(ScriptedConfig::default())
                        .await
                        .map_err(|e| {
                            EngineError::Io(format!(
                                "provider `{name}`: cannot start the scripted model: {e}"
                            ))
                        })?;
                    let url = server.base_url();
                    // Keep the server for the life of the process.
                    std::mem::forget(server);
                    url
                }
                other => {
                    return Err(EngineError::Io(format!(
                        "provider `{name}`: kind `{other}` is not supported; use `openai` (any OpenAI-compatible server) or `scripted`"
                    )));
                }
            };
            let mut config = OpenAiConfig::new(base_url);
            if let Some(var) = &p.api_key_env {
                let key = std::env::var(var).map_err(|_| EngineError::Io(format!("provider `{name}`: the environment variable `{var}` (its API key) is not set")))?;
                config.api_key = Some(key);
            }
            if let Some(t) = p.timeout_secs {
                config.request_timeout = Duration::from_secs(t);
            }
            if let Some(r) = p.max_retries {
                config.max_retries = r;
            }
            let client = OpenAiCompatible::new(config)
                .map_err(|e| EngineError::Io(format!("provider `{name}`: {e}")))?;
            let model: Arc<dyn ChatModel> = if p.stream {
                Arc::new(Streaming(client))
            } else {
                Arc::new(client)
            };
            out.insert(name.clone(), model);
        }
        Ok(out)
    }
}

/// Forces SSE streaming on every request of a provider.
struct Streaming(OpenAiCompatible);

impl ChatModel for Streaming {
    fn chat<'a>(
        &'a self,
        mut req: processops_llm::ChatRequest,
        ctx: processops_llm::CallContext,
    ) -> futures::future::BoxFuture<
        'a,
        Result<processops_llm::ChatResponse, processops_llm::LlmError>,
    > {
        req.stream = true;
        self.0.chat(req, ctx)
    }
}
