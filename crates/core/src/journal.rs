//! The run journal: the append-only events a run's state is derived from.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A step's visit number within a run (1 for the first time a node runs, 2 after a revise loop…).
pub type Visit = u32;

/// One entry of a run's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A trigger fired.
    RunStarted {
        blueprint: String,
        version: String,
        trigger: String,
        start: String,
        payload: Value,
    },
    /// A node with side effects began; after a crash, a started but unfinished node is run again.
    NodeStarted {
        node: String,
        visit: Visit,
        attempt: u32,
    },
    /// A node finished: its output, the variables it set and the nodes it passes the run to.
    NodeFinished {
        node: String,
        visit: Visit,
        output: Value,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        vars: Map<String, Value>,
        next: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        #[serde(default, skip_serializing_if = "StepMeta::is_empty")]
        meta: StepMeta,
    },
    /// A node failed after its retries and fallbacks; the run needs attention.
    NodeFailed {
        node: String,
        visit: Visit,
        attempt: u32,
        error: String,
        /// The node was a prompt step (the prompt success rate counts its failures). Journals
        /// written before this field say nothing, and count as not a prompt.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        prompt: bool,
    },
    /// A node reached `max_visits`; the run continues at `next` (or fails when empty).
    VisitLimitReached {
        node: String,
        limit: u32,
        next: Vec<String>,
    },
    /// A review checkpoint put a task in the inbox.
    TaskCreated { task: Task },
    /// A task moved to another role of its escalation chain (with a fresh due time when the
    /// move came from a breached SLA).
    TaskEscalated {
        task: Uuid,
        role: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<i64>,
    },
    /// The reminder before a task's SLA runs out was sent.
    TaskReminded { task: Uuid },
    /// A task's SLA ran out; `action` is what the review's policy did about it.
    TaskBreached { task: Uuid, action: String },
    /// One approval towards a task's quorum; the task stays open until enough arrive.
    VoteRecorded { task: Uuid, decision: Decision },
    /// A human (or a policy) decided a task.
    DecisionRecorded { task: Uuid, decision: Decision },
    /// Someone asked a failed run to try its failed steps again.
    RunRetried { by: String },
    /// The run ended.
    RunFinished {
        status: FinalStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run_started",
            Self::NodeStarted { .. } => "node_started",
            Self::NodeFinished { .. } => "node_finished",
            Self::NodeFailed { .. } => "node_failed",
            Self::VisitLimitReached { .. } => "visit_limit_reached",
            Self::TaskCreated { .. } => "task_created",
            Self::TaskEscalated { .. } => "task_escalated",
            Self::TaskReminded { .. } => "task_reminded",
            Self::TaskBreached { .. } => "task_breached",
            Self::VoteRecorded { .. } => "vote_recorded",
            Self::DecisionRecorded { .. } => "decision_recorded",
            Self::RunRetried { .. } => "run_retried",
            Self::RunFinished { .. } => "run_finished",
        }
    }

    /// The node this event concerns, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::NodeStarted { node, .. }
            | Self::NodeFinished { node, .. }
            | Self::NodeFailed { node, .. }
            | Self::VisitLimitReached { node, .. } => Some(node),
            Self::TaskCreated { task } => Some(&task.node),
            _ => None,
        }
    }
}

/// What the run timeline shows about a step besides its output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields = nullable)]
pub struct StepMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[ts(as = "Option<u32>", optional)]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The rendered input (prompt text, request body) for the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Every model call the step made, in order: what `runs replay` plays back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<Exchange>>", optional)]
    pub exchanges: Vec<Exchange>,
}

/// One recorded model call: the request as sent (never credentials) and what came back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields = nullable)]
pub struct Exchange {
    /// The agent of the blueprint that made the call.
    pub agent: String,
    pub provider: String,
    /// `call`, or `repair` for the second try after a reply failed the output schema.
    pub purpose: String,
    /// The provider-neutral request: model, messages, temperature, max tokens, schema.
    pub request: Value,
    /// The reply text, when the call succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// The model that answered, as the provider reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why the call failed (or why its reply was refused), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub latency_ms: f64,
    /// HTTP tries the provider needed (retries included).
    #[serde(default)]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StepMeta {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalStatus {
    Completed,
    Failed,
}

