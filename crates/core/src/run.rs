//! A run's state, derived from its journal by a reducer, and the planner that decides what
//! runs next. Both are pure: the engine feeds them events and executes their steps.
//!
//! Execution follows tokens: a trigger puts one token on the start node; a finished node
//! moves its tokens to the nodes it names. A node whose `join` is `all` (the default) waits
//! until no other live token of the run can still reach it, then runs once for all the
//! tokens it holds (an inclusive join: parallel branches meet, and routes that skipped a
//! branch do not leave it waiting).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::blueprint::{Blueprint, Join};
use crate::journal::{Decision, Event, FinalStatus, Task, Visit};

/// The blueprint's graph, prepared for planning.
#[derive(Debug, Clone)]
pub struct Graph {
    index: HashMap<String, usize>,
    /// `reach[a][b]`: `b` can be reached from `a` through one or more edges.
    reach: Vec<Vec<bool>>,
    join: Vec<Join>,
    max_visits: Vec<Option<u32>>,
    on_exhausted: Vec<Vec<String>>,
}

impl Graph {
    pub fn new(bp: &Blueprint) -> Self {
        let index: HashMap<String, usize> = bp
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id().to_owned(), i))
            .collect();
        let succ: Vec<Vec<usize>> = bp
            .nodes
            .iter()
            .map(|n| {
                n.edges()
                    .iter()
                    .filter_map(|e| index.get(e.target).copied())
                    .collect()
            })
            .collect();
        let n = bp.nodes.len();
        let mut reach = vec![vec![false; n]; n];
        for (from, row) in reach.iter_mut().enumerate() {
            let mut stack: Vec<usize> = succ[from].clone();
            while let Some(i) = stack.pop() {
                if !std::mem::replace(&mut row[i], true) {
                    stack.extend(&succ[i]);
                }
            }
        }
        Self {
            index,
            reach,
            join: bp.nodes.iter().map(|n| n.common().join).collect(),
            max_visits: bp.nodes.iter().map(|n| n.common().max_visits).collect(),
            on_exhausted: bp
                .nodes
                .iter()
                .map(|n| n.common().on_exhausted.targets().to_vec())
                .collect(),
        }
    }

    fn reaches(&self, from: &str, to: &str) -> bool {
        match (self.index.get(from), self.index.get(to)) {
            (Some(&a), Some(&b)) => self.reach[a][b],
            _ => false,
        }
    }

    fn join(&self, node: &str) -> Join {
        self.index.get(node).map_or(Join::All, |&i| self.join[i])
    }
}

/// A node activation that started and has not finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub visit: Visit,
    pub attempt: u32,
    pub task: Option<Task>,
    pub decision: Option<Decision>,
    pub failed: Option<String>,
    /// Someone asked for this failed step to run again.
    pub retried: bool,
}

/// Everything known about a run, derived from its journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    pub blueprint: String,
    pub version: String,
    pub trigger: String,
    pub payload: Value,
    /// Tokens waiting at each node.
    pub tokens: BTreeMap<String, u32>,
    /// Started, unfinished activations by node (at most one per node at a time).
    pub active: BTreeMap<String, Activation>,
    /// How many activations each node has had.
    pub visits: BTreeMap<String, u32>,
    /// The latest output of each node.
    pub outputs: BTreeMap<String, Value>,
    pub vars: Map<String, Value>,
    pub finished: Option<FinalStatus>,
    pub error: Option<String>,
    /// Number of events applied.
    pub events: u64,
}

