//! The run reducer and planner, driven the way the engine drives them: plan, append the
//! events executing each step would produce, apply them, plan again.
//!
//! Each test gives a blueprint's nodes, a payload and a script (the human decisions, the
//! steps that fail) and compares the trace of what happened, one line per step:
//!
//! ```text
//! execute draft#1 -> review            a node ran (visit 1) and passed the run on
//! execute review#1: task for editor    a review put a task in the inbox
//! decide review#1: reject              a human decided
//! complete review#1 rejected -> draft  the review finished along the decision's edge
//! exhaust draft after 2 -> give_up     max_visits was reached
//! finish completed                     the planner said there was nothing left to do
//! ```

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pretty_assertions::assert_eq;
use processops_core::blueprint::{self, Blueprint, Node};
use processops_core::journal::{Action, Decision, Event, FinalStatus, Task};
use processops_core::run::{Graph, Plan, RunState, Step, plan};
use processops_core::template;
use serde_json::{Map, Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The driver

/// Nodes in YAML under a fixed header (one agent, `writer`, and a manual trigger); the first
/// node is the start.
fn load(nodes: &str) -> Blueprint {
    let source = format!(
        "id: demo\nname: Demo\nstart: {start}\ntriggers:\n  - {{kind: manual, id: form}}\nagents:\n  writer: {{model: gpt-4o-mini}}\nnodes:\n{nodes}",
        start = nodes
            .split("id: ")
            .nth(1)
            .and_then(|s| s.split([',', '\n', '}']).next())
            .unwrap()
            .trim(),
        nodes = nodes.trim_start_matches('\n'),
    );
    let checked = blueprint::check(&source);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(
        errors.is_empty(),
        "test blueprint does not validate: {errors:#?}\n{source}"
    );
    checked.blueprint.unwrap()
}

/// What the humans and the faults do during a run.
#[derive(Default, Clone, Copy)]
struct Script {
    /// Decisions, in order, for the tasks that get created: `approve`, `edit`, `reject`, `escalate`.
    decisions: &'static [&'static str],
    /// Steps (`node#visit`) whose first attempt fails.
    fail: &'static [&'static str],
    /// Whether someone retries a run that needs attention.
    retry: bool,
}

struct Driver {
    bp: Blueprint,
    graph: Graph,
    events: Vec<Event>,
    state: RunState,
    trace: Vec<String>,
    decisions: VecDeque<Action>,
    fail: BTreeSet<String>,
    retry: bool,
    tasks: u128,
}

impl Driver {
    fn new(bp: Blueprint, script: Script) -> Self {
        let graph = Graph::new(&bp);
        Self {
            bp,
            graph,
            events: Vec::new(),
            state: RunState::default(),
            trace: Vec::new(),
            decisions: script
                .decisions
                .iter()
                .map(|d| d.parse().unwrap())
                .collect(),
            fail: script.fail.iter().map(|s| (*s).to_owned()).collect(),
            retry: script.retry,
            tasks: 0,
        }
    }

    fn start(nodes: &str, payload: Value, script: Script) -> Self {
        let mut driver = Self::new(load(nodes), script);
        let start = driver.bp.start.clone();
        driver.push(Event::RunStarted {
            blueprint: "demo".into(),
            version: "v1".into(),
            trigger: "form".into(),
            start,
            payload,
        });
        driver
    }

    /// Pick up a journal written before a crash.
    fn resume(nodes: &str, events: Vec<Event>, script: Script) -> Self {
        let mut driver = Self::new(load(nodes), script);
        driver.state = RunState::replay(&driver.graph, &events);
        driver.events = events;
        driver.tasks = 100;
        driver
    }

    fn push(&mut self, event: Event) {
        self.state.apply(&self.graph, &event);
        self.events.push(event);
    }

    fn plan(&self) -> Plan {
        plan(&self.graph, &self.state, &BTreeSet::new())
    }

