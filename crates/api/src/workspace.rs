//! Who uses the app and how it is set up: the profile, the settings view, API keys in the
//! keychain, and evaluators' progress.

use std::collections::BTreeMap;

use processops_engine::settings::Settings;
use processops_store::OutputQuery;

use crate::dto::*;
use crate::error::ApiError;
use crate::service::Service;

/// Most outputs counted as remaining for one evaluator.
const PROGRESS_SCAN_LIMIT: usize = 100_000;

impl Service {
    /// The profile the app acts as, and the directory.
    pub fn me(&self) -> Result<Me, ApiError> {
        let name = self.project()?.user.clone();
        let directory = self.engine().directory();
        Ok(Me {
            roles: directory
                .roles(&name)
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
            single_user: directory.is_empty(),
            users: directory
                .users()
                .map(|(name, roles)| UserDto {
                    name: name.to_owned(),
                    roles: roles.to_vec(),
                })
                .collect(),
            name,
        })
    }

    /// Providers (without keys) and the agents that use them.
    pub fn settings(&self) -> Result<SettingsView, ApiError> {
        let root = &self.project()?.root;
        let settings = Settings::load(root)?;
        let providers = settings
            .providers
            .iter()
            .map(|(name, p)| {
                let (key_source, key_name, key_present) =
                    match (&p.api_key_env, &p.api_key_keychain) {
                        (Some(var), _) => (
                            "env",
                            Some(var.clone()),
                            std::env::var(var).is_ok_and(|v| !v.is_empty()),
                        ),
                        (None, Some(account)) => (
                            "keychain",
                            Some(account.clone()),
                            processops_engine::settings::keychain_has(account),
                        ),
                        (None, None) => ("none", None, false),
                    };
                ProviderView {
                    name: name.clone(),
                    kind: p.kind.clone(),
                    base_url: Some(p.base_url.clone()).filter(|u| !u.is_empty()),
                    model: p.model.as_ref().map(|m| m.display().to_string()),
                    key_source: key_source.into(),
                    key_name,
                    key_present,
                }
            })
            .collect();
        let agents = self
            .engine()
            .registry()
            .all()
            .iter()
            .flat_map(|c| {
                c.blueprint.agents.iter().map(|(name, a)| AgentView {
                    blueprint: c.blueprint.id.clone(),
                    name: name.clone(),
                    provider: a.provider.clone(),
                    model: a.model.clone(),
                    permissions: a.permissions.clone(),
                })
            })
            .collect();
        Ok(SettingsView {
            project: root.display().to_string(),
            settings_file: root.join("processops.toml").display().to_string(),
            providers,
            agents,
        })
    }

    /// Store a provider's API key in the OS keychain (never in a file or the database).
    pub async fn store_key(&self, req: &StoreKeyRequest) -> Result<(), ApiError> {
        let account = req.account.trim();
        if account.is_empty() || req.key.trim().is_empty() {
            return Err(ApiError::new(
                422,
                "invalid_request",
                "give the keychain account and a non-empty key",
            ));
        }
        processops_engine::settings::store_keychain(account, req.key.trim())
            .map_err(|m| ApiError::new(503, "keychain_unavailable", m))?;
        // Which key was set, by whom; never the key.
        let by = self
            .project()
            .map(|p| p.user.clone())
            .unwrap_or_else(|_| "app".into());
        self.engine()
            .store()
            .audit_record(
                by,
                "setting.changed".into(),
                format!("keychain:{account}"),
                None,
                Some(serde_json::json!({ "key": "stored in the OS keychain" })),
            )
            .await?;
        Ok(())
    }

    /// Outputs each evaluator has given feedback on, and what is left for them.
    pub fn eval_progress(&self, blueprint: Option<&str>) -> Result<Vec<EvalProgress>, ApiError> {
        let store = self.engine().store();
        let all = self.feedback(&crate::FeedbackQuery {
            blueprint: blueprint.map(ToOwned::to_owned),
            ..crate::FeedbackQuery::default()
        })?;
        let mut done: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for f in all {
            done.entry(f.evaluator).or_default().insert(f.output);
        }
        if let Ok(p) = self.project() {
            done.entry(p.user.clone()).or_default();
        }
        let mut out = Vec::new();
        for (evaluator, outputs) in done {
            let remaining = store
                .finished_outputs(&OutputQuery {
                    blueprint_id: blueprint.map(ToOwned::to_owned),
                    run_id: None,
                    kind: None,
                    not_evaluated_by: Some(evaluator.clone()),
                    limit: Some(PROGRESS_SCAN_LIMIT),
                    seed: None,
                })?
                .len();
            out.push(EvalProgress {
                evaluator,
                done: outputs.len(),
                remaining,
            });
        }
        Ok(out)
    }
}
