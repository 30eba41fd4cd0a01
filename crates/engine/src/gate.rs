//! The prompt regression gate: before a version whose prompts changed is approved, the
//! newest approved or edited reviews of its blueprint are replayed on it (changed prompts get
//! fresh replies from the project's providers, everything else its recording) and each new
//! draft is compared with the text the person approved.

use std::collections::BTreeSet;

use processops_core::blueprint::Stage;
use processops_core::blueprint::diff::{Area, diff};
use processops_core::gate::{GateCase, GateReport};
use processops_core::journal::Action;
use processops_store::{TaskFilter, TaskSort, TaskStatus};
use uuid::Uuid;

use crate::{Engine, EngineError, replay};

/// How many eval cases a gate replays by default.
pub const DEFAULT_CASES: usize = 20;

impl Engine {
    /// Run the gate for `candidate` (a stored version of `blueprint`) and keep its report.
    pub async fn regression_gate(
        &self,
        blueprint: &str,
        candidate: &str,
        by: &str,
        threshold: f64,
        cases: usize,
    ) -> Result<GateReport, EngineError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(EngineError::InvalidDecision(format!(
                "the threshold is a similarity between 0 and 1 (0.8: at most a fifth of the words changed), not {threshold}"
            )));
        }
        let compiled = self.version(candidate)?;
        if compiled.blueprint.id != blueprint {
            return Err(EngineError::InvalidDecision(format!(
                "version {candidate} belongs to `{}`, not `{blueprint}`",
                compiled.blueprint.id
            )));
        }
        let stages = self.store().version_stages(Some(blueprint))?;
        if stages
            .iter()
            .any(|r| r.version == candidate && r.stage == Stage::Approved)
        {
            return Err(EngineError::InvalidDecision(format!(
                "{} is the approved version; the gate compares a new version with it (name the version, e.g. the file's after an edit)",
                processops_core::lifecycle::short(candidate)
            )));
        }
        // The eval set: the newest reviews a person approved (as drafted or edited), one per
        // run, from the versions that ran before this one.
        let decided = self.store().list_tasks(&TaskFilter {
            status: Some(TaskStatus::Decided),
            blueprint_id: Some(blueprint.to_owned()),
            sort: TaskSort::Newest,
            limit: Some(u32::try_from(cases.saturating_mul(5)).unwrap_or(u32::MAX)),
            ..TaskFilter::default()
        })?;
        let mut seen = BTreeSet::new();
        let eval: Vec<_> = decided
            .into_iter()
            .filter(|t| t.version != candidate)
            .filter(|t| {
                t.decision
                    .as_ref()
                    .is_some_and(|d| matches!(d.action, Action::Approve | Action::Edit))
            })
            .filter(|t| seen.insert(t.run_id))
            .take(cases)
            .collect();
        let scratch_root = std::env::temp_dir().join(format!("processops-gate-{}", Uuid::now_v7()));
        let mut results = Vec::with_capacity(eval.len());
        for (i, task) in eval.iter().enumerate() {
            let approved = match &task.decision {
                Some(d) if d.action == Action::Edit => d.text.clone().unwrap_or_default(),
                _ => task.task.draft.clone(),
            };
            let scratch = scratch_root.join(i.to_string());
            let candidate_draft = match std::fs::create_dir_all(&scratch) {
                Err(e) => Err(format!("cannot make a scratch folder: {e}")),
                Ok(()) => match replay::replay_run_with(
                    self.store(),
                    task.run_id,
                    Some(compiled.clone()),
                    &scratch,
                    Some(&self.inner.providers),
                )
                .await
                {
                    Ok(report) => report
                        .drafts
                        .iter()
                        .find(|d| d.node == task.task.node && d.visit == task.task.visit)
                        .map(|d| d.draft.clone())
                        .ok_or_else(|| {
                            format!(
                                "the candidate's run did not reach review `{}` (it ended {})",
                                task.task.node, report.replay_status
                            )
                        }),
                    Err(e) => Err(e.to_string()),
                },
            };
            results.push(GateCase::judge(
                task.run_id.to_string(),
                task.task.node.clone(),
                approved,
                task.task.draft.clone(),
                candidate_draft,
                threshold,
            ));
        }
        let _ = std::fs::remove_dir_all(&scratch_root);
        let baseline = stages
            .into_iter()
            .find(|r| r.stage == Stage::Approved)
            .map(|r| r.version)
            .or_else(|| eval.first().map(|t| t.version.clone()))
            .unwrap_or_default();
        let report = GateReport::new(
            blueprint.to_owned(),
            baseline,
            candidate.to_owned(),
            threshold,
            processops_store::now_ms(),
            by.to_owned(),
            results,
        );
        self.store()
            .put_gate_report(
                blueprint.to_owned(),
                candidate.to_owned(),
                by.to_owned(),
                serde_json::to_value(&report)
                    .map_err(|e| EngineError::Internal(format!("gate report: {e}")))?,
                report.summary(),
            )
            .await?;
        Ok(report)
    }

    /// Whether `candidate`'s prompts (templates, agents) differ from the approved version's.
    pub(crate) fn prompts_changed(
        &self,
        blueprint: &str,
        candidate: &str,
    ) -> Result<bool, EngineError> {
        let approved = self
            .store()
            .version_stages(Some(blueprint))?
            .into_iter()
            .find(|r| r.stage == Stage::Approved && r.version != candidate);
        let Some(approved) = approved else {
            return Ok(false);
        };
        let (old, new) = (self.version(&approved.version)?, self.version(candidate)?);
        Ok(diff(&old.blueprint, &new.blueprint)
            .iter()
            .any(|c| c.area == Area::Prompts))
    }
}
