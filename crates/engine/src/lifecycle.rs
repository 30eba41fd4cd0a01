//! Change control in the engine: which version a run starts on, who sees a pilot's tasks, and
//! the moves between stages. The rules are `processops_core::lifecycle`'s; the rows the
//! store's.

use std::sync::Arc;

use processops_core::blueprint::{Cohort, Stage};
use processops_core::lifecycle::{self, Choice, VersionState, short};
use processops_store::{StageRow, StoreError};

use crate::{Compiled, Engine, EngineError};

impl Engine {
    /// The version a run of `blueprint` starts on when `starter` (or a trigger, `None`)
    /// starts it: the file's version while nobody proposed one, otherwise what change
    /// control says (the pilot for its cohort, the approved version for everyone else).
    pub(crate) fn version_to_start(
        &self,
        blueprint: &str,
        starter: Option<&str>,
    ) -> Result<Arc<Compiled>, EngineError> {
        let file = self.blueprint(blueprint)?;
        let states = self.states(blueprint)?;
        let directory = self.directory();
        match lifecycle::choose(blueprint, &states, starter, &directory, |hash| {
            self.cohort(hash)
        }) {
            Choice::Unmanaged => Ok(file),
            Choice::Version(hash) => self.version(&hash),
            Choice::Refused(message) => Err(EngineError::NotLive(message)),
        }
    }

    fn cohort(&self, version: &str) -> Option<Cohort> {
        self.version(version)
            .ok()
            .map(|c| c.blueprint.lifecycle.pilot.clone())
    }

    /// Refuse `user` a task of a version only its pilot cohort may see.
    pub(crate) fn check_cohort(&self, version: &str, user: &str) -> Result<(), EngineError> {
        let Some(row) = self.store().version_stage(version)? else {
            return Ok(());
        };
        if !lifecycle::cohort_only(row.stage, row.approved_at) {
            return Ok(());
        }
        let cohort = self.cohort(version).unwrap_or_default();
        if lifecycle::in_cohort(&cohort, user, &self.directory()) {
            return Ok(());
        }
        Err(EngineError::Forbidden(format!(
            "`{user}` is not in the pilot cohort of `{}` version {}; only its cohort ({}) takes its tasks",
            row.blueprint_id,
            short(version),
            describe(&cohort)
        )))
    }

    /// The versions whose tasks `viewer` must not see: pilots (and monitored versions, and
    /// pilots retired before approval) whose cohort does not hold them.
    pub fn hidden_versions(&self, viewer: &str) -> Result<Vec<String>, EngineError> {
        let directory = self.directory();
        Ok(self
            .store()
            .version_stages(None)?
            .into_iter()
            .filter(|row| lifecycle::cohort_only(row.stage, row.approved_at))
            .filter(|row| {
                let cohort = self.cohort(&row.version).unwrap_or_default();
                !lifecycle::in_cohort(&cohort, viewer, &directory)
            })
            .map(|row| row.version)
            .collect())
    }

    /// Propose a version of `blueprint` (by default the file's) with a change note.
    pub async fn propose_version(
        &self,
        blueprint: &str,
        version: Option<&str>,
        author: &str,
        note: &str,
        feedback: Vec<String>,
    ) -> Result<StageRow, EngineError> {
        if note.trim().is_empty() {
            return Err(EngineError::InvalidDecision(
                "a proposal needs a change note: say what changed and why".into(),
            ));
        }
        lifecycle::check_roles(
            &self.directory(),
            author,
            &[lifecycle::DESIGNER_ROLE, lifecycle::GOVERNANCE_ROLE],
            "propose a version",
        )
        .map_err(|r| EngineError::Forbidden(r.to_string()))?;
        let version = match version {
            Some(v) => v.to_owned(),
            None => self.blueprint(blueprint)?.hash.clone(),
        };
        // The file's version may be new: store it before it is proposed.
        if let Some(c) = self.registry().by_hash(&version) {
            self.store()
                .put_version(
                    c.hash.clone(),
                    c.blueprint.id.clone(),
                    c.blueprint.name.clone(),
                    c.source.clone(),
                )
                .await?;
        }
        Ok(self
            .store()
            .propose_version(
                blueprint.to_owned(),
                version,
                author.to_owned(),
                note.trim().to_owned(),
                feedback,
            )
            .await?)
    }

    /// Move a proposed version to `to` (and retire what it replaces), if `actor` may.
    pub async fn move_version(
        &self,
        blueprint: &str,
        version: &str,
        to: Stage,
        actor: &str,
        note: Option<String>,
    ) -> Result<Vec<StageRow>, EngineError> {
        let states = self.states(blueprint)?;
        let moves = lifecycle::plan_move(&states, version, to, actor, &self.directory())
            .map_err(|r| EngineError::Forbidden(r.to_string()))?;
        // A version whose prompts changed is approved only with its regression gate's result
        // in hand; the result goes into the promotion's audit entry.
        let evidence = if to == Stage::Approved && self.prompts_changed(blueprint, version)? {
            let report = self.store().gate_report(version)?.ok_or_else(|| {
                EngineError::Forbidden(format!(
                    "the prompts of {} changed since the approved version: run the regression gate first (`processops versions gate {blueprint}`) so the approval shows how its drafts compare",
                    short(version)
                ))
            })?;
            Some(serde_json::json!({
                "passed": report.get("passed"),
                "baseline_passed": report.get("baseline_passed"),
                "candidate_passed": report.get("candidate_passed"),
                "cases": report.get("cases").and_then(|c| c.as_array()).map_or(0, Vec::len),
                "at": report.get("at"),
            }))
        } else {
            None
        };
        self.apply(blueprint, moves, actor, note, evidence).await
    }

    /// Retire the approved version and approve again the one before it.
    pub async fn rollback_version(
        &self,
        blueprint: &str,
        actor: &str,
        note: Option<String>,
    ) -> Result<Vec<StageRow>, EngineError> {
        let states = self.states(blueprint)?;
        let moves = lifecycle::plan_rollback(blueprint, &states, actor, &self.directory())
            .map_err(|r| EngineError::Forbidden(r.to_string()))?;
        self.apply(blueprint, moves, actor, note, None).await
    }

    fn states(&self, blueprint: &str) -> Result<Vec<VersionState>, EngineError> {
        Ok(self
            .store()
            .version_stages(Some(blueprint))?
            .iter()
            .map(StageRow::state)
            .collect())
    }

    async fn apply(
        &self,
        blueprint: &str,
        moves: Vec<lifecycle::StageMove>,
        actor: &str,
        note: Option<String>,
        evidence: Option<serde_json::Value>,
    ) -> Result<Vec<StageRow>, EngineError> {
        match self
            .store()
            .apply_stage_moves(
                blueprint.to_owned(),
                moves,
                actor.to_owned(),
                note,
                evidence,
            )
            .await
        {
            Ok(rows) => Ok(rows),
            Err(StoreError::Lifecycle(message)) => Err(EngineError::Forbidden(message)),
            Err(e) => Err(e.into()),
        }
    }
}

fn describe(cohort: &Cohort) -> String {
    let mut parts: Vec<String> = cohort.roles.iter().map(|r| format!("role {r}")).collect();
    parts.extend(cohort.users.iter().cloned());
    if parts.is_empty() {
        "nobody yet: add `lifecycle.pilot` to the blueprint".into()
    } else {
        parts.join(", ")
    }
}
