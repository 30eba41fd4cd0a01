//! Change control through the service API: a blueprint's versions with their stages and
//! history, proposals, stage moves, rollback, and the diff between two versions.

use processops_core::blueprint::diff::{DiffEntry, diff};
use processops_core::gate::{DEFAULT_THRESHOLD, GateReport};
use processops_core::lifecycle::{parse_stage, stage_name};
use processops_store::{StageChangeRow, StageRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::service::Service;

/// Query of `GET /api/versions`.
#[derive(Debug, Clone, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
pub struct VersionsQuery {
    pub blueprint: String,
}

/// One stored version of a blueprint, with where it stands.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct VersionInfo {
    pub version: String,
    pub name: String,
    /// When this engine first stored it (Unix ms).
    pub created_at: i64,
    /// draft, pilot, monitored, approved or retired; `null`: never proposed.
    pub stage: Option<String>,
    /// Whether it is the version in the project's file now.
    pub current_file: bool,
    pub author: Option<String>,
    pub note: Option<String>,
    /// The feedback that motivated it (task ids, outputs `run:node:visit`, tags).
    pub feedback: Vec<String>,
    pub proposed_at: Option<i64>,
    pub approved_at: Option<i64>,
    /// The latest regression gate's one-line result, and whether it passed.
    pub gate_summary: Option<String>,
    pub gate_passed: Option<bool>,
}

/// One move between stages.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct StageChangeDto {
    pub version: String,
    pub from: Option<String>,
    pub to: String,
    /// proposed, asked, superseded, rolled_back or restored
    pub reason: String,
    pub by: String,
    pub at: i64,
    pub note: Option<String>,
}

/// A blueprint's versions (newest first) and the history of their stages (oldest first).
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct BlueprintVersions {
    pub blueprint: String,
    /// Whether change control governs it (someone proposed a version); otherwise the file's
    /// version runs.
    pub managed: bool,
    pub versions: Vec<VersionInfo>,
    pub history: Vec<StageChangeDto>,
}

/// Body of `POST /api/versions/propose`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ProposeRequest {
    pub blueprint: String,
    /// The version (hash or prefix); the file's current version when omitted.
    #[serde(default)]
    #[ts(optional)]
    pub version: Option<String>,
    pub by: String,
    /// What changed and why.
    pub note: String,
    /// Task ids, outputs (`run:node:visit`) or tags that motivated the change.
    #[serde(default)]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub feedback: Vec<String>,
}

/// Body of `POST /api/versions/stage`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    pub blueprint: String,
    /// Hash or prefix.
    pub version: String,
    /// pilot, monitored, approved or retired
    pub stage: String,
    pub by: String,
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<String>,
}

/// Body of `POST /api/versions/rollback`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub blueprint: String,
    pub by: String,
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<String>,
}

/// Body of `POST /api/versions/gate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    pub blueprint: String,
    /// Hash or prefix; the file's version when omitted.
    #[serde(default)]
    #[ts(optional)]
    pub version: Option<String>,
    pub by: String,
    /// The similarity to the approved text a draft needs (default 0.8).
    #[serde(default)]
    #[ts(optional)]
    pub threshold: Option<f64>,
    /// How many past reviews to replay (default 20).
    #[serde(default)]
    #[ts(optional)]
    pub cases: Option<u32>,
}

/// Query of `GET /api/versions/diff`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ts_rs::TS)]
#[into_params(parameter_in = Query)]
#[ts(optional_fields)]
pub struct DiffQuery {
    pub blueprint: String,
    /// The older version (hash or prefix); default: the approved version, else the newest
    /// proposed one other than `to`.
    pub from: Option<String>,
    /// The newer version; default: the file's version.
    pub to: Option<String>,
}

/// What changed between two versions.
#[derive(Debug, Clone, Serialize, ToSchema, ts_rs::TS)]
pub struct VersionDiff {
    pub blueprint: String,
    pub from: String,
    pub to: String,
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<DiffEntry>,
}

impl From<&StageChangeRow> for StageChangeDto {
    fn from(r: &StageChangeRow) -> Self {
        Self {
            version: r.version.clone(),
            from: r.from.map(|s| stage_name(s).to_owned()),
            to: stage_name(r.to).to_owned(),
            reason: r.reason.clone(),
            by: r.by.clone(),
            at: r.at,
            note: r.note.clone(),
        }
    }
}

