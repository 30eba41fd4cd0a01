//! SLA timers driven by a fake clock: reminders, breaches along the escalation chain, policy
//! decisions, and exactly-once firing across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use processops_core::journal::{Action, Decision, Event};
use processops_engine::triggers::fire_due_timers;
use processops_engine::{Compiled, Engine, EngineConfig, Registry};
use processops_store::{Durability, RunStatus, Store, TaskFilter, TaskRow};
use serde_json::json;
use uuid::Uuid;

fn blueprint(policy: &str) -> String {
    format!(
        r#"
id: expense
name: Expense approval
start: review
triggers:
  - kind: manual
    id: form
nodes:
  - kind: review
    id: review
    role: manager
    draft: "Expense of {{{{ trigger.amount }}}}"
    sla: 4h
    remind_before: 1h
    escalation: [director, vp]
{policy}
    on:
      approved: book
      rejected: notify
  - kind: output
    id: book
    file: {{ path: "booked/{{{{ run.id }}}}.txt", content: "{{{{ review.text }}}} ({{{{ review.by }}}})" }}
  - kind: output
    id: notify
    file: {{ path: "rejected/{{{{ run.id }}}}.txt", content: "{{{{ review.reason }}}}" }}
"#
    )
}

struct Harness {
    dir: tempfile::TempDir,
    engine: Engine,
}

impl Harness {
    async fn new(policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Self::engine(dir.path(), policy).await;
        Self { dir, engine }
    }

    async fn engine(dir: &std::path::Path, policy: &str) -> Engine {
        let store = Store::open(&dir.join("db.sqlite"), Durability::Process).unwrap();
        let registry = Arc::new(Registry::default());
        registry.insert(Arc::new(Compiled::from_source(&blueprint(policy)).unwrap()));
        let engine = Engine::new(EngineConfig {
            store,
            registry,
            providers: HashMap::new(),
            outputs_dir: dir.join("outputs"),
        })
        .unwrap();
        engine.record_versions().await.unwrap();
        engine
    }

    /// A new engine over the same store, as after a restart.
    async fn restart(&mut self, policy: &str) {
        self.engine.settle_all().await;
        self.engine = Self::engine(self.dir.path(), policy).await;
        self.engine.recover().await.unwrap();
    }

    async fn start(&self) -> Uuid {
        let s = self
            .engine
            .start_run("expense", None, json!({"amount": 1200}), None)
            .await
            .unwrap();
        self.engine.settle(s.run_id).await;
        s.run_id
    }

    fn task(&self) -> TaskRow {
        self.engine
            .store()
            .list_tasks(&TaskFilter {
                status: None,
                ..TaskFilter::default()
            })
            .unwrap()
            .remove(0)
    }

    async fn fire(&self, at: i64) -> Vec<String> {
        let now = DateTime::<Utc>::from_timestamp_millis(at).unwrap();
        let fired = fire_due_timers(&self.engine, now).await.unwrap();
        self.engine.settle_all().await;
        fired.into_iter().map(|f| f.what).collect()
    }

