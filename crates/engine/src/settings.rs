//! `processops.toml`: the project's settings (providers so far).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use processops_llm::scripted::{ScriptedConfig, ScriptedServer};
use processops_llm::{
    Anthropic, AnthropicConfig, Breaker, BreakerConfig, ChatModel, OpenAiCompatible, OpenAiConfig,
};
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
    #[serde(default)]
    pub retrieval: RetrievalSettings,
    /// Trace export over OTLP (`crate::telemetry`).
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetrySettings,
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
///
/// Every provider sits behind a circuit breaker: after `breaker_failures` provider failures in a
/// row (timeouts, connection errors, HTTP 429 and 5xx, cut streams, unreadable replies; not
/// requests the provider rejected) its calls fail at once for `breaker_cooldown_secs`, so a step
/// goes straight to its next agent. Then one trial call decides whether it is used again.
///
/// The API key comes from `api_key_env` (an environment variable) or `api_key_keychain` (the OS
/// keychain), never from this file, and it is never logged or shown in errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// `openai` (any OpenAI-compatible server), `anthropic` (the Anthropic Messages API),
    /// `builtin` (a small GGUF model run in process on the CPU, SmolLM2-135M-Instruct unless
    /// `model` names another file: no network, no key, for trying things out) or `scripted` (a
    /// canned-reply model served in process for tests and demos; it understands nothing).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Base URL of the server. `openai`: up to the API version, e.g.
    /// `http://localhost:11434/v1` (required). `anthropic`: the API's root, by default
    /// `https://api.anthropic.com`. Not used by `scripted`.
    #[serde(default)]
    pub base_url: String,
    /// Environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Account name under which the API key is stored in the OS keychain, service `processops`
    /// (macOS Keychain, Windows Credential Manager, or a Secret Service such as GNOME Keyring or
    /// KWallet on Linux). Use this or `api_key_env`, not both.
    #[serde(default)]
    pub api_key_keychain: Option<String>,
    /// Seconds one try may take, from connecting to the end of the reply (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Seconds to establish a connection (default 5).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Tries after the first for retryable failures (default 3).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Stream replies over SSE.
    #[serde(default)]
    pub stream: bool,
    /// Provider failures in a row that pause the provider (default 5).
    #[serde(default)]
    pub breaker_failures: Option<u32>,
    /// Seconds a paused provider is skipped before a trial call (default 30).
    #[serde(default)]
    pub breaker_cooldown_secs: Option<u64>,
    /// Upper bound on the tokens of every reply from this provider; lowers an agent's own
    /// `max_tokens`. `builtin` defaults to 256 so a draft takes seconds on a laptop CPU.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// `builtin` only: a GGUF file (llama, qwen2 or qwen3 architecture) to run instead of the
    /// built-in SmolLM2; relative paths are from the project folder.
    #[serde(default)]
    pub model: Option<std::path::PathBuf>,
}

/// How `retrieve` nodes rank passages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalSettings {
    /// `builtin` (MiniLM sentence embeddings fused with BM25: hybrid search) or `off` (BM25
    /// only). Default: `builtin` when its model files are present (`processops models pull`).
    #[serde(default)]
    pub embeddings: Option<String>,
}

fn default_kind() -> String {
    "openai".into()
}