impl RunState {
    /// Rebuild a run's state from its whole journal.
    pub fn replay<'a>(graph: &Graph, events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut state = Self::default();
        for e in events {
            state.apply(graph, e);
        }
        state
    }

    /// A new activation of `node` takes its tokens and counts as a visit.
    fn begin(&mut self, graph: &Graph, node: &str, visit: Visit, attempt: u32) {
        self.consume(graph, node);
        self.visits.insert(node.to_owned(), visit);
        self.active.insert(
            node.to_owned(),
            Activation {
                visit,
                attempt,
                task: None,
                decision: None,
                failed: None,
                retried: false,
            },
        );
    }

    /// Take all tokens of a node (join all) or one (join each).
    fn consume(&mut self, graph: &Graph, node: &str) {
        if let Some(count) = self.tokens.get_mut(node) {
            match graph.join(node) {
                Join::All => *count = 0,
                Join::Each => *count = count.saturating_sub(1),
            }
            if *count == 0 {
                self.tokens.remove(node);
            }
        }
    }

    fn give(&mut self, targets: &[String]) {
        for t in targets {
            *self.tokens.entry(t.clone()).or_insert(0) += 1;
        }
    }

    /// Apply one journal event. Events are trusted: they were produced from this reducer's own
    /// plans, so an event that does not fit (a finish for an unknown activation) is applied as
    /// far as it makes sense rather than rejected.
    pub fn apply(&mut self, graph: &Graph, event: &Event) {
        self.events += 1;
        match event {
            Event::RunStarted {
                blueprint,
                version,
                trigger,
                start,
                payload,
            } => {
                self.blueprint.clone_from(blueprint);
                self.version.clone_from(version);
                self.trigger.clone_from(trigger);
                self.payload = payload.clone();
                self.give(std::slice::from_ref(start));
            }
            Event::NodeStarted {
                node,
                visit,
                attempt,
            } => match self.active.get_mut(node) {
                Some(a) if a.visit == *visit => {
                    a.attempt = *attempt;
                    a.failed = None;
                    a.retried = false;
                }
                _ => {
                    self.begin(graph, node, *visit, *attempt);
                }
            },
            Event::NodeFinished {
                node,
                visit,
                output,
                vars,
                next,
                ..
            } => {
                if self.active.get(node).is_some_and(|a| a.visit == *visit) {
                    self.active.remove(node);
                } else {
                    // Pure nodes record no start: they consume their tokens when they finish.
                    self.consume(graph, node);
                    self.visits.insert(node.clone(), *visit);
                }
                self.outputs.insert(node.clone(), output.clone());
                for (k, v) in vars {
                    self.vars.insert(k.clone(), v.clone());
                }
                self.give(next);
            }
            Event::NodeFailed {
                node,
                visit,
                attempt,
                error,
                ..
            } => {
                if self.active.get(node).is_none_or(|a| a.visit != *visit) {
                    // A pure node records no start: it takes its tokens when it fails, so that
                    // finishing after a retry does not leave them behind to run it again.
                    self.begin(graph, node, *visit, *attempt);
                }
                if let Some(a) = self.active.get_mut(node) {
                    a.failed = Some(error.clone());
                }
                self.error = Some(format!("{node}: {error}"));
            }
            Event::VisitLimitReached { node, next, .. } => {
                self.consume(graph, node);
                self.give(next);
            }
            Event::TaskCreated { task } => {
                if let Some(a) = self.active.get_mut(&task.node) {
                    a.task = Some(task.clone());
                }
            }
            Event::TaskEscalated {
                task, role, due_at, ..
            } => {
                if let Some(t) = self
                    .active
                    .values_mut()
                    .filter_map(|a| a.task.as_mut())
                    .find(|t| t.id == *task)
                {
                    t.role.clone_from(role);
                    if let Some(pos) = t.escalation.iter().position(|r| r == role) {
                        t.escalation.drain(..=pos);
                    }
                    if due_at.is_some() {
                        t.due_at = *due_at;
                        t.remind_at = None;
                    }
                }
            }
            // Timers change who is told and when, not what the run does next.
            Event::TaskReminded { .. }
            | Event::TaskBreached { .. }
            | Event::VoteRecorded { .. } => {}
            Event::DecisionRecorded { task, decision } => {
                if let Some(a) = self
                    .active
                    .values_mut()
                    .find(|a| a.task.as_ref().is_some_and(|t| t.id == *task))
                {
                    a.decision = Some(decision.clone());
                }
            }
            Event::RunRetried { .. } => {
                for a in self.active.values_mut().filter(|a| a.failed.is_some()) {
                    a.failed = None;
                    a.retried = true;
                }
                self.error = None;
            }
            Event::RunFinished { status, error } => {
                self.finished = Some(*status);
                if error.is_some() {
                    self.error.clone_from(error);
                }
            }
        }
    }

    /// Tasks waiting for a decision.
    pub fn open_tasks(&self) -> impl Iterator<Item = &Task> {
        self.active
            .values()
            .filter(|a| a.decision.is_none())
            .filter_map(|a| a.task.as_ref())
    }

    pub fn needs_attention(&self) -> bool {
        self.finished.is_none() && self.active.values().any(|a| a.failed.is_some())
    }
}