    /// Run until the run finishes or waits for someone the script does not provide.
    fn drive(&mut self) -> &mut Self {
        for _ in 0..200 {
            match self.plan() {
                Plan::Run(steps) => {
                    for step in steps {
                        self.step(step);
                    }
                }
                Plan::WaitingForDecision => {
                    let Some(action) = self.decisions.pop_front() else {
                        self.trace.push("waiting for a decision".into());
                        return self;
                    };
                    let task = self.state.open_tasks().next().unwrap().clone();
                    self.trace.push(format!(
                        "decide {}#{}: {}",
                        task.node,
                        task.visit,
                        action.as_str()
                    ));
                    let reason = (action == Action::Reject).then(|| "too vague".to_owned());
                    let text = (action == Action::Edit).then(|| "edited by a human".to_owned());
                    self.push(Event::DecisionRecorded {
                        task: task.id,
                        decision: Decision {
                            action,
                            by: "ana".into(),
                            text,
                            reason,
                        },
                    });
                }
                Plan::NeedsAttention => {
                    self.trace.push("needs attention".into());
                    if !std::mem::take(&mut self.retry) {
                        return self;
                    }
                    self.trace.push("retry".into());
                    self.push(Event::RunRetried { by: "ops".into() });
                }
                Plan::Busy => {
                    self.trace.push("busy with nothing in flight".into());
                    return self;
                }
                Plan::Done => return self,
            }
        }
        self.trace.push("gave up after 200 plans".into());
        self
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Execute {
                node,
                visit,
                attempt,
            } => self.execute(&node, visit, attempt),
            Step::Abandon {
                node,
                visit,
                attempt,
            } => {
                self.trace
                    .push(format!("abandon {node}#{visit} after attempt {attempt}"));
                self.push(Event::NodeFailed {
                    node,
                    visit,
                    attempt,
                    error: "cut off by engine stops".into(),
                    prompt: false,
                });
            }
            Step::CompleteReview { node, visit } => {
                let a = &self.state.active[&node];
                let decision = a.decision.clone().unwrap();
                let draft = a.task.as_ref().unwrap().draft.clone();
                let Node::Review(review) = self.bp.node(&node).unwrap() else {
                    panic!("{node} is not a review")
                };
                let (label, next) = match decision.action {
                    Action::Approve | Action::Edit => ("approved", &review.on.approved),
                    Action::Reject => ("rejected", &review.on.rejected),
                    Action::Escalate => ("escalated", &review.on.escalated),
                };
                let next = next.targets().to_vec();
                self.trace.push(format!(
                    "complete {node}#{visit} {label} -> {}",
                    targets(&next)
                ));
                let output = json!({
                    "decision": decision.action.as_str(),
                    "text": decision.text.clone().unwrap_or(draft),
                    "reason": decision.reason,
                    "by": decision.by,
                });
                self.push(Event::NodeFinished {
                    node,
                    visit,
                    output,
                    vars: Map::new(),
                    next,
                    label: Some(label.into()),
                    meta: Default::default(),
                });
            }
            Step::Exhaust { node, limit, next } => {
                self.trace.push(format!(
                    "exhaust {node} after {limit} -> {}",
                    targets(&next)
                ));
                let failed = next.is_empty();
                self.push(Event::VisitLimitReached {
                    node: node.clone(),
                    limit,
                    next,
                });
                if failed {
                    self.finish(
                        FinalStatus::Failed,
                        Some(format!("{node} reached max_visits")),
                    );
                }
            }
            Step::Finish => self.finish(FinalStatus::Completed, None),
        }
    }

    fn finish(&mut self, status: FinalStatus, error: Option<String>) {
        self.trace.push(format!(
            "finish {}",
            if status == FinalStatus::Completed {
                "completed"
            } else {
                "failed"
            }
        ));
        self.push(Event::RunFinished { status, error });
    }

    fn execute(&mut self, id: &str, visit: u32, attempt: u32) {
        let node = self.bp.node(id).unwrap().clone();
        let mut line = format!("execute {id}#{visit}");
        if attempt > 1 {
            line.push_str(&format!(" (attempt {attempt})"));
        }
        if node.has_side_effects() {
            self.push(Event::NodeStarted {
                node: id.into(),
                visit,
                attempt,
            });
        }
        if attempt == 1 && self.fail.remove(&format!("{id}#{visit}")) {
            self.trace.push(format!("{line}: failed"));
            self.push(Event::NodeFailed {
                node: id.into(),
                visit,
                attempt,
                error: "provider timed out".into(),
                prompt: true,
            });
            return;
        }
        let mut vars = Map::new();
        let mut output = json!({ "text": format!("{id} v{visit}") });
        let mut label = None;
        let next: Vec<String> = match &node {
            Node::Review(r) => {
                let ctx = self.context();
                if r.auto_approve_when
                    .as_deref()
                    .is_some_and(|e| eval(e, &ctx))
                {
                    self.trace.push(format!("{line}: auto-approved"));
                    let task = self.task(id, visit, r.role.clone(), Vec::new());
                    let task_id = task.id;
                    self.push(Event::TaskCreated { task });
                    self.push(Event::DecisionRecorded {
                        task: task_id,
                        decision: Decision {
                            action: Action::Approve,
                            by: "policy".into(),
                            text: None,
                            reason: None,
                        },
                    });
                    return;
                }
                let (role, escalation) =
                    if r.escalate_when.as_deref().is_some_and(|e| eval(e, &ctx)) {
                        (r.escalation[0].clone(), r.escalation[1..].to_vec())
                    } else {
                        (r.role.clone(), r.escalation.clone())
                    };
                self.trace.push(format!("{line}: task for {role}"));
                let task = self.task(id, visit, role, escalation);
                self.push(Event::TaskCreated { task });
                return;
            }
            Node::Route(r) => {
                let ctx = self.context();
                let (name, to) = r
                    .rules
                    .iter()
                    .find(|rule| eval(&rule.when, &ctx))
                    .map_or(("default", &r.default), |rule| {
                        (rule.name.as_str(), &rule.to)
                    });
                output = json!({ "rule": name });
                label = Some(name.to_owned());
                to.targets().to_vec()
            }
            Node::Branch(b) => {
                let ctx = self.context();
                b.branches
                    .iter()
                    .filter(|p| p.when.as_deref().is_none_or(|e| eval(e, &ctx)))
                    .flat_map(|p| p.to.targets().to_vec())
                    .collect()
            }
            Node::Transform(t) => {
                let ctx = self.context();
                let env = template::environment();
                for (k, v) in &t.set {
                    vars.insert(k.clone(), Value::String(env.render_str(v, &ctx).unwrap()));
                }
                output = Value::Object(vars.clone());
                t.next.targets().to_vec()
            }
            Node::Retrieve(n) => n.next.targets().to_vec(),
            Node::Prompt(n) => n.next.targets().to_vec(),
            Node::Output(n) => n.next.targets().to_vec(),
        };
        self.trace.push(format!("{line} -> {}", targets(&next)));
        self.push(Event::NodeFinished {
            node: id.into(),
            visit,
            output,
            vars,
            next,
            label,
            meta: Default::default(),
        });
    }

    fn task(&mut self, node: &str, visit: u32, role: String, escalation: Vec<String>) -> Task {
        self.tasks += 1;
        Task {
            id: Uuid::from_u128(self.tasks),
            node: node.into(),
            visit,
            title: format!("Review {node}"),
            draft: format!("draft for {node} v{visit}"),
            role,
            users: Vec::new(),
            escalation,
            reasons: Vec::new(),
            due_at: None,
            remind_at: None,
            context: Value::Null,
            policy: Default::default(),
        }
    }

    /// What templates and conditions see: `trigger`, `vars` and each node's latest output.
    fn context(&self) -> minijinja::Value {
        let mut ctx: BTreeMap<String, Value> = self.state.outputs.clone().into_iter().collect();
        ctx.insert("trigger".into(), self.state.payload.clone());
        ctx.insert("vars".into(), Value::Object(self.state.vars.clone()));
        minijinja::Value::from_serialize(&ctx)
    }

    fn trace(&self) -> String {
        self.trace.join("\n")
    }
}