    fn journal(&self, run: Uuid) -> Vec<Event> {
        self.engine
            .store()
            .load_run(run)
            .unwrap()
            .unwrap()
            .1
            .into_iter()
            .map(|e| e.event)
            .collect()
    }
}

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn reminders_and_breaches_walk_the_chain_once_each_even_across_restarts() {
    let mut h = Harness::new("").await;
    let run = h.start().await;
    let task = h.task();
    let due = task.due_at.unwrap();
    assert_eq!(task.timers.remind_at, Some(due - HOUR));

    assert!(
        h.fire(due - 2 * HOUR).await.is_empty(),
        "nothing is due two hours before the deadline"
    );
    assert_eq!(h.fire(due - HOUR / 2).await, vec!["reminded"]);
    assert!(
        h.fire(due - HOUR / 2).await.is_empty(),
        "a reminder fires once"
    );

    // Breach: the task moves to the director with a fresh four hours.
    assert_eq!(h.fire(due + 1).await, vec!["escalated to director"]);
    let t = h.task();
    assert_eq!(t.task.role, "director");
    let due2 = t.due_at.unwrap();
    assert_eq!(due2, due + 1 + 4 * HOUR);
    assert_eq!(t.timers.remind_at, None);
    assert!(h.fire(due + 2).await.is_empty(), "a breach fires once");

    // The engine is down past the director's deadline; on start the overdue breach fires once.
    h.restart("").await;
    assert_eq!(h.fire(due2 + 5 * HOUR).await, vec!["escalated to vp"]);
    assert!(h.fire(due2 + 5 * HOUR).await.is_empty());
    let due3 = h.task().due_at.unwrap();

    // The chain is used up: the task stays, flagged for a person.
    assert_eq!(h.fire(due3 + 1).await, vec!["needs attention"]);
    assert!(h.fire(due3 + 10 * HOUR).await.is_empty());
    let t = h.task();
    assert!(t.timers.attention);
    assert_eq!(t.task.role, "vp");
    assert_eq!(
        h.engine.store().load_run(run).unwrap().unwrap().0.status,
        RunStatus::Waiting
    );

    // It can still be decided, and the run finishes.
    h.engine
        .decide(
            t.id,
            Decision {
                action: Action::Approve,
                by: "vera".into(),
                text: None,
                reason: None,
            },
        )
        .await
        .unwrap();
    h.engine.settle(run).await;
    assert_eq!(
        h.engine.store().load_run(run).unwrap().unwrap().0.status,
        RunStatus::Completed
    );

    let journal = h.journal(run);
    let count = |f: fn(&Event) -> bool| journal.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, Event::TaskReminded { .. })), 1);
    assert_eq!(count(|e| matches!(e, Event::TaskBreached { .. })), 3);
    assert_eq!(
        count(|e| matches!(e, Event::TaskEscalated { by, .. } if by == "sla")),
        2
    );
}

#[tokio::test]
async fn a_breach_can_approve_or_reject_by_policy() {
    for (policy, folder, expected) in [
        ("    on_breach: approve", "booked", "Expense of 1200 (sla)"),
        ("    on_breach: reject", "rejected", "SLA breached"),
    ] {
        let h = Harness::new(policy).await;
        let run = h.start().await;
        let due = h.task().due_at.unwrap();
        let fired = h.fire(due + 1).await;
        assert_eq!(
            fired.len(),
            2,
            "{policy}: the reminder (overdue too) and the breach: {fired:?}"
        );
        assert!(fired.iter().any(|f| f.ends_with("by policy")), "{fired:?}");
        h.engine.settle(run).await;
        assert_eq!(
            h.engine.store().load_run(run).unwrap().unwrap().0.status,
            RunStatus::Completed,
            "{policy}"
        );
        let written =
            std::fs::read_to_string(h.dir.path().join(format!("outputs/{folder}/{run}.txt")))
                .unwrap();
        assert_eq!(written, expected);
        // A person deciding after the policy did is told who decided.
        let err = h
            .engine
            .decide(
                h.task().id,
                Decision {
                    action: Action::Approve,
                    by: "max".into(),
                    text: None,
                    reason: None,
                },
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already decided by sla"), "{err}");
    }
}

#[tokio::test]
async fn working_hours_push_the_deadline_past_the_weekend() {
    let h = Harness::new(
        "    working_hours: { days: [mon, tue, wed, thu, fri], start: \"09:00\", end: \"17:00\" }",
    )
    .await;
    h.start().await;
    let t = h.task();
    let created = DateTime::<Utc>::from_timestamp_millis(t.created_at).unwrap();
    let calendar =
        processops_core::sla::Calendar::parse(&processops_core::blueprint::WorkingHours {
            days: ["mon", "tue", "wed", "thu", "fri"]
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            start: "09:00".into(),
            end: "17:00".into(),
            utc_offset: "+00:00".into(),
        })
        .unwrap();
    let expected = processops_core::sla::due_at(created, Duration::hours(4), Some(&calendar))
        .timestamp_millis();
    // The task row is written a moment after `created_at` is taken; allow that moment.
    assert!(
        (t.due_at.unwrap() - expected).abs() < 5_000,
        "due {} expected about {expected}",
        t.due_at.unwrap()
    );
}
