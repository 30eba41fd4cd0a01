//! The run timeline: a run's journal folded into one entry per node visit, for people.

use serde::Serialize;
use serde_json::Value;

use crate::journal::{Decision, Event, FinalStatus, StepMeta, Task};

/// Where one step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Waiting,
    Done,
    Failed,
    Skipped,
}

/// One node visit.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct TimelineStep {
    pub node: String,
    pub visit: u32,
    pub status: StepStatus,
    /// Unix ms of the first event of this visit.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub attempts: u32,
    pub label: Option<String>,
    pub next: Vec<String>,
    pub output: Option<Value>,
    pub meta: Option<StepMeta>,
    pub error: Option<String>,
    pub task: Option<Task>,
    pub decision: Option<Decision>,
}

/// Fold `(at, event)` pairs, in journal order, into steps.
pub fn build<'a>(entries: impl IntoIterator<Item = (i64, &'a Event)>) -> Vec<TimelineStep> {
    let mut steps: Vec<TimelineStep> = Vec::new();
    let find = |steps: &mut Vec<TimelineStep>, node: &str, visit: u32, at: i64| -> usize {
        if let Some(i) = steps
            .iter()
            .rposition(|s| s.node == node && s.visit == visit)
        {
            return i;
        }
        steps.push(TimelineStep {
            node: node.to_owned(),
            visit,
            status: StepStatus::Running,
            started_at: at,
            finished_at: None,
            attempts: 0,
            label: None,
            next: Vec::new(),
            output: None,
            meta: None,
            error: None,
            task: None,
            decision: None,
        });
        steps.len() - 1
    };
    for (at, event) in entries {
        match event {
            Event::NodeStarted {
                node,
                visit,
                attempt,
            } => {
                let i = find(&mut steps, node, *visit, at);
                steps[i].attempts = *attempt;
                steps[i].status = StepStatus::Running;
                steps[i].error = None;
            }
            Event::NodeFinished {
                node,
                visit,
                output,
                next,
                label,
                meta,
                ..
            } => {
                let i = find(&mut steps, node, *visit, at);
                let s = &mut steps[i];
                s.status = StepStatus::Done;
                s.finished_at = Some(at);
                s.attempts = s.attempts.max(1);
                s.output = Some(output.clone());
                s.next.clone_from(next);
                s.label.clone_from(label);
                s.meta = (!meta.is_empty()).then(|| meta.clone());
            }
            Event::NodeFailed {
                node,
                visit,
                attempt,
                error,
                ..
            } => {
                let i = find(&mut steps, node, *visit, at);
                steps[i].status = StepStatus::Failed;
                steps[i].attempts = *attempt;
                steps[i].error = Some(error.clone());
            }
            Event::VisitLimitReached { node, limit, next } => {
                let visit = limit + 1;
                let i = find(&mut steps, node, visit, at);
                steps[i].status = StepStatus::Skipped;
                steps[i].finished_at = Some(at);
                steps[i].next.clone_from(next);
                steps[i].error = Some(format!("reached max_visits ({limit})"));
            }
            Event::TaskCreated { task } => {
                let i = find(&mut steps, &task.node, task.visit, at);
                steps[i].status = StepStatus::Waiting;
                steps[i].task = Some(task.clone());
            }
            Event::TaskEscalated {
                task, role, due_at, ..
            } => {
                if let Some(t) = steps
                    .iter_mut()
                    .rev()
                    .filter_map(|s| s.task.as_mut())
                    .find(|t| t.id == *task)
                {
                    t.role.clone_from(role);
                    if due_at.is_some() {
                        t.due_at = *due_at;
                    }
                }
            }
            Event::DecisionRecorded { task, decision } => {
                if let Some(s) = steps
                    .iter_mut()
                    .rev()
                    .find(|s| s.task.as_ref().is_some_and(|t| t.id == *task))
                {
                    s.decision = Some(decision.clone());
                }
            }
            Event::RunStarted { .. }
            | Event::RunRetried { .. }
            | Event::TaskReminded { .. }
            | Event::VoteRecorded { .. } => {}
            Event::TaskBreached { task, action } => {
                if let Some(s) = steps
                    .iter_mut()
                    .rev()
                    .find(|s| s.task.as_ref().is_some_and(|t| t.id == *task))
                {
                    s.error = Some(format!("SLA breached: {action}"));
                }
            }
            Event::RunFinished { status, .. } => {
                if *status == FinalStatus::Failed {
                    for s in steps
                        .iter_mut()
                        .filter(|s| matches!(s.status, StepStatus::Running | StepStatus::Waiting))
                    {
                        s.status = StepStatus::Failed;
                    }
                }
            }
        }
    }
    steps
}