fn eval(expr: &str, ctx: &minijinja::Value) -> bool {
    let env = template::environment();
    env.compile_expression(expr)
        .unwrap()
        .eval(ctx)
        .unwrap()
        .is_true()
}

fn targets(next: &[String]) -> String {
    if next.is_empty() {
        "(end)".to_owned()
    } else {
        next.join(", ")
    }
}

/// Drive a run from its trigger to the end (or to where the script runs out) and compare the trace.
#[track_caller]
fn check(nodes: &str, payload: Value, script: Script, expect: &str) -> Driver {
    let mut driver = Driver::start(nodes, payload, script);
    driver.drive();
    assert_eq!(driver.trace(), expect.trim());
    driver
}

// ---------------------------------------------------------------------------------------------
// Flow

#[test]
fn linear_chain_finishes() {
    let driver = check(
        r#"
  - {id: intake, kind: transform, set: {who: "{{ trigger.name }}"}, next: draft}
  - {id: draft, kind: prompt, agent: writer, template: "Hi {{ vars.who }}", next: save}
  - {id: save, kind: output, file: {path: out.md, content: "{{ draft.text }}"}}
"#,
        json!({"name": "Ada"}),
        Script::default(),
        r#"
execute intake#1 -> draft
execute draft#1 -> save
execute save#1 -> (end)
finish completed
"#,
    );
    assert_eq!(driver.state.finished, Some(FinalStatus::Completed));
    assert_eq!(driver.state.vars["who"], json!("Ada"));
    assert!(driver.state.tokens.is_empty() && driver.state.active.is_empty());
}

#[test]
fn parallel_fan_out_meets_at_a_join_that_runs_once() {
    let driver = check(
        r#"
  - {id: split, kind: transform, set: {x: "1"}, next: [legal, pricing]}
  - {id: legal, kind: prompt, agent: writer, template: legal, next: merge}
  - {id: pricing, kind: prompt, agent: writer, template: pricing, next: merge}
  - {id: merge, kind: transform, set: {both: "{{ legal.text }} + {{ pricing.text }}"}, next: save}
  - {id: save, kind: output, file: {path: out.md, content: "{{ vars.both }}"}}
"#,
        json!({}),
        Script::default(),
        r#"
execute split#1 -> legal, pricing
execute legal#1 -> merge
execute pricing#1 -> merge
execute merge#1 -> save
execute save#1 -> (end)
finish completed
"#,
    );
    assert_eq!(driver.state.vars["both"], json!("legal v1 + pricing v1"));
}