/// Something the engine should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Run a node (again, with a higher attempt, when a crash cut it off).
    Execute {
        node: String,
        visit: Visit,
        attempt: u32,
    },
    /// A review got its decision: finish the node along the decision's edge.
    CompleteReview { node: String, visit: Visit },
    /// A step was cut off by engine stops twice: fail it rather than start it a third time,
    /// in case the step itself brings the engine down. A person retries it.
    Abandon {
        node: String,
        visit: Visit,
        attempt: u32,
    },
    /// A node hit `max_visits`: move its tokens to `next` (fail the run when empty).
    Exhaust {
        node: String,
        limit: u32,
        next: Vec<String>,
    },
    /// Nothing is left to do: the run completed.
    Finish,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Steps that can start now (possibly in parallel).
    Run(Vec<Step>),
    /// Waiting for steps already in flight.
    Busy,
    /// Parked until a human decides an open task.
    WaitingForDecision,
    /// A step failed; the run waits for someone to retry it.
    NeedsAttention,
    /// The run has finished.
    Done,
}

/// A step cut off mid-way is run again at most once; see [`Step::Abandon`].
pub const MAX_ATTEMPTS_AFTER_CRASH: u32 = 2;

/// Decide what can run now. `inflight` holds nodes this process is executing at the moment.
pub fn plan(graph: &Graph, state: &RunState, inflight: &BTreeSet<String>) -> Plan {
    if state.finished.is_some() {
        return Plan::Done;
    }
    let mut steps = Vec::new();
    let mut waiting = false;
    let mut failed = false;
    for (node, a) in &state.active {
        if inflight.contains(node) {
            continue;
        }
        if a.failed.is_some() {
            failed = true;
        } else if a.task.is_some() {
            if a.decision.is_some() {
                steps.push(Step::CompleteReview {
                    node: node.clone(),
                    visit: a.visit,
                });
            } else {
                waiting = true;
            }
        } else {
            // Started before a crash and never finished: run it again.
            steps.push(Step::Execute {
                node: node.clone(),
                visit: a.visit,
                attempt: a.attempt + 1,
            });
        }
    }
    let live: Vec<&str> = state
        .tokens
        .keys()
        .map(String::as_str)
        .chain(state.active.keys().map(String::as_str))
        .chain(inflight.iter().map(String::as_str))
        .collect();
    let mut blocked_by_join = Vec::new();
    for node in state.tokens.keys() {
        if state.active.contains_key(node) || inflight.contains(node) {
            continue;
        }
        if graph.join(node) == Join::All
            && live
                .iter()
                .any(|other| *other != node && graph.reaches(other, node))
        {
            blocked_by_join.push(node);
            continue;
        }
        steps.push(start_step(graph, state, node));
    }
    if steps.is_empty()
        && inflight.is_empty()
        && state.active.is_empty()
        && !blocked_by_join.is_empty()
    {
        // Joins waiting on each other (two joins inside one loop): nothing else can move, so
        // run them rather than deadlock.
        steps.extend(
            blocked_by_join
                .into_iter()
                .map(|node| start_step(graph, state, node)),
        );
    }
    if !steps.is_empty() {
        return Plan::Run(steps);
    }
    if !inflight.is_empty() {
        return Plan::Busy;
    }
    if failed {
        return Plan::NeedsAttention;
    }
    if waiting {
        return Plan::WaitingForDecision;
    }
    if state.tokens.is_empty() && state.active.is_empty() {
        return Plan::Run(vec![Step::Finish]);
    }
    Plan::Busy
}

fn start_step(graph: &Graph, state: &RunState, node: &str) -> Step {
    let visits = state.visits.get(node).copied().unwrap_or(0);
    let i = graph.index.get(node).copied();
    match i.and_then(|i| graph.max_visits[i].map(|limit| (i, limit))) {
        Some((i, limit)) if visits >= limit => Step::Exhaust {
            node: node.to_owned(),
            limit,
            next: graph.on_exhausted[i].clone(),
        },
        _ => Step::Execute {
            node: node.to_owned(),
            visit: visits + 1,
            attempt: 1,
        },
    }
}