impl Service {
    /// A blueprint's versions, their stages and history.
    pub fn versions(&self, blueprint: &str) -> Result<BlueprintVersions, ApiError> {
        let store = self.engine().store();
        let stored = store.versions_of(blueprint)?;
        let current = self
            .engine()
            .registry()
            .get(blueprint)
            .map(|c| c.hash.clone());
        if stored.is_empty() && current.is_none() {
            return Err(ApiError::not_found(format!(
                "no blueprint `{blueprint}` is loaded or stored"
            )));
        }
        let stages = store.version_stages(Some(blueprint))?;
        let stage_of = |hash: &str| stages.iter().find(|s| s.version == hash);
        let versions = stored
            .iter()
            .map(|v| {
                let s: Option<&StageRow> = stage_of(&v.hash);
                let gate = store.gate_report(&v.hash).ok().flatten().and_then(|g| {
                    serde_json::from_value::<processops_core::gate::GateReport>(g).ok()
                });
                VersionInfo {
                    version: v.hash.clone(),
                    name: v.name.clone(),
                    created_at: v.created_at,
                    stage: s.map(|s| stage_name(s.stage).to_owned()),
                    current_file: current.as_deref() == Some(v.hash.as_str()),
                    author: s.map(|s| s.author.clone()),
                    note: s.map(|s| s.note.clone()),
                    feedback: s.map(|s| s.feedback.clone()).unwrap_or_default(),
                    proposed_at: s.map(|s| s.proposed_at),
                    approved_at: s.and_then(|s| s.approved_at),
                    gate_summary: gate.as_ref().map(|g| g.summary()),
                    gate_passed: gate.as_ref().map(|g| g.passed),
                }
            })
            .collect();
        Ok(BlueprintVersions {
            blueprint: blueprint.to_owned(),
            managed: !stages.is_empty(),
            versions,
            history: store
                .stage_changes(blueprint)?
                .iter()
                .map(Into::into)
                .collect(),
        })
    }

    /// Propose a version with a change note.
    pub async fn propose_version(&self, req: ProposeRequest) -> Result<VersionInfo, ApiError> {
        let version = self.metrics_version(req.version.as_deref())?;
        self.engine()
            .propose_version(
                &req.blueprint,
                version.as_deref(),
                &req.by,
                &req.note,
                req.feedback,
            )
            .await?;
        self.version_info(&req.blueprint, version.as_deref())
    }

    /// Move a version to another stage.
    pub async fn stage_version(&self, req: StageRequest) -> Result<BlueprintVersions, ApiError> {
        let to = parse_stage(&req.stage).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown stage `{}`; use pilot, monitored, approved or retired",
                req.stage
            ))
        })?;
        let version = self
            .metrics_version(Some(&req.version))?
            .unwrap_or_default();
        self.engine()
            .move_version(&req.blueprint, &version, to, &req.by, req.note)
            .await?;
        self.versions(&req.blueprint)
    }

    /// Roll back to the previous approved version.
    pub async fn rollback_version(
        &self,
        req: RollbackRequest,
    ) -> Result<BlueprintVersions, ApiError> {
        self.engine()
            .rollback_version(&req.blueprint, &req.by, req.note)
            .await?;
        self.versions(&req.blueprint)
    }

    /// Replay past approved reviews on a version and compare its drafts with what people
    /// approved; the report is kept and shown when the version is approved.
    pub async fn gate_version(&self, req: GateRequest) -> Result<GateReport, ApiError> {
        let version = match self.metrics_version(req.version.as_deref())? {
            Some(v) => v,
            None => self.engine().blueprint(&req.blueprint)?.hash.clone(),
        };
        Ok(self
            .engine()
            .regression_gate(
                &req.blueprint,
                &version,
                &req.by,
                req.threshold.unwrap_or(DEFAULT_THRESHOLD),
                req.cases
                    .map_or(processops_engine::DEFAULT_GATE_CASES, |c| c as usize),
            )
            .await?)
    }

    /// What changed between two versions of a blueprint.
    pub fn version_diff(&self, q: &DiffQuery) -> Result<VersionDiff, ApiError> {
        let listed = self.versions(&q.blueprint)?;
        let to = match self.metrics_version(q.to.as_deref())? {
            Some(v) => v,
            None => self
                .engine()
                .blueprint(&q.blueprint)
                .map(|c| c.hash.clone())
                .map_err(ApiError::from)?,
        };
        let from = match self.metrics_version(q.from.as_deref())? {
            Some(v) => v,
            None => listed
                .versions
                .iter()
                .find(|v| v.stage.as_deref() == Some("approved") && v.version != to)
                .or_else(|| {
                    listed
                        .versions
                        .iter()
                        .find(|v| v.stage.is_some() && v.version != to)
                })
                .or_else(|| listed.versions.iter().find(|v| v.version != to))
                .map(|v| v.version.clone())
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "`{}` has only one version; there is nothing to compare it with",
                        q.blueprint
                    ))
                })?,
        };
        let (old, new) = (self.engine().version(&from)?, self.engine().version(&to)?);
        for (hash, c) in [(&from, &old), (&to, &new)] {
            if c.blueprint.id != q.blueprint {
                return Err(ApiError::bad_request(format!(
                    "version {} belongs to `{}`, not `{}`",
                    processops_core::lifecycle::short(hash),
                    c.blueprint.id,
                    q.blueprint
                )));
            }
        }
        Ok(VersionDiff {
            blueprint: q.blueprint.clone(),
            changes: diff(&old.blueprint, &new.blueprint),
            from,
            to,
        })
    }

    fn version_info(
        &self,
        blueprint: &str,
        version: Option<&str>,
    ) -> Result<VersionInfo, ApiError> {
        let listed = self.versions(blueprint)?;
        let found = listed.versions.into_iter().find(|v| match version {
            Some(h) => v.version == h,
            None => v.current_file,
        });
        found.ok_or_else(|| ApiError::not_found("the proposed version is not stored".to_owned()))
    }
}