#[test]
fn join_waits_for_the_longer_branch() {
    check(
        r#"
  - {id: split, kind: transform, set: {x: "1"}, next: [long, short]}
  - {id: long, kind: prompt, agent: writer, template: a, next: longer}
  - {id: longer, kind: prompt, agent: writer, template: b, next: merge}
  - {id: short, kind: prompt, agent: writer, template: c, next: merge}
  - {id: merge, kind: transform, set: {y: "2"}}
"#,
        json!({}),
        Script::default(),
        r#"
execute split#1 -> long, short
execute long#1 -> longer
execute short#1 -> merge
execute longer#1 -> merge
execute merge#1 -> (end)
finish completed
"#,
    );
}

#[test]
fn route_takes_one_branch_and_the_join_after_it_does_not_wait_for_the_other() {
    let nodes = r#"
  - id: triage
    kind: route
    rules:
      - {name: billing, when: "trigger.category == 'billing'", to: billing}
      - {name: urgent, when: "trigger.urgency == 'high'", to: [technical, page]}
    default: technical
  - {id: billing, kind: prompt, agent: writer, template: refund, next: reply}
  - {id: technical, kind: prompt, agent: writer, template: fix, next: reply}
  - {id: page, kind: output, emit: {event: support.paged}}
  - {id: reply, kind: output, file: {path: reply.md, content: "{{ triage.rule }}"}}
"#;
    for (payload, expect) in [
        (
            json!({"category": "billing", "urgency": "high"}),
            "execute triage#1 -> billing\nexecute billing#1 -> reply\nexecute reply#1 -> (end)\nfinish completed",
        ),
        (
            json!({"category": "bug", "urgency": "high"}),
            "execute triage#1 -> technical, page\nexecute page#1 -> (end)\nexecute technical#1 -> reply\nexecute reply#1 -> (end)\nfinish completed",
        ),
        (
            json!({"category": "bug", "urgency": "low"}),
            "execute triage#1 -> technical\nexecute technical#1 -> reply\nexecute reply#1 -> (end)\nfinish completed",
        ),
    ] {
        let driver = check(nodes, payload.clone(), Script::default(), expect);
        let finished = driver
            .events
            .iter()
            .filter(|e| matches!(e, Event::NodeFinished { node, .. } if node == "reply"))
            .count();
        assert_eq!(finished, 1, "{payload}");
    }
}

#[test]
fn branch_starts_only_the_paths_whose_condition_holds() {
    check(
        r#"
  - id: fan
    kind: branch
    branches:
      - {to: summary}
      - {when: "trigger.amount > 1000", to: audit}
      - {when: "trigger.amount > 1000000", to: board}
  - {id: summary, kind: prompt, agent: writer, template: s, next: done}
  - {id: audit, kind: prompt, agent: writer, template: a, next: done}
  - {id: board, kind: prompt, agent: writer, template: b, next: done}
  - {id: done, kind: output, emit: {event: invoice.checked}}
"#,
        json!({"amount": 5000}),
        Script::default(),
        r#"
execute fan#1 -> summary, audit
execute audit#1 -> done
execute summary#1 -> done
execute done#1 -> (end)
finish completed
"#,
    );
}

#[test]
fn join_each_runs_once_per_arrival_and_a_join_all_after_it_once() {
    let driver = check(
        r#"
  - {id: split, kind: transform, set: {x: "1"}, next: [a, b, c]}
  - {id: a, kind: prompt, agent: writer, template: a, next: log}
  - {id: b, kind: prompt, agent: writer, template: b, next: log}
  - {id: c, kind: prompt, agent: writer, template: c, next: log}
  - {id: log, kind: output, join: each, dataset: {path: log.jsonl, record: {x: "1"}}, next: done}
  - {id: done, kind: transform, set: {y: "2"}}
"#,
        json!({}),
        Script::default(),
        r#"
execute split#1 -> a, b, c
execute a#1 -> log
execute b#1 -> log
execute c#1 -> log
execute log#1 -> done
execute log#2 -> done
execute log#3 -> done
execute done#1 -> (end)
finish completed
"#,
    );
    assert_eq!(driver.state.visits["log"], 3);
    assert_eq!(driver.state.visits["done"], 1);
}

// ---------------------------------------------------------------------------------------------
// Reviews