/// The keychain service under which ProcessOps looks up API keys.
pub const KEYCHAIN_SERVICE: &str = "processops";

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

    /// Build the providers, each behind its circuit breaker. A key that cannot be found is an
    /// error naming where it was looked for. Scripted providers start their loopback server
    /// here; it lives as long as the process.
    pub async fn providers(
        &self,
        project: &Path,
    ) -> Result<HashMap<String, Arc<dyn ChatModel>>, EngineError> {
        let mut out: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
        for (name, p) in &self.providers {
            let fail = |message: String| EngineError::Io(format!("provider `{name}`: {message}"));
            let api_key = p.api_key(read_keychain).await.map_err(fail)?;
            let breaker = p.breaker_config().map_err(fail)?;
            // One arm per kind; each builds the bare client.
            let model: Arc<dyn ChatModel> = match p.kind.as_str() {
                "openai" if p.base_url.trim().is_empty() => {
                    return Err(fail(
                        "set `base_url`, e.g. \"http://localhost:11434/v1\"".to_owned(),
                    ));
                }
                "openai" => Arc::new(p.openai(p.base_url.clone(), api_key).map_err(fail)?),
                "anthropic" => Arc::new(p.anthropic(api_key).map_err(fail)?),
                "scripted" => {
                    let server = ScriptedServer::start(ScriptedConfig::default())
                        .await
                        .map_err(|e| fail(format!("cannot start the scripted model: {e}")))?;
                    let url = server.base_url();
                    // Keep the server for the life of the process.
                    std::mem::forget(server);
                    Arc::new(p.openai(url, api_key).map_err(fail)?)
                }
                "builtin" => {
                    let models = processops_local::catalog::models_dir();
                    match &p.model {
                        Some(file) => {
                            let file = project.join(file);
                            if !file.is_file() {
                                return Err(fail(format!(
                                    "the model file {} does not exist",
                                    file.display()
                                )));
                            }
                            Arc::new(processops_local::LazyChat::file(file))
                        }
                        None => {
                            processops_local::catalog::SMOLLM2
                                .require(&models)
                                .map_err(|e| fail(e.to_string()))?;
                            Arc::new(processops_local::LazyChat::builtin(models))
                        }
                    }
                }
                other => {
                    return Err(fail(format!(
                        "kind `{other}` is not supported; use `openai` (any OpenAI-compatible server), `anthropic`, `builtin` or `scripted`"
                    )));
                }
            };
            let max_tokens = p
                .max_tokens
                .or_else(|| (p.kind == "builtin").then_some(BUILTIN_MAX_TOKENS));
            let model: Arc<dyn ChatModel> = if p.stream || max_tokens.is_some() {
                Arc::new(ProviderDefaults {
                    inner: model,
                    stream: p.stream,
                    max_tokens,
                })
            } else {
                model
            };
            out.insert(
                name.clone(),
                Arc::new(Breaker::new(name.clone(), model, breaker)),
            );
        }
        Ok(out)
    }
}

impl Settings {
    /// The embedder for hybrid retrieval, if there is one (loaded on first use).
    pub fn embedder(&self) -> Result<Option<Arc<dyn processops_llm::Embedder>>, EngineError> {
        let models = processops_local::catalog::models_dir();
        let present = processops_local::catalog::MINILM.is_present(&models);
        match self.retrieval.embeddings.as_deref() {
            Some("off") => Ok(None),
            Some("builtin") if !present => Err(EngineError::Io(format!(
                "[retrieval] embeddings = \"builtin\" needs the model files in {}: run `processops models pull`",
                models.display()
            ))),
            Some("builtin") | None if present => {
                Ok(Some(Arc::new(processops_local::LazyMiniLm::new(models))))
            }
            None => Ok(None),
            Some(other) => Err(EngineError::Io(format!(
                "[retrieval] embeddings = \"{other}\" is not known; use \"builtin\" or \"off\""
            ))),
        }
    }
}

