//! The designer's service functions: read and save blueprint files, the blueprint schema, and
//! dry runs of unsaved blueprints.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use processops_core::blueprint;
use processops_engine::Compiled;

use crate::dto::*;
use crate::error::ApiError;
use crate::service::Service;

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::new(500, "io", format!("cannot {what} {}: {e}", path.display()))
}

/// Why a source does not validate, as one message that names line and column.
fn invalid_source(diagnostics: &[processops_core::Diagnostic]) -> ApiError {
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("line {}, column {}: {}", d.line, d.column, d.message))
        .collect();
    ApiError::new(
        422,
        "invalid_blueprint",
        format!(
            "the blueprint does not validate, so it was not saved: {}",
            errors.join("; ")
        ),
    )
}

/// Write next to the target, then rename: a crash never leaves half a blueprint.
fn write_atomically(path: &Path, text: &str) -> Result<(), ApiError> {
    let tmp = path.with_extension("yaml.saving");
    std::fs::write(&tmp, text).map_err(|e| io_error("write", &tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error("replace", path, &e))
}

impl Service {
    fn shown(&self, path: &Path) -> String {
        match self.project() {
            Ok(p) => path.strip_prefix(&p.root).unwrap_or(path),
            Err(_) => path,
        }
        .display()
        .to_string()
    }

    fn blueprint_file(&self, id: &str) -> Result<PathBuf, ApiError> {
        self.engine()
            .registry()
            .file(id)
            .ok_or_else(|| ApiError::not_found(format!("no blueprint file has the id `{id}`")))
    }

    /// A blueprint's YAML as it is on disk.
    pub fn blueprint_source(&self, id: &str) -> Result<BlueprintSource, ApiError> {
        let current = self.engine().blueprint(id)?;
        let path = self.blueprint_file(id)?;
        let source = std::fs::read_to_string(&path).map_err(|e| io_error("read", &path, &e))?;
        Ok(BlueprintSource {
            id: id.to_owned(),
            file: self.shown(&path),
            source,
            version: current.hash.clone(),
        })
    }

    /// The JSON Schema of blueprint files, for forms and editors.
    pub fn blueprint_schema(&self) -> serde_json::Value {
        blueprint::json_schema()
    }

    /// Save an edited blueprint over its file and load it: new runs use it at once. Refused
    /// when it does not validate, renames the blueprint, or the file changed since `base_version`.
    pub async fn save_blueprint(
        &self,
        id: &str,
        req: SaveBlueprintRequest,
    ) -> Result<SaveBlueprintResponse, ApiError> {
        let path = self.blueprint_file(id)?;
        let current = self.engine().blueprint(id)?;
        let compiled = Compiled::from_source(&req.source).map_err(|d| invalid_source(&d))?;
        if compiled.blueprint.id != id {
            return Err(ApiError::new(
                422,
                "invalid_blueprint",
                format!(
                    "the text has id `{}` but this is blueprint `{id}`; to make a copy under a new id, create a new blueprint",
                    compiled.blueprint.id
                ),
            ));
        }
        if let Some(base) = &req.base_version
            && *base != current.hash
        {
            return Err(ApiError::new(
                409,
                "conflict",
                format!(
                    "`{id}` changed since you opened it (someone saved version {}); reload it and apply your edit again",
                    &current.hash[..current.hash.len().min(12)]
                ),
            ));
        }
        let on_disk = std::fs::read_to_string(&path).map_err(|e| io_error("read", &path, &e))?;
        let changed = on_disk != req.source;
        if changed {
            write_atomically(&path, &req.source)?;
        }
        self.load(compiled, path.clone()).await?;
        Ok(SaveBlueprintResponse {
            id: id.to_owned(),
            file: self.shown(&path),
            version: self.engine().blueprint(id)?.hash.clone(),
            changed,
        })
    }

    /// Save a new blueprint as `blueprints/<id>.yaml`.
    pub async fn create_blueprint(
        &self,
        req: SaveBlueprintRequest,
    ) -> Result<SaveBlueprintResponse, ApiError> {
        let compiled = Compiled::from_source(&req.source).map_err(|d| invalid_source(&d))?;
        let id = compiled.blueprint.id.clone();
        if self.engine().registry().get(&id).is_some() {
            return Err(ApiError::new(
                409,
                "conflict",
                format!("a blueprint with the id `{id}` exists; pick another id"),
            ));
        }
        let dir = self.project()?.blueprints.clone();
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, &e))?;
        let path = dir.join(format!("{id}.yaml"));
        if path.exists() {
            return Err(ApiError::new(
                409,
                "conflict",
                format!(
                    "{} exists but did not load (see the engine's start-up warnings); fix or remove it first",
                    self.shown(&path)
                ),
            ));
        }
        write_atomically(&path, &req.source)?;
        self.load(compiled, path.clone()).await?;
        Ok(SaveBlueprintResponse {
            version: self.engine().blueprint(&id)?.hash.clone(),
            id,
            file: self.shown(&path),
            changed: true,
        })
    }

    async fn load(&self, compiled: Compiled, path: PathBuf) -> Result<(), ApiError> {
        let registry = self.engine().registry();
        registry.set_file(&compiled.blueprint.id, path);
        registry.insert(Arc::new(compiled));
        self.engine().record_versions().await?;
        Ok(())
    }

    /// Run a blueprint (saved or not) on a sample payload in a scratch store: prompts are real
    /// calls, outside effects are described instead of performed, reviews are approved.
    pub async fn dry_run(&self, req: DryRunRequest) -> Result<DryRunReport, ApiError> {
        let compiled = match Compiled::from_source(&req.source) {
            Ok(c) => Arc::new(c),
            Err(diagnostics) => {
                return Ok(DryRunReport {
                    status: "invalid".into(),
                    steps: Vec::new(),
                    error: Some("the blueprint does not validate; fix the problems listed".into()),
                    approvals: 0,
                    diagnostics: diagnostics.iter().map(Into::into).collect(),
                });
            }
        };
        let scratch = tempfile::tempdir()
            .map_err(|e| ApiError::new(500, "io", format!("cannot make a scratch folder: {e}")))?;
        let outcome = processops_engine::dry_run::dry_run(
            self.engine(),
            compiled,
            req.trigger.as_deref(),
            req.payload,
            scratch.path(),
        )
        .await?;
        Ok(DryRunReport {
            status: outcome.status,
            steps: outcome.steps,
            error: outcome.error,
            approvals: outcome.approvals,
            diagnostics: Vec::new(),
        })
    }
}