const REVIEWED: &str = r#"
  - {id: draft, kind: prompt, agent: writer, template: kit, next: review}
  - id: review
    kind: review
    draft: "{{ draft.text }}"
    role: editor
    escalate_when: "trigger.amount >= 10000"
    auto_approve_when: "trigger.amount < 100"
    escalation: [director, cfo]
    on: {approved: send, escalated: send}
  - {id: send, kind: output, emit: {event: kit.sent}}
"#;

#[test]
fn review_parks_until_a_decision_then_completes_along_its_edge() {
    let mut driver = Driver::start(REVIEWED, json!({"amount": 500}), Script::default());
    driver.drive();
    assert_eq!(
        driver.trace(),
        "execute draft#1 -> review\nexecute review#1: task for editor\nwaiting for a decision"
    );
    assert_eq!(driver.plan(), Plan::WaitingForDecision);
    let task = driver.state.open_tasks().next().unwrap().clone();
    assert_eq!(
        (task.node.as_str(), task.visit, task.role.as_str()),
        ("review", 1, "editor")
    );

    // A later plan does not execute the review again: the task is in the inbox.
    assert_eq!(driver.plan(), Plan::WaitingForDecision);

    driver.push(Event::DecisionRecorded {
        task: task.id,
        decision: Decision {
            action: Action::Edit,
            by: "ana".into(),
            text: Some("Welcome!".into()),
            reason: None,
        },
    });
    assert_eq!(driver.state.open_tasks().count(), 0);
    assert_eq!(
        driver.plan(),
        Plan::Run(vec![Step::CompleteReview {
            node: "review".into(),
            visit: 1
        }])
    );
    driver.trace.clear();
    driver.drive();
    assert_eq!(
        driver.trace(),
        "complete review#1 approved -> send\nexecute send#1 -> (end)\nfinish completed"
    );
    assert_eq!(driver.state.outputs["review"]["text"], json!("Welcome!"));
}

#[test]
fn review_policy_auto_review_escalate() {
    for (amount, decisions, expect) in [
        (
            50,
            &[][..],
            "execute draft#1 -> review\nexecute review#1: auto-approved\ncomplete review#1 approved -> send\nexecute send#1 -> (end)\nfinish completed",
        ),
        (
            500,
            &["approve"][..],
            "execute draft#1 -> review\nexecute review#1: task for editor\ndecide review#1: approve\ncomplete review#1 approved -> send\nexecute send#1 -> (end)\nfinish completed",
        ),
        (
            50_000,
            &["escalate"][..],
            "execute draft#1 -> review\nexecute review#1: task for director\ndecide review#1: escalate\ncomplete review#1 escalated -> send\nexecute send#1 -> (end)\nfinish completed",
        ),
        (
            50_000,
            &["reject"][..],
            "execute draft#1 -> review\nexecute review#1: task for director\ndecide review#1: reject\ncomplete review#1 rejected -> (end)\nfinish completed",
        ),
    ] {
        check(
            REVIEWED,
            json!({ "amount": amount }),
            Script {
                decisions,
                ..Script::default()
            },
            expect,
        );
    }
}