impl ProviderSettings {
    /// The API key from `api_key_env` or `api_key_keychain` (read with `keychain`), or none.
    /// Errors name the variable or keychain account, never the key.
    async fn api_key(
        &self,
        keychain: fn(&str) -> Result<String, String>,
    ) -> Result<Option<String>, String> {
        match (&self.api_key_env, &self.api_key_keychain) {
            (Some(_), Some(_)) => {
                Err("set either `api_key_env` or `api_key_keychain`, not both".to_owned())
            }
            (Some(var), None) => match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => Ok(Some(key)),
                Ok(_) => Err(format!(
                    "the environment variable `{var}` (its API key) is empty"
                )),
                Err(_) => Err(format!(
                    "the environment variable `{var}` (its API key) is not set"
                )),
            },
            (None, Some(account)) => {
                // Keychains block (D-Bus, or an unlock prompt): keep that off the runtime.
                let account = account.clone();
                tokio::task::spawn_blocking(move || keychain(&account))
                    .await
                    .map_err(|e| format!("reading the OS keychain failed: {e}"))?
                    .map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    fn breaker_config(&self) -> Result<BreakerConfig, String> {
        let defaults = BreakerConfig::default();
        let failure_threshold = self.breaker_failures.unwrap_or(defaults.failure_threshold);
        if failure_threshold == 0 {
            return Err("`breaker_failures` must be at least 1".to_owned());
        }
        Ok(BreakerConfig {
            failure_threshold,
            cooldown: self
                .breaker_cooldown_secs
                .map_or(defaults.cooldown, Duration::from_secs),
        })
    }

    /// `timeout_secs` and `connect_timeout_secs`, checked.
    fn timeouts(&self) -> Result<(Option<Duration>, Option<Duration>), String> {
        let secs = |value: Option<u64>, key: &str| match value {
            Some(0) => Err(format!("`{key}` must be at least 1")),
            other => Ok(other.map(Duration::from_secs)),
        };
        Ok((
            secs(self.connect_timeout_secs, "connect_timeout_secs")?,
            secs(self.timeout_secs, "timeout_secs")?,
        ))
    }

    fn openai(
        &self,
        base_url: String,
        api_key: Option<String>,
    ) -> Result<OpenAiCompatible, String> {
        let mut config = OpenAiConfig::new(base_url);
        config.api_key = api_key;
        let (connect, total) = self.timeouts()?;
        if let Some(t) = connect {
            config.connect_timeout = t;
        }
        if let Some(t) = total {
            config.request_timeout = t;
        }
        if let Some(r) = self.max_retries {
            config.max_retries = r;
        }
        OpenAiCompatible::new(config).map_err(|e| e.to_string())
    }

    fn anthropic(&self, api_key: Option<String>) -> Result<Anthropic, String> {
        let mut config = AnthropicConfig::default();
        if !self.base_url.trim().is_empty() {
            config.base_url = self.base_url.trim().to_owned();
        }
        config.api_key = api_key;
        let (connect, total) = self.timeouts()?;
        if let Some(t) = connect {
            config.connect_timeout = t;
        }
        if let Some(t) = total {
            config.request_timeout = t;
        }
        if let Some(r) = self.max_retries {
            config.max_retries = r;
        }
        Anthropic::new(config).map_err(|e| e.to_string())
    }
}

/// Whether the OS keychain holds a non-empty API key under `account`.
pub fn keychain_has(account: &str) -> bool {
    read_keychain(account).is_ok()
}

/// Stores an API key under `account` (service [`KEYCHAIN_SERVICE`]) in the OS keychain.
pub fn store_keychain(account: &str, key: &str) -> Result<(), String> {
    let entry = keyring::Entry::new(KEYCHAIN_SERVICE, account).map_err(|e| {
        let cause = match (&e, keyring::Entry::store_status()) {
            (keyring::Error::NoDefaultStore, Err(status)) => status,
            _ => &e,
        };
        keychain_error(account, cause)
    })?;
    entry
        .set_password(key)
        .map_err(|e| keychain_error(account, &e))
}

/// Reads the API key stored under `account` (service [`KEYCHAIN_SERVICE`]) in the OS keychain.
fn read_keychain(account: &str) -> Result<String, String> {
    let entry = keyring::Entry::new(KEYCHAIN_SERVICE, account).map_err(|e| {
        // `NoDefaultStore` only says the store did not start; its status says why.
        let cause = match (&e, keyring::Entry::store_status()) {
            (keyring::Error::NoDefaultStore, Err(status)) => status,
            _ => &e,
        };
        keychain_error(account, cause)
    })?;
    let key = entry
        .get_password()
        .map_err(|e| keychain_error(account, &e))?;
    if key.trim().is_empty() {
        return Err(format!(
            "the API key in the OS keychain (service `{KEYCHAIN_SERVICE}`, account `{account}`) is empty; store it again"
        ));
    }
    Ok(key)
}

/// What went wrong with the keychain, and what to do. Never includes secret data: the variants
/// that carry the stored bytes are described, not printed.
fn keychain_error(account: &str, e: &keyring::Error) -> String {
    let place = format!("service `{KEYCHAIN_SERVICE}`, account `{account}`");
    match e {
        keyring::Error::NoEntry => format!(
            "no API key is stored in the OS keychain under {place}; store it there (e.g. `secret-tool store --label='ProcessOps {account}' service {KEYCHAIN_SERVICE} username {account}` on Linux, `security add-generic-password -s {KEYCHAIN_SERVICE} -a {account} -w` on macOS), or use `api_key_env` to read it from an environment variable"
        ),
        keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => format!(
            "the API key stored in the OS keychain under {place} is not readable text; store it again, or use `api_key_env`"
        ),
        keyring::Error::Ambiguous(_) => format!(
            "several OS keychain items match {place}; delete all but one, or use `api_key_env`"
        ),
        keyring::Error::PlatformFailure(cause) | keyring::Error::NoStorageAccess(cause) => {
            unreachable_keychain(&place, &cause.to_string())
        }
        keyring::Error::NoDefaultStore | keyring::Error::Invalid(..) => {
            unreachable_keychain(&place, &e.to_string())
        }
        // Other variants may carry data we cannot vouch for: describe, do not print.
        _ => unreachable_keychain(&place, "unexpected keychain error"),
    }
}

fn unreachable_keychain(place: &str, cause: &str) -> String {
    let cause: String = cause
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect();
    format!(
        "the OS keychain is not reachable, so the API key under {place} cannot be read ({cause}). On Linux this needs a Secret Service (GNOME Keyring, KWallet or KeePassXC) on the session D-Bus, which servers and containers usually lack; set `api_key_env` to read the key from an environment variable instead"
    )
}

/// Default reply cap of the built-in model: at ~40 tokens/s on one core, a few seconds.
const BUILTIN_MAX_TOKENS: u32 = 256;

/// What a provider's settings impose on every request: SSE streaming, and a cap that lowers
/// an agent's own `max_tokens`.
struct ProviderDefaults {
    inner: Arc<dyn ChatModel>,
    stream: bool,
    max_tokens: Option<u32>,
}

impl ChatModel for ProviderDefaults {
    fn chat<'a>(
        &'a self,
        mut req: processops_llm::ChatRequest,
        ctx: processops_llm::CallContext,
    ) -> futures::future::BoxFuture<
        'a,
        Result<processops_llm::ChatResponse, processops_llm::LlmError>,
    > {
        req.stream |= self.stream;
        if let Some(cap) = self.max_tokens {
            req.max_tokens = Some(req.max_tokens.map_or(cap, |m| m.min(cap)));
        }
        self.inner.chat(req, ctx)
    }

    fn healthy(&self) -> bool {
        self.inner.healthy()
    }

    fn system(&self) -> &'static str {
        self.inner.system()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use processops_llm::scripted::Fault;
    use processops_llm::{CallContext, ChatMessage, ChatRequest, LlmError};

    use super::*;

    const SECRET: &str = "sk-settings-DO-NOT-LEAK";

    fn provider(toml_text: &str) -> ProviderSettings {
        toml::from_str(toml_text).unwrap()
    }

    fn settings(toml_text: &str) -> Settings {
        toml::from_str(toml_text).unwrap()
    }

    async fn build_error(toml_text: &str) -> String {
        match settings(toml_text).providers(Path::new(".")).await {
            Ok(_) => panic!("expected an error for:\n{toml_text}"),
            Err(e) => e.to_string(),
        }
    }

    fn request(stream: bool) -> ChatRequest {
        ChatRequest {
            stream,
            ..ChatRequest::new("claude-test", vec![ChatMessage::user("Summarise the week")])
        }
    }

    #[test]
    fn every_provider_key_parses() {
        let p = provider(
            r#"
            kind = "anthropic"
            base_url = "https://api.anthropic.com"
            api_key_keychain = "anthropic"
            timeout_secs = 90
            connect_timeout_secs = 3
            max_retries = 2
            stream = true
            breaker_failures = 4
            breaker_cooldown_secs = 12
            "#,
        );
        assert_eq!(p.kind, "anthropic");
        assert_eq!(p.api_key_keychain.as_deref(), Some("anthropic"));
        assert_eq!(
            p.breaker_config().unwrap(),
            BreakerConfig {
                failure_threshold: 4,
                cooldown: Duration::from_secs(12)
            }
        );
        let client = p.anthropic(Some(SECRET.to_owned())).unwrap();
        let config = client.config();
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.request_timeout, Duration::from_secs(90));
        assert_eq!(config.max_retries, 2);
        assert!(!format!("{client:?}").contains(SECRET));

        let defaults = provider("kind = \"anthropic\"");
        assert_eq!(defaults.breaker_config().unwrap(), BreakerConfig::default());
        assert_eq!(
            defaults.anthropic(None).unwrap().config().base_url,
            "https://api.anthropic.com"
        );
        let openai = provider("base_url = \"http://127.0.0.1:1/v1\"\nconnect_timeout_secs = 2");
        let client = openai.openai(openai.base_url.clone(), None).unwrap();
        assert_eq!(client.config().connect_timeout, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn bad_settings_say_what_to_fix() {
        let cases = [
            ("[providers.x]\nkind = \"builtin-nope\"", "`anthropic`"),
            ("[providers.x]\nkind = \"openai\"", "set `base_url`"),
            (
                "[providers.x]\nkind = \"anthropic\"\napi_key_env = \"A\"\napi_key_keychain = \"b\"",
                "not both",
            ),
            (
                "[providers.x]\nkind = \"anthropic\"\napi_key_env = \"PROCESSOPS_TEST_SURELY_UNSET_7F3\"",
                "`PROCESSOPS_TEST_SURELY_UNSET_7F3` (its API key) is not set",
            ),
            (
                "[providers.x]\nkind = \"anthropic\"\nbreaker_failures = 0",
                "`breaker_failures` must be at least 1",
            ),
            (
                "[providers.x]\nkind = \"anthropic\"\ntimeout_secs = 0",
                "`timeout_secs` must be at least 1",
            ),
            (
                "[providers.x]\nkind = \"anthropic\"\nconnect_timeout_secs = 0",
                "`connect_timeout_secs` must be at least 1",
            ),
        ];
        for (text, expected) in cases {
            let err = build_error(text).await;
            assert!(err.starts_with("provider `x`: "), "{err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(
            toml::from_str::<Settings>("[providers.x]\nkind = \"anthropic\"\nbreaker = 1").is_err()
        );
    }

    #[tokio::test]
    async fn keys_come_from_the_environment_or_the_keychain() {
        fn found(account: &str) -> Result<String, String> {
            Ok(format!("{SECRET}-{account}"))
        }
        fn missing(account: &str) -> Result<String, String> {
            Err(format!("nothing under `{account}`"))
        }
        let p = provider("api_key_keychain = \"work\"");
        assert_eq!(
            p.api_key(found).await.unwrap(),
            Some(format!("{SECRET}-work"))
        );
        assert_eq!(
            p.api_key(missing).await.unwrap_err(),
            "nothing under `work`"
        );
        // PATH is set in any test environment.
        let p = provider("api_key_env = \"PATH\"");
        assert_eq!(
            p.api_key(missing).await.unwrap(),
            std::env::var("PATH").ok()
        );
        assert_eq!(provider("").api_key(found).await.unwrap(), None);
    }

    #[test]
    fn keychain_errors_suggest_api_key_env_and_never_print_secrets() {
        let cases = [
            (keyring::Error::NoEntry, "no API key is stored"),
            (
                keyring::Error::PlatformFailure("org.freedesktop.DBus.Error.ServiceUnknown".into()),
                "not reachable",
            ),
            (
                keyring::Error::NoStorageAccess("locked".into()),
                "not reachable",
            ),
            (keyring::Error::NoDefaultStore, "not reachable"),
            (
                keyring::Error::BadEncoding(SECRET.as_bytes().to_vec()),
                "not readable text",
            ),
            (
                keyring::Error::BadDataFormat(SECRET.as_bytes().to_vec(), SECRET.into()),
                "not readable text",
            ),
        ];
        for (error, expected) in cases {
            let text = keychain_error("work", &error);
            assert!(text.contains(expected), "{text}");
            assert!(text.contains("`api_key_env`"), "{text}");
            assert!(text.contains("account `work`"), "{text}");
            assert!(!text.contains(SECRET), "{text}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_real_keychain_answers_with_guidance() {
        // No such account exists: the keychain says so, or is not reachable at all (servers,
        // CI). Either way the message points at the alternative.
        let p = provider(
            "kind = \"anthropic\"\napi_key_keychain = \"processops-test-no-such-account-5c1e\"",
        );
        let err = p.api_key(read_keychain).await.unwrap_err();
        assert!(err.contains("`api_key_env`"), "{err}");
        assert!(
            err.contains("processops-test-no-such-account-5c1e"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn anthropic_providers_work_end_to_end_behind_a_breaker() {
        let server = ScriptedServer::start(ScriptedConfig::default())
            .await
            .unwrap();
        let text = format!(
            "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\nstream = true\nmax_retries = 0\nbreaker_failures = 2\nbreaker_cooldown_secs = 600\n",
            server.root_url()
        );
        let providers = settings(&text).providers(Path::new(".")).await.unwrap();
        let claude = &providers["claude"];
        let resp = claude
            .chat(request(false), CallContext::step("s1"))
            .await
            .unwrap();
        assert!(
            resp.text.starts_with("Draft (scripted model):"),
            "{}",
            resp.text
        );
        // `stream = true` forced SSE, which Anthropic ends with `end_turn`.
        assert_eq!(resp.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(server.calls_for_step("s1"), 1);

        // Two provider failures in a row open the breaker; then no request reaches the server.
        for _ in 0..2 {
            server.push_fault(Fault::Status {
                status: 503,
                retry_after: None,
            });
            assert!(
                claude
                    .chat(request(false), CallContext::default())
                    .await
                    .is_err()
            );
        }
        assert!(!claude.healthy());
        let before = server.requests();
        let err = claude
            .chat(request(false), CallContext::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LlmError::CircuitOpen { provider, .. } if provider == "claude"),
            "{err:?}"
        );
        assert_eq!(server.requests(), before);
    }

    #[tokio::test]
    async fn every_kind_is_wrapped_in_a_breaker() {
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let text = format!(
            "[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{dead}/v1\"\nmax_retries = 0\nbreaker_failures = 1\n\n[providers.b]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:{dead}\"\nmax_retries = 0\nbreaker_failures = 1\n\n[providers.c]\nkind = \"scripted\"\n"
        );
        let providers = settings(&text).providers(Path::new(".")).await.unwrap();
        for name in ["a", "b"] {
            let model = &providers[name];
            assert!(model.healthy());
            let first = model
                .chat(request(false), CallContext::default())
                .await
                .unwrap_err();
            assert!(first.is_provider_failure(), "{first:?}");
            let second = model
                .chat(request(false), CallContext::default())
                .await
                .unwrap_err();
            assert!(
                matches!(second, LlmError::CircuitOpen { .. }),
                "{name}: {second:?}"
            );
            assert!(!model.healthy(), "{name}");
        }
        let scripted = &providers["c"];
        assert!(scripted.healthy());
        scripted
            .chat(request(true), CallContext::default())
            .await
            .unwrap();
    }
}