/// An inbox task as a review node creates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields = nullable)]
pub struct Task {
    pub id: Uuid,
    pub node: String,
    pub visit: Visit,
    pub title: String,
    pub draft: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub users: Vec<String>,
    /// Remaining escalation chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub escalation: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub reasons: Vec<String>,
    /// Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// When to remind the assignees (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<i64>,
    /// The context that produced the draft: trigger payload, retrieved passages, prompt and model.
    pub context: Value,
    /// Who may decide, beyond the role: quorum and separation of duties.
    #[serde(default, skip_serializing_if = "TaskPolicy::is_default")]
    #[ts(as = "Option<TaskPolicy>", optional)]
    pub policy: TaskPolicy,
}

/// Decision rules a review puts on its task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct TaskPolicy {
    /// Approvals needed from different people; any rejection rejects.
    #[serde(default = "one")]
    pub approvals: u32,
    /// People who may not decide this task (separation of duties).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub excluded: Vec<String>,
    /// What approvers may do; everything when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<Action>>", optional)]
    pub actions: Vec<Action>,
}

fn one() -> u32 {
    1
}

impl Default for TaskPolicy {
    fn default() -> Self {
        Self {
            approvals: 1,
            excluded: Vec::new(),
            actions: Vec::new(),
        }
    }
}

impl TaskPolicy {
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// Check a decision against what the review allows: the action, and for a rejection a reason
/// that starts with one of the review's listed reasons (free text may follow).
pub fn check_allowed(
    decision: &Decision,
    actions: &[Action],
    reasons: &[String],
) -> Result<(), String> {
    if !actions.is_empty() && !actions.contains(&decision.action) {
        let allowed: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
        return Err(format!(
            "this review does not allow `{}`; it allows: {}",
            decision.action.as_str(),
            allowed.join(", ")
        ));
    }
    if decision.action == Action::Reject && !reasons.is_empty() {
        let reason = decision
            .reason
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        if !reasons
            .iter()
            .any(|r| reason.starts_with(&r.to_lowercase()))
        {
            return Err(format!(
                "start the reason with one of this review's reasons, then add your own words after a colon: {}",
                reasons
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// What an approver can do with a task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Approve,
    Edit,
    Reject,
    Escalate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Edit => "edit",
            Self::Reject => "reject",
            Self::Escalate => "escalate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_actions_and_listed_reasons() {
        let reasons = vec!["Tone is off".to_owned(), "Missing policy".to_owned()];
        let d = |action, reason: Option<&str>| Decision {
            action,
            by: "ana".into(),
            text: None,
            reason: reason.map(Into::into),
        };
        // (decision, allowed actions, Ok or the start of the error)
        let cases: Vec<(Decision, Vec<Action>, Result<(), &str>)> = vec![
            (d(Action::Approve, None), vec![], Ok(())),
            (
                d(Action::Edit, None),
                vec![Action::Approve, Action::Reject],
                Err("this review does not allow `edit`; it allows: approve, reject"),
            ),
            (
                d(Action::Reject, Some("tone is off: too formal")),
                vec![],
                Ok(()),
            ),
            (d(Action::Reject, Some("Missing policy")), vec![], Ok(())),
            (
                d(Action::Reject, Some("I just don't like it")),
                vec![],
                Err("start the reason with one of this review's reasons"),
            ),
            (
                d(Action::Escalate, None),
                vec![Action::Approve, Action::Escalate],
                Ok(()),
            ),
        ];
        for (decision, actions, expected) in cases {
            let got = check_allowed(&decision, &actions, &reasons);
            match (expected, &got) {
                (Ok(()), Ok(())) => {}
                (Err(prefix), Err(message)) => assert!(message.starts_with(prefix), "{message}"),
                (e, g) => unreachable!("{decision:?}: expected {e:?}, got {g:?}"),
            }
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" => Ok(Self::Approve),
            "edit" => Ok(Self::Edit),
            "reject" => Ok(Self::Reject),
            "escalate" => Ok(Self::Escalate),
            other => Err(format!(
                "`{other}` is not an action; use approve, edit, reject or escalate"
            )),
        }
    }
}

/// A decision on a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(optional_fields = nullable)]
pub struct Decision {
    pub action: Action,
    pub by: String,
    /// The edited text (for `edit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why (required for `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A unified diff from a draft to its edited text, line by line, for the decision record and
/// the inbox's edit view.
pub fn edit_diff(draft: &str, edited: &str) -> String {
    similar::TextDiff::from_lines(draft, edited)
        .unified_diff()
        .context_radius(2)
        .header("draft", "edited")
        .to_string()
}