#[test]
fn task_escalation_moves_the_task_along_its_chain() {
    let mut driver = Driver::start(
        REVIEWED,
        json!({"amount": 500}),
        Script {
            decisions: &[],
            ..Script::default()
        },
    );
    driver.drive();
    let id = driver.state.open_tasks().next().unwrap().id;
    for (role, expect_role, expect_chain) in [
        ("director", "director", vec!["cfo"]),
        ("cfo", "cfo", vec![]),
    ] {
        driver.push(Event::TaskEscalated {
            task: id,
            role: role.into(),
            by: "sla".into(),
            due_at: None,
        });
        let task = driver.state.open_tasks().next().unwrap();
        assert_eq!(
            (task.role.as_str(), task.escalation.clone()),
            (
                expect_role,
                expect_chain
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(driver.plan(), Plan::WaitingForDecision);
    }
}

// The revise loop: a rejected draft goes back to the prompt, bounded by `max_visits`.
const REVISE: &str = r#"
  - {id: draft, kind: prompt, agent: writer, template: kit, max_visits: 2, on_exhausted: lead, next: review}
  - id: review
    kind: review
    draft: "{{ draft.text }}"
    role: editor
    on: {approved: send, rejected: draft}
  - {id: lead, kind: review, draft: "{{ draft.text }}", role: team-lead, on: {approved: send}}
  - {id: send, kind: output, emit: {event: kit.sent}}
"#;

#[test]
fn revise_loop_is_bounded_by_max_visits() {
    for (decisions, expect) in [
        (
            &["approve"][..],
            r#"
execute draft#1 -> review
execute review#1: task for editor
decide review#1: approve
complete review#1 approved -> send
execute send#1 -> (end)
finish completed
"#,
        ),
        (
            &["reject", "approve"][..],
            r#"
execute draft#1 -> review
execute review#1: task for editor
decide review#1: reject
complete review#1 rejected -> draft
execute draft#2 -> review
execute review#2: task for editor
decide review#2: approve
complete review#2 approved -> send
execute send#1 -> (end)
finish completed
"#,
        ),
        (
            &["reject", "reject", "approve"][..],
            r#"
execute draft#1 -> review
execute review#1: task for editor
decide review#1: reject
complete review#1 rejected -> draft
execute draft#2 -> review
execute review#2: task for editor
decide review#2: reject
complete review#2 rejected -> draft
exhaust draft after 2 -> lead
execute lead#1: task for team-lead
decide lead#1: approve
complete lead#1 approved -> send
execute send#1 -> (end)
finish completed
"#,
        ),
    ] {
        check(
            REVISE,
            json!({}),
            Script {
                decisions,
                ..Script::default()
            },
            expect,
        );
    }
}

#[test]
fn revise_loop_without_on_exhausted_fails_the_run() {
    let nodes = REVISE.replace(", on_exhausted: lead", "").replace(
        "  - {id: lead, kind: review, draft: \"{{ draft.text }}\", role: team-lead, on: {approved: send}}\n",
        "",
    );
    let mut driver = Driver::start(
        &nodes,
        json!({}),
        Script {
            decisions: &["reject", "reject"],
            ..Script::default()
        },
    );
    driver.drive();
    assert_eq!(
        driver.trace(),
        r#"
execute draft#1 -> review
execute review#1: task for editor
decide review#1: reject
complete review#1 rejected -> draft
execute draft#2 -> review
execute review#2: task for editor
decide review#2: reject
complete review#2 rejected -> draft
exhaust draft after 2 -> (end)
finish failed
"#
        .trim()
    );
    assert_eq!(driver.state.finished, Some(FinalStatus::Failed));
    assert_eq!(driver.plan(), Plan::Done);
}

// ---------------------------------------------------------------------------------------------
// Crashes, failures, retries

const CHAIN: &str = r#"
  - {id: intake, kind: transform, set: {x: "1"}, next: draft}
  - {id: draft, kind: prompt, agent: writer, template: kit, next: review}
  - {id: review, kind: review, draft: "{{ draft.text }}", role: editor, on: {approved: send}}
  - {id: send, kind: output, http: {url: "https://notes.example.com/api", body: "{{ review.text }}"}}
"#;

fn started() -> Event {
    Event::RunStarted {
        blueprint: "demo".into(),
        version: "v1".into(),
        trigger: "form".into(),
        start: "intake".into(),
        payload: json!({}),
    }
}

fn finished(node: &str, visit: u32, next: &[&str]) -> Event {
    Event::NodeFinished {
        node: node.into(),
        visit,
        output: json!({"text": format!("{node} v{visit}")}),
        vars: Map::new(),
        next: next.iter().map(|s| (*s).to_owned()).collect(),
        label: None,
        meta: Default::default(),
    }
}

fn node_started(node: &str, visit: u32, attempt: u32) -> Event {
    Event::NodeStarted {
        node: node.into(),
        visit,
        attempt,
    }
}

#[test]
fn crash_recovery_reruns_started_steps_and_never_finished_ones() {
    // Each journal stops where the engine was killed; the next plan says what to do.
    let t1 = Task {
        id: Uuid::from_u128(7),
        node: "review".into(),
        visit: 1,
        title: "Review".into(),
        draft: "d".into(),
        role: "editor".into(),
        users: vec![],
        escalation: vec![],
        reasons: vec![],
        due_at: None,
        remind_at: None,
        context: Value::Null,
        policy: Default::default(),
    };
    let cases: Vec<(&str, Vec<Event>, Plan)> = vec![
        (
            "nothing ran yet",
            vec![started()],
            Plan::Run(vec![Step::Execute {
                node: "intake".into(),
                visit: 1,
                attempt: 1,
            }]),
        ),
        (
            "a pure step finished: it is not run again",
            vec![started(), finished("intake", 1, &["draft"])],
            Plan::Run(vec![Step::Execute {
                node: "draft".into(),
                visit: 1,
                attempt: 1,
            }]),
        ),
        (
            "a prompt started and did not finish: run it again, next attempt",
            vec![
                started(),
                finished("intake", 1, &["draft"]),
                node_started("draft", 1, 1),
            ],
            Plan::Run(vec![Step::Execute {
                node: "draft".into(),
                visit: 1,
                attempt: 2,
            }]),
        ),
        (
            "the prompt finished: it is never planned again",
            vec![
                started(),
                finished("intake", 1, &["draft"]),
                node_started("draft", 1, 1),
                finished("draft", 1, &["review"]),
            ],
            Plan::Run(vec![Step::Execute {
                node: "review".into(),
                visit: 1,
                attempt: 1,
            }]),
        ),
        (
            "a review started but its task was not created: create it",
            vec![
                started(),
                finished("intake", 1, &["draft"]),
                node_started("draft", 1, 1),
                finished("draft", 1, &["review"]),
                node_started("review", 1, 1),
            ],
            Plan::Run(vec![Step::Execute {
                node: "review".into(),
                visit: 1,
                attempt: 2,
            }]),
        ),
        (
            "a review whose task exists waits; no second task",
            vec![
                started(),
                finished("intake", 1, &["draft"]),
                node_started("draft", 1, 1),
                finished("draft", 1, &["review"]),
                node_started("review", 1, 1),
                Event::TaskCreated { task: t1.clone() },
            ],
            Plan::WaitingForDecision,
        ),
        (
            "a decision recorded before the crash is not lost",
            vec![
                started(),
                finished("intake", 1, &["draft"]),
                node_started("draft", 1, 1),
                finished("draft", 1, &["review"]),
                node_started("review", 1, 1),
                Event::TaskCreated { task: t1.clone() },
                Event::DecisionRecorded {
                    task: t1.id,
                    decision: Decision {
                        action: Action::Approve,
                        by: "ana".into(),
                        text: None,
                        reason: None,
                    },
                },
            ],
            Plan::Run(vec![Step::CompleteReview {
                node: "review".into(),
                visit: 1,
            }]),
        ),
    ];
    let graph = Graph::new(&load(CHAIN));
    for (name, events, expect) in cases {
        let state = RunState::replay(&graph, &events);
        assert_eq!(plan(&graph, &state, &BTreeSet::new()), expect, "{name}");
    }
}

#[test]
fn resumed_run_finishes_without_rerunning_finished_steps() {
    let events = vec![
        started(),
        finished("intake", 1, &["draft"]),
        node_started("draft", 1, 1),
    ];
    let mut driver = Driver::resume(
        CHAIN,
        events,
        Script {
            decisions: &["approve"],
            ..Script::default()
        },
    );
    driver.drive();
    assert_eq!(
        driver.trace(),
        r#"
execute draft#1 (attempt 2) -> review
execute review#1: task for editor
decide review#1: approve
complete review#1 approved -> send
execute send#1 -> (end)
finish completed
"#
        .trim()
    );
    for node in ["intake", "draft", "review", "send"] {
        let runs = driver
            .events
            .iter()
            .filter(|e| matches!(e, Event::NodeFinished { node: n, .. } if n == node))
            .count();
        assert_eq!(runs, 1, "{node} finished {runs} times");
    }
}

#[test]
fn failed_steps_wait_for_a_retry_then_run_exactly_once() {
    for (fail, expect) in [
        (
            &["draft#1"][..],
            r#"
execute intake#1 -> draft
execute draft#1: failed
needs attention
retry
execute draft#1 (attempt 2) -> review
execute review#1: task for editor
decide review#1: approve
complete review#1 approved -> send
execute send#1 -> (end)
finish completed
"#,
        ),
        // A pure node records no start; failing must still take its token, or it would run
        // again after the retry.
        (
            &["intake#1"][..],
            r#"
execute intake#1: failed
needs attention
retry
execute intake#1 (attempt 2) -> draft
execute draft#1 -> review
execute review#1: task for editor
decide review#1: approve
complete review#1 approved -> send
execute send#1 -> (end)
finish completed
"#,
        ),
    ] {
        check(
            CHAIN,
            json!({}),
            Script {
                decisions: &["approve"],
                fail,
                retry: true,
            },
            expect,
        );
    }
}

#[test]
fn a_failed_step_without_retry_leaves_the_run_needing_attention() {
    let driver = check(
        CHAIN,
        json!({}),
        Script {
            fail: &["send#1"],
            decisions: &["approve"],
            retry: false,
        },
        r#"
execute intake#1 -> draft
execute draft#1 -> review
execute review#1: task for editor
decide review#1: approve
complete review#1 approved -> send
execute send#1: failed
needs attention
"#,
    );
    assert!(driver.state.needs_attention());
    assert_eq!(
        driver.state.error.as_deref(),
        Some("send: provider timed out")
    );
    assert_eq!(driver.state.finished, None);
}

// ---------------------------------------------------------------------------------------------
// Concurrency and determinism

const PARALLEL: &str = r#"
  - {id: split, kind: transform, set: {x: "1"}, next: [a, b]}
  - {id: a, kind: prompt, agent: writer, template: a, next: merge}
  - {id: b, kind: transform, set: {y: "2"}, next: merge}
  - {id: merge, kind: output, file: {path: out.md, content: x}}
"#;

#[test]
fn inflight_nodes_are_not_planned_twice() {
    let graph = Graph::new(&load(PARALLEL));
    let after_split = vec![started_at("split"), finished("split", 1, &["a", "b"])];
    let a_running = [after_split.clone(), vec![node_started("a", 1, 1)]].concat();
    let b_done = [after_split.clone(), vec![finished("b", 1, &["merge"])]].concat();
    let both_done = [
        b_done.clone(),
        vec![node_started("a", 1, 1), finished("a", 1, &["merge"])],
    ]
    .concat();
    let exec = |node: &str| Step::Execute {
        node: node.into(),
        visit: 1,
        attempt: 1,
    };
    let cases: Vec<(&str, &[Event], &[&str], Plan)> = vec![
        (
            "both branches are ready",
            &after_split,
            &[],
            Plan::Run(vec![exec("a"), exec("b")]),
        ),
        (
            "`a` is being executed by this process",
            &after_split,
            &["a"],
            Plan::Run(vec![exec("b")]),
        ),
        (
            "both are being executed",
            &after_split,
            &["a", "b"],
            Plan::Busy,
        ),
        (
            "`a` started and is still in flight",
            &a_running,
            &["a"],
            Plan::Run(vec![exec("b")]),
        ),
        (
            "`b` finished, `a` in flight: the join waits",
            &b_done,
            &["a"],
            Plan::Busy,
        ),
        (
            "`b` finished, `a` not started yet: the join waits",
            &b_done,
            &[],
            Plan::Run(vec![exec("a")]),
        ),
        (
            "the join itself in flight",
            &both_done,
            &["merge"],
            Plan::Busy,
        ),
        (
            "both finished: the join runs",
            &both_done,
            &[],
            Plan::Run(vec![exec("merge")]),
        ),
    ];
    for (name, events, inflight, expect) in cases {
        let state = RunState::replay(&graph, events);
        let inflight: BTreeSet<String> = inflight.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(plan(&graph, &state, &inflight), expect, "{name}");
    }
}

fn started_at(start: &str) -> Event {
    Event::RunStarted {
        blueprint: "demo".into(),
        version: "v1".into(),
        trigger: "form".into(),
        start: start.into(),
        payload: json!({}),
    }
}

#[test]
fn replaying_a_journal_gives_the_same_state_and_the_same_plans() {
    let nodes = format!(
        "{}  - {{id: extra, kind: prompt, agent: writer, template: x}}\n",
        REVISE.replace("next: review}", "next: [review, extra]}")
    );
    let mut driver = Driver::start(
        &nodes,
        json!({"name": "Ada"}),
        Script {
            decisions: &["reject", "edit"],
            ..Script::default()
        },
    );
    driver.drive();
    assert_eq!(
        driver.state.finished,
        Some(FinalStatus::Completed),
        "{}",
        driver.trace()
    );

    // The whole journal, replayed (twice), gives the state built step by step.
    let replayed = RunState::replay(&driver.graph, &driver.events);
    assert_eq!(replayed, driver.state);
    assert_eq!(RunState::replay(&driver.graph, &driver.events), replayed);

    // So does the journal after a trip through its stored form (JSON).
    let stored: Vec<String> = driver
        .events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let loaded: Vec<Event> = stored
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(loaded, driver.events);
    assert_eq!(RunState::replay(&driver.graph, &loaded), driver.state);

    // And every prefix plans the same as a state rebuilt from scratch.
    let mut live = RunState::default();
    for (i, event) in driver.events.iter().enumerate() {
        live.apply(&driver.graph, event);
        let rebuilt = RunState::replay(&driver.graph, &driver.events[..=i]);
        assert_eq!(live, rebuilt, "after event {i}");
        assert_eq!(
            plan(&driver.graph, &live, &BTreeSet::new()),
            plan(&driver.graph, &rebuilt, &BTreeSet::new()),
            "after event {i}"
        );
    }
}

#[test]
fn joins_waiting_on_each_other_run_rather_than_deadlock() {
    // `b` and `c` can each reach the other, so each join waits for the other's token; with
    // nothing else able to move, the planner runs both.
    check(
        r#"
  - {id: split, kind: transform, set: {x: "1"}, next: [b, c]}
  - {id: b, kind: transform, set: {y: "2"}, next: c, max_visits: 2, on_exhausted: done}
  - {id: c, kind: transform, set: {z: "3"}, next: b}
  - {id: done, kind: output, emit: {event: loop.done}}
"#,
        json!({}),
        Script::default(),
        r#"
execute split#1 -> b, c
execute b#1 -> c
execute c#1 -> b
execute b#2 -> c
execute c#2 -> b
exhaust b after 2 -> done
execute done#1 -> (end)
finish completed
"#,
    );
}
